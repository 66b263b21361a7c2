"""A Phase token parsed once: the header, the fingerprint, the kind and the key parts.

A load builds one :class:`Credentials` from the token string and hands it to everything that
needs the token: the cache and pool keys (:attr:`Credentials.fingerprint`), the client
(:attr:`Credentials.authorization`), the on-disk snapshot (its keys) and the end-to-end-encrypted
API (:meth:`Credentials.key_parts`, parsed only when asked, without importing PyNaCl).

Nothing here shows the token: ``repr`` names the kind and origin only, and every error is a
:class:`PhaseConfigError` that names where the token came from, never its value.
"""

from __future__ import annotations

import hmac
from typing import Literal, NoReturn

from pydantic import SecretStr

from .._errors import PhaseConfigError
from .tokens import auth_header, has_key_parts, token_fingerprint, token_kind

__all__ = ["NEEDS_KEY_PARTS", "Credentials", "KeyParts"]

NEEDS_KEY_PARTS = (
    "the end-to-end-encrypted API needs the key parts of a pss_ token "
    "(pss_service:v2:…, pss_user:v1:… or pss_service:v1:…, six ':'-separated fields); the "
    "console's REST form ('ServiceAccount <token>') works with SSE apps only"
)


class KeyParts:
    """The three key parts of a ``pss_`` token, as bytes: the account's public key, the first
    share of its private key, and the key that unwraps the second share. Never shown, never
    pickled."""

    __slots__ = ("prefix", "public", "share0", "wrap_key")

    def __init__(self, public: bytes, share0: bytes, wrap_key: bytes, prefix: str) -> None:
        self.public = public
        self.share0 = share0
        self.wrap_key = wrap_key
        self.prefix = prefix  # "pss_service" or "pss_user"

    def __repr__(self) -> str:
        return f"KeyParts(prefix={self.prefix!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("KeyParts holds key material and cannot be pickled or copied to disk")


class Credentials:
    """One Phase token, parsed once.

    Building one does not look at the token, so resolving a configuration never fails on it:
    the first read of :attr:`authorization` (or of anything derived from it) checks the token
    and keeps the result; a malformed token is then a :class:`PhaseConfigError` naming
    ``origin``. Two values are equal when their token and origin are.

    Args:
        token: the token, in any documented form.
        origin: the variable the token came from, named in errors (``PHASE_SERVICE_TOKEN``).
    """

    __slots__ = ("_header", "_key_parts", "_token", "origin")

    def __init__(self, token: str | SecretStr, *, origin: str = "PHASE_SERVICE_TOKEN") -> None:
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self.origin = origin
        self._header: str | None = None
        self._key_parts: KeyParts | None = None

    @classmethod
    def parse(cls, token: str | SecretStr, *, origin: str = "PHASE_SERVICE_TOKEN") -> Credentials:
        """Credentials whose token is checked now.

        Raises:
            PhaseConfigError: the token is in no known form (the message never holds it).
        """
        credentials = cls(token, origin=origin)
        credentials._authorization()
        return credentials

    def _authorization(self) -> str:
        if self._header is None:
            self._header = auth_header(self._token, name=self.origin)
        return self._header

    def _fields(self) -> list[str]:
        return self._token.get_secret_value().strip().split(":")

    @property
    def token(self) -> SecretStr:
        """The token as given."""
        return self._token

    @property
    def authorization(self) -> SecretStr:
        """The ``Authorization`` header value (``Bearer ServiceAccount …``)."""
        return SecretStr(self._authorization())

    @property
    def token_type(self) -> str:
        """The header's token type word: ``ServiceAccount``, ``Service`` or ``User``."""
        return token_kind(self._authorization())

    @property
    def kind(self) -> Literal["service", "user"]:
        """Whose token it is: a service account's (or a legacy service token) or a user's."""
        return "user" if self.token_type == "User" else "service"

    @property
    def header_fingerprint(self) -> str:
        """A one-way name of the bearer part alone: what snapshot files of format 1 are bound
        to (kept so that existing snapshots stay readable)."""
        return token_fingerprint(self._authorization())

    @property
    def fingerprint(self) -> str:
        """A short one-way name of the whole credential, key parts included: it keys pooled
        clients and caches, so two tokens that share a bearer part never share either. A token
        without key parts has the fingerprint of its header."""
        header = self._authorization()
        fields = self._fields()
        if len(fields) <= 3 or fields[0] not in ("pss_service", "pss_user"):
            return token_fingerprint(header)
        return token_fingerprint(header + "\n" + ":".join(fields[3:]))

    @property
    def has_key_parts(self) -> bool:
        """True for a ``pss_`` token with all three key parts (64 hex digits each)."""
        return has_key_parts(self._token)

    def key_parts(self) -> KeyParts:
        """The key parts of the token (parsed on the first call, then kept).

        Raises:
            PhaseConfigError: the token has no key parts (the console's REST form) or they are
                not 64 hex digits each. The message never contains the token.
        """
        if self._key_parts is None:
            if not self.has_key_parts:
                raise PhaseConfigError(f"{self.origin} cannot be used here: {NEEDS_KEY_PARTS}")
            fields = self._fields()
            public, share0, wrap_key = (bytes.fromhex(part) for part in fields[3:])
            self._key_parts = KeyParts(public, share0, wrap_key, fields[0])
        return self._key_parts

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Credentials):
            return NotImplemented
        return self.origin == other.origin and hmac.compare_digest(
            self._token.get_secret_value().encode(), other._token.get_secret_value().encode()
        )

    def __hash__(self) -> int:
        return hash((self._token, self.origin))

    def __reduce__(self) -> tuple[object, tuple[SecretStr, str]]:
        # Rebuilt from the token, as a configuration holding it is: key parts stay behind.
        return _rebuild, (self._token, self.origin)

    def __repr__(self) -> str:
        return f"Credentials(origin={self.origin!r})"


def _rebuild(token: SecretStr, origin: str) -> Credentials:
    return Credentials(token, origin=origin)
