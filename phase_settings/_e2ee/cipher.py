"""The cryptography of Phase's end-to-end-encrypted API, on raw bytes.

Three primitives, all libsodium through PyNaCl (imported inside each function, so that
``import phase_settings`` never needs it):

* AEAD: XChaCha20-Poly1305 IETF, no associated data, the 24-byte nonce appended to the
  ciphertext (``blob = ciphertext || tag || nonce``).
* The ``ph:v1:<ephemeral public key hex>:<base64 blob>`` format: a fresh X25519 key exchange
  per message (the sender takes the client role and encrypts with its ``tx`` key; the recipient
  takes the server role and decrypts with its ``rx`` key, the same 32 bytes).
* Environment keypairs from a seed (``crypto_kx_seed_keypair``) and keyed BLAKE2b-256 digests.

Failures raise :class:`CipherError`, which carries no key material and no plaintext: the
modules above turn it into a ``PhaseError`` naming what failed to decrypt.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = [
    "CipherError",
    "aead_decrypt",
    "aead_encrypt",
    "blake2b_digest",
    "decrypt_asym",
    "encrypt_asym",
    "is_ciphertext",
    "public_key_of",
    "seed_keypair",
]

_PREFIX = "ph:v1:"
_NONCE_BYTES = 24
_TAG_BYTES = 16
_KEY_BYTES = 32
_CIPHERTEXT = re.compile(r"ph:v1:[0-9a-fA-F]{64}:.+", re.ASCII | re.DOTALL)


class CipherError(ValueError):
    """A ciphertext did not decrypt (wrong key, altered bytes, or not Phase's format).

    The message says which of those it was in general terms; it never holds key material.
    """


def is_ciphertext(text: object) -> bool:
    """True when ``text`` has the shape the server accepts for an encrypted field."""
    return isinstance(text, str) and _CIPHERTEXT.fullmatch(text) is not None


def aead_encrypt(plaintext: bytes, key: bytes, *, nonce: bytes | None = None) -> bytes:
    """XChaCha20-Poly1305 IETF ``plaintext`` under ``key``; the nonce is appended."""
    from nacl import bindings, utils

    if nonce is None:
        nonce = utils.random(_NONCE_BYTES)
    sealed: bytes = bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, None, nonce, key)
    return sealed + nonce


def aead_decrypt(blob: bytes, key: bytes) -> bytes:
    """Open a blob made by :func:`aead_encrypt`.

    Raises:
        CipherError: too short, or the authentication tag does not match.
    """
    from nacl import bindings
    from nacl.exceptions import CryptoError

    if len(blob) < _NONCE_BYTES + _TAG_BYTES or len(key) != _KEY_BYTES:
        raise CipherError("the ciphertext is too short to be Phase's format")
    nonce, sealed = blob[-_NONCE_BYTES:], blob[:-_NONCE_BYTES]
    try:
        opened: bytes = bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            sealed, None, nonce, key
        )
    except CryptoError:
        raise CipherError("the ciphertext failed authentication") from None
    return opened


def public_key_of(private_key: bytes) -> bytes:
    """The X25519 public key of ``private_key``."""
    from nacl import bindings

    public: bytes = bindings.crypto_scalarmult_base(private_key)
    return public


def seed_keypair(seed: bytes) -> tuple[bytes, bytes]:
    """``(public, private)`` X25519 keys derived from a 32-byte seed, as libsodium's
    ``crypto_kx_seed_keypair`` does (private = BLAKE2b-256(seed))."""
    from nacl import bindings

    public, private = bindings.crypto_kx_seed_keypair(seed)
    return bytes(public), bytes(private)


def blake2b_digest(data: bytes, key: bytes) -> str:
    """Keyed BLAKE2b with a 32-byte output, as lowercase hex."""
    import hashlib

    # hashlib's BLAKE2b is the same function as libsodium's crypto_generichash (keys <= 64 bytes).
    return hashlib.blake2b(data, digest_size=32, key=key).hexdigest()


def encrypt_asym(
    plaintext: str,
    recipient_public: bytes,
    *,
    ephemeral_seed: bytes | None = None,
    nonce: bytes | None = None,
) -> str:
    """``plaintext`` encrypted to ``recipient_public`` in the ``ph:v1:`` format.

    ``ephemeral_seed`` and ``nonce`` exist for reproducible test vectors only; by default both
    are random, as they must be.
    """
    from nacl import bindings

    if ephemeral_seed is None:
        eph_public, eph_private = bindings.crypto_kx_keypair()
    else:
        eph_public, eph_private = bindings.crypto_kx_seed_keypair(ephemeral_seed)
    _rx, tx = bindings.crypto_kx_client_session_keys(eph_public, eph_private, recipient_public)
    blob = aead_encrypt(plaintext.encode(), bytes(tx), nonce=nonce)
    return f"{_PREFIX}{bytes(eph_public).hex()}:{base64.b64encode(blob).decode('ascii')}"


def decrypt_asym(ciphertext: str, private_key: bytes, public_key: bytes) -> str:
    """Decrypt a ``ph:v1:`` ciphertext addressed to the keypair ``(public_key, private_key)``.

    Raises:
        CipherError: not the ``ph:v1:`` format, altered, encrypted for another key, or not
            UTF-8 once opened.
    """
    from nacl import bindings
    from nacl.exceptions import CryptoError

    parts = ciphertext.split(":") if isinstance(ciphertext, str) else []
    if len(parts) != 4 or parts[0] != "ph" or parts[1] != "v1":
        raise CipherError("the field is not in Phase's ph:v1: ciphertext format")
    try:
        eph_public = bytes.fromhex(parts[2])
        blob = base64.b64decode(parts[3], validate=True)
    except (ValueError, binascii.Error):
        raise CipherError("the field is not in Phase's ph:v1: ciphertext format") from None
    if len(eph_public) != _KEY_BYTES:
        raise CipherError("the field is not in Phase's ph:v1: ciphertext format")
    try:
        rx, _tx = bindings.crypto_kx_server_session_keys(public_key, private_key, eph_public)
    except CryptoError:
        raise CipherError("the ciphertext's ephemeral key is not usable") from None
    if len(blob) < _NONCE_BYTES + _TAG_BYTES:
        raise CipherError("the ciphertext is too short to be Phase's format")
    try:  # aead_decrypt inlined: this runs for every field of every secret
        opened: bytes = bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            blob[:-_NONCE_BYTES], None, blob[-_NONCE_BYTES:], rx
        )
    except CryptoError:
        raise CipherError("the ciphertext failed authentication") from None
    try:
        return opened.decode("utf-8")
    except UnicodeDecodeError:
        raise CipherError("the decrypted field is not UTF-8 text") from None
