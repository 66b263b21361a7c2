"""Server-side secret reference resolution in FakePhase (contract §5), over loopback HTTP."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phase_settings.testing import FakePhase

_names = itertools.count()


@dataclass
class Served:
    fake: FakePhase
    client: httpx.Client
    user: str
    user_header: dict[str, str]

    def new_app(self, name: str | None = None, **kwargs: object) -> str:
        return self.fake.add_app(name or f"app{next(_names)}", **kwargs)  # type: ignore[arg-type]

    def values(
        self, app: str, env: str = "development", header: dict[str, str] | None = None
    ) -> dict[str, str]:
        response = self.client.get(
            "/v1/secrets/",
            params={"app_id": app, "env": env},
            headers=header or self.user_header,
        )
        assert response.status_code == 200, response.text
        return {f"{item['path']}:{item['key']}": item["value"] for item in response.json()}


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    fake = FakePhase()
    user = fake.add_user()
    header = {"Authorization": f"Bearer User {user.split(':')[2]}"}
    with fake.serve() as url, httpx.Client(base_url=url, timeout=10, verify=False) as client:
        yield Served(fake, client, user, header)


def sa_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer ServiceAccount {token.split(':')[2]}"}


# --------------------------------------------------------------------------- syntax


def test_reference_forms(served: Served) -> None:
    fake = served.fake
    payments = f"Payments-{next(_names)}"
    other = served.new_app(payments)
    fake.set_secret(other, "production", "SECRET_KEY", "other-root")
    fake.set_secret(other, "production", "SECRET_KEY", "other-front", path="/frontend")
    app = served.new_app()
    fake.set_secret(app, "development", "HOST", "db")
    fake.set_secret(app, "development", "STRIPE", "sk", path="/backend/payments")
    fake.set_secret(app, "staging", "DEBUG", "false")
    fake.set_secret(app, "production", "SECRET_KEY", "prod-front", path="/frontend")
    cases = {
        "LOCAL": ("${HOST}:5432", "db:5432"),
        "TWICE": ("${HOST}/${HOST}", "db/db"),
        "ABS_PATH": ("${/backend/payments/STRIPE}", "sk"),
        "REL_PATH": ("${backend/payments/STRIPE}", "sk"),
        "CROSS_ENV": ("${staging.DEBUG}", "false"),
        "CROSS_ENV_UPPER": ("${STAGING.DEBUG}", "false"),
        "CROSS_ENV_PATH": ("${production./frontend/SECRET_KEY}", "prod-front"),
        "NOT_ROOT_FOLDER": ("${STRIPE}", "${STRIPE}"),
        "LOWER_KEY": ("${host}", "${host}"),
        "DOUBLE_BRACES": ("${{HOST}}", "${{HOST}}"),
        "DOLLAR_ONLY": ("$HOST", "$HOST"),
        "MISSING": ("x-${DOES_NOT_EXIST}-y", "x-${DOES_NOT_EXIST}-y"),
        "MISSING_ENV": ("${nope.HOST}", "${nope.HOST}"),
        "ENV_IS_FIRST_DOT": ("${staging.DEBUG.x}", "${staging.DEBUG.x}"),
        "APP_WITHOUT_DOT": ("${payments::production}", "${payments::production}"),
        "SPACES_KEPT": ("${ HOST }", "${ HOST }"),
    }
    cases["CROSS_APP"] = (f"${{{payments.lower()}::Production.SECRET_KEY}}", "other-root")
    cases["CROSS_APP_PATH"] = (f"${{{payments}::production./frontend/SECRET_KEY}}", "other-front")
    cases["CROSS_APP_MISSING"] = (
        "${nobody::production.SECRET_KEY}",
        "${nobody::production.SECRET_KEY}",
    )
    for key, (value, _) in cases.items():
        fake.set_secret(app, "development", key, value)
    values = served.values(app)
    for key, (_, expected) in cases.items():
        assert values[f"/:{key}"] == expected, key


def test_recursive_references_resolve(served: Served) -> None:
    app = served.new_app()
    fake = served.fake
    fake.set_secret(app, "development", "K0", "end")
    for i in range(1, 21):
        fake.set_secret(app, "development", f"K{i}", f"${{K{i - 1}}}+")
    fake.set_secret(app, "staging", "VIA", "${development.K3}")
    fake.set_secret(app, "development", "BACK", "${staging.VIA}")
    values = served.values(app)
    assert values["/:K20"] == "end" + "+" * 20
    assert values["/:BACK"] == "end+++"


def test_chains_past_the_depth_limit_stay_literal(served: Served) -> None:
    app = served.new_app()
    fake = served.fake
    fake.set_secret(app, "development", "C0", "end")
    for i in range(1, 40):
        fake.set_secret(app, "development", f"C{i}", f"${{C{i - 1}}}")
    values = served.values(app)
    assert values["/:C10"] == "end"
    assert values["/:C39"] == "${C38}"


def test_cycles_stay_literal(served: Served) -> None:
    app = served.new_app()
    fake = served.fake
    fake.set_secret(app, "development", "SELF", "a-${SELF}")
    fake.set_secret(app, "development", "A", "${B}")
    fake.set_secret(app, "development", "B", "${A}")
    fake.set_secret(app, "development", "INTO", "x-${A}-${OK}")
    fake.set_secret(app, "development", "OK", "fine")
    fake.set_secret(app, "staging", "S", "${development.X}")
    fake.set_secret(app, "development", "X", "${staging.S}")
    started = time.monotonic()
    values = served.values(app)
    assert time.monotonic() - started < 5
    assert values["/:SELF"] == "a-${SELF}"
    assert values["/:A"] == "${B}"
    assert values["/:B"] == "${A}"
    assert values["/:INTO"] == "x-${A}-fine"
    assert values["/:X"] == "${staging.S}"


def test_pathological_graphs_never_hang(served: Served) -> None:
    app = served.new_app()
    fake = served.fake
    keys = [f"N{i}" for i in range(12)]
    for key in keys:
        fake.set_secret(app, "development", key, "".join(f"${{{k}}}" for k in keys if k != key))
    fake.set_secret(app, "development", "D0", "xx")
    for i in range(1, 30):
        fake.set_secret(app, "development", f"D{i}", f"${{D{i - 1}}}${{D{i - 1}}}")
    started = time.monotonic()
    values = served.values(app)
    assert time.monotonic() - started < 5
    assert all("${" in values[f"/:{key}"] for key in keys)
    assert values["/:D3"] == "x" * 16


def test_access_control_stops_resolution(served: Served) -> None:
    fake = served.fake
    app = served.new_app()
    fake.set_secret(app, "development", "LOCAL", "l")
    fake.set_secret(app, "staging", "S", "s")
    fake.set_secret(app, "production", "P", "p")
    fake.set_secret(app, "development", "MIXED", "${staging.S}|${production.P}|${LOCAL}")
    fake.set_secret(app, "development", "ONLY_LOCAL", "${LOCAL}")
    token = fake.add_service_account(envs=("development", "staging"))
    limited = served.values(app, header=sa_header(token))
    # Earlier replacements stay; the forbidden reference and every later one stay literal.
    assert limited["/:MIXED"] == "s|${production.P}|${LOCAL}"
    assert limited["/:ONLY_LOCAL"] == "l"
    assert served.values(app)["/:MIXED"] == "s|p|l"
    # POST responses are resolved without the access check.
    response = served.client.post(
        "/v1/secrets/",
        params={"app_id": app, "env": "development"},
        headers=sa_header(token),
        content=json.dumps({"secrets": [{"key": "NEW", "value": "${production.P}"}]}),
    )
    assert response.json()[0]["value"] == "p"
    assert served.values(app, header=sa_header(token))["/:NEW"] == "${production.P}"


def test_cross_app_needs_one_sse_app(served: Served) -> None:
    fake = served.fake
    twin = f"Twin{next(_names)}"
    first = fake.add_app(twin)
    second = fake.add_app(twin.upper())
    fake.set_secret(first, "development", "K", "1")
    fake.set_secret(second, "development", "K", "2")
    e2ee = f"Sealed{next(_names)}"
    sealed = fake.add_app(e2ee, sse=False)
    fake.set_secret(sealed, "development", "K", "3")
    app = served.new_app()
    fake.set_secret(app, "development", "AMBIGUOUS", f"${{{twin}::development.K}}")
    fake.set_secret(app, "development", "NO_SSE", f"${{{e2ee}::development.K}}")
    values = served.values(app)
    assert values["/:AMBIGUOUS"] == f"${{{twin}::development.K}}"
    assert values["/:NO_SSE"] == f"${{{e2ee}::development.K}}"


def test_dynamic_secrets_are_never_targets(served: Served) -> None:
    app = served.new_app()
    served.fake.add_dynamic_secret(app, "development", "creds", key_names=("USERNAME",))
    served.fake.set_secret(app, "development", "REF", "${USERNAME}")
    assert served.values(app)["/:REF"] == "${USERNAME}"


def test_override_values_resolve_in_the_secret_context(served: Served) -> None:
    fake = served.fake
    app = served.new_app()
    fake.set_secret(app, "development", "HOST", "db")
    fake.set_secret(app, "development", "URL", "pg://${HOST}")
    fake.set_override(served.user, app, "development", "URL", "pg://${HOST}-local/${URL}")
    response = served.client.get(
        "/v1/secrets/", params={"app_id": app, "env": "development"}, headers=served.user_header
    )
    url = next(item for item in response.json() if item["key"] == "URL")
    assert url["value"] == "pg://db"
    assert url["override"]["value"] == "pg://db-local/pg://db"


# --------------------------------------------------------------------------- properties

PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@given(value=st.text(max_size=80).filter(lambda text: "${" not in text))
def test_values_without_references_come_back_unchanged(served: Served, value: str) -> None:
    app = served.new_app()
    served.fake.set_secret(app, "development", "PLAIN", value)
    assert served.values(app)["/:PLAIN"] == value


_plain = st.text(alphabet=st.characters(blacklist_characters="${}."), max_size=12)
_key = st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True)


@PROPERTY_SETTINGS
@given(key=_key, target=_plain, before=_plain, after=_plain)
def test_local_reference_resolves_to_the_referenced_value(
    served: Served, key: str, target: str, before: str, after: str
) -> None:
    app = served.new_app()
    served.fake.set_secret(app, "development", key, target)
    served.fake.set_secret(app, "development", "REF_" + key, f"{before}${{{key}}}{after}")
    assert served.values(app)[f"/:REF_{key}"] == before + target + after


@PROPERTY_SETTINGS
@given(key=_key, before=_plain, after=_plain)
def test_unresolvable_references_stay_literal(
    served: Served, key: str, before: str, after: str
) -> None:
    app = served.new_app()
    served.fake.set_secret(app, "development", "OTHER", "x")
    literal = f"{before}${{MISSING_{key}}}${{nope.{key}}}${{nobody::development.{key}}}{after}"
    served.fake.set_secret(app, "development", "REF", literal)
    assert served.values(app)["/:REF"] == literal


_NODES = [f"K{i}" for i in range(5)]
_ref = re.compile(r"\$\{(K\d|NOPE)\}")
_piece = st.one_of(
    st.sampled_from([*_NODES, "NOPE"]).map(lambda key: f"${{{key}}}"),
    st.text(alphabet="abc -", max_size=3),
)
_graph = st.lists(st.lists(_piece, max_size=4).map("".join), min_size=5, max_size=5)


def _reaches_cycle(raw: dict[str, str], key: str, stack: tuple[str, ...] = ()) -> bool:
    if key in stack:
        return True
    return any(
        _reaches_cycle(raw, ref, (*stack, key)) for ref in _ref.findall(raw[key]) if ref in raw
    )


def _expand(raw: dict[str, str], key: str) -> str:
    # Only called on acyclic parts of the graph: plain recursive substitution.
    return _ref.sub(
        lambda m: _expand(raw, m.group(1)) if m.group(1) in raw else m.group(0), raw[key]
    )


@PROPERTY_SETTINGS
@given(values=_graph)
def test_random_reference_graphs(served: Served, values: list[str]) -> None:
    raw = dict(zip(_NODES, values, strict=True))
    app = served.new_app()
    for key, value in raw.items():
        served.fake.set_secret(app, "development", key, value)
    started = time.monotonic()
    resolved = served.values(app)
    assert time.monotonic() - started < 5
    for key in _NODES:
        got = resolved[f"/:{key}"]
        if _reaches_cycle(raw, key):
            # A reference leading into a cycle stays literal.
            assert any(ref in raw for ref in _ref.findall(got)), (raw, key, got)
        else:
            assert got == _expand(raw, key), (raw, key)
