"""One load of one environment over the end-to-end-encrypted API, as a state machine (no I/O).

A driver (sync or async) runs it::

    load = E2EELoad(host=..., authorization=..., token=TokenKeys.from_token(token),
                    app_id=..., env="Production", paths=("/",))
    while batch := load.pending():
        for item in batch:                  # the items of one batch may be sent concurrently
            try:
                load.feed(item, send(item.request))    # the decoded JSON of a 2xx reply
            except PhaseError as error:
                load.failed(item, error)    # re-raises unless a reference can stay literal
    per_path = load.result()                # one list of resolved Secret records per path

The requests are: the tokens request (skipped when ``access`` from an earlier load is given),
one secrets request per path, and one per other (app, environment, folder) that references
need, each once. A cold load of one folder without references elsewhere is two requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from .._errors import PhaseAuthError, PhaseError, PhaseNotFoundError
from .._models import Secret
from .api import Request, list_request, tokens_request
from .keys import EnvKeys, TokenKeys
from .references import Fetch, ReferenceResolver, Unreadable
from .replies import AppEntry, TokenAccess, parse_secrets, parse_tokens

__all__ = ["E2EELoad", "Pending"]

_MAX_ROUNDS = 30  # reference chains are at most 25 deep: each round follows one more link


class Pending(NamedTuple):
    """A request the load waits for. ``endpoint`` (``"tokens"`` or ``"secrets"``) is what
    ``error_for_status`` needs; ``slot`` is the path index of a home request, or the
    :class:`Fetch` of a reference request."""

    request: Request
    endpoint: str
    slot: int | Fetch | None = None

    def __repr__(self) -> str:
        return f"Pending({self.endpoint}, {self.request!r})"


class E2EELoad:
    """Reads ``paths`` of one environment and resolves their references.

    Args:
        host: where the E2EE API lives (``e2ee_host`` of the REST API base).
        authorization: the ``Authorization`` header value of the token.
        token: the token's key parts.
        app_id: the app's id.
        env: the environment's name (exact, case-insensitive).
        paths: folders to read, each a ``Path``; None reads every folder.
        tags: only secrets carrying any of these tag names (as the REST API filters).
        access: the :class:`TokenAccess` of an earlier load, to skip the tokens request.
        resolve: False reads the secrets as stored, references unresolved and not fetched
            (what a write needs): only :meth:`unresolved` is available then.

    Raises (from :meth:`feed`):
        PhaseNotFoundError: the token cannot read the app or the environment (the message
            lists what it can).
        PhaseAuthError: the token's key parts do not open its key share.
        PhaseResponseError: a reply is not the contract's shape, or a field does not decrypt.
    """

    def __init__(
        self,
        *,
        host: str,
        authorization: str,
        token: TokenKeys,
        app_id: str,
        env: str,
        paths: Sequence[str | None],
        tags: Sequence[str] = (),
        access: TokenAccess | None = None,
        resolve: bool = True,
    ) -> None:
        self._host = host
        self._authorization = authorization
        self._token = token
        self._app_id = app_id
        self._env = env
        self._paths = tuple(paths)
        self._tags = tuple(tags)
        self._access = access
        self._resolve = resolve
        self._app: AppEntry | None = None
        self._keys: EnvKeys | None = None
        self._home: dict[int, list[Secret]] = {}
        self._resolver: ReferenceResolver | None = None
        self._waiting: set[Fetch] = set()
        self._rounds = 0
        self._done = False
        if access is not None:
            self._select()

    @property
    def access(self) -> TokenAccess | None:
        """What the tokens reply granted (with the environment keys opened so far): keep it
        with the cache entry to skip the tokens request next time."""
        return self._access

    @property
    def env_keys(self) -> EnvKeys | None:
        """The home environment's keys, once known (writes encrypt with them)."""
        return self._keys

    def pending(self) -> list[Pending]:
        """The requests to send now; empty when the load is complete."""
        if self._access is None:
            return [Pending(tokens_request(self._host, self._authorization), "tokens")]
        keys = self._keys
        assert keys is not None
        if len(self._home) < len(self._paths):
            return [
                Pending(
                    list_request(
                        self._host, self._authorization, keys.env_id, path=path, tags=self._tags
                    ),
                    "secrets",
                    index,
                )
                for index, path in enumerate(self._paths)
                if index not in self._home
            ]
        if self._waiting:
            return [self._reference_request(fetch) for fetch in sorted(self._waiting)]
        if self._done:
            return []
        if not self._resolve:
            self._done = True
            return []
        return self._next_round()

    def feed(self, item: Pending, payload: Any) -> None:
        """Take the decoded JSON of a 2xx reply to ``item``."""
        if item.endpoint == "tokens":
            self._access = parse_tokens(payload, self._token)
            self._select()
        elif isinstance(item.slot, int):
            assert self._keys is not None
            self._home[item.slot] = parse_secrets(payload, self._keys)
        elif isinstance(item.slot, Fetch):
            fetch = item.slot
            entry = self._entry(fetch)
            assert entry is not None and self._access is not None and self._resolver is not None
            secrets = parse_secrets(payload, self._access.env_keys(entry))
            self._resolver.add(fetch.app, fetch.env, fetch.path, secrets)
            self._waiting.discard(fetch)

    def failed(self, item: Pending, error: PhaseError) -> None:
        """Take a failure of ``item``: a reference request the server refuses (no access, not
        found) leaves those references literal; anything else is the load's error."""
        if isinstance(item.slot, Fetch) and isinstance(error, PhaseAuthError | PhaseNotFoundError):
            assert self._resolver is not None
            self._resolver.mark(item.slot.app, item.slot.env, Unreadable.NO_ACCESS)
            self._waiting.discard(item.slot)
            return
        raise error

    def result(self) -> list[list[Secret]]:
        """The secrets of each path, references resolved (call once :meth:`pending` is empty)."""
        resolver = self._resolver
        if not self._done or resolver is None:
            raise RuntimeError("the load is not complete: send what pending() returns first")
        return [resolver.resolve(self._home[i]) for i in range(len(self._paths))]

    def unresolved(self) -> list[list[Secret]]:
        """The secrets of each path as stored, references not resolved: what an update must
        keep for the fields it does not change."""
        if not self._done:
            raise RuntimeError("the load is not complete: send what pending() returns first")
        return [self._home[i] for i in range(len(self._paths))]

    # -- internals ---------------------------------------------------------------------------

    def _select(self) -> None:
        assert self._access is not None
        self._app = self._access.app(self._app_id)
        entry = self._access.environment(self._app, self._env)
        self._keys = self._access.env_keys(entry)

    def _entry(self, fetch: Fetch) -> Any:
        assert self._access is not None and self._app is not None
        if fetch.app == self._app.name.lower():  # the home app, even if another has its name
            app: AppEntry | None = self._app
        else:
            app = self._access.app_named(fetch.app)
        return None if app is None else self._access.find_environment(app, fetch.env)

    def _reference_request(self, fetch: Fetch) -> Pending:
        entry = self._entry(fetch)
        request = list_request(self._host, self._authorization, entry.id, path=fetch.path)
        return Pending(request, "secrets", fetch)

    def _next_round(self) -> list[Pending]:
        app, keys = self._app, self._keys
        assert app is not None and keys is not None
        home = [secret for index in sorted(self._home) for secret in self._home[index]]
        if self._resolver is None:
            self._resolver = ReferenceResolver(app.name, keys.env_name)
            if not self._tags:  # a tag-filtered folder is not the whole folder
                for index, path in enumerate(self._paths):
                    self._resolver.add(app.name, keys.env_name, path, self._home[index])
        self._rounds += 1
        for fetch in self._resolver.needed(home) if self._rounds <= _MAX_ROUNDS else ():
            if self._entry(fetch) is None:
                # Not among what the token can read: left literal, like a missing target.
                self._resolver.mark(fetch.app, fetch.env, Unreadable.MISSING)
            else:
                self._waiting.add(fetch)
        self._done = not self._waiting
        return [self._reference_request(fetch) for fetch in sorted(self._waiting)]
