"""1. Reload and 3. warm load, in one warm process.

Reload: ``clear_cache(); Settings()`` vs the floor "one GET on a reused httpx.Client +
json.loads + the same fields on a stock BaseSettings built from the same values as environment
variables". Both sides keep their connection. Target <= 1.10. Printed beside it, like for like:
the same floor with the *same* PhaseSettings class built from environment variables with Phase
off (no token), so that the ratio is the library's own work only.

Warm: ``Settings()`` with a warm cache vs the same fields on BaseSettings from environment
variables only. Target <= 1.10.

The environment variables are set only while a floor runs: the Phase side reads no field from
them (as in production, where the values live in Phase).
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from common import (
    OUT,
    env_settings_class,
    median,
    phase_settings_class,
    secrets,
    serve_fake,
    timed,
    verdict,
)

import phase_settings

ROUNDS = 15
INNER = 20


def main() -> int:
    fake, app_id, token = serve_fake()
    values = secrets()
    with fake.serve() as url:
        Settings = phase_settings_class(
            phase_app_id=app_id, phase_env="development", phase_token=token, phase_host=url
        )
        EnvSettings = env_settings_class()
        PhaseOff = phase_settings_class()  # the same class, no token: Phase off
        http = httpx.Client()
        auth = {"Authorization": "Bearer ServiceAccount " + token.split(":")[2]}
        endpoint = f"{url}/service/public/v1/secrets/"
        params = {"app_id": app_id, "env": "development", "path": "/"}

        def floor_reload() -> object:
            body = http.get(endpoint, params=params, headers=auth).content
            json.loads(body)
            return EnvSettings()

        def reload() -> object:
            phase_settings.clear_cache()
            return Settings()

        def warm() -> object:
            return Settings()

        def env_only() -> object:
            return EnvSettings()

        def floor_phase_off() -> object:
            body = http.get(endpoint, params=params, headers=auth).content
            json.loads(body)
            return PhaseOff()

        def with_env(fn: object, repeat: int) -> list[float]:
            os.environ.update(values)
            try:
                return timed(fn, repeat)  # type: ignore[arg-type]
            finally:
                for key in values:
                    os.environ.pop(key, None)

        try:
            # correctness: every side loads the same values
            expected = Settings().model_dump()
            os.environ.update(values)
            assert EnvSettings().model_dump() == expected == PhaseOff().model_dump()
            for key in values:
                os.environ.pop(key, None)
            for fn in (floor_reload, env_only, floor_phase_off):  # warm-up
                with_env(fn, 5)
            for fn in (reload, warm):
                timed(fn, 5)
            reload_ratios, warm_ratios, own_ratios = [], [], []
            for _ in range(ROUNDS):  # interleave so drift hits both sides alike
                base = median(with_env(floor_reload, INNER))
                like = median(with_env(floor_phase_off, INNER))
                ours = median(timed(reload, INNER))
                reload_ratios.append(ours / base)
                own_ratios.append(ours / like)
                base = median(with_env(env_only, INNER))
                ours = median(timed(warm, INNER))
                warm_ratios.append(ours / base)
            OUT.mkdir(exist_ok=True)
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(50):
                reload()
            profile.disable()
            stats = pstats.Stats(profile)
            stats.dump_stats(OUT / "reload.prof")
            with (OUT / "reload.txt").open("w") as fh:
                pstats.Stats(str(OUT / "reload.prof"), stream=fh).sort_stats(
                    "cumulative"
                ).print_stats(40)
        finally:
            for key in values:
                os.environ.pop(key, None)
            http.close()
    print(f"  cProfile of 50 reloads saved to {OUT / 'reload.prof'} (and reload.txt)")
    ok = verdict("1. reload: Settings() after clear_cache / floor", median(reload_ratios), 1.10)
    print(
        f"{'   like for like: / floor with Phase off':<44} {median(own_ratios):>9.3f}"
        "  (the library's own work)"
    )
    ok &= verdict("3. warm load: cached Settings() / env vars only", median(warm_ratios), 1.10)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
