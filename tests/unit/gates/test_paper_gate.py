"""A physical ticket at the gate device: decided, journaled as a paper line before the answer, annulled like a
card's admission; pictures; the ticket-code keys and the journal of a gate from before physical tickets."""

import io
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image

from expo.clock import FixedClock
from gates.errors import GateError
from gates.journal import GateJournal
from gates.paper import PaperGate
from gates.validator import Validator
from gates.wire import Event, GateEntry
from tests.unit.gates.support import GATE_ID, SAM, at
from ticketing.qr import qr_image, qr_png
from ticketing.signed_codes import CodeKind, claim_for
from ticketing.signing_keys import Keyring, generate_keyring, rotate_keyring

JUNE_1 = "2010-06-01"


class PaperDevice:
    """A gate's journal holding the platform's public keys, its paper decisions and its card validator."""

    def __init__(self, folder: Path, ring: Keyring, *, journal: str = "journal.sqlite3") -> None:
        self.ring = ring
        self.clock = FixedClock(at(JUNE_1))
        self.journal = GateJournal(folder / journal)
        self.journal.replace_ticket_keys(ring.public_keys())
        self.paper = PaperGate(gate_id=GATE_ID, journal=self.journal, clock=self.clock)
        self.validator = Validator(gate_id=GATE_ID, entrance="L1", sam=SAM, journal=self.journal, clock=self.clock)

    def code(self, ticket_type: str = "standard", *, ticket_id: int = 7, kind: CodeKind = CodeKind.PHYSICAL) -> str:
        claim = claim_for(
            kind, kid=self.ring.current.kid, ticket_id=ticket_id, ticket_type=ticket_type, visit_day=None,
            upgrade_day=None,
        )  # fmt: skip
        return self.ring.sign(claim)


@pytest.fixture
def ring(tmp_path: Path) -> Keyring:
    return generate_keyring(tmp_path / "ring.json", now=at("2010-04-01"))


@pytest.fixture
def device(tmp_path: Path, ring: Keyring) -> PaperDevice:
    return PaperDevice(tmp_path, ring)


def test_a_paper_ticket_enters_once_journaled_as_a_paper_line(device: PaperDevice) -> None:
    result = device.paper.scan(device.code("standard_concession"))
    assert (result.event, result.code, result.opens, result.ticket_id, result.ticket_type, result.check_id) == (
        Event.ADMITTED,
        "ok",
        True,
        7,
        "standard_concession",
        True,
    )
    assert (result.csn, result.ctr, result.slot, result.record, result.paper) == (None, None, None, None, True)
    assert device.journal.lines() == [
        GateEntry(seq=1, event=Event.ADMITTED, at=at(JUNE_1), code="ok", ticket_id=7, check_id=True, paper=True)
    ]
    device.clock.advance(timedelta(hours=2))
    again = device.paper.scan(device.code("standard_concession"))
    assert (again.event, again.code, again.ticket_id, again.seq) == (Event.REFUSED, "already_used", 7, 2)
    assert device.journal.counts(day=at(JUNE_1).date())["entries"] == 1


def test_every_refusal_is_journaled_too(device: PaperDevice) -> None:
    device.paper.scan("NOT-A-CODE")
    device.paper.scan(device.code(kind=CodeKind.VOUCHER, ticket_id=8))
    device.journal.apply_revocations(version=1, ticket_ids=[9])
    device.paper.scan(device.code(ticket_id=9))
    lines = [(line.event, line.code, line.ticket_id, line.paper) for line in device.journal.lines()]
    assert lines == [
        (Event.REFUSED, "code_malformed", None, True),
        (Event.REFUSED, "voucher_not_ticket", 8, True),
        (Event.REFUSED, "revoked", 9, True),
    ]


def test_a_pass_comes_back_the_next_day_but_not_the_same_day(device: PaperDevice) -> None:
    text = device.code("pass_3")
    assert device.paper.scan(text).opens
    device.clock.advance(timedelta(hours=3))
    assert device.paper.scan(text).code == "already_entered_today"
    device.clock.advance(timedelta(days=1))
    assert device.paper.scan(text).opens
    assert device.paper.scan(device.code("pass_3", ticket_id=8)).opens  # another ticket, its own count


def test_a_paper_admission_is_annulled_like_a_cards(device: PaperDevice) -> None:
    admitted = device.paper.scan(device.code())
    device.clock.advance(timedelta(seconds=30))
    seq = device.validator.annul_last()
    annulment = device.journal.line(seq)
    assert annulment is not None
    assert (annulment.event, annulment.annuls_seq, annulment.ticket_id, annulment.paper) == (
        Event.ANNULLED,
        admitted.seq,
        7,
        True,
    )
    assert (annulment.csn, annulment.ctr, annulment.slot, annulment.card_marked) == (None, None, None, False)
    with pytest.raises(GateError) as twice:
        device.validator.annul_last()
    assert twice.value.code == "nothing_to_annul"
    assert device.paper.scan(device.code()).opens  # the visitor did not get in: the ticket is good again
    device.clock.advance(timedelta(minutes=3))
    with pytest.raises(GateError) as late:
        device.validator.annul_last()
    assert late.value.code == "annul_window_passed"


# --- pictures ----------------------------------------------------------------------------------------------------


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_a_picture_of_the_code_admits(device: PaperDevice, tmp_path: Path) -> None:
    picture = tmp_path / "ticket.png"
    picture.write_bytes(qr_png(device.code()))
    assert device.paper.scan_picture(picture).opens
    assert device.paper.scan_picture(qr_png(device.code())).code == "already_used"


def test_a_picture_without_exactly_one_code_is_a_refused_line(device: PaperDevice) -> None:
    first, second = qr_image(device.code()), qr_image(device.code(ticket_id=8))
    both = Image.new("L", (first.width + second.width, first.height), 255)
    both.paste(first, (0, 0))
    both.paste(second, (first.width, 0))
    results = [
        device.paper.scan_picture(_png(Image.new("L", (300, 300), 255))),
        device.paper.scan_picture(_png(both)),
        device.paper.scan_picture(b"not a picture"),
    ]
    assert [(r.event, r.code, r.ticket_id) for r in results] == [
        (Event.REFUSED, "no_code", None),
        (Event.REFUSED, "several_codes", None),
        (Event.REFUSED, "image_unreadable", None),
    ]
    assert [(line.code, line.ticket_id, line.paper) for line in device.journal.lines()] == [
        ("no_code", None, True),
        ("several_codes", None, True),
        ("image_unreadable", None, True),
    ]


# --- the keys and the journal file -------------------------------------------------------------------------------


def test_the_keys_are_kept_in_the_journal(device: PaperDevice, tmp_path: Path) -> None:
    assert set(device.journal.ticket_keys()) == {1}
    rotated = rotate_keyring(tmp_path / "ring.json", now=at("2010-06-01"))
    device.journal.replace_ticket_keys(rotated.public_keys())
    device.journal.close()
    reopened = GateJournal(tmp_path / "journal.sqlite3")
    assert set(reopened.ticket_keys()) == {1, 2}
    for kid, key in rotated.public_keys().items():
        assert reopened.ticket_keys()[kid].public_bytes_raw() == key.public_bytes_raw()
    reopened.replace_ticket_keys({})
    assert reopened.ticket_keys() == {}


def test_what_the_devices_other_program_synced_reaches_the_scans(tmp_path: Path, ring: Keyring) -> None:
    device = PaperDevice(tmp_path, ring)
    device.journal.replace_ticket_keys({})
    assert device.paper.scan(device.code()).code == "unknown_signing_key"
    sync = GateJournal(tmp_path / "journal.sqlite3")  # the gate loop's sync, another connection
    sync.replace_ticket_keys(ring.public_keys())
    sync.apply_revocations(version=1, ticket_ids=[8])
    assert device.paper.scan(device.code()).opens
    assert device.paper.scan(device.code(ticket_id=8)).code == "revoked"


# What a gate's journal file looked like before physical tickets (no `paper` column, no keys).
_OLD_SCHEMA = """
CREATE TABLE lines (
    seq INTEGER PRIMARY KEY, event TEXT NOT NULL, at TEXT NOT NULL, day TEXT NOT NULL, code TEXT NOT NULL,
    csn TEXT, ctr INTEGER, ticket_id INTEGER, slot INTEGER, check_id INTEGER NOT NULL DEFAULT 0,
    card_marked INTEGER NOT NULL DEFAULT 0, reason TEXT, supervisor TEXT, annuls_seq INTEGER,
    uploaded INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX lines_pending ON lines (seq) WHERE uploaded = 0;
CREATE INDEX lines_card_day ON lines (csn, day);
CREATE INDEX lines_admitted ON lines (seq) WHERE event = 'admitted';
CREATE TABLE revocations (ticket_id INTEGER PRIMARY KEY);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO lines (event, at, day, code, csn, ctr, ticket_id, slot, card_marked)
    VALUES ('admitted', '2010-05-31T10:00:00+08:00', '2010-05-31', 'ok', '0031000000000042', 3, 7, 1, 1);
INSERT INTO revocations VALUES (5);
"""


def test_a_journal_from_before_physical_tickets_keeps_working(tmp_path: Path, ring: Keyring) -> None:
    path = tmp_path / "journal.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(_OLD_SCHEMA)
    old.close()
    device = PaperDevice(tmp_path, ring)
    [card_line] = device.journal.lines()
    assert (card_line.csn, card_line.ticket_id, card_line.paper) == ("0031000000000042", 7, False)
    assert device.journal.is_revoked(5)
    assert device.journal.paper_lines(7) == []  # the card's line is no paper line of ticket 7
    assert device.paper.scan(device.code()).opens
    assert device.paper.scan(device.code(ticket_id=5)).code == "revoked"
    assert [line.seq for line in device.journal.pending(limit=10)] == [1, 2, 3]
    device.journal.close()
    again = GateJournal(path)  # opening it again changes nothing
    assert [(line.seq, line.paper) for line in again.lines()] == [(1, False), (2, True), (3, True)]
    assert set(again.ticket_keys()) == {1}
