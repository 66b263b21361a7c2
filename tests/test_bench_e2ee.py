"""The E2EE benchmark compares like with like: its floor decrypts the very values the library
loads, with PyNaCl alone."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_e2ee
import common


def test_the_floor_decrypts_what_the_fake_serves() -> None:
    fake, app_id, _ = bench_e2ee.serve_sealed(20)
    public, private = fake._store.env(app_id, "development").keypair()
    for key, value in common.secrets(20).items():
        stored = fake.get_secret(app_id, "development", key)
        assert stored is not None and stored["value"].startswith("ph:v1:")
        assert bench_e2ee.nacl_decrypt(stored["value"], public, private) == value
        assert bench_e2ee.nacl_decrypt(stored["key"], public, private) == key
