"""Token forms: the ``Authorization`` header of a Phase token, and a one-way fingerprint.

Everything here runs before a socket is opened, so a bad token fails fast with a
:class:`PhaseConfigError` that never echoes the token. No HTTP library is imported.
"""

from __future__ import annotations

import hashlib
import re

from pydantic import SecretStr

from .._errors import PhaseConfigError, scrubbed

__all__ = [
    "KNOWN_VERSIONS",
    "TOKEN_FORMS",
    "auth_header",
    "has_key_parts",
    "token_fingerprint",
    "token_kind",
]

_HEX64 = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)
_VERSION = re.compile(r"v[0-9]+", re.ASCII)
_REST_TYPES = ("ServiceAccount", "Service", "User")
# (prefix, version) -> the token type word of the header
KNOWN_VERSIONS: dict[tuple[str, str], str] = {
    ("pss_service", "v2"): "ServiceAccount",
    ("pss_service", "v1"): "Service",
    ("pss_user", "v1"): "User",
}
TOKEN_FORMS = (
    "expected pss_service:v2:… or pss_user:v1:… (or the console's 'ServiceAccount <token>')"
)
_KNOWN_TEXT = ", ".join(f"{prefix}:{version}" for prefix, version in KNOWN_VERSIONS)


def _secret(token: str | SecretStr) -> str:
    return token.get_secret_value() if isinstance(token, SecretStr) else token


@scrubbed()
def auth_header(token: str | SecretStr, *, name: str = "PHASE_SERVICE_TOKEN") -> str:
    """The ``Authorization`` header value for a Phase token, in any of its documented forms.

    ``pss_service:v2`` sends ``ServiceAccount``, ``pss_service:v1`` ``Service`` and
    ``pss_user:v1`` ``User``; another version is refused, never guessed.

    Raises:
        PhaseConfigError: the token is in no known form or of an unknown version. The
            message never contains the token.
    """
    raw = _secret(token).strip()
    parts = raw.split(":")
    if len(parts) >= 3 and parts[0] in ("pss_service", "pss_user"):
        prefix, version, value = parts[0], parts[1], parts[2]
        if not _VERSION.fullmatch(version):
            raise PhaseConfigError(
                f"{name} is not a Phase token: its version segment is not v<number>; {TOKEN_FORMS}"
            )
        kind = KNOWN_VERSIONS.get((prefix, version))
        if kind is None:
            shown = version if len(version) <= 6 else "an unknown version"
            raise PhaseConfigError(
                f"{name} is a {prefix} token of version {shown}, which this release of "
                f"phase-settings does not know; it knows {_KNOWN_TEXT}. Upgrade phase-settings "
                "or create a token of a known version"
            )
        if not _HEX64.fullmatch(value):
            raise PhaseConfigError(
                f"{name} is not a Phase token: its third ':'-separated segment must be 64 hex "
                f"digits; {TOKEN_FORMS}"
            )
        return f"Bearer {kind} {value}"
    words = raw.split(" ")
    if len(words) == 2 and words[0] in _REST_TYPES and _HEX64.fullmatch(words[1]):
        return f"Bearer {raw}"
    raise PhaseConfigError(f"{name} is not a Phase token: {TOKEN_FORMS}")


def token_kind(header: str) -> str:
    """The token type word of an ``Authorization`` header built by :func:`auth_header`."""
    return header.split(" ")[1]


def token_fingerprint(header: str) -> str:
    """A short, one-way name for a token's header (or, from ``Credentials``, for the header
    and the key parts): cache keys and logs use this, never the token."""
    return hashlib.sha256(header.encode()).hexdigest()[:16]


def has_key_parts(token: str | SecretStr) -> bool:
    """True when ``token`` is a ``pss_`` token with all three key parts (64 hex digits each)."""
    parts = _secret(token).strip().split(":")
    return (
        len(parts) == 6
        and parts[0] in ("pss_service", "pss_user")
        and all(_HEX64.fullmatch(part) for part in parts[2:])
    )
