"""The E2EE key chain and ciphers against the real vectors of a Phase server, round trips, the
errors a broken token or altered reply gives, and that no key material leaks into messages."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phase_settings import PhaseAuthError, PhaseConfigError, PhaseResponseError
from phase_settings._e2ee.cipher import (
    CipherError,
    blake2b_digest,
    decrypt_asym,
    encrypt_asym,
    seed_keypair,
)
from phase_settings._e2ee.keys import EnvKeys, TokenKeys, has_key_parts
from phase_settings._e2ee.replies import parse_secrets, parse_tokens
from tests._e2ee_data import vectors

APP_B = "c3ceeb59-41f0-4f3a-99a7-d1efc1c34932"


def _env_keys(principal: str = "user") -> EnvKeys:
    vec = vectors()[principal]
    access = parse_tokens(vec["tokens_response"], TokenKeys.from_token(vec["token"]))
    app = access.app(APP_B)
    return access.env_keys(access.environment(app, "Development"))


def _secret_items(principal: str = "user") -> list[dict[str, Any]]:
    items = []
    for vec in vectors()[principal]["secrets"]:
        ct = vec["ciphertext"]
        override = None
        if "override_value" in ct:
            override = {"id": "o1", "value": ct["override_value"], "is_active": True}
        items.append(
            {
                "id": vec["id"],
                "key": ct["key"],
                "value": ct["value"],
                "comment": ct["comment"],
                "tags": vec["tags"],
                "override": override,
                "type": vec["type"],
                "path": vec["path"],
                "key_digest": vec["key_digest"],
                "version": 1,
            }
        )
    return items


# --- the real vectors -------------------------------------------------------------------------


@pytest.mark.parametrize("principal", ["user", "service_account"])
def test_token_parts_open_the_real_key_share_and_environment_keys(principal: str) -> None:
    vec = vectors()[principal]
    keys = _env_keys(principal)
    assert keys.public_key_hex == vec["expected"]["env_public_key_hex"]
    assert keys.env_id == vec["environment_id"]
    assert keys.digest(vec["digest"]["key"]) == vec["digest"]["expected_hex"]


@pytest.mark.parametrize("principal", ["user", "service_account"])
def test_real_ciphertexts_decrypt_to_the_recorded_plaintexts(principal: str) -> None:
    secrets = parse_secrets(_secret_items(principal), _env_keys(principal))
    expected = [v["expected_plaintext"] for v in vectors()[principal]["secrets"]]
    assert [(s.key, s.value, s.comment) for s in secrets] == [
        (e["key"], e["value"], e["comment"]) for e in expected
    ]
    overrides = {s.key: s.override.value for s in secrets if s.override is not None}
    assert overrides == {e["key"]: e["override_value"] for e in expected if "override_value" in e}


def test_deterministic_encryption_vector_is_reproduced() -> None:
    vec = vectors()["encrypt_deterministic"]
    text = encrypt_asym(
        vec["plaintext"],
        bytes.fromhex(vec["recipient_env_public_key_hex"]),
        ephemeral_seed=bytes.fromhex(vec["ephemeral_seed_hex"]),
        nonce=bytes.fromhex(vec["nonce_hex"]),
    )
    assert text == vec["expected_ciphertext"]


def test_env_keypair_from_seed_and_digest_match_the_vectors() -> None:
    expected = vectors()["user"]["expected"]
    public, private = seed_keypair(bytes.fromhex(expected["env_seed_hex"]))
    assert (public.hex(), private.hex()) == (
        expected["env_public_key_hex"],
        expected["env_private_key_hex"],
    )
    digest = vectors()["user"]["digest"]
    assert (
        blake2b_digest(b"DB_HOST", digest["salt_hex_used_as_ascii_key"].encode())
        == (digest["expected_hex"])
    )


def test_importing_the_e2ee_modules_does_not_import_pynacl() -> None:
    code = (
        "import sys, phase_settings, phase_settings._e2ee.api, phase_settings._e2ee.replies, "
        "phase_settings._e2ee.references; print('nacl' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


# --- round trips ------------------------------------------------------------------------------


@given(st.text(max_size=300))
def test_encrypt_then_decrypt_gives_the_text_back(text: str) -> None:
    keys = _env_keys()
    ciphertext = keys.encrypt(text)
    assert ciphertext.startswith("ph:v1:")
    assert keys.decrypt(ciphertext) == text


def test_each_encryption_uses_a_fresh_ephemeral_key() -> None:
    keys = _env_keys()
    first, second = keys.encrypt("same"), keys.encrypt("same")
    assert first.split(":")[2] != second.split(":")[2]


def test_text_encrypted_for_another_key_does_not_decrypt() -> None:
    other_public, other_private = seed_keypair(bytes(32))
    ciphertext = _env_keys().encrypt("for the environment")
    with pytest.raises(CipherError):
        decrypt_asym(ciphertext, other_private, other_public)


# --- faults -------------------------------------------------------------------------------------


def _flip(ciphertext: str) -> str:
    head, body = ciphertext.rsplit(":", 1)
    index = len(body) // 2
    swapped = "B" if body[index] != "B" else "C"
    return f"{head}:{body[:index]}{swapped}{body[index + 1 :]}"


def test_flipped_byte_in_a_value_names_the_key_never_the_value() -> None:
    items = _secret_items()
    items[2]["value"] = _flip(items[2]["value"])
    with pytest.raises(PhaseResponseError) as caught:
        parse_secrets(items, _env_keys())
    message = str(caught.value)
    assert "TAGGED" in message
    assert "tagged-value" not in message and items[2]["value"] not in message


def test_flipped_byte_in_a_key_names_the_secret_id() -> None:
    items = _secret_items()
    items[0]["key"] = _flip(items[0]["key"])
    with pytest.raises(PhaseResponseError) as caught:
        parse_secrets(items, _env_keys())
    assert items[0]["id"] in str(caught.value)
    assert "DB_HOST" not in str(caught.value)


def test_flipped_byte_in_an_override_names_the_key() -> None:
    items = _secret_items()
    items[1]["override"]["value"] = _flip(items[1]["override"]["value"])
    with pytest.raises(PhaseResponseError, match="override of OVERRIDDEN"):
        parse_secrets(items, _env_keys())


def test_wrong_key_parts_are_an_auth_error_saying_so() -> None:
    vec = vectors()["user"]
    parts = vec["token"].split(":")
    parts[5] = "00" * 32  # another wrap key
    with pytest.raises(PhaseAuthError, match="key parts do not open the key share") as caught:
        parse_tokens(vec["tokens_response"], TokenKeys.from_token(":".join(parts)))
    assert parts[5] not in str(caught.value)


def test_a_share_from_another_account_is_refused() -> None:
    vec = vectors()["user"]
    parts = vec["token"].split(":")
    parts[4] = "11" * 32  # a share0 that is not this account's
    with pytest.raises(PhaseAuthError, match="do not form one keypair"):
        parse_tokens(vec["tokens_response"], TokenKeys.from_token(":".join(parts)))


@pytest.mark.parametrize(
    "token",
    [
        "ServiceAccount " + "a" * 64,
        "pss_service:v2:" + "a" * 64,
        "pss_user:v1:" + "a" * 64 + ":" + "b" * 64 + ":" + "c" * 64,
        "pss_user:v1:" + "a" * 64 + ":" + "b" * 64 + ":" + "c" * 128 + ":" + "d" * 64,
    ],
)
def test_token_without_key_parts_is_a_config_error_before_any_request(token: str) -> None:
    assert not has_key_parts(token)
    with pytest.raises(PhaseConfigError, match="needs the key parts of a pss_ token") as caught:
        TokenKeys.from_token(token)
    assert "a" * 64 not in str(caught.value)


def test_server_supplied_public_key_not_matching_the_seed_is_refused() -> None:
    vec = vectors()["user"]
    reply = copy.deepcopy(vec["tokens_response"])
    for app in reply["apps"]:
        for entry in app["environment_keys"]:
            entry["identity_key"] = "ab" * 32
    access = parse_tokens(reply, TokenKeys.from_token(vec["token"]))
    env = access.environment(access.app(APP_B), "development")
    with pytest.raises(PhaseResponseError, match="not the one its seed derives"):
        access.env_keys(env)


def test_wrapped_seed_for_another_account_is_refused() -> None:
    user, sa = vectors()["user"], vectors()["service_account"]
    reply = copy.deepcopy(user["tokens_response"])
    entry = next(
        e
        for a in reply["apps"]
        for e in a["environment_keys"]
        if e["environment"]["id"] == user["environment_id"]
    )
    entry["wrapped_seed"] = sa["environment_key_entry"]["wrapped_seed"]
    access = parse_tokens(reply, TokenKeys.from_token(user["token"]))
    with pytest.raises(PhaseResponseError, match="does not decrypt with this token's account key"):
        access.env_keys(access.environment(access.app(APP_B), "Development"))


# --- nothing secret in messages or reprs --------------------------------------------------------


def _key_material() -> list[str]:
    material = []
    for principal in ("user", "service_account"):
        vec = vectors()[principal]
        parts = vec["token"].split(":")
        material += [parts[3], parts[4], parts[5], vec["token"]]
        material += [v for k, v in vec["expected"].items() if "public" not in k]
        material.append(vec["tokens_response"]["wrapped_key_share"])
        material.append(vec["environment_key_entry"]["wrapped_seed"])
        material.append(vec["environment_key_entry"]["wrapped_salt"])
    return material


def test_no_key_material_in_reprs_or_error_messages() -> None:
    vec = vectors()["user"]
    token_keys = TokenKeys.from_token(vec["token"])
    access = parse_tokens(vec["tokens_response"], token_keys)
    app = access.app(APP_B)
    env = access.environment(app, "Development")
    keys = access.env_keys(env)
    shown = [repr(token_keys), repr(access), repr(app), repr(env), repr(keys)]
    shown.append(repr(token_keys.unwrap(vec["tokens_response"]["wrapped_key_share"])))
    items = _secret_items()
    items[1]["value"] = _flip(items[1]["value"])
    for action in (
        lambda: parse_secrets(items, keys),
        lambda: TokenKeys.from_token(vec["token"][:-2]),
        lambda: token_keys.unwrap("00" * 80),
        lambda: access.environment(app, "nope"),
    ):
        with pytest.raises(Exception) as caught:
            action()
        shown += [str(caught.value), repr(caught.value)]
    text = "\n".join(shown).lower()
    for secret in _key_material():
        assert secret.lower() not in text
        assert secret[:16].lower() not in text
    for obj in (token_keys, keys, access):
        assert not hasattr(obj, "__dict__")


@pytest.mark.parametrize("dump", [pickle.dumps, copy.copy])
def test_key_holders_refuse_to_be_pickled_or_copied(dump: Any) -> None:
    with pytest.raises(TypeError, match="key material"):
        dump(_env_keys())
