"""The sealed envelope of a snapshot: what the snapshot file holds (and what the fleet tier will
keep in Redis, byte for byte).

``PSSNAP``, one byte of format version, a 24-byte nonce, then the XChaCha20-Poly1305-IETF
ciphertext of the payload (:mod:`.codec`) with its 16-byte tag, the associated data binding the
format version, the mode and the cache key. PyNaCl is imported only when a seal is made or
opened.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from .._models import Secret
from .codec import decode_payload, encode_payload

__all__ = ["NONCE_BYTES", "Snapshot", "seal", "unseal"]

_MAGIC = b"PSSNAP"
_HEADER = len(_MAGIC) + 1  # magic, then the format version in one byte
NONCE_BYTES = 24  # XChaCha20-Poly1305-IETF
_TAG = 16


class Snapshot(NamedTuple):
    """Secrets read back from a snapshot, and when they were fetched from Phase (aware UTC)."""

    secrets: tuple[Secret, ...]
    fetched_at: datetime

    def __repr__(self) -> str:
        return f"Snapshot({len(self.secrets)} secrets, fetched_at={self.fetched_at.isoformat()})"

    def age(self, now: datetime) -> float:
        """Seconds since the fetch (0 for a fetch dated after ``now``)."""
        return max(0.0, (now - self.fetched_at).total_seconds())

    def fresh_for(self, lifetime: float, now: datetime) -> float:
        """Seconds left of a cache lifetime that started at the fetch (<= 0: expired)."""
        return lifetime - self.age(now)


def seal(
    secrets: Sequence[Secret],
    fetched_at: datetime,
    associated: bytes,
    key: bytes,
    version: int,
    nonce: bytes,
) -> bytes:
    """The envelope of these secrets, sealed with ``key`` under ``nonce`` (fresh each time)."""
    from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt

    if len(nonce) != NONCE_BYTES:
        raise ValueError("the nonce source returned the wrong number of bytes")
    sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(
        encode_payload(secrets, fetched_at), associated, nonce, key
    )
    return _MAGIC + bytes([version]) + nonce + sealed


def unseal(data: bytes, associated: bytes, key: bytes, version: int) -> Snapshot | str:
    """The snapshot in ``data``, or what is wrong with it (never raises)."""
    if len(data) < _HEADER + NONCE_BYTES + _TAG or not data.startswith(_MAGIC):
        return "is truncated or not a phase-settings snapshot"
    if data[len(_MAGIC)] != version:
        return f"is of format version {data[len(_MAGIC)]}, this release reads {version}"
    from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt
    from nacl.exceptions import CryptoError

    nonce = data[_HEADER : _HEADER + NONCE_BYTES]
    try:
        plain = crypto_aead_xchacha20poly1305_ietf_decrypt(
            data[_HEADER + NONCE_BYTES :], associated, nonce, key
        )
    except CryptoError:
        return "fails authentication (damaged, or sealed for another key or token)"
    try:
        secrets, fetched_at = decode_payload(plain)
    except ValueError:
        return "holds a payload this release cannot read"
    return Snapshot(secrets, fetched_at)
