"""Content-Encoding decoded inside the library, never past the size limit (no I/O).

A few KB of ``gzip, gzip`` or ``br`` inflate to gigabytes; decoding chunk by chunk with httpx
checks the size only after each chunk has been inflated whole. So the client asks for
``Accept-Encoding: gzip`` only, reads the raw stream, and decodes here with zlib's
``max_length``: the output of one reply never grows past ``limit + 1`` bytes, however small the
input. ``gzip`` and ``deflate`` (zlib-wrapped or raw, as httpx accepts it) are decoded;
``identity`` passes through; any other encoding, or stacked ones, is refused before a byte is
decoded.
"""

from __future__ import annotations

import zlib

__all__ = ["ACCEPT_ENCODING", "BoundedDecoder", "DecodeError", "TooLarge", "refused_encoding"]

ACCEPT_ENCODING = "gzip"


class DecodeError(Exception):
    """The body is not valid in its Content-Encoding (or ends before its end)."""


class TooLarge(Exception):
    """The decoded body passed the limit."""


def _tokens(content_encoding: str | None) -> list[str]:
    if not content_encoding:
        return []
    return [t.strip().lower() for t in content_encoding.split(",") if t.strip()]


def refused_encoding(content_encoding: str | None) -> str | None:
    """The Content-Encoding of a reply this library does not decode, or None when it does."""
    tokens = [t for t in _tokens(content_encoding) if t != "identity"]
    if len(tokens) > 1:
        return ", ".join(tokens)  # stacked: each layer multiplies what a few bytes become
    if tokens and tokens[0] not in ("gzip", "x-gzip", "deflate"):
        return tokens[0]
    return None


class BoundedDecoder:
    """Decodes one reply body of ``content_encoding`` (which :func:`refused_encoding` accepts),
    raising :class:`TooLarge` as soon as the output passes ``limit`` bytes."""

    def __init__(self, content_encoding: str | None, limit: int) -> None:
        tokens = [t for t in _tokens(content_encoding) if t != "identity"]
        self._kind = tokens[0] if tokens else "identity"
        self._limit = limit
        self._produced = 0
        self._zlib: zlib._Decompress | None = None
        self._first = True
        self._fed = False
        if self._kind in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> bytes:
        """The decoded bytes of the next ``data`` of the raw body."""
        if self._kind == "identity":
            return self._count(data)
        self._fed = self._fed or bool(data)
        if self._first and self._kind == "deflate":
            self._zlib = zlib.decompressobj(_deflate_wbits(data))
        self._first = False
        return self._drain(data)

    def finish(self) -> bytes:
        """What is left once the raw body has ended; :class:`DecodeError` if it was cut."""
        if self._zlib is None or not self._fed:
            return b""  # nothing compressed came: an empty body, whatever its label
        out = self._drain(b"")
        if not self._zlib.eof:
            raise DecodeError("the compressed body ends before its end")
        return out

    def _drain(self, data: bytes) -> bytes:
        assert self._zlib is not None
        pieces = []
        pending = data
        while True:
            room = self._limit + 1 - self._produced
            try:
                out = self._zlib.decompress(pending, room)
            except zlib.error as exc:
                raise DecodeError(str(exc)) from None
            pieces.append(self._count(out))
            pending = self._zlib.unconsumed_tail
            if self._zlib.eof or (not pending and len(out) < room):
                return b"".join(pieces)

    def _count(self, out: bytes) -> bytes:
        self._produced += len(out)
        if self._produced > self._limit:
            raise TooLarge
        return out


def _deflate_wbits(first: bytes) -> int:
    """``deflate`` is zlib-wrapped by the RFC, raw deflate in practice too (httpx reads both)."""
    if len(first) >= 2 and (first[0] & 0x0F) == 8 and ((first[0] << 8) | first[1]) % 31 == 0:
        return zlib.MAX_WBITS
    return -zlib.MAX_WBITS
