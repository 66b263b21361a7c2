"""T20, replies: a few KB that inflate to hundreds of MB never get past the size limit in memory.

Each bomb is served by a fake Phase on 127.0.0.1 inside a child process that has a memory cap
(``RLIMIT_AS``, so a failure is a ``MemoryError`` there, not the kernel's OOM killer here) and a
hard timeout; the child reports its peak RSS growth during the call. The client asks for
``Accept-Encoding: gzip`` only and decodes gzip and deflate itself with bounded output; any other
or stacked encoding is refused before a byte is decoded.
"""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path
from typing import Any

import pytest

from phase_settings import PhaseClient, PhaseResponseError

from .._subprocesses import clean_env
from ..conftest import Phase

MiB = 1024 * 1024
LIMIT = 32 * MiB  # phase_max_response_bytes' default
BOUND = 2 * LIMIT + 64 * MiB  # RELIABILITY T20's bound on peak RSS growth
INFLATED = 512 * MiB


def _compress(wbits: int, size: int = INFLATED) -> bytes:
    """``size`` zero bytes compressed, made in 1 MiB steps (no big buffer in the parent)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    chunk = bytes(MiB)
    parts = [packer.compress(chunk) for _ in range(size // MiB)]
    return b"".join(parts) + packer.flush()


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    one = _compress(16 + zlib.MAX_WBITS)
    made = {
        "gzip": one,
        "gzip, gzip": gzip.compress(one, 9),
        "deflate": _compress(zlib.MAX_WBITS),
        "deflate (raw)": _compress(-zlib.MAX_WBITS),
        "br": bytes(range(256)) * 16,  # refused unread: what it would inflate to is moot
        "zstd": b"\x28\xb5\x2f\xfd" + bytes(4000),
        "x-gzip": one,
    }
    paths = {}
    for name, data in made.items():
        path = folder / (name.replace(",", "").replace(" ", "_").replace("(", "").replace(")", ""))
        path.write_bytes(data)
        paths[name] = path
    return paths


CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from phase_settings import PhaseClient, PhaseError
    from phase_settings.testing import FakePhase

    encoding, path = sys.argv[1], sys.argv[2]
    header = "deflate" if encoding.startswith("deflate") else encoding
    body = open(path, "rb").read()
    resource.setrlimit(resource.RLIMIT_AS, (3 * 1024**3, 3 * 1024**3))
    fake = FakePhase()
    app_id = fake.add_app("demo")
    token = fake.add_service_account(envs=None)
    with fake.serve() as url, PhaseClient(token, url, deadline=20) as client:
        client.list_apps()  # imports and the connection warm
        fake.fail_next(200, headers={"Content-Encoding": header}, body=body)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        started = time.monotonic()
        try:
            client.list_secrets(app_id, "development")
            outcome, message = "ok", ""
        except PhaseError as exc:
            outcome, message = type(exc).__name__, str(exc)
        except MemoryError:
            outcome, message = "MemoryError", ""
        elapsed = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        asked = fake.requests[-1].headers.get("accept-encoding")
    print(json.dumps({"outcome": outcome, "message": message, "growth": after - before,
                      "elapsed": elapsed, "asked": asked, "wire": len(body)}))
    """
)


def run_child(encoding: str, path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, encoding, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "encoding", ["gzip", "x-gzip", "gzip, gzip", "deflate", "deflate (raw)", "br", "zstd"]
)
def test_a_bomb_is_a_response_error_within_the_memory_bound(
    encoding: str, bombs: dict[str, Path]
) -> None:
    result = run_child(encoding, bombs[encoding])
    print(
        f"[T20] {encoding:14} {result['wire']:>9,} bytes on the wire -> {result['outcome']}, "
        f"peak RSS +{result['growth'] / MiB:.0f} MiB, {result['elapsed'] * 1000:.0f} ms"
    )
    assert result["asked"] == "gzip"
    assert result["outcome"] == "PhaseResponseError", result
    assert result["growth"] <= BOUND, result
    if encoding in ("br", "zstd", "gzip, gzip"):
        assert f"encoded as '{encoding}'" in result["message"]
    else:
        assert "larger than max_response_bytes" in result["message"]


def test_an_honest_20_mib_gzip_reply_under_the_limit_loads(phase: Phase) -> None:
    value = "v" * 1000
    secrets = [
        {"id": str(i), "key": f"K{i}", "value": value, "tags": [], "version": 1}
        for i in range(20 * 1024)
    ]
    raw = json.dumps(secrets).encode()
    assert 20 * MiB <= len(raw) < LIMIT
    phase.fake.fail_next(200, headers={"Content-Encoding": "gzip"}, body=gzip.compress(raw))
    with PhaseClient(phase.token, phase.url) as client:
        got = client.list_secrets(phase.app_id, "development")
    assert len(got) == len(secrets) and got[-1].value == value


@pytest.mark.parametrize("size", [LIMIT, LIMIT + 1])
def test_the_limit_applies_to_the_decoded_bytes(phase: Phase, size: int) -> None:
    """Exactly ``max_response_bytes`` decoded is read; one byte more is refused."""
    document = json.dumps([{"id": "1", "key": "K", "value": "", "tags": [], "version": 1}])
    padded = document[:-1] + " " * (size - len(document)) + "]"
    assert len(padded) == size
    phase.fake.fail_next(
        200, headers={"Content-Encoding": "gzip"}, body=gzip.compress(padded.encode())
    )
    with PhaseClient(phase.token, phase.url) as client:
        if size <= LIMIT:
            assert [s.key for s in client.list_secrets(phase.app_id, "development")] == ["K"]
        else:
            with pytest.raises(PhaseResponseError, match="larger than max_response_bytes"):
                client.list_secrets(phase.app_id, "development")


def test_a_cut_gzip_body_is_a_response_error(phase: Phase) -> None:
    whole = gzip.compress(json.dumps([]).encode() + b" " * 1000)
    phase.fake.fail_next(200, headers={"Content-Encoding": "gzip"}, body=whole[: len(whole) // 2])
    with PhaseClient(phase.token, phase.url) as client, pytest.raises(PhaseResponseError) as info:
        client.list_secrets(phase.app_id, "development")
    assert "could not be decoded" in str(info.value)


def test_a_5xx_in_an_unread_encoding_is_the_server_error_its_status_says(phase: Phase) -> None:
    phase.fake.fail_next(503, headers={"Content-Encoding": "br"}, body=b"\x00" * 100, times=3)
    with PhaseClient(phase.token, phase.url, sleep=lambda s: None) as client:
        with pytest.raises(Exception) as info:
            client.list_secrets(phase.app_id, "development")
    assert type(info.value).__name__ == "PhaseServerError"
    assert len(phase.fake.requests) == 3  # retried like any 503


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
def test_an_honest_deflate_reply_of_many_chunks_loads(phase: Phase, wbits: int) -> None:
    """``deflate`` as the RFC says (zlib-wrapped) and as servers send it (raw), over many
    reads: the decoder is made once, from the first bytes, and kept for the whole body."""
    rng = random.Random(7)  # incompressible values: the body spans many reads
    secrets = [
        {"id": str(i), "key": f"K{i}", "value": f"{rng.getrandbits(128):032x}", "tags": []}
        for i in range(8000)
    ]
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
    body = packer.compress(json.dumps(secrets).encode()) + packer.flush()
    assert len(body) > 128 * 1024
    phase.fake.fail_next(200, headers={"Content-Encoding": "deflate"}, body=body)
    with PhaseClient(phase.token, phase.url) as client:
        got = client.list_secrets(phase.app_id, "development")
    assert [s.value for s in got] == [s["value"] for s in secrets]


def test_an_empty_body_labelled_gzip_is_an_empty_body(phase: Phase) -> None:
    phase.fake.fail_next(200, headers={"Content-Encoding": "gzip"}, body=b"")
    with PhaseClient(phase.token, phase.url) as client, pytest.raises(PhaseResponseError) as info:
        client.list_secrets(phase.app_id, "development")
    assert "the body is not JSON" in str(info.value)  # not "could not be decoded"
