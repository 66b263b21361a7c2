"""Client-side reference resolution: hand cases of every form and rule, what it asks to fetch
(each extra environment folder once), and a property against the fake server's REST resolver
(its own code: they share nothing) over generated reference graphs."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from phase_settings._e2ee.references import Fetch, ReferenceResolver, Unreadable
from phase_settings._models import Secret, SecretOverride
from phase_settings.testing import FakePhase

_ids = itertools.count()

World = Mapping[tuple[str, str], Sequence[Secret]]


def s(key: str, value: str, path: str = "/", override: str | None = None) -> Secret:
    over = SecretOverride("o", override, True) if override is not None else None
    return Secret(f"id{next(_ids)}", key, value, path=path, override=over)


def load(
    world: World,
    home: tuple[str, str] = ("app", "dev"),
    *,
    no_access: Iterable[tuple[str, str]] = (),
    home_path: str | None = None,
) -> tuple[dict[str, str], list[Fetch]]:
    """Drive the resolver as a client would: fetch what it asks for, round after round.

    Returns the resolved values of the home environment (``path:key``) and every fetch made.
    """
    blocked = set(no_access)
    home_secrets = [x for x in world[home] if home_path is None or x.path == home_path]
    resolver = ReferenceResolver(*home)
    resolver.add(*home, home_path, home_secrets)
    fetches: list[Fetch] = []
    for _ in range(30):
        needed = resolver.needed(home_secrets)
        if not needed:
            break
        for fetch in sorted(needed):
            fetches.append(fetch)
            target = next(
                (k for k in world if (k[0].lower(), k[1].lower()) == (fetch.app, fetch.env)),
                None,
            )
            if target is None:
                resolver.mark(fetch.app, fetch.env, Unreadable.MISSING)
            elif target in blocked:
                resolver.mark(fetch.app, fetch.env, Unreadable.NO_ACCESS)
            else:
                folder = [x for x in world[target] if x.path == fetch.path]
                resolver.add(fetch.app, fetch.env, fetch.path, folder)
    else:
        raise AssertionError("the resolver kept asking for more")
    resolved = resolver.resolve(home_secrets)
    return {f"{x.path}:{x.key}": x.effective_value for x in resolved}, fetches


def test_local_reference_means_the_root_folder_of_the_same_environment() -> None:
    world = {
        ("app", "dev"): [
            s("HOST", "db"),
            s("URL", "pg://${HOST}/x"),
            s("HOST", "folder-db", "/backend"),
            s("IN_FOLDER", "${HOST}", "/backend"),
        ]
    }
    values, fetches = load(world)
    assert values["/:URL"] == "pg://db/x"
    assert values["/backend:IN_FOLDER"] == "db"
    assert fetches == []


def test_folder_reference_fetches_that_folder_once() -> None:
    world = {
        ("app", "dev"): [
            s("A", "${/backend/KEY}-${backend/KEY}-${/backend//KEY}"),
            s("B", "${/backend/KEY}"),
            s("KEY", "k", "/backend"),
        ]
    }
    values, fetches = load(world, home_path="/")
    assert values == {"/:A": "k-k-k", "/:B": "k"}
    assert fetches == [Fetch("app", "dev", "/backend")]


def test_cross_environment_and_cross_app_references() -> None:
    world = {
        ("app", "dev"): [
            s("E", "${Staging.SHARED}"),
            s("F", "${prod./frontend/SECRET}"),
            s("X", "${Other-App::Production.DB}"),
        ],
        ("app", "Staging"): [s("SHARED", "shared")],
        ("app", "prod"): [s("SECRET", "front", "/frontend")],
        ("other-app", "production"): [s("DB", "other-db")],
    }
    values, fetches = load(world)
    assert values == {"/:E": "shared", "/:F": "front", "/:X": "other-db"}
    assert sorted(fetches) == [
        Fetch("app", "prod", "/frontend"),
        Fetch("app", "staging", "/"),
        Fetch("other-app", "production", "/"),
    ]


def test_chains_resolve_in_the_referenced_environment() -> None:
    world = {
        ("app", "dev"): [s("A", "a-${staging.B}"), s("LOCAL", "dev-local")],
        ("app", "staging"): [s("B", "b-${LOCAL}-${prod.C}"), s("LOCAL", "staging-local")],
        ("app", "prod"): [s("C", "c")],
    }
    values, fetches = load(world)
    assert values["/:A"] == "a-b-staging-local-c"
    assert len(fetches) == len(set(fetches)) == 2


@pytest.mark.parametrize(("length", "resolved"), [(25, True), (26, False)])
def test_depth_limit_of_25(length: int, resolved: bool) -> None:
    chain = [s(f"K{i}", f"${{K{i + 1}}}") for i in range(length)] + [s(f"K{length}", "end")]
    values, _ = load({("app", "dev"): chain})
    assert (values["/:K0"] == "end") is resolved
    if not resolved:
        assert values["/:K0"] == "${K1}"
    assert values[f"/:K{length - 1}"] == "end"


def test_cycles_stay_literal_and_so_does_what_leads_into_them() -> None:
    world = {
        ("app", "dev"): [
            s("A", "${B}"),
            s("B", "x${A}"),
            s("SELF", "${SELF}"),
            s("INTO", "${A} and ${OK}"),
            s("OK", "fine"),
        ]
    }
    values, _ = load(world)
    assert values["/:A"] == "${B}"
    assert values["/:SELF"] == "${SELF}"
    assert values["/:INTO"] == "${A} and fine"


def test_missing_targets_stay_literal_and_nothing_is_dropped() -> None:
    world = {
        ("app", "dev"): [
            s("A", "x-${NOPE}-${nowhere.K}-${ghost::dev.K}-${/none/K}-${OK}"),
            s("OK", "ok"),
            s("LOWER", "${ok}"),
        ]
    }
    values, _ = load(world)
    assert values == {
        "/:A": "x-${NOPE}-${nowhere.K}-${ghost::dev.K}-${/none/K}-ok",
        "/:OK": "ok",
        "/:LOWER": "${ok}",
    }


def test_no_access_stops_the_value_there() -> None:
    world = {
        ("app", "dev"): [
            s("A", "${prod.K} ${staging.K} ${L}"),
            s("L", "l"),
            s("B", "${staging.K} ${prod.K} ${L}"),
        ],
        ("app", "prod"): [s("K", "p")],
        ("app", "staging"): [s("K", "st")],
    }
    values, _ = load(world, no_access=[("app", "prod")])
    # cross-environment references are replaced before local ones, whatever their position
    assert values["/:A"] == "${prod.K} ${staging.K} ${L}"
    assert values["/:B"] == "st ${prod.K} ${L}"


@pytest.mark.parametrize("text", ["${{KEY}}", "$KEY", "${app::env}", "${}"])
def test_text_that_is_not_a_reference_is_left_alone(text: str) -> None:
    values, fetches = load({("app", "dev"): [s("A", text), s("KEY", "k")]})
    assert values["/:A"] == text
    assert fetches == []


def test_overrides_are_resolved_too() -> None:
    world = {("app", "dev"): [s("A", "shared", override="mine-${B}"), s("B", "b")]}
    values, _ = load(world)
    assert values["/:A"] == "mine-b"


def test_every_occurrence_is_replaced() -> None:
    values, _ = load({("app", "dev"): [s("A", "${B}${B}-${B}"), s("B", "b")]})
    assert values["/:A"] == "bb-b"


# --- the same values as the server's REST resolver ---------------------------------------------

_APPS = ("alpha", "beta")
_ENVS = ("Development", "Staging")
_PATHS = ("/", "/f")
_KEYS = ("A", "B")


@st.composite
def _refs(draw: st.DrawFn) -> str:
    key = draw(st.sampled_from((*_KEYS, *_KEYS, "MISSING")))
    path = draw(st.sampled_from(("", "", "/f/")))
    form = draw(st.integers(0, 3))
    if form == 0:
        return f"${{{path}{key}}}"
    env = draw(st.sampled_from((*_ENVS, "staging", "nowhere")))
    if form == 1:
        return f"${{{env}.{path}{key}}}"
    app = draw(st.sampled_from((*_APPS, "Beta", "ghost")))
    return f"${{{app}::{env}.{path}{key}}}"


_VALUE = st.lists(
    st.one_of(st.sampled_from(("x", "-", "${{A}}")), _refs(), _refs()), max_size=4
).map("".join)
_SLOTS = list(itertools.product(_APPS, _ENVS, _PATHS, _KEYS))
_WORLD = st.fixed_dictionaries({slot: st.one_of(st.none(), _VALUE) for slot in _SLOTS}).map(
    lambda world: {slot: value for slot, value in world.items() if value is not None}
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=_WORLD, blocked=st.sets(st.just("Staging"), max_size=1))
@example(  # a reference the token cannot read stops the value before the local one
    world={
        ("alpha", "Development", "/", "A"): "${Staging.B}${B}",
        ("alpha", "Development", "/", "B"): "b",
        ("alpha", "Staging", "/", "B"): "s",
    },
    blocked={"Staging"},
)
def test_same_values_as_the_servers_rest_resolver(
    world: dict[tuple[str, str, str, str], str], blocked: set[str]
) -> None:
    fake = FakePhase()
    ids = {app: fake.add_app(app, environments=_ENVS) for app in _APPS}
    for (app, env, path, key), value in world.items():
        fake.set_secret(ids[app], env, key, value, path=path)
    readable = [e.lower() for e in _ENVS if e not in blocked or e == "Development"]
    token = fake.add_user(envs=readable)
    header = {"Authorization": f"Bearer User {token.split(':')[2]}"}
    with httpx.Client(transport=fake.transport(), base_url="http://127.0.0.1") as client:
        reply = client.get(
            "/v1/secrets/", params={"app_id": ids["alpha"], "env": "Development"}, headers=header
        )
    assert reply.status_code == 200
    served = {f"{item['path']}:{item['key']}": item["value"] for item in reply.json()}

    mine: dict[tuple[str, str], list[Secret]] = {(a, e): [] for a in _APPS for e in _ENVS}
    for (app, env, path, key), value in world.items():
        mine[(app, env)].append(Secret(f"{app}|{env}|{path}|{key}", key, value, path=path))
    no_access = [(a, e) for a in _APPS for e in _ENVS if e in blocked and e != "Development"]
    values, fetches = load(mine, ("alpha", "Development"), no_access=no_access)
    assert values == served
    assert len(fetches) == len(set(fetches))
