"""On an SSE app, REST (the server resolves references) and the end-to-end-encrypted API (this
library decrypts and resolves them) give identical ``Secret`` records, over generated secrets,
folders and reference graphs: local, folder, cross-environment, cross-app, chains, cycles and
missing targets. The fake's server-side resolver shares no code with the library's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phase_settings import PhaseClient, Secret
from phase_settings._client.switch import PROCESS_SWITCH
from phase_settings.testing import FakePhase


@pytest.fixture(autouse=True)
def _fresh_switches() -> Iterator[None]:
    PROCESS_SWITCH.reset()
    yield
    PROCESS_SWITCH.reset()


# A small grid, densely filled, so that most references find a target.
KEYS = ["K0", "K1", "K2"]
FOLDERS = ["/", "/a"]
ENVS = ["development", "production"]
APPS = ["home", "other"]

_reference = st.one_of(
    st.sampled_from(KEYS).map(lambda k: f"${{{k}}}"),  # local
    st.tuples(st.sampled_from(["/a", "a", "/a/b"]), st.sampled_from(KEYS)).map(
        lambda fk: f"${{{fk[0]}/{fk[1]}}}"  # another folder
    ),
    st.tuples(st.sampled_from(["production", "Production", "staging"]), st.sampled_from(KEYS)).map(
        lambda ek: f"${{{ek[0]}.{ek[1]}}}"  # another environment (staging holds nothing)
    ),
    st.tuples(st.sampled_from(["other", "OTHER", "nobody"]), st.sampled_from(KEYS)).map(
        lambda ak: f"${{{ak[0]}::development.{ak[1]}}}"  # another app, or none of that name
    ),
    st.sampled_from(KEYS).map(lambda k: f"${{other::production./a/{k}}}"),
    st.sampled_from(["${MISSING}", "${{K0}}", "$K1", "${nope.K0}", "${a.b.c}"]),
)
_piece = st.one_of(_reference, st.text(alphabet="xy -:", max_size=3))
_value = st.lists(_piece, max_size=4).map("".join)
# (app, env, folder, key) -> value; the home app's development environment is what is read.
_spot = st.tuples(
    st.sampled_from(APPS), st.sampled_from(ENVS), st.sampled_from(FOLDERS), st.sampled_from(KEYS)
)
_world = st.dictionaries(_spot, _value, min_size=8, max_size=24)


def _records(secrets: list[Secret]) -> list[Secret]:
    return sorted(secrets, key=lambda s: (s.path, s.key))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=_world)
def test_rest_and_e2ee_modes_give_identical_secrets(world: dict[tuple[str, ...], str]) -> None:
    fake = FakePhase()
    apps = {name: fake.add_app(name) for name in APPS}
    for (app, env, folder, key), value in world.items():
        tags = {"K0": ("t1",), "K1": ("t2",), "K2": ("t1", "t2")}[key]
        fake.set_secret(apps[app], env, key, value, path=folder, comment=f"c {key}", tags=tags)
    token = fake.add_service_account(envs=None)
    with (
        fake.serve() as url,
        PhaseClient(token, url, mode="sse") as rest,
        PhaseClient(token, url, mode="e2ee") as e2ee,
    ):
        for path in [*FOLDERS, "/a/b", None]:
            expected = _records(rest.list_secrets(apps["home"], "development", path=path))
            got = _records(e2ee.list_secrets(apps["home"], "development", path=path))
            assert got == expected, (path, world)
            assert [s.value for s in got] == [s.value for s in expected]  # repr masks values
        for tags in (["t1"], ["t2", "t1"]):  # the server's filter; a folder read in part
            expected = _records(rest.list_secrets(apps["home"], "development", tags=tags))
            got = _records(e2ee.list_secrets(apps["home"], "development", tags=tags))
            assert got == expected, (tags, world)


def test_the_comparison_sees_a_difference() -> None:
    """Control: the records compared above carry the resolved values, so a resolver that got
    one wrong would fail the property."""
    fake = FakePhase()
    app = fake.add_app("home")
    fake.set_secret(app, "development", "A", "1")
    fake.set_secret(app, "development", "B", "${A}")
    token = fake.add_service_account(envs=None)
    with fake.serve() as url, PhaseClient(token, url, mode="e2ee") as e2ee:
        got = _records(e2ee.list_secrets(app, "development"))
        fake.set_secret(app, "development", "A", "2")  # a new value, not a new version of B
        with PhaseClient(token, url, mode="sse") as rest:
            expected = _records(rest.list_secrets(app, "development"))
    assert got[1].value == "1" and expected[1].value == "2"
    assert got != expected


def test_a_user_token_with_personal_overrides_gets_the_same_records() -> None:
    fake = FakePhase()
    app = fake.add_app("home")
    fake.set_secret(app, "development", "A", "a")
    fake.set_secret(app, "production", "P", "p")
    fake.set_secret(app, "development", "R", "${production.P}-${A}")
    user = fake.add_user()
    fake.set_override(user, app, "development", "A", "mine-${production.P}")
    fake.set_override(user, app, "development", "R", "off", active=False)
    with (
        fake.serve() as url,
        PhaseClient(user, url, mode="sse") as rest,
        PhaseClient(user, url, mode="e2ee") as e2ee,
    ):
        expected = _records(rest.list_secrets(app, "development"))
        got = _records(e2ee.list_secrets(app, "development"))
    assert got == expected
    assert [(s.value, s.effective_value) for s in got] == [("a", "mine-p"), ("p-a", "p-a")]
    assert got[1].override is not None and got[1].override.is_active is False
