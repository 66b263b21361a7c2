"""The token parsed once (``phase_settings._core.credentials``): the header, the kind, the
fingerprint of the whole credential, and the key parts on demand, never showing the token."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest
from pydantic import SecretStr

from phase_settings import PhaseConfigError
from phase_settings._core.credentials import Credentials
from phase_settings._core.tokens import auth_header, token_fingerprint

BEARER = "ab" * 32
PARTS = ["c1" * 32, "d2" * 32, "e3" * 32]
PSS = ":".join(["pss_service", "v2", BEARER, *PARTS])


def other_parts(token: str) -> str:
    """The same bearer part, another share of the key."""
    fields = token.split(":")
    fields[4] = "f4" * 32
    return ":".join(fields)


def test_the_header_kind_and_type_come_from_one_parse() -> None:
    credentials = Credentials(PSS)
    assert credentials.authorization.get_secret_value() == f"Bearer ServiceAccount {BEARER}"
    assert (credentials.token_type, credentials.kind) == ("ServiceAccount", "service")
    user = Credentials("pss_user:v1:" + BEARER)
    assert (user.token_type, user.kind) == ("User", "user")
    assert Credentials("Service " + BEARER).kind == "service"


def test_the_fingerprint_covers_the_key_parts() -> None:
    """Two pss_ tokens with one bearer part are two credentials: they never share a pooled
    client or a cache entry."""
    one, two = Credentials(PSS), Credentials(other_parts(PSS))
    assert one.authorization.get_secret_value() == two.authorization.get_secret_value()
    assert one.fingerprint != two.fingerprint
    assert one.header_fingerprint == two.header_fingerprint


def test_a_token_without_key_parts_keeps_the_fingerprint_of_its_header() -> None:
    for token in ("ServiceAccount " + BEARER, "pss_service:v2:" + BEARER):
        credentials = Credentials(token)
        header = auth_header(token)
        assert credentials.fingerprint == token_fingerprint(header)
        assert credentials.fingerprint == credentials.header_fingerprint


def test_the_header_fingerprint_is_the_one_snapshots_were_named_with() -> None:
    assert Credentials(PSS).header_fingerprint == token_fingerprint(auth_header(PSS))


def test_building_never_fails_and_the_first_use_names_the_origin() -> None:
    credentials = Credentials("not-a-token", origin="PHASE_TOKEN")  # resolving never fails
    with pytest.raises(PhaseConfigError, match=r"^PHASE_TOKEN is not a Phase token") as info:
        _ = credentials.fingerprint
    assert "not-a-token" not in str(info.value)
    with pytest.raises(PhaseConfigError, match="PHASE_SERVICE_TOKEN is not a Phase token"):
        Credentials.parse("not-a-token")


def test_key_parts_are_parsed_on_demand_and_once() -> None:
    credentials = Credentials(PSS)
    parts = credentials.key_parts()
    assert credentials.key_parts() is parts
    assert (parts.public, parts.share0, parts.wrap_key) == tuple(bytes.fromhex(p) for p in PARTS)
    assert parts.prefix == "pss_service" and credentials.has_key_parts
    rest = Credentials("ServiceAccount " + BEARER, origin="phase_token")
    assert not rest.has_key_parts
    with pytest.raises(PhaseConfigError, match=r"^phase_token cannot be used here"):
        rest.key_parts()


def test_key_parts_need_no_pynacl() -> None:
    code = (
        "import sys\n"
        "from phase_settings._core.credentials import Credentials\n"
        f"Credentials({PSS!r}).key_parts()\n"
        "print([m for m in ('nacl', 'phase_settings._e2ee') if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_nothing_shows_the_token_or_key_material() -> None:
    credentials = Credentials(SecretStr(PSS), origin="PHASE_SERVICE_TOKEN")
    parts = credentials.key_parts()
    for shown in (repr(credentials), str(credentials), repr(parts)):
        assert BEARER not in shown and all(p not in shown for p in PARTS)
    with pytest.raises(TypeError, match="key material"):
        pickle.dumps(parts)
    copy = pickle.loads(pickle.dumps(credentials))  # as the configuration holding it
    assert copy == credentials and copy.fingerprint == credentials.fingerprint


def test_equal_tokens_are_equal_credentials() -> None:
    assert Credentials(PSS) == Credentials(SecretStr(PSS))
    assert hash(Credentials(PSS)) == hash(Credentials(PSS))
    assert Credentials(PSS) != Credentials(PSS, origin="PHASE_TOKEN")
    assert Credentials(PSS) != Credentials(other_parts(PSS))
