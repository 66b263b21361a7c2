"""Shared fixtures: every test starts with an empty cache, no PHASE_* variables, and a fresh
working directory (no stray .env or .phase.json)."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

import phase_settings
from phase_settings.testing import FakePhase

# CI replays nothing from a local example database and draws the same examples on every run, so
# a run's outcome depends on the commit alone; locally, examples are random and failures replay.
# Under pytest-xdist the workers share two cores with each other (and with whatever else runs),
# so Hypothesis's wall-clock checks (the 200 ms deadline per example, the too_slow health check
# on data generation) measure the machine's load, not the test: every profile turns them off.
_UNTIMED = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
hypothesis_settings.register_profile(
    "ci", database=None, derandomize=True, print_blob=True, **_UNTIMED
)
hypothesis_settings.register_profile("random", database=None, **_UNTIMED)
hypothesis_settings.register_profile("local", **_UNTIMED)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "local")
)


# --- scheduling under pytest-xdist ---------------------------------------------------------------
# Tests that assert an upper bound on wall time (a load decided within DEADLINE + MARGIN, a stop
# within a second) run in one xdist group, so one worker runs them one after another and two of
# them never compete for the same core; `make test` passes `--dist loadgroup`. Whole modules
# where nearly every test is bounded (each case of T1 checks its deadline), and single tests
# elsewhere by name.
TIMING_MODULES = {
    "tests/client/test_slow_start_watchdog.py",
    "tests/load/test_single_flight_interrupts.py",
    "tests/reliability/test_deadlines.py",
    "tests/reliability/test_hostile_folders.py",
    "tests/reliability/test_last_good_values.py",
    "tests/reliability/test_resolver_deadlines.py",
    "tests/reliability/test_malformed_replies.py",
    "tests/reliability/test_proxy_deadlines.py",
    "tests/reliability/test_rate_limits.py",
    "tests/reliability/test_single_flight.py",
    "tests/reliability/test_snapshot_boot.py",
    "tests/reliability/test_snapshot_lock.py",
    "tests/reliability/test_snapshot_processes.py",
    "tests/reliability/test_startup_with_phase_down.py",
    "tests/reliability/test_transport_policy.py",
}
# ... except this one: twenty rounds of a reply held 1 s, bounded at DEADLINE + MARGIN (2.5 s):
# 1.5 s of slack, and 20 s that would lengthen the group, the run's critical path, by a sixth.
UNGROUPED_TESTS = {
    "tests/reliability/test_single_flight.py::test_64_cold_threads_make_exactly_one_request",
}
TIMING_TESTS = {
    "tests/reliability/test_e2ee_faults.py::test_429_on_the_tokens_endpoint_waits_retry_after_"
    "within_the_deadline",
    "tests/settings/test_live.py::test_background_thread_picks_up_rotation_and_recovers_from_"
    "outage",
    "tests/settings/test_live.py::test_stop_returns_within_a_second_mid_wait",
    "tests/settings/test_live.py::test_an_outage_is_not_retried_on_every_load",
    "tests/client/test_client.py::test_async_deadline_holds_under_either_loop",
    "tests/fake/test_fake_behaviour.py::test_fail_next_hang",
    "tests/fake/test_fake_behaviour.py::test_transport_faults",
}

# Modules whose module-scoped fixtures start a server in a subprocess: one worker runs each
# whole, so the server starts once per run instead of once per worker.
ONE_WORKER_MODULES = {
    "tests/frameworks/test_django.py",
    "tests/frameworks/test_flask.py",
}

# `slow` (deselected by `make quick`): subprocesses that import the package and its frameworks
# (examples, the CLI end to end, framework commands, builds, mypy), several processes or forks,
# soaks, exhaustive sweeps, and tests that wait out seconds of real time on purpose (a 2 s
# deadline, a 1 s hold, a Retry-After). `make test` runs them all.
SLOW_MODULES = {
    "tests/client/test_slow_start_watchdog.py",
    "tests/load/test_single_flight_interrupts.py",
    "tests/reliability/test_decompression_bombs.py",
    "tests/reliability/test_hostile_folders.py",
    "tests/reliability/test_resolver_deadlines.py",
    "tests/test_examples.py",
    "tests/reliability/test_deadlines.py",
    "tests/reliability/test_environ.py",
    "tests/reliability/test_fork.py",
    "tests/reliability/test_malformed_replies.py",
    "tests/reliability/test_proxy_deadlines.py",
    "tests/reliability/test_snapshot_boot.py",
    "tests/reliability/test_snapshot_lock.py",
    "tests/reliability/test_snapshot_processes.py",
    "tests/reliability/test_startup_with_phase_down.py",
}
SLOW_TESTS = {
    "tests/cli/test_cli.py::test_console_script_runs",
    "tests/cli/test_cli.py::test_export_via_subprocess_writes_0600",
    "tests/cli/test_cli.py::test_help_documents_every_command_and_exit_code",
    "tests/cli/test_cli.py::test_serve_fake_end_to_end",
    "tests/cli/test_cli.py::test_serve_fake_stops_on_sigint",
    "tests/cli/test_cli.py::test_set_on_a_terminal_prompts_without_echo",
    "tests/client/test_client_modes_property.py::test_rest_and_e2ee_modes_give_identical_secrets",
    "tests/e2ee/test_e2ee_references.py::test_same_values_as_the_servers_rest_resolver",
    "tests/fake/test_pytest_plugin.py::test_an_empty_project_run_imports_nothing_heavy",
    "tests/fake/test_pytest_plugin.py::test_the_fixture_works_when_used",
    "tests/frameworks/test_django.py::test_phase_check_exit_codes",
    "tests/frameworks/test_django.py::test_phase_check_help",
    "tests/frameworks/test_django.py::test_phase_check_reports_a_settings_load_failure_in_one_line",
    "tests/frameworks/test_django.py::test_phase_check_reports_and_exits_0",
    "tests/frameworks/test_flask.py::test_flask_phase_check",
    "tests/frameworks/test_flask.py::test_flask_phase_check_reports_a_settings_load_failure_in_"
    "one_line",
    "tests/frameworks/test_flask.py::test_flask_phase_check_reports_settings_loaded_at_import",
    "tests/frameworks/test_flask.py::test_integrations_do_not_import_the_command_line",
    "tests/reliability/test_last_good_values.py::test_outage_after_ttl_serves_last_good_values",
    "tests/reliability/test_single_flight.py::test_64_cold_threads_make_exactly_one_request",
    "tests/reliability/test_single_flight.py::test_1000_asyncio_tasks_make_one_request",
    "tests/reliability/test_single_flight.py::test_a_failing_fetch_gives_every_waiter_the_same_"
    "error",
    "tests/reliability/test_snapshot_files.py::test_200_writers_killed_mid_write_never_leave_a_"
    "partial_snapshot",
    "tests/reliability/test_snapshot_files.py::test_two_processes_racing_keep_the_newer_snapshot",
    "tests/settings/test_live.py::test_aload_shares_one_request_among_a_thousand_tasks",
    "tests/settings/test_live.py::test_background_thread_picks_up_rotation_and_recovers_from_"
    "outage",
    "tests/settings/test_live.py::test_t16_resources_stay_flat_over_2000_refresh_cycles",
    "tests/snapshot/test_snapshot.py::test_any_flipped_bit_is_one_warning_and_a_miss",
    "tests/snapshot/test_snapshot.py::test_every_truncation_is_one_warning_and_a_miss",
    "tests/test_logging.py::test_a_load_that_waits_two_seconds_for_phase_says_so_once",
    "tests/test_readme.py::test_make_dist_builds_a_wheel_that_installs_and_runs",
    "tests/test_readme.py::test_the_mypy_plugin_setting_lets_mypy_accept_settings",
}
_ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """A renamed or moved test must not leave these lists silently: every entry must exist."""
    listed = TIMING_MODULES | TIMING_TESTS | UNGROUPED_TESTS | ONE_WORKER_MODULES
    listed |= SLOW_MODULES | SLOW_TESTS
    for entry in sorted(listed):
        module, _, name = entry.partition("::")
        path = _ROOT / module
        if not path.is_file() or (name and f"def {name}(" not in path.read_text("utf-8")):
            raise pytest.UsageError(f"tests/conftest.py names a test that does not exist: {entry}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = item.path.resolve().relative_to(_ROOT).as_posix()
        test = f"{module}::{getattr(item, 'originalname', item.name)}"
        if test in UNGROUPED_TESTS:
            pass
        elif module in TIMING_MODULES or test in TIMING_TESTS:
            item.add_marker(pytest.mark.xdist_group("timing"))
        elif module in ONE_WORKER_MODULES:
            item.add_marker(pytest.mark.xdist_group(module))
        if module in SLOW_MODULES or test in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


# --- no name resolution off the machine ----------------------------------------------------------

_real_getaddrinfo = socket.getaddrinfo


def _loopback_name(host: object) -> bool:
    if host is None:
        return True  # a wildcard bind, not a lookup
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    name = str(host).strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.split("%")[0]).is_loopback
    except ValueError:
        return False


def _loopback_only_getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
    if not _loopback_name(host):
        raise socket.gaierror(socket.EAI_NONAME, f"tests resolve loopback names only: {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_dns_off_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Name resolution fails for every name that is not loopback, so no test can send a DNS
    query (or, after it, a packet) off the machine, even through a proxy test's host name."""
    monkeypatch.setattr(socket, "getaddrinfo", _loopback_only_getaddrinfo)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("PHASE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PHASE_CONFIG_PARENT_DIR_SEARCH_DEPTH", "0")
    monkeypatch.chdir(tmp_path)
    phase_settings.clear_cache()
    yield
    phase_settings.clear_cache()


@dataclass
class Phase:
    """A serving fake with one app: what most tests need."""

    fake: FakePhase
    url: str
    app_id: str
    token: str

    def set(self, key: str, value: str, *, env: str = "development", path: str = "/") -> None:
        self.fake.set_secret(self.app_id, env, key, value, path=path)

    def gets(self) -> int:
        return sum(1 for r in self.fake.requests if r.method == "GET")

    def config(self, **extra: object) -> dict[str, object]:
        """``model_config`` keys pointing at this fake."""
        return {
            "phase_app_id": self.app_id,
            "phase_env": "development",
            "phase_token": self.token,
            "phase_host": self.url,
            **extra,
        }


@pytest.fixture
def phase() -> Iterator[Phase]:
    fake = FakePhase()
    app_id = fake.add_app("demo")
    token = fake.add_service_account(envs=None)
    with fake.serve() as url:
        yield Phase(fake, url, app_id, token)
