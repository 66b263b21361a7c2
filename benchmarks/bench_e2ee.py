"""7. Apps with end-to-end encryption (``phase_mode="e2ee"``), against the loopback fake.

Requests: a cold load of one path makes 2 (tokens + secrets), a load within the TTL 0, a
``refresh()`` at most 2.

Cold load of a 200-secret environment vs the floor measured in the same run: the same two GETs
with a reused httpx.Client + decrypting the same keys and values with PyNaCl alone + the same
class built from environment variables. Every value carries its own ephemeral key, so
decryption is real work; the library's overhead on top of it must stay small. Target <= 1.3.

Decryption scales linearly: decrypting a reply of 10,000 secrets vs one of 1,000. Target <= 12.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from common import env_settings_class, median, phase_settings_class, secrets, timed, verdict

import phase_settings
from phase_settings.testing import FakePhase

ROUNDS = 9
INNER = 5


def serve_sealed(n: int = 200) -> tuple[FakePhase, str, str]:
    """A fake whose app has no SSE (ciphertext only), holding ``n`` secrets."""
    fake = FakePhase()
    app_id = fake.add_app("bench", sse=False)
    token = fake.add_service_account(envs=None)
    for key, value in secrets(n).items():
        fake.set_secret(app_id, "development", key, value)
    return fake, app_id, token


def nacl_decrypt(text: str, public: bytes, private: bytes) -> str:
    """One ``ph:v1:<ephemeral public hex>:<base64 ciphertext+nonce>`` field, PyNaCl alone."""
    from nacl import bindings

    _, _, eph_hex, blob_b64 = text.split(":")
    rx, _ = bindings.crypto_kx_server_session_keys(public, private, bytes.fromhex(eph_hex))
    blob = base64.b64decode(blob_b64)
    opened: bytes = bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
        blob[:-24], None, blob[-24:], rx
    )
    return opened.decode()


def request_counts(fake: FakePhase, Settings: Any) -> bool:
    phase_settings.clear_cache()
    fake.clear_requests()
    Settings()
    cold = len(fake.requests)
    fake.clear_requests()
    Settings()
    within_ttl = len(fake.requests)
    live = phase_settings.LiveSettings(Settings)
    fake.clear_requests()
    live.refresh()
    refresh = len(fake.requests)
    ok = verdict("requests per cold load of one path (e2ee)", cold, 2)
    ok &= verdict("requests per load within the TTL (e2ee)", within_ttl, 0)
    return ok & verdict("requests per refresh() (e2ee)", refresh, 2)


def cold_load_ratio(fake: FakePhase, app_id: str, token: str, url: str, Settings: Any) -> bool:
    EnvSettings = env_settings_class()
    environment = fake._store.env(app_id, "development")  # the floor is handed the keys
    public, private = environment.keypair()
    http = httpx.Client()
    auth = {"Authorization": "Bearer ServiceAccount " + token.split(":")[2]}
    folder = {**auth, "Environment": environment.id, "Path": "/"}

    def floor() -> object:
        json.loads(http.get(url + "/service/secrets/tokens/", headers=auth).content)
        items = json.loads(http.get(url + "/service/secrets/", headers=folder).content)
        for item in items:
            nacl_decrypt(item["key"], public, private)
            nacl_decrypt(item["value"], public, private)
        return EnvSettings()

    def cold() -> object:
        phase_settings.clear_cache()
        return Settings()

    os.environ.update(secrets())
    try:
        assert cold().model_dump() == EnvSettings().model_dump()  # type: ignore[attr-defined]
        timed(floor, 3)
        timed(cold, 3)
        ratios = []
        for _ in range(ROUNDS):  # interleaved, so drift hits both sides alike
            base = median(timed(floor, INNER))
            ours = median(timed(cold, INNER))
            ratios.append(ours / base)
    finally:
        for key in secrets():
            os.environ.pop(key, None)
        http.close()
    print(f"   floor {base * 1000:.1f} ms, ours {ours * 1000:.1f} ms (last round)")
    return verdict("e2ee cold load (200) / floor", median(ratios), 1.3)


def decrypt_scaling() -> bool:
    from phase_settings._e2ee.cipher import seed_keypair
    from phase_settings._e2ee.keys import EnvKeys
    from phase_settings._e2ee.replies import parse_secrets

    public, private = seed_keypair(bytes(range(32)))
    env = EnvKeys("env-id", "Development", public, private, b"s" * 32)
    item = {"tags": [], "path": "/", "type": "secret", "version": 1, "comment": ""}
    items = [
        {**item, "id": str(i), "key": env.encrypt(f"KEY_{i}"), "value": env.encrypt(f"v-{i}")}
        for i in range(10_000)
    ]
    small, large = items[:1_000], items
    assert len(parse_secrets(large, env)) == 10_000
    ratios = []
    for _ in range(3):
        one = median(timed(lambda: parse_secrets(small, env), 5))
        ten = median(timed(lambda: parse_secrets(large, env), 2))
        ratios.append(ten / one)
    print(f"   1,000 secrets {one * 1000:.0f} ms, 10,000 secrets {ten * 1000:.0f} ms")
    return verdict("decrypting 10,000 / 1,000 secrets", median(ratios), 12)


def main() -> int:
    os.environ["PHASE_MODE"] = "e2ee"
    fake, app_id, token = serve_sealed()
    with fake.serve() as url:
        Settings = phase_settings_class(
            phase_app_id=app_id, phase_env="development", phase_token=token, phase_host=url
        )
        ok = request_counts(fake, Settings)
        ok &= cold_load_ratio(fake, app_id, token, url, Settings)
    ok &= decrypt_scaling()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
