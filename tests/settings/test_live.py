"""LiveSettings (refresh, hooks, background thread, fork) and aload/arefresh."""

from __future__ import annotations

import functools
import gc
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import SecretStr, ValidationError

from phase_settings import (
    LiveSettings,
    PhaseServerError,
    PhaseSettings,
    PhaseSettingsConfigDict,
    aload,
    load_status,
)

from .. import _modes
from ..conftest import Phase

# Every test here runs over REST and over the end-to-end-encrypted API.
phase_mode = _modes.phase_mode
REQUESTS_PER_LOAD = _modes.REQUESTS_PER_LOAD


def make_settings(phase: Phase, **config: Any) -> type[PhaseSettings]:
    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(**phase.config(**config))  # type: ignore[typeddict-item]
        api_key: SecretStr
        workers: int = 1

    return Settings


@pytest.fixture
def live_phase(phase: Phase) -> Phase:
    phase.set("API_KEY", "key-1")
    phase.set("WORKERS", "2")
    phase.set("UNUSED", "u-1")
    return phase


def test_refresh_makes_a_rotation_visible_at_once(live_phase: Phase) -> None:
    live = LiveSettings(make_settings(live_phase))
    first = live.current
    live_phase.set("API_KEY", "key-2")
    assert live.refresh() == frozenset({"api_key"})
    assert live.current.api_key.get_secret_value() == "key-2"  # type: ignore[attr-defined]
    assert first.api_key.get_secret_value() == "key-1"  # type: ignore[attr-defined]  # never mutated
    assert live.status.source == "phase"


def test_hooks_fire_once_per_real_change_and_never_for_unused_keys(live_phase: Phase) -> None:
    live = LiveSettings(make_settings(live_phase))
    calls: list[tuple[Any, Any, frozenset[str]]] = []
    live.on_change(lambda old, new, changed: calls.append((old, new, changed)))
    assert live.refresh() == frozenset() and calls == []  # nothing changed
    live_phase.set("UNUSED", "u-2")
    assert live.refresh() == frozenset() and calls == []  # a key no field uses
    live_phase.set("WORKERS", "3")
    live_phase.set("API_KEY", "key-2")
    assert live.refresh() == frozenset({"workers", "api_key"})
    [(old, new, changed)] = calls
    assert (old.workers, new.workers, changed) == (2, 3, frozenset({"workers", "api_key"}))
    assert live.refresh() == frozenset() and len(calls) == 1


def test_unchanged_environment_skips_the_rebuild(
    live_phase: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    Settings = make_settings(live_phase)
    live = LiveSettings(Settings)
    live.refresh()
    builds = 0
    original = Settings.__init__

    def counting_init(self: Any, **values: Any) -> None:
        nonlocal builds
        builds += 1
        original(self, **values)

    monkeypatch.setattr(Settings, "__init__", counting_init)
    assert live.refresh() == frozenset()
    assert builds == 0
    live_phase.set("WORKERS", "9")
    assert live.refresh() == frozenset({"workers"}) and builds == 1


def test_a_raising_hook_is_logged_and_others_and_later_refreshes_still_run(
    live_phase: Phase, caplog: pytest.LogCaptureFixture
) -> None:
    live = LiveSettings(make_settings(live_phase))
    seen: list[frozenset[str]] = []

    @live.on_change
    def broken(old: Any, new: Any, changed: frozenset[str]) -> None:
        raise RuntimeError(f"boom {new.api_key.get_secret_value()}")

    live.on_change(lambda old, new, changed: seen.append(changed))
    live_phase.set("API_KEY", "key-2")
    with caplog.at_level(logging.WARNING, logger="phase_settings"):
        assert live.refresh() == frozenset({"api_key"})
    assert seen == [frozenset({"api_key"})]
    text = caplog.text
    assert "broken" in text and "RuntimeError" in text and "key-2" not in text
    live_phase.set("API_KEY", "key-3")
    assert live.refresh() == frozenset({"api_key"}) and len(seen) == 2


def test_refresh_during_an_outage_keeps_the_instance_and_raises(
    live_phase: Phase, caplog: pytest.LogCaptureFixture
) -> None:
    live = LiveSettings(make_settings(live_phase, phase_deadline=1.0))
    before = live.current
    live_phase.fake.fail_next(503, times=10)
    with caplog.at_level(logging.WARNING, logger="phase_settings"), pytest.raises(PhaseServerError):
        live.refresh()
    assert live.current is before
    assert live.status.stale_since is not None and "PhaseServerError" in str(live.status.last_error)
    assert any("keeping the current values" in r.getMessage() for r in caplog.records)
    live_phase.fake.clear_faults()
    live.refresh()
    assert live.status.stale_since is None and live.status.last_error is None


def test_a_rotation_that_breaks_validation_keeps_the_old_instance(live_phase: Phase) -> None:
    live = LiveSettings(make_settings(live_phase))
    before = live.current
    live_phase.set("WORKERS", "not-a-number-sekrit")
    with pytest.raises(ValidationError) as info:
        live.refresh()
    assert live.current is before and "sekrit" not in str(info.value)


def test_background_thread_picks_up_rotation_and_recovers_from_outage(live_phase: Phase) -> None:
    live = LiveSettings(make_settings(live_phase, phase_cache_ttl=1, phase_deadline=1.0))
    live.start(interval=1)
    try:
        live_phase.set("API_KEY", "key-2")
        assert _eventually(lambda: live.current.api_key.get_secret_value() == "key-2", 2.5)  # type: ignore[attr-defined]
        live_phase.fake.fail_next(503, times=3)  # one failed refresh (3 attempts)
        live_phase.set("API_KEY", "key-3")
        assert _eventually(lambda: live.current.api_key.get_secret_value() == "key-3", 6.0)  # type: ignore[attr-defined]
    finally:
        started = time.monotonic()
        live.stop()
        assert time.monotonic() - started < 1.0
    assert not any(t.name.startswith("phase-settings-refresh") for t in threading.enumerate())


def test_stale_values_are_visible_within_ttl_plus_one_second(live_phase: Phase) -> None:
    Settings = make_settings(live_phase, phase_cache_ttl=1)
    assert Settings().api_key.get_secret_value() == "key-1"  # type: ignore[attr-defined]
    live_phase.set("API_KEY", "key-2")
    assert _eventually(lambda: Settings().api_key.get_secret_value() == "key-2", 2.0)  # type: ignore[attr-defined]


def test_start_validates_the_interval(live_phase: Phase) -> None:
    live = LiveSettings(make_settings(live_phase, phase_cache_ttl=0))
    with pytest.raises(ValueError, match="interval"):
        live.start()
    with pytest.raises(ValueError, match="at least 1"):
        live.start(interval=0.5)


def test_stop_returns_within_a_second_mid_wait(live_phase: Phase) -> None:
    live = LiveSettings(make_settings(live_phase))
    live.start(interval=300)
    started = time.monotonic()
    live.stop()
    assert time.monotonic() - started < 1.0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")
@pytest.mark.filterwarnings("ignore:This process .* fork:DeprecationWarning")
def test_a_started_instance_restarts_its_thread_in_a_forked_child(live_phase: Phase) -> None:
    live = LiveSettings(make_settings(live_phase))
    live.start(interval=60)
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:  # child
            alive = any(
                t.name.startswith("phase-settings-refresh") and t.is_alive()
                for t in threading.enumerate()
            )
            os.write(write_end, b"1" if alive else b"0")
            os._exit(0)
        os.close(write_end)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.02)
        else:
            os.kill(pid, 9)
            pytest.fail("child did not exit")
        assert os.read(read_end, 1) == b"1"
    finally:
        os.close(read_end)
        live.stop()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs under asyncio and under trio."""
    return str(request.param)


@pytest.mark.anyio
async def test_aload_shares_one_request_among_a_thousand_tasks(
    live_phase: Phase, phase_mode: str
) -> None:
    Settings = make_settings(live_phase)
    live_phase.fake.fail_next(None, delay=0.2)  # keep the first request in flight
    results: list[Any] = []

    async def one() -> None:
        results.append(await aload(Settings))

    async with anyio.create_task_group() as tasks:
        for _ in range(1000):
            tasks.start_soon(one)
    assert len(results) == 1000
    assert {r.api_key.get_secret_value() for r in results} == {"key-1"}
    assert live_phase.gets() == REQUESTS_PER_LOAD[phase_mode]
    assert load_status(Settings).source in ("phase", "cache")


@pytest.mark.anyio
async def test_aload_never_blocks_the_event_loop(
    live_phase: Phase, tmp_path: Path, phase_mode: str
) -> None:
    """The reply is held back 0.5 s after the request reached the server. A fetch that blocked
    the loop would leave no turn to the ticker in that window; a fetch that awaits leaves it
    many (one is asked for: no speed is assumed beyond one loop turn in half a second)."""
    (tmp_path / ".env").write_text("WORKERS=4\n")
    Settings = make_settings(live_phase, env_file=".env", phase_cache_ttl=0)
    live_phase.fake.fail_next(None, delay=0.5)
    turns_while_in_flight = 0
    done = False

    async def ticker() -> None:
        nonlocal turns_while_in_flight
        while not done:
            if live_phase.fake.requests:  # the request reached the server, no reply yet
                turns_while_in_flight += 1
            await anyio.sleep(0.01)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(ticker)
        result = await aload(Settings)
        done = True
    assert result.api_key.get_secret_value() == "key-1"
    assert result.workers == 2  # type: ignore[attr-defined]
    assert turns_while_in_flight >= 1
    assert live_phase.gets() == REQUESTS_PER_LOAD[phase_mode]


def test_a_blocking_fetch_is_caught_by_the_event_loop_check(live_phase: Phase) -> None:
    """The check above fails when the fetch blocks the loop: a synchronous load in the loop
    thread leaves the ticker no turn while the request is in flight."""
    Settings = make_settings(live_phase, phase_cache_ttl=0)
    live_phase.fake.fail_next(None, delay=0.5)
    turns_while_in_flight = 0
    done = False

    async def ticker() -> None:
        nonlocal turns_while_in_flight
        while not done:
            if live_phase.fake.requests:
                turns_while_in_flight += 1
            await anyio.sleep(0.01)

    async def main() -> None:
        nonlocal done
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(ticker)
            await anyio.sleep(0.05)  # the ticker has started
            Settings()  # blocks the loop for the whole request
            done = True

    anyio.run(main)
    assert turns_while_in_flight == 0


@pytest.mark.anyio
async def test_arefresh(live_phase: Phase) -> None:
    live = LiveSettings(make_settings(live_phase))
    live_phase.set("WORKERS", "7")
    assert await live.arefresh() == frozenset({"workers"})
    assert live.current.workers == 7  # type: ignore[attr-defined]
    assert await live.arefresh() == frozenset()
    assert live.status.source == "phase"


@pytest.mark.anyio
async def test_arefresh_during_an_outage_keeps_the_instance_and_raises(live_phase: Phase) -> None:
    live = LiveSettings(make_settings(live_phase, phase_deadline=1.0, phase_max_attempts=1))
    before = live.current
    live_phase.fake.fail_next(503, times=1)
    with pytest.raises(PhaseServerError):
        await live.arefresh()
    assert live.current is before
    assert "PhaseServerError" in str(live.status.last_error)


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_t16_resources_stay_flat_over_2000_refresh_cycles(live_phase: Phase) -> None:
    live = LiveSettings(make_settings(live_phase))
    changes = 0
    live.on_change(lambda old, new, changed: None)

    def sample() -> tuple[int, int, int]:
        gc.collect()
        rss_pages = int(Path("/proc/self/statm").read_text().split()[1])
        return len(os.listdir("/proc/self/fd")), threading.active_count(), rss_pages * 4096

    for i in range(200):  # warm up pools, caches and allocator
        live_phase.set("WORKERS", str(i))
        live.refresh()
    fds0, threads0, rss0 = sample()
    samples = []
    for i in range(2000):
        live_phase.set("WORKERS", str(1000 + i))
        changes += len(live.refresh())
        if i % 500 == 499:
            samples.append(sample())
    fds1, threads1, rss1 = sample()
    print(
        f"T16: fds {fds0}->{fds1}, threads {threads0}->{threads1}, "
        f"RSS growth {(rss1 - rss0) / 1e6:.2f} MB over 2000 refreshes"
    )
    assert changes == 2000
    assert all(abs(fds - fds0) <= 2 for fds, _, _ in samples) and abs(fds1 - fds0) <= 2
    # never more threads (idle worker threads that earlier async tests left may exit meanwhile)
    assert all(threads <= threads0 for _, threads, _ in samples) and threads1 <= threads0
    assert rss1 - rss0 < 5_000_000


def _eventually(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def test_an_outage_is_not_retried_on_every_load(live_phase: Phase, tmp_path: Path) -> None:
    """During an outage each Settings() serves the last good values at once instead of
    waiting out another round of retries: Phase is asked again after 1 s, 2 s, 4 s..."""
    Settings = make_settings(live_phase, phase_cache_ttl=0.1, phase_deadline=1.0)
    assert Settings().workers == 2  # type: ignore[attr-defined]
    time.sleep(0.15)
    live_phase.fake.fail_next(503, times=1000)
    live_phase.fake.clear_requests()
    started = time.monotonic()
    for _ in range(50):
        assert Settings().workers == 2  # type: ignore[attr-defined]
    elapsed = time.monotonic() - started
    assert load_status(Settings).source == "stale"
    assert len(live_phase.fake.requests) <= 3  # one failed load (3 attempts), then backoff
    assert elapsed < 2.0
    live_phase.fake.clear_faults()
    live_phase.set("WORKERS", "5")
    assert _eventually(lambda: Settings().workers == 5, 3.0)  # type: ignore[attr-defined]
    assert load_status(Settings).source in ("phase", "cache")


@pytest.mark.anyio
async def test_aload_with_an_injected_client_shares_one_request(
    live_phase: Phase, phase_mode: str
) -> None:
    """The async cache path itself (single-flight, worker threads) under asyncio and trio,
    with a synchronous injected client run off the loop."""
    from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

    from phase_settings import PhaseClient, PhaseSettingsSource

    client = PhaseClient(
        live_phase.token, host="http://127.0.0.1", transport=live_phase.fake.transport()
    )

    class Injected(PhaseSettings):
        api_key: SecretStr
        workers: int = 1

        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], *args: Any, **kwargs: Any
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (
                PhaseSettingsSource(
                    settings_cls, app_id=live_phase.app_id, env="development", client=client
                ),
            )

    live_phase.fake.fail_next(None, delay=0.2)
    results: list[Any] = []

    async def one() -> None:
        results.append(await aload(Injected))

    try:
        async with anyio.create_task_group() as tasks:
            for _ in range(50):
                tasks.start_soon(one)
    finally:
        client.close()
    assert {r.workers for r in results} == {2} and len(results) == 50
    gets = sum(1 for r in live_phase.fake.requests if r.method == "GET")
    assert gets == REQUESTS_PER_LOAD[phase_mode]


class _Wrapped:
    """A source of the user's that wraps another (e.g. to log what it read)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self) -> dict[str, Any]:
        data: dict[str, Any] = self.inner()
        return data


def test_refresh_loads_through_the_sources_the_class_itself_assembles(
    live_phase: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A class whose ``settings_customise_sources`` puts Phase above everything and wraps the
    environment source: every load and refresh goes through that hook, once, with the
    defaults pydantic-settings builds (init kwargs such as ``_env_prefix`` applied), so a
    refresh serves what a load of the class would."""
    from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

    from phase_settings import PhaseSettingsSource

    calls: list[str | None] = []

    class Reordered(make_settings(live_phase)):  # type: ignore[misc]
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            prefix = getattr(env_settings, "env_prefix", None)
            calls.append(prefix)
            phase = PhaseSettingsSource(settings_cls)  # Phase keys without the prefix
            return (phase, init_settings, _Wrapped(env_settings))  # type: ignore[return-value]

    monkeypatch.setenv("APP_API_KEY", "from-env")  # below Phase for this class
    live = LiveSettings(Reordered, _env_prefix="APP_")
    assert live.current.api_key.get_secret_value() == "key-1"
    assert calls == ["APP_"]  # one assembly per load, with the init kwargs applied
    live_phase.set("API_KEY", "key-2")
    assert live.refresh() == frozenset({"api_key"})
    assert live.current.api_key.get_secret_value() == "key-2"
    assert calls == ["APP_", "APP_"]  # the refresh fetched and rebuilt through one assembly
    assert live.status.source == "phase"


def test_a_class_that_drops_phase_is_refreshed_without_a_request(live_phase: Phase) -> None:
    from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

    class Local(make_settings(live_phase)):  # type: ignore[misc]
        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: Any, *args: Any, **kwargs: Any
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings,)

    live = LiveSettings(Local, api_key="local")
    before = len(live_phase.fake.requests)
    assert live.refresh() == frozenset()
    assert live.current.api_key.get_secret_value() == "local"
    assert len(live_phase.fake.requests) == before and live.status.source == "none"
    loaded = anyio.run(functools.partial(aload, Local, api_key="local"))
    assert loaded.api_key.get_secret_value() == "local"  # type: ignore[attr-defined]
