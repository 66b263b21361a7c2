"""Keys and names of the snapshot: what it belongs to, and the keys derived from the token.

The key is derived with keyed BLAKE2b (fixed personalisation, the format version in the message)
from the parts of a ``pss_`` token that never leave the client, ``share0`` and ``wrapKey``. The
console's REST form (``ServiceAccount <token>``) has no such parts, so its key comes from the
bearer value, which the server also knows. One derivation gives the sealing key, another the key
that names files, so a file name says nothing about the app, environment or folder.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from pydantic import SecretStr

from .._core.credentials import Credentials
from .._errors import scrubbed

__all__ = [
    "FORMAT_VERSION",
    "SnapshotKey",
    "SnapshotKeys",
    "associated_data",
    "blake2b_32",
    "derive_keys",
    "key_material",
]

FORMAT_VERSION = 1
_PERSON = b"phase-settings\x00\x00"  # BLAKE2b personalisation: exactly 16 bytes


class SnapshotKey(NamedTuple):
    """What a snapshot belongs to: the mode (``"sse"``/``"e2ee"``) and the cache key's parts.

    ``SnapshotKey(mode, *cache_key)`` builds one from a ``CacheKey``.
    """

    mode: str
    base_url: str
    app_id: str
    env: str
    path: str | None
    tags: tuple[str, ...]
    token_fingerprint: str


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def associated_data(key: SnapshotKey, version: int) -> bytes:
    """Format version, mode and cache key, each length-prefixed (``path=None`` differs from
    every string)."""
    parts = [str(version).encode(), key.mode.encode(), key.base_url.encode()]
    parts += [key.app_id.encode(), key.env.encode()]
    path = b"\x00" if key.path is None else b"\x01" + key.path.encode()
    parts += [path, _lp(b"".join(_lp(t.encode()) for t in key.tags))]
    parts.append(key.token_fingerprint.encode())
    return b"".join(_lp(p) for p in parts)


@scrubbed()
def key_material(token: str | SecretStr | Credentials) -> tuple[bytes, str]:
    """The secret the snapshot key is derived from, and which kind it is.

    ``share0`` and ``wrapKey`` of a ``pss_`` token (sent to nobody), else the bearer value.

    Raises:
        PhaseConfigError: the token is in no known form (the message never contains it).
    """
    credentials = token if isinstance(token, Credentials) else Credentials(token)
    # validates the token (once per credentials value); raises a clear, token-free error
    header = credentials.authorization.get_secret_value()
    raw = credentials.token.get_secret_value()
    parts = raw.strip().split(":")
    if len(parts) == 6 and all(len(p) == 64 for p in parts[4:6]):
        try:
            return bytes.fromhex(parts[4]) + bytes.fromhex(parts[5]), "keyparts"
        except ValueError:
            pass
    return bytes.fromhex(header.rsplit(" ", 1)[1]), "bearer"


def blake2b_32(data: bytes, *, key: bytes) -> bytes:
    """Keyed BLAKE2b-256 with this library's personalisation (the standard BLAKE2b parameter
    block: the same bytes as libsodium's ``crypto_generichash_blake2b_salt_personal``)."""
    return hashlib.blake2b(data, digest_size=32, key=key, person=_PERSON).digest()


class SnapshotKeys(NamedTuple):
    """The sealing key and the file-name key of one token (32 bytes each, never logged)."""

    seal: bytes
    name: bytes

    def __repr__(self) -> str:
        return "SnapshotKeys(****)"


@scrubbed()
def derive_keys(token: str | SecretStr | Credentials, version: int) -> SnapshotKeys:
    """The sealing key and the file-name key for a token (32 bytes each)."""
    material, kind = key_material(token)
    label = f"phase-settings snapshot v{version} {kind} ".encode()
    return SnapshotKeys(
        blake2b_32(label + b"seal", key=material), blake2b_32(label + b"name", key=material)
    )
