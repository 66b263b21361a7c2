"""Key material of the end-to-end-encrypted API: from a ``pss_`` token to environment keys.

A ``pss_`` token carries, after its bearer value, three key parts: the account's X25519 public
key, the first XOR share of its private key, and the key that unwraps the second share (which
the tokens endpoint returns wrapped). Together they give the account keypair, which opens each
environment's wrapped seed and salt; the seed gives the environment keypair that encrypts and
decrypts the secrets, the salt keys the digest by which the server finds a secret by its key.

Every object here that holds key material shows none of it: ``repr`` names only the account
kind or the environment, there is no ``__dict__``, and pickling is refused (keys never reach a
snapshot or another process).
"""

from __future__ import annotations

import hmac
import re
from typing import NoReturn

from pydantic import SecretStr

from .._core.credentials import Credentials, KeyParts
from .._core.tokens import has_key_parts
from .._errors import PhaseAuthError, PhaseResponseError
from .cipher import (
    CipherError,
    aead_decrypt,
    blake2b_digest,
    decrypt_asym,
    encrypt_asym,
    public_key_of,
    seed_keypair,
)

__all__ = ["AccountKeys", "EnvKeys", "TokenKeys", "has_key_parts"]

_HEX64 = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)


def _refuse_pickle(kind: str) -> NoReturn:
    raise TypeError(f"{kind} holds key material and cannot be pickled or copied to disk")


class TokenKeys:
    """The key parts of a ``pss_`` token (never the bearer value, never sent anywhere)."""

    __slots__ = ("_public", "_share0", "_wrap_key", "kind")

    def __init__(self, public: bytes, share0: bytes, wrap_key: bytes, kind: str) -> None:
        self._public = public
        self._share0 = share0
        self._wrap_key = wrap_key
        self.kind = kind

    @classmethod
    def from_token(cls, token: str | SecretStr, *, name: str = "PHASE_SERVICE_TOKEN") -> TokenKeys:
        """The key parts of ``token``.

        Raises:
            PhaseConfigError: the token has no key parts (the console's REST form) or they are
                not 64 hex digits each. The message never contains the token.
        """
        return cls.from_parts(Credentials(token, origin=name).key_parts())

    @classmethod
    def from_parts(cls, parts: KeyParts) -> TokenKeys:
        """The key parts a :class:`Credentials` parsed (``credentials.key_parts()``)."""
        return cls(parts.public, parts.share0, parts.wrap_key, parts.prefix)

    def unwrap(self, wrapped_key_share: str) -> AccountKeys:
        """The account keypair, from the ``wrapped_key_share`` of the tokens reply.

        Raises:
            PhaseAuthError: the token's key parts do not open the share, or the keypair they
                give does not match the token's public key (an incomplete or altered token).
            PhaseResponseError: ``wrapped_key_share`` is not hex.
        """
        try:
            blob = bytes.fromhex(wrapped_key_share)
        except (TypeError, ValueError):
            raise PhaseResponseError(
                "Phase's tokens reply is not in the expected shape: 'wrapped_key_share' is not hex"
            ) from None
        try:
            share1_hex = aead_decrypt(blob, self._wrap_key).decode("ascii")
            share1 = bytes.fromhex(share1_hex)
        except (CipherError, UnicodeDecodeError, ValueError):
            raise PhaseAuthError(
                "The token's key parts do not open the key share Phase returned for it: the "
                "pss_ token is incomplete or altered (copy it again from the Phase console)"
            ) from None
        if len(share1) != len(self._share0):
            raise PhaseAuthError(
                "The token's key parts do not open the key share Phase returned for it: the "
                "pss_ token is incomplete or altered (copy it again from the Phase console)"
            )
        private = bytes(a ^ b for a, b in zip(self._share0, share1, strict=True))
        if not hmac.compare_digest(public_key_of(private), self._public):
            raise PhaseAuthError(
                "The token's key parts do not form one keypair with the key share Phase "
                "returned: the pss_ token is incomplete or altered"
            )
        return AccountKeys(self._public, private)

    def __repr__(self) -> str:
        return f"TokenKeys(kind={self.kind!r})"

    def __reduce__(self) -> NoReturn:
        _refuse_pickle("TokenKeys")


class AccountKeys:
    """The account's X25519 keypair: it opens the wrapped seed and salt of each environment."""

    __slots__ = ("_private", "_public")

    def __init__(self, public: bytes, private: bytes) -> None:
        self._public = public
        self._private = private

    def open_env(
        self,
        *,
        env_id: str,
        env_name: str,
        app_name: str,
        identity_key: str,
        wrapped_seed: str,
        wrapped_salt: str,
    ) -> EnvKeys:
        """The keys of one environment, from its entry in the tokens reply.

        Raises:
            PhaseResponseError: the wrapped seed or salt does not decrypt with this account's
                key, or the public key Phase supplied (``identity_key``) is not the one the seed
                derives. Such keys are refused: writes would be encrypted for someone else.
        """
        where = f"environment {env_name!r} of app {app_name!r}"
        try:
            seed_hex = decrypt_asym(wrapped_seed, self._private, self._public)
            salt_hex = decrypt_asym(wrapped_salt, self._private, self._public)
            seed = bytes.fromhex(seed_hex)
        except (CipherError, ValueError):
            raise PhaseResponseError(
                f"The key of {where} in Phase's tokens reply does not decrypt with this "
                "token's account key; refusing to use it"
            ) from None
        if len(seed) != 32 or not _HEX64.fullmatch(salt_hex):
            raise PhaseResponseError(
                f"The key of {where} in Phase's tokens reply is not 32 bytes; refusing to use it"
            )
        public, private = seed_keypair(seed)
        if not isinstance(identity_key, str) or not hmac.compare_digest(
            public.hex(), identity_key.lower()
        ):
            raise PhaseResponseError(
                f"The public key Phase supplied for {where} is not the one its seed derives; "
                "refusing to use it (secrets written with it could be read by someone else)"
            )
        return EnvKeys(env_id, env_name, public, private, salt_hex.encode("ascii"))

    def __repr__(self) -> str:
        return "AccountKeys(<hidden>)"

    def __reduce__(self) -> NoReturn:
        _refuse_pickle("AccountKeys")


class EnvKeys:
    """One environment's keypair and digest salt: decrypts, encrypts and digests its secrets.

    Attributes:
        env_id: the environment's id (not secret).
        env_name: the environment's name (not secret).
    """

    __slots__ = ("_private", "_public", "_salt", "env_id", "env_name")

    def __init__(
        self, env_id: str, env_name: str, public: bytes, private: bytes, salt: bytes
    ) -> None:
        self.env_id = env_id
        self.env_name = env_name
        self._public = public
        self._private = private
        self._salt = salt

    @property
    def public_key_hex(self) -> str:
        """The environment's public key as hex (public: the server knows it)."""
        return self._public.hex()

    def decrypt(self, ciphertext: str) -> str:
        """Decrypt one ``ph:v1:`` field of this environment.

        Raises:
            CipherError: the field does not decrypt (the caller names the secret).
        """
        return decrypt_asym(ciphertext, self._private, self._public)

    def encrypt(self, plaintext: str) -> str:
        """Encrypt ``plaintext`` for this environment, with a fresh ephemeral key."""
        return encrypt_asym(plaintext, self._public)

    def digest(self, key: str) -> str:
        """The key digest the server stores and filters by (``KeyDigest``) for ``key``."""
        return blake2b_digest(key.encode("utf-8"), self._salt)

    def __repr__(self) -> str:
        return f"EnvKeys(env_id={self.env_id!r}, env_name={self.env_name!r})"

    def __reduce__(self) -> NoReturn:
        _refuse_pickle("EnvKeys")
