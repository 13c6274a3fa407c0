"""Card files and key files: atomic commits, mode 0600, no overwrites, no key bytes in output."""

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from expo.cli import main
from simcard.apdu import SW_MEMORY_FAILURE, SW_OK
from simcard.applet import open_card
from simcard.keys import KEY_ISSUE, KEY_TYPES, KEY_VALIDATE, card_key
from simcard.keystore import (
    KeyFileError,
    export_province_keys,
    generate_root_keys,
    load_province_keys,
    load_root_keys,
    write_province_keys,
)
from simcard.personalise import card_serial_number, new_card_state
from simcard.store import CardFile, CardFileError
from tests.unit.card_support import ROOT, Card, new_state, signed


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def card_path(tmp_path: Path) -> Path:
    path = tmp_path / "card.json"
    CardFile.save(path, new_state())
    return path


def test_save_then_load_is_the_same_card(card_path: Path) -> None:
    card = Card(applet=open_card(card_path))
    assert card.write(1) == SW_OK
    assert CardFile.load(card_path) == card.applet.state
    assert CardFile.load(card_path).slot(1) == signed(card.csn)


def test_card_files_are_0600_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    previous = os.umask(0)
    try:
        CardFile.save(path, new_state())
        path.chmod(0o644)
        CardFile.save(path, new_state())
    finally:
        os.umask(previous)
    assert mode_of(path) == 0o600


def test_a_failed_replace_mid_commit_leaves_the_old_card_on_disk_and_in_memory(
    card_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = Card(applet=open_card(card_path))
    session = card.session(KEY_ISSUE)
    before_disk = card_path.read_bytes()
    before_memory = card.applet.state

    def crash(src: object, dst: object) -> None:
        raise OSError("power lost during rename")

    monkeypatch.setattr(os, "replace", crash)
    assert card.send(session.write_ticket_command(1, signed(card.csn)))[1] == SW_MEMORY_FAILURE
    assert card_path.read_bytes() == before_disk
    assert card.applet.state == before_memory
    assert sorted(p.name for p in card_path.parent.iterdir()) == ["card.json"]  # no temp file left behind


def test_a_failed_fsync_leaves_the_old_card(card_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    card = Card(applet=open_card(card_path))
    card.tap()
    before = card_path.read_bytes()

    def crash(fd: int) -> None:
        raise OSError("I/O error")

    monkeypatch.setattr(os, "fsync", crash)
    assert card.send(bytes.fromhex("808A010008" + "00" * 9))[1] == SW_MEMORY_FAILURE
    assert card_path.read_bytes() == before
    assert card.applet.state.ctr == 0


@pytest.mark.parametrize(
    "change",
    [
        lambda doc: doc.pop("keys"),
        lambda doc: doc.update(csn="00"),
        lambda doc: doc.update(ctr=-1),
        lambda doc: doc.update(slots=[None] * 3),
        lambda doc: doc.update(log=["00" * 15]),
        lambda doc: doc["keys"].update({"07": "00" * 16}),
    ],
)
def test_a_damaged_card_file_is_a_clear_error(card_path: Path, change: object) -> None:
    document = json.loads(card_path.read_text())
    change(document)  # type: ignore[operator]
    card_path.write_text(json.dumps(document))
    with pytest.raises(CardFileError):
        CardFile.load(card_path)


def test_not_json_is_a_clear_error(card_path: Path) -> None:
    card_path.write_text("{")
    with pytest.raises(CardFileError, match="not JSON"):
        CardFile.load(card_path)


# --- personalisation --------------------------------------------------------------------------------------


def test_new_card_has_the_province_in_its_csn_derived_keys_and_empty_slots() -> None:
    keys = export_province_keys(ROOT, "44")
    state = new_card_state("44", 123456789012, keys)
    assert state.csn.hex() == "0044123456789012"
    assert state.csn == card_serial_number("44", 123456789012)
    assert all(state.keys[t] == card_key(keys[t], state.csn, t) for t in KEY_TYPES)
    assert (state.ctr, state.slots, state.log, state.key_version) == (0, (None,) * 4, (), 1)
    assert state.keys[KEY_ISSUE].hex() not in repr(state)


@pytest.mark.parametrize(("province", "serial"), [("31", -1), ("31", 10**12), ("3", 1), ("ab", 1)])
def test_bad_province_or_serial_is_refused(province: str, serial: int) -> None:
    with pytest.raises(ValueError, match="digits"):
        new_card_state(province, serial, export_province_keys(ROOT, "31"))


# --- key files --------------------------------------------------------------------------------------------


def test_root_keys_are_random_0600_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "root.json"
    keys = generate_root_keys(path)
    assert mode_of(path) == 0o600
    assert load_root_keys(path) == keys
    assert len(set(keys.values())) == 3
    with pytest.raises(KeyFileError, match="never overwritten"):
        generate_root_keys(path)
    assert load_root_keys(path) == keys


def test_province_key_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "p31.json"
    keys = export_province_keys(ROOT, "31")
    write_province_keys(path, "31", keys)
    assert mode_of(path) == 0o600
    loaded = load_province_keys(path)
    assert (loaded.province, dict(loaded.keys)) == ("31", dict(keys))
    assert keys[KEY_VALIDATE].hex() not in repr(loaded)


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "root.json"
    generate_root_keys(path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="readable by others"):
        load_root_keys(path)


def test_a_province_file_is_not_a_root_file(tmp_path: Path) -> None:
    path = tmp_path / "p31.json"
    write_province_keys(path, "31", export_province_keys(ROOT, "31"))
    with pytest.raises(KeyFileError, match="not a expo-root-keys file"):
        load_root_keys(path)


def test_the_cli_makes_keys_and_a_card_without_printing_key_bytes(tmp_path: Path) -> None:
    runner = CliRunner()
    root, province, card = tmp_path / "root.json", tmp_path / "p31.json", tmp_path / "card.json"
    outputs = [
        runner.invoke(main, ["card", "keys", "generate", "--out", str(root)]),
        runner.invoke(
            main, ["card", "keys", "export", "--root", str(root), "--province", "31", "--out", str(province)]
        ),
        runner.invoke(
            main,
            ["card", "new", "--province-keys", str(province), "--province", "31", "--serial", "7", "--out", str(card)],
        ),
    ]
    assert [result.exit_code for result in outputs] == [0, 0, 0], [result.output for result in outputs]
    state = CardFile.load(card)
    assert state.csn.hex() == "0031000000000007"
    secrets = [*load_root_keys(root).values(), *load_province_keys(province).keys.values(), *state.keys.values()]
    printed = "".join(result.output for result in outputs).lower()
    assert not any(secret.hex() in printed for secret in secrets)
    assert all(mode_of(path) == 0o600 for path in (root, province, card))
    assert state.keys[KEY_ISSUE] == card_key(load_province_keys(province).keys[KEY_ISSUE], state.csn, KEY_ISSUE)


def test_the_cli_refuses_another_provinces_keys_and_an_existing_card(tmp_path: Path) -> None:
    runner = CliRunner()
    province, card = tmp_path / "p31.json", tmp_path / "card.json"
    write_province_keys(province, "31", export_province_keys(ROOT, "31"))
    other = runner.invoke(
        main, ["card", "new", "--province-keys", str(province), "--province", "32", "--serial", "1", "--out", str(card)]
    )
    assert other.exit_code != 0
    assert "not 32's" in other.output
    CardFile.save(card, new_state())
    again = runner.invoke(
        main, ["card", "new", "--province-keys", str(province), "--province", "31", "--serial", "1", "--out", str(card)]
    )
    assert again.exit_code != 0
    assert "never overwritten" in again.output
