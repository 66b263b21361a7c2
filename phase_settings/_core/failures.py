"""What a failed attempt means, as plain values: the transport's classifier fills them in (it
knows httpx and httpcore), the protocol core reads them (it knows neither)."""

from __future__ import annotations

from enum import Enum
from typing import Literal, NamedTuple

__all__ = ["Failure", "Kind", "Stage"]

Stage = Literal["send", "body"]  # "send" until the reply's head arrived, "body" while reading it


class Kind(Enum):
    CONNECTION = "connection"  # transient: retried, may fall back
    TLS = "tls"  # certificate or TLS protocol: final, never falls back
    NOT_HTTP = "not-http"  # the peer does not speak HTTP: a wrong PHASE_HOST
    DECODING = "decoding"  # a bad Content-Encoding
    BAD_URL = "bad-url"  # httpx cannot use the URL


class Failure(NamedTuple):
    kind: Kind
    reached_server: bool  # False only when the request surely never left (POST may retry)
    timeout: bool
    # what went wrong, in words a user reads ("connection refused", "name not known now:
    # phase.corp.example"); None when the transport cannot tell more than the kind
    cause: str | None = None
    # the host name the resolver says does not exist (EAI_NONAME): DESIGN §3 makes it a
    # configuration error when no copy exists and the host is not Phase Cloud's
    unknown_host: str | None = None
