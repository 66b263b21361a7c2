"""Test data for the end-to-end-encrypted API: the recorded vectors and exchanges in
``tests/data/e2ee`` (made against a throwaway Phase server; nothing in them is secret)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

DATA = Path(__file__).parent / "data" / "e2ee"


class Exchange(NamedTuple):
    """One recorded HTTP exchange."""

    method: str
    target: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    response_headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "e2ee-vectors.json").read_text())
    return data


def _headers(lines: list[str]) -> dict[str, str]:
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


def exchange(name: str) -> Exchange:
    """The exchange ``<folder>/<file stem>``, e.g. ``user_appB/01_GET_tokens``."""
    raw = (DATA / "recorded-e2ee" / f"{name}.http").read_bytes()
    request_part, _, response_part = raw.partition(b"### RESPONSE\n")
    request_part = request_part.split(b"### REQUEST\n", 1)[1]
    req_head, _, req_body = request_part.partition(b"\n\n")
    resp_head, _, resp_body = response_part.partition(
        b"\r\n\r\n" if b"\r\n\r\n" in response_part else b"\n\n"
    )
    req_lines = req_head.decode().splitlines()
    resp_lines = resp_head.decode().splitlines()
    method, target, _ = req_lines[0].split(" ", 2)
    return Exchange(
        method,
        target,
        _headers(req_lines[1:]),
        req_body.strip(),
        int(resp_lines[0].split(" ")[1]),
        _headers(resp_lines[1:]),
        resp_body.strip(),
    )
