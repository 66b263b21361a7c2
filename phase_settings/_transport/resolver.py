"""Name resolution bounded by the time left before the load's deadline (DESIGN §4).

``getaddrinfo`` is a blocking C call with no timeout of its own: a resolver that stalls would
hold a connect past any deadline. Each lookup runs in a daemon thread of its own that the
caller waits on for at most the time given, then abandons: a daemon thread never delays the
interpreter's exit, and, unlike the asyncio loop's default executor, never delays
``asyncio.run()``'s shutdown either. Under trio the lookup is one of trio's worker threads,
abandoned on cancellation. An IP literal is never looked up.

A name the resolver gave no address for is a :class:`NameNotResolved` (its ``unknown`` set
for EAI_NONAME: the resolver says the name does not exist); a lookup that outlived the time
given is a :class:`ResolverTimeout`. Both are httpcore connect errors, so the pool and the
proxy treat them as any failed connect; the failure classifier names their cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

import httpcore

__all__ = [
    "NameNotResolved",
    "ResolverTimeout",
    "is_ip_literal",
    "resolve",
    "resolve_async",
]


class NameNotResolved(httpcore.ConnectError):
    """The resolver gave no address for ``host``; ``unknown`` when it says the name does not
    exist (EAI_NONAME), False when it could not answer now (EAI_AGAIN, a failing server)."""

    def __init__(self, host: str, *, unknown: bool):
        super().__init__(f"{'name not known' if unknown else 'name not resolved'}: {host}")
        self.host = host
        self.unknown = unknown


class ResolverTimeout(httpcore.ConnectTimeout):
    """The lookup of ``host`` did not answer within the time left."""

    def __init__(self, host: str):
        super().__init__(f"name not resolved in time: {host}")
        self.host = host


def is_ip_literal(host: str) -> bool:
    """Whether ``host`` is an address (IPv4, or IPv6 with or without brackets and zone)."""
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def _unknown(exc: socket.gaierror) -> bool:
    return exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME))


def _addresses(host: str, port: int) -> list[str]:
    """The addresses of ``host``, in the resolver's order, each once; raises
    :class:`NameNotResolved` for a resolver's refusal."""
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise NameNotResolved(host, unknown=_unknown(exc)) from None
    except UnicodeError:  # a label over 63 characters: no resolver could know it
        raise NameNotResolved(host, unknown=True) from None
    addresses: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        if len(sockaddr) == 4 and sockaddr[3]:  # a link-local IPv6 address needs its zone
            address = f"{address}%{sockaddr[3]}"
        if address not in addresses:
            addresses.append(address)
    if not addresses:  # pragma: no cover - getaddrinfo raises rather than answer nothing
        raise NameNotResolved(host, unknown=False)
    return addresses


class _Lookup:
    """One lookup in a daemon thread; ``notify`` is called (from that thread) when done."""

    def __init__(self, host: str, port: int, notify: Callable[[], None] | None = None):
        self.host = host
        self.done = threading.Event()
        self.addresses: list[str] = []
        self.error: BaseException | None = None
        self._notify = notify
        thread = threading.Thread(
            target=self._run, args=(host, port), name="phase-settings-resolver", daemon=True
        )
        thread.start()

    def _run(self, host: str, port: int) -> None:
        try:
            self.addresses = _addresses(host, port)
        except BaseException as exc:  # handed to the waiter, never lost in this thread
            self.error = exc
        finally:
            self.done.set()
            if self._notify is not None:
                self._notify()

    def result(self) -> list[str]:
        if self.error is not None:
            raise self.error
        return self.addresses


def resolve(host: str, port: int, timeout: float | None) -> list[str]:
    """The addresses to connect to for ``host`` (itself for an IP literal), waiting at most
    ``timeout`` seconds (None: as long as the resolver takes)."""
    if is_ip_literal(host):
        return [host]
    lookup = _Lookup(host, port)
    if not lookup.done.wait(timeout):
        raise ResolverTimeout(host)
    return lookup.result()


async def resolve_async(host: str, port: int, timeout: float | None) -> list[str]:
    """:func:`resolve` for asyncio and trio: the loop keeps running while the lookup waits."""
    if is_ip_literal(host):
        return [host]
    if _under_trio():
        return await _resolve_trio(host, port, timeout)
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def wake() -> None:
        if not done.done():
            done.set_result(None)

    def notify() -> None:
        # the loop may have closed while the lookup ran: nobody waits any more
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(wake)

    lookup = _Lookup(host, port, notify)
    try:
        await asyncio.wait_for(done, timeout)
    except TimeoutError:
        raise ResolverTimeout(host) from None
    return lookup.result()


def _under_trio() -> bool:
    """Whether the running task is trio's (anyio runs on asyncio or trio)."""
    trio: Any = sys.modules.get("trio")
    if trio is None:
        return False
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


async def _resolve_trio(host: str, port: int, timeout: float | None) -> list[str]:
    trio: Any = sys.modules["trio"]
    run = trio.to_thread.run_sync
    # trio 0.23 renamed ``cancellable`` to ``abandon_on_cancel``
    name = (
        "abandon_on_cancel"
        if "abandon_on_cancel" in inspect.signature(run).parameters
        else "cancellable"
    )
    with trio.move_on_after(float("inf") if timeout is None else timeout):
        addresses: list[str] = await run(_addresses, host, port, **{name: True})
        return addresses
    raise ResolverTimeout(host)
