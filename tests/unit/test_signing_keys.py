"""The platform's signing keyring: a 0600 file never overwritten, rotation that keeps old codes verifiable,
refusal of unsafe or malformed files, and a public document without private material."""

import json
import os
import stat
from datetime import datetime
from pathlib import Path

import pytest

from expo.clock import EXPO_TZ
from simcard.keystore import KeyFileError
from ticketing.signed_codes import CodeKind, TicketClaim, claim_for, verify_code
from ticketing.signing_keys import (
    KIND_KEYRING,
    KIND_PUBLIC,
    generate_keyring,
    load_keyring,
    public_document,
    public_keys_from,
    rotate_keyring,
)

JAN = datetime(2010, 1, 10, 9, 0, tzinfo=EXPO_TZ)
JUL = datetime(2010, 7, 1, 9, 0, tzinfo=EXPO_TZ)


def _claim(kid: int, ticket_id: int = 1) -> TicketClaim:
    return claim_for(CodeKind.VOUCHER, kid=kid, ticket_id=ticket_id, ticket_type="standard", visit_day=None,
                     upgrade_day=None)  # fmt: skip


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _private_hexes(path: Path) -> list[str]:
    return [entry["private"] for entry in json.loads(path.read_text())["keys"]]


def test_generate_writes_one_key_0600(tmp_path: Path) -> None:
    path = tmp_path / "ring.json"
    ring = generate_keyring(path, now=JAN)
    assert _mode(path) == 0o600
    assert [key.kid for key in ring.keys] == [1]
    assert ring.current.kid == 1
    assert ring.current.created_at == JAN
    assert ring.current.retired_at is None
    loaded = load_keyring(path)
    assert loaded.current.public_bytes == ring.current.public_bytes
    assert json.loads(path.read_text())["kind"] == KIND_KEYRING


def test_a_keyring_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "ring.json"
    generate_keyring(path, now=JAN)
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="never overwritten"):
        generate_keyring(path, now=JUL)
    assert path.read_bytes() == before


def test_rotate_retires_the_key_and_adds_the_next(tmp_path: Path) -> None:
    path = tmp_path / "ring.json"
    first = generate_keyring(path, now=JAN)
    old_code = first.sign(_claim(1))
    rotated = rotate_keyring(path, now=JUL)
    assert _mode(path) == 0o600
    assert [(key.kid, key.retired_at) for key in rotated.keys] == [(1, JUL), (2, None)]
    assert rotated.current.kid == 2
    assert load_keyring(path).current.kid == 2
    assert rotated.keys[0].public_bytes == first.current.public_bytes  # the retired key is kept
    # codes the retired key signed still verify, with the public keys of the rotated ring
    assert verify_code(old_code, rotated.public_keys()).kid == 1
    assert verify_code(old_code, public_keys_from(public_document(rotated))).ticket_id == 1
    new_code = rotated.sign(_claim(2, ticket_id=2))
    assert verify_code(new_code, rotated.public_keys()).kid == 2
    with pytest.raises(ValueError, match="current key is 2"):
        rotated.sign(_claim(1))
    third = rotate_keyring(path, now=JUL)
    assert [(key.kid, key.retired_at is None) for key in third.keys] == [(1, False), (2, False), (3, True)]
    assert third.keys[0].retired_at == JUL  # a key retired earlier keeps its retirement time


def test_load_refuses_a_file_others_may_read(tmp_path: Path) -> None:
    path = tmp_path / "ring.json"
    generate_keyring(path, now=JAN)
    for mode in (0o644, 0o640, 0o604):
        os.chmod(path, mode)
        with pytest.raises(KeyFileError, match="readable by others"):
            load_keyring(path)
    os.chmod(path, 0o600)
    assert load_keyring(path).current.kid == 1


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        json.dumps({"kind": "expo-root-keys", "keys": []}),
        json.dumps({"kind": KIND_KEYRING}),
        json.dumps({"kind": KIND_KEYRING, "keys": []}),
        json.dumps({"kind": KIND_KEYRING, "keys": {}}),
        json.dumps({"kind": KIND_KEYRING, "keys": [{"kid": 1}]}),
        json.dumps({"kind": KIND_KEYRING, "keys": [{"kid": 1, "private": "zz", "created_at": JAN.isoformat()}]}),
        json.dumps({"kind": KIND_KEYRING, "keys": [{"kid": 1, "private": "00" * 31, "created_at": JAN.isoformat()}]}),
        json.dumps({"kind": KIND_KEYRING, "keys": [{"kid": 0, "private": "00" * 32, "created_at": JAN.isoformat()}]}),
        json.dumps({"kind": KIND_KEYRING, "keys": [{"kid": "1", "private": "00" * 32, "created_at": JAN.isoformat()}]}),
        json.dumps({"kind": KIND_KEYRING, "keys": [{"kid": 1, "private": "00" * 32, "created_at": "yesterday"}]}),
        json.dumps(
            {"kind": KIND_KEYRING, "keys": [{"kid": 1, "private": "00" * 32, "created_at": JAN.isoformat()}] * 2}
        ),
    ],
    ids=[
        "text",
        "list",
        "other-kind",
        "no-keys",
        "empty",
        "keys-object",
        "no-private",
        "bad-hex",
        "short-key",
        "kid-0",
        "kid-text",
        "bad-time",
        "kid-twice",
    ],
)
def test_load_refuses_a_malformed_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "ring.json"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError):
        load_keyring(path)


def test_load_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError):
        load_keyring(tmp_path / "none.json")


def test_no_repr_shows_key_bytes(tmp_path: Path) -> None:
    path = tmp_path / "ring.json"
    generate_keyring(path, now=JAN)
    ring = rotate_keyring(path, now=JUL)
    shown = repr(ring) + repr(ring.current) + str(ring.keys)
    for private in _private_hexes(path):
        assert private not in shown
        assert private.upper() not in shown
    assert "private" not in shown


def test_the_public_document_has_no_private_material(tmp_path: Path) -> None:
    path = tmp_path / "ring.json"
    generate_keyring(path, now=JAN)
    ring = rotate_keyring(path, now=JUL)
    document = public_document(ring)
    text = json.dumps(document)
    assert document["kind"] == KIND_PUBLIC
    assert document["keys"] == [
        {"kid": 1, "public": ring.keys[0].public_bytes.hex(), "retired": True},
        {"kid": 2, "public": ring.keys[1].public_bytes.hex(), "retired": False},
    ]
    assert "private" not in text
    for private in _private_hexes(path):
        assert private not in text
    assert set(public_keys_from(json.loads(text))) == {1, 2}


@pytest.mark.parametrize(
    "document",
    [{}, {"kind": KIND_KEYRING, "keys": []}, {"kind": KIND_PUBLIC}, {"kind": KIND_PUBLIC, "keys": [{"kid": 1}]},
     {"kind": KIND_PUBLIC, "keys": [{"kid": 1, "public": "00"}]}, None],
    ids=["empty", "keyring-kind", "no-keys", "no-public", "short-public", "none"],
)  # fmt: skip
def test_public_keys_from_refuses_what_is_not_a_public_document(document: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  # every malformed document is one ValueError
        public_keys_from(document)
