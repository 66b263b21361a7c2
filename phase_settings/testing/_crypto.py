"""The fake server's own crypto for the E2EE API, with libsodium through PyNaCl.

Written independently of the library's client-side code, so that a test comparing the two
proves something. PyNaCl is imported only when a function here runs: importing
``phase_settings.testing`` never loads it.

Formats, as the real server and its clients use them:

* ``ph:v1:<ephemeral X25519 public key hex>:<base64(ciphertext ‖ tag ‖ nonce24)>``: the
  sender makes an ephemeral key pair, derives the client ``tx`` key of ``crypto_kx`` with the
  recipient's public key, and seals the UTF-8 text with XChaCha20-Poly1305 (IETF), no
  associated data, the 24-byte nonce appended.
* The wrapped key share: ``hex(XChaCha20-Poly1305(ascii(hex(share1)), wrapKey) ‖ nonce24)``.
* An environment's key pair is ``crypto_kx_seed_keypair(seed)``; its key digest is BLAKE2b-256
  of the key name, keyed with the ASCII bytes of the 64-character salt hex string.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from typing import Any

PREFIX = "ph:v1:"
# The server's check of what clients send (empty strings pass elsewhere).
CIPHERTEXT = re.compile(r"^ph:v1:[0-9a-fA-F]{64}:.+", re.DOTALL)
_NONCE_BYTES = 24


class CryptoError(ValueError):
    """A ciphertext that does not parse or does not authenticate (no key material inside)."""


def _sodium() -> Any:
    import nacl.bindings

    return nacl.bindings


def digest(key: str, salt_hex: str) -> str:
    """The key digest: BLAKE2b-256 of ``key``, keyed with the salt's hex text."""
    return hashlib.blake2b(key.encode(), key=salt_hex.encode(), digest_size=32).hexdigest()


def public_key(private_key: bytes) -> bytes:
    """The X25519 public key of a 32-byte private key."""
    return bytes(_sodium().crypto_scalarmult_base(private_key))


def seed_keypair(seed: bytes) -> tuple[bytes, bytes]:
    """An environment's ``(public, private)`` key pair from its 32-byte seed."""
    pk, sk = _sodium().crypto_kx_seed_keypair(seed)
    return bytes(pk), bytes(sk)


def _seal(plaintext: bytes, key: bytes) -> bytes:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sodium = _sodium()
    sealed = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, None, nonce, key)
    return bytes(sealed) + nonce


def _open(blob: bytes, key: bytes) -> bytes:
    if len(blob) < _NONCE_BYTES + 16:
        raise CryptoError("ciphertext too short")
    sodium = _sodium()
    import nacl.exceptions

    try:
        opened = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            blob[:-_NONCE_BYTES], None, blob[-_NONCE_BYTES:], key
        )
    except nacl.exceptions.CryptoError:
        raise CryptoError("ciphertext does not authenticate") from None
    return bytes(opened)


def encrypt(plaintext: str, recipient_public_key: bytes) -> str:
    """Encrypt text for a public key, as clients and the SSE server do."""
    sodium = _sodium()
    ephemeral_pk, ephemeral_sk = sodium.crypto_kx_keypair()
    _rx, tx = sodium.crypto_kx_client_session_keys(ephemeral_pk, ephemeral_sk, recipient_public_key)
    blob = _seal(plaintext.encode(), bytes(tx))
    return f"{PREFIX}{bytes(ephemeral_pk).hex()}:{base64.b64encode(blob).decode()}"


def decrypt(ciphertext: str, private_key: bytes, public_key_: bytes) -> str:
    """Decrypt a ``ph:v1:`` text with the recipient's key pair.

    Raises:
        CryptoError: Not a ``ph:v1`` text, or it does not authenticate with these keys.
    """
    parts = ciphertext.split(":")
    if len(parts) != 4 or f"{parts[0]}:{parts[1]}:" != PREFIX:
        raise CryptoError("not a ph:v1 ciphertext")
    try:
        ephemeral = bytes.fromhex(parts[2])
        blob = base64.b64decode(parts[3], validate=True)
    except (ValueError, binascii.Error):
        raise CryptoError("not a ph:v1 ciphertext") from None
    if len(ephemeral) != 32:
        raise CryptoError("not a ph:v1 ciphertext")
    rx, _tx = _sodium().crypto_kx_server_session_keys(public_key_, private_key, ephemeral)
    try:
        return _open(blob, bytes(rx)).decode()
    except UnicodeDecodeError:
        raise CryptoError("plaintext is not UTF-8") from None


def wrap_share(share1: bytes, wrap_key: bytes) -> str:
    """The tokens endpoint's ``wrapped_key_share`` for a key share and a token's wrap key."""
    return _seal(share1.hex().encode(), wrap_key).hex()


def unwrap_share(wrapped: str, wrap_key: bytes) -> bytes:
    """The key share inside ``wrapped_key_share`` (the inverse of :func:`wrap_share`)."""
    return bytes.fromhex(_open(bytes.fromhex(wrapped), wrap_key).decode())


def xor(first: bytes, second: bytes) -> bytes:
    """Byte-wise XOR of two equally long strings."""
    return bytes(a ^ b for a, b in zip(first, second, strict=True))


def mint_account() -> tuple[bytes, bytes, bytes, bytes]:
    """Fresh key material of one account: ``(private key, public key, share0, wrap key)``.

    The private key is ``share0 ⊕ share1``: the token carries ``share0`` and the wrap key, the
    server keeps ``share1`` wrapped with that key.
    """
    private_key = secrets.token_bytes(32)
    return private_key, public_key(private_key), secrets.token_bytes(32), secrets.token_bytes(32)
