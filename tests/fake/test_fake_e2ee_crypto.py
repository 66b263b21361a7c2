"""The fake's E2EE crypto: it opens the real server's vectors, and its tokens really work.

The client side here is plain PyNaCl written out step by step in the test (the protocol's read
and write paths), so that nothing of the fake's own crypto checks itself.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

import httpx
import nacl.bindings as sodium
import pytest

from phase_settings.testing import FakePhase, _crypto

from .._e2ee_recordings import DATA, load

VECTORS = json.loads((DATA / "e2ee-vectors.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------ a client, in plain PyNaCl


def client_decrypt(ciphertext: str, sk: bytes, pk: bytes) -> str:
    _ph, _v1, ephemeral, blob_b64 = ciphertext.split(":")
    rx, _tx = sodium.crypto_kx_server_session_keys(pk, sk, bytes.fromhex(ephemeral))
    blob = base64.b64decode(blob_b64)
    plain = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(blob[:-24], None, blob[-24:], rx)
    return bytes(plain).decode()


def client_encrypt(plaintext: str, recipient: bytes) -> str:
    epk, esk = sodium.crypto_kx_keypair()
    _rx, tx = sodium.crypto_kx_client_session_keys(epk, esk, recipient)
    nonce = bytes(range(24))
    sealed = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext.encode(), None, nonce, tx)
    return f"ph:v1:{bytes(epk).hex()}:{base64.b64encode(bytes(sealed) + nonce).decode()}"


class Client:
    """Reads the E2EE API the way Phase's CLI does: tokens, key share, env keys, secrets."""

    def __init__(self, http: httpx.Client, token: str) -> None:
        prefix, version, value, pub, share0, wrap_key = token.split(":")
        kind = "ServiceAccount" if (prefix, version) == ("pss_service", "v2") else "User"
        if prefix == "pss_service" and version != "v2":
            kind = "Service"
        self.http = http
        self.headers = {"Authorization": f"Bearer {kind} {value}"}
        tokens = http.get("/service/secrets/tokens/", headers=self.headers)
        assert tokens.status_code == 200
        self.tokens: dict[str, Any] = tokens.json()
        wrapped = bytes.fromhex(self.tokens["wrapped_key_share"])
        share1_hex = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            wrapped[:-24], None, wrapped[-24:], bytes.fromhex(wrap_key)
        ).decode()
        share1 = bytes.fromhex(share1_hex)
        self.sk = bytes(a ^ b for a, b in zip(bytes.fromhex(share0), share1, strict=True))
        self.pk = bytes.fromhex(pub)
        assert bytes(sodium.crypto_scalarmult_base(self.sk)) == self.pk

    def env_keys(self, app_id: str, env_name: str) -> tuple[str, bytes, bytes, str]:
        """(env id, env public key, env private key, salt hex) from the tokens response."""
        app = next(a for a in self.tokens["apps"] if a["id"] == app_id)
        entry = next(k for k in app["environment_keys"] if k["environment"]["name"] == env_name)
        seed = bytes.fromhex(client_decrypt(entry["wrapped_seed"], self.sk, self.pk))
        salt_hex = client_decrypt(entry["wrapped_salt"], self.sk, self.pk)
        pk, sk = sodium.crypto_kx_seed_keypair(seed)
        assert bytes(pk).hex() == entry["identity_key"]
        return entry["environment"]["id"], bytes(pk), bytes(sk), salt_hex

    def read(self, app_id: str, env_name: str, **headers: str) -> list[dict[str, Any]]:
        env_id, pk, sk, _salt = self.env_keys(app_id, env_name)
        response = self.http.get(
            "/service/secrets/", headers={**self.headers, "Environment": env_id, **headers}
        )
        assert response.status_code == 200, response.text
        plain = []
        for item in response.json():
            override = item["override"]
            value = override["value"] if override and override["is_active"] else item["value"]
            plain.append(
                {
                    "key": client_decrypt(item["key"], sk, pk),
                    "value": client_decrypt(value, sk, pk),
                    "comment": client_decrypt(item["comment"], sk, pk) if item["comment"] else "",
                    "path": item["path"],
                    "key_digest": item["key_digest"],
                }
            )
        return plain


def blake2b_digest(key: str, salt_hex: str) -> str:
    import hashlib

    return hashlib.blake2b(key.encode(), key=salt_hex.encode(), digest_size=32).hexdigest()


# ------------------------------------------------------------ the real vectors


@pytest.mark.parametrize("principal", ["user", "service_account"])
def test_the_fakes_crypto_opens_the_real_servers_vectors(principal: str) -> None:
    vector = VECTORS[principal]
    _prefix, _version, _value, pub, share0, wrap_key = vector["token"].split(":")
    expected = vector["expected"]
    share1 = _crypto.unwrap_share(
        vector["tokens_response"]["wrapped_key_share"], bytes.fromhex(wrap_key)
    )
    assert share1.hex() == expected["keyshare1_hex"]
    private_key = _crypto.xor(bytes.fromhex(share0), share1)
    assert private_key.hex() == expected["account_private_key_hex"]
    assert _crypto.public_key(private_key).hex() == pub
    entry = vector["environment_key_entry"]
    seed_hex = _crypto.decrypt(entry["wrapped_seed"], private_key, bytes.fromhex(pub))
    salt_hex = _crypto.decrypt(entry["wrapped_salt"], private_key, bytes.fromhex(pub))
    assert (seed_hex, salt_hex) == (expected["env_seed_hex"], expected["env_salt_hex"])
    env_pk, env_sk = _crypto.seed_keypair(bytes.fromhex(seed_hex))
    assert (env_pk.hex(), env_sk.hex()) == (
        expected["env_public_key_hex"],
        expected["env_private_key_hex"],
    )
    for secret in vector["secrets"]:
        for field in ("key", "value", "comment"):
            ciphertext = secret["ciphertext"][field]
            opened = _crypto.decrypt(ciphertext, env_sk, env_pk) if ciphertext else ""
            assert opened == secret["expected_plaintext"][field]
        assert _crypto.digest(secret["expected_plaintext"]["key"], salt_hex) == secret["key_digest"]


def test_the_fakes_crypto_opens_every_recorded_ciphertext_of_the_environment() -> None:
    expected = VECTORS["user"]["expected"]
    env_pk = bytes.fromhex(expected["env_public_key_hex"])
    env_sk = bytes.fromhex(expected["env_private_key_hex"])
    items = load("user_appB/03_GET_all_paths_no_Path_header.http").json()
    keys = [_crypto.decrypt(item["key"], env_sk, env_pk) for item in items]
    assert "DB_HOST" in keys and len(keys) == len(items) == 13
    for item in items:
        _crypto.decrypt(item["value"], env_sk, env_pk)
        key = _crypto.decrypt(item["key"], env_sk, env_pk)
        assert _crypto.digest(key, expected["env_salt_hex"]) == item["key_digest"]


def test_a_flipped_byte_or_the_wrong_keys_do_not_decrypt() -> None:
    expected = VECTORS["user"]["expected"]
    env_pk = bytes.fromhex(expected["env_public_key_hex"])
    env_sk = bytes.fromhex(expected["env_private_key_hex"])
    ciphertext = VECTORS["user"]["secrets"][0]["ciphertext"]["value"]
    head, blob = ciphertext.rsplit(":", 1)
    raw = bytearray(base64.b64decode(blob))
    raw[3] ^= 1
    with pytest.raises(_crypto.CryptoError):
        _crypto.decrypt(f"{head}:{base64.b64encode(bytes(raw)).decode()}", env_sk, env_pk)
    other_pk, other_sk = _crypto.seed_keypair(bytes(32))
    with pytest.raises(_crypto.CryptoError):
        _crypto.decrypt(ciphertext, other_sk, other_pk)
    with pytest.raises(_crypto.CryptoError):
        _crypto.decrypt("ph:v1:zz:AAAA", env_sk, env_pk)


def test_the_fakes_encryption_opens_with_plain_pynacl() -> None:
    pk, sk = sodium.crypto_kx_seed_keypair(bytes(range(32)))
    sealed = _crypto.encrypt("hello-phase", bytes(pk))
    assert _crypto.CIPHERTEXT.match(sealed)
    assert client_decrypt(sealed, bytes(sk), bytes(pk)) == "hello-phase"


# ------------------------------------------------------------ tokens minted by the fake


@pytest.fixture
def demo() -> tuple[FakePhase, str, str]:
    fake = FakePhase()
    e2ee = fake.add_app("demo", sse=False)
    sse = fake.add_app("shared")
    fake.set_secret(e2ee, "development", "db_host", "db.internal", comment="primary")
    fake.set_secret(e2ee, "development", "API_KEY", "k-1", path="/backend")
    fake.set_secret(e2ee, "staging", "DB_HOST", "staging-db")
    fake.set_secret(sse, "development", "HOST", "h")
    fake.set_secret(sse, "development", "URL", "https://${HOST}/x")
    return fake, e2ee, sse


@pytest.mark.parametrize("kind", ["user", "service_account", "service_token"])
def test_a_minted_token_decrypts_what_the_fake_stores(
    demo: tuple[FakePhase, str, str], kind: str
) -> None:
    fake, e2ee, _sse = demo
    if kind == "user":
        token = fake.add_user()
    elif kind == "service_account":
        token = fake.add_service_account(envs=("development",))
    else:
        token = fake.add_service_token(e2ee, envs=("development",))
    stored = fake.get_secret(e2ee, "development", "DB_HOST")
    assert stored is not None and stored["value"].startswith("ph:v1:")
    assert "db.internal" not in json.dumps(stored)
    with fake.serve() as url, httpx.Client(base_url=url) as http:
        client = Client(http, token)
        secrets = client.read(e2ee, "Development")
        _env, _pk, _sk, salt = client.env_keys(e2ee, "Development")
    by_key = {s["key"]: s for s in secrets}
    assert by_key["DB_HOST"]["value"] == "db.internal"
    assert by_key["DB_HOST"]["comment"] == "primary"
    assert by_key["API_KEY"] == {
        "key": "API_KEY",
        "value": "k-1",
        "comment": "",
        "path": "/backend",
        "key_digest": blake2b_digest("API_KEY", salt),
    }


def test_an_sse_app_read_over_e2ee_gives_the_raw_values_rest_resolves(
    demo: tuple[FakePhase, str, str],
) -> None:
    fake, _e2ee, sse = demo
    token = fake.add_user()
    with fake.serve() as url, httpx.Client(base_url=url) as http:
        client = Client(http, token)
        secrets = {s["key"]: s["value"] for s in client.read(sse, "Development")}
        rest = http.get(
            "/service/public/v1/secrets/",
            params={"app_id": sse, "env": "development", "key": "URL"},
            headers=client.headers,
        )
    assert secrets == {"HOST": "h", "URL": "https://${HOST}/x"}
    assert rest.json()[0]["value"] == "https://h/x"


def test_an_account_gets_keys_only_for_environments_it_may_read(
    demo: tuple[FakePhase, str, str],
) -> None:
    fake, e2ee, _sse = demo
    token = fake.add_service_account(envs=("development",), apps=(e2ee,))
    with fake.serve() as url, httpx.Client(base_url=url) as http:
        client = Client(http, token)
        [app] = client.tokens["apps"]
        assert [k["environment"]["name"] for k in app["environment_keys"]] == ["Development"]
        refused = http.get(
            "/service/secrets/",
            headers={**client.headers, "Environment": fake.env_id(e2ee, "staging")},
        )
    assert refused.status_code == 401
    assert refused.json() == {"error": "Service account cannot access this environment"}


def test_a_write_through_the_e2ee_api_stores_the_clients_ciphertext(
    demo: tuple[FakePhase, str, str],
) -> None:
    fake, e2ee, sse = demo
    token = fake.add_user()
    sent: dict[str, dict[str, str]] = {}
    with fake.serve() as url, httpx.Client(base_url=url) as http:
        client = Client(http, token)
        for app_id in (e2ee, sse):
            env_id, pk, _sk, salt = client.env_keys(app_id, "Development")
            item = sent[app_id] = {
                "key": client_encrypt("NEW_KEY", pk),
                "keyDigest": blake2b_digest("NEW_KEY", salt),
                "value": client_encrypt("new-value", pk),
                "comment": "",
                "path": "/",
            }
            headers = {**client.headers, "Environment": env_id}
            created = http.post("/service/secrets/", headers=headers, json={"secrets": [item]})
            assert (created.status_code, created.content) == (200, b"")
            listed = http.get(
                "/service/secrets/", headers={**headers, "KeyDigest": item["keyDigest"]}
            ).json()
            assert [(i["key"], i["value"]) for i in listed] == [(item["key"], item["value"])]
    stored = fake.get_secret(e2ee, "development", "NEW_KEY")
    assert stored is not None
    assert (stored["key"], stored["value"]) == (sent[e2ee]["key"], sent[e2ee]["value"])
    # The server of an SSE app can decrypt what it stores: REST shows the plaintext.
    on_sse = fake.get_secret(sse, "development", "NEW_KEY")
    assert on_sse is not None and (on_sse["key"], on_sse["value"]) == ("NEW_KEY", "new-value")


def test_a_personal_override_on_an_e2ee_app_is_stored_encrypted(
    demo: tuple[FakePhase, str, str],
) -> None:
    fake, e2ee, _sse = demo
    token = fake.add_user()
    fake.set_override(token, e2ee, "development", "DB_HOST", "localhost")
    with fake.serve() as url, httpx.Client(base_url=url) as http:
        client = Client(http, token)
        values = {s["key"]: s["value"] for s in client.read(e2ee, "Development", Path="/")}
    assert values == {"DB_HOST": "localhost"}


def test_switching_sse_on_converts_the_stored_ciphertext(demo: tuple[FakePhase, str, str]) -> None:
    fake, e2ee, _sse = demo
    token = fake.add_user()
    fake.set_sse(e2ee, True)
    assert fake.get_secret(e2ee, "development", "DB_HOST") is not None
    transport = fake.transport()
    with httpx.Client(transport=transport, base_url="http://127.0.0.1") as http:
        rest = http.get(
            "/service/public/v1/secrets/",
            params={"app_id": e2ee, "env": "development", "path": "/"},
            headers={"Authorization": f"Bearer User {token.split(':')[2]}"},
        )
    assert [(s["key"], s["value"], s["comment"]) for s in rest.json()] == [
        ("DB_HOST", "db.internal", "primary")
    ]


def test_importing_the_testing_package_does_not_load_pynacl() -> None:
    code = (
        "import sys, phase_settings.testing as t; f = t.FakePhase(); a = f.add_app('x');"
        "f.set_secret(a, 'development', 'K', 'v'); print('nacl' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "False", result.stderr


def test_a_seeded_app_without_sse_holds_ciphertext_a_token_opens() -> None:
    fake = FakePhase.from_seed(
        {
            "apps": [
                {"name": "vault", "sse": False, "environments": {"Development": {"/": {"K": 7}}}}
            ]
        }
    )
    app_id = fake.app_id("vault")
    token = fake.add_service_account()
    stored = fake.get_secret(app_id, "development", "K")
    assert stored is not None and stored["value"].startswith("ph:v1:")
    with httpx.Client(transport=fake.transport(), base_url="http://127.0.0.1") as http:
        assert Client(http, token).read(app_id, "Development")[0]["value"] == "7"


def test_no_key_material_in_the_reprs_of_the_fakes_state(
    demo: tuple[FakePhase, str, str],
) -> None:
    fake, e2ee, _sse = demo
    token = fake.add_user()
    with httpx.Client(transport=fake.transport(), base_url="http://127.0.0.1") as http:
        client = Client(http, token)
        _env, _pk, env_sk, salt = client.env_keys(e2ee, "Development")
    seed = bytes.fromhex(
        client_decrypt(
            client.tokens["apps"][0]["environment_keys"][0]["wrapped_seed"], client.sk, client.pk
        )
    )
    store = fake._store
    objects: list[object] = [fake, store, *store.apps.values(), *store.envs.values()]
    objects += [*store.tokens.values(), *store.secret_index.values()]
    text = " ".join(repr(obj) for obj in objects)
    for raw in (seed, env_sk, client.sk):
        assert raw.hex() not in text and repr(raw)[2:-1] not in text
    for material in (salt, *token.split(":")[2:]):
        assert material not in text
