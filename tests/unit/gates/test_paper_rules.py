"""The pure decision on a physical ticket's code at a gate, over the Expo's ticket types and days, and every refusal."""

from collections.abc import Collection, Sequence
from datetime import date, datetime
from pathlib import Path

import pytest

from gates.paper_rules import PaperDecision, decide_paper_entry, paper_use
from gates.wire import Event, GateEntry
from tests.unit.gates.support import at
from ticketing.signed_codes import CODE_CHARS, CodeKind, claim_for, grouped
from ticketing.signing_keys import Keyring, generate_keyring, rotate_keyring

NOW = datetime.fromisoformat("2010-04-01T09:00:00+08:00")
JUNE_1 = "2010-06-01"


@pytest.fixture
def ring(tmp_path: Path) -> Keyring:
    return generate_keyring(tmp_path / "ring.json", now=NOW)


def code_of(
    ring: Keyring,
    ticket_type: str = "standard",
    *,
    kind: CodeKind = CodeKind.PHYSICAL,
    ticket_id: int = 7,
    visit_day: date | None = None,
    upgrade_day: date | None = None,
) -> str:
    claim = claim_for(
        kind,
        kid=ring.current.kid,
        ticket_id=ticket_id,
        ticket_type=ticket_type,
        visit_day=visit_day,
        upgrade_day=upgrade_day,
    )
    return ring.sign(claim)


def decide(
    ring: Keyring, text: str, when: datetime, *, lines: Sequence[GateEntry] = (), revoked: Collection[int] = ()
) -> PaperDecision:
    return decide_paper_entry(
        text=text, public_keys=ring.public_keys(), revoked=revoked, lines_of=lambda _: lines, at=when
    )


def admitted(seq: int, when: datetime, ticket_id: int = 7) -> GateEntry:
    return GateEntry(seq=seq, event=Event.ADMITTED, at=when, code="ok", ticket_id=ticket_id, paper=True)


PEAK = date(2010, 10, 1)

ADMITTED = [
    ("standard", None, None, at(JUNE_1), False),
    ("standard_concession", None, None, at(JUNE_1), True),
    ("peak", PEAK, None, at("2010-10-01"), False),
    ("peak_concession", PEAK, None, at("2010-10-01"), True),
    ("evening", None, None, at(JUNE_1, "17:00"), False),
    ("pass_3", None, None, at(JUNE_1), False),
    ("pass_7", None, None, at("2010-10-24"), False),
    ("standard", None, date(2010, 10, 2), at("2010-10-02"), False),  # upgraded for that peak day
]


@pytest.mark.parametrize(("ticket_type", "visit_day", "upgrade_day", "when", "check_id"), ADMITTED, ids=str)
def test_each_ticket_type_is_admitted_on_a_day_it_is_good_for(
    ring: Keyring, ticket_type: str, visit_day: date | None, upgrade_day: date | None, when: datetime, check_id: bool
) -> None:
    text = code_of(ring, ticket_type, visit_day=visit_day, upgrade_day=upgrade_day)
    decision = decide(ring, text, when)
    assert (decision.admit, decision.code, decision.ticket_id, decision.check_id) == (True, "ok", 7, check_id)
    assert decision.claim is not None
    assert decision.claim.ticket_type.value == ticket_type


def test_the_code_may_be_typed_in_groups_and_lower_case(ring: Keyring) -> None:
    text = grouped(code_of(ring)).lower()
    assert decide(ring, f"  {text}\n", at(JUNE_1)).code == "ok"


# --- codes that are not genuine --------------------------------------------------------------------------------


def _changed(text: str, index: int) -> str:
    return text[:index] + ("B" if text[index] == "A" else "A") + text[index + 1 :]


def test_a_forged_signature_or_claim_is_refused(ring: Keyring) -> None:
    text = code_of(ring)
    signature_char, claim_char = 60, 12  # a character in the signature, one in the ticket id
    for forged in (_changed(text, signature_char), _changed(text, claim_char)):
        decision = decide(ring, forged, at(JUNE_1))
        assert (decision.admit, decision.code, decision.ticket_id) == (False, "code_forged", None)


@pytest.mark.parametrize("cut", [1, 20, CODE_CHARS - 1])
def test_a_truncated_code_is_malformed(ring: Keyring, cut: int) -> None:
    assert decide(ring, code_of(ring)[:cut], at(JUNE_1)).code == "code_malformed"


def test_text_that_is_no_code_is_malformed(ring: Keyring) -> None:
    assert decide(ring, "https://example.com/ticket/7", at(JUNE_1)).code == "code_malformed"
    assert decide(ring, "1" * CODE_CHARS, at(JUNE_1)).code == "code_malformed"  # not base32
    assert decide(ring, "", at(JUNE_1)).code == "code_malformed"


def test_a_code_of_another_keyring_is_refused(ring: Keyring, tmp_path: Path) -> None:
    stranger = generate_keyring(tmp_path / "stranger.json", now=NOW)  # also key id 1, another key
    assert decide(ring, code_of(stranger), at(JUNE_1)).code == "code_forged"
    rotated = rotate_keyring(tmp_path / "stranger.json", now=NOW)  # key id 2: a key the gate never synced
    assert decide(ring, code_of(rotated), at(JUNE_1)).code == "unknown_signing_key"


def test_a_gate_without_keys_refuses_every_code(ring: Keyring) -> None:
    decision = decide_paper_entry(text=code_of(ring), public_keys={}, revoked=(), lines_of=lambda _: (), at=at(JUNE_1))
    assert decision.code == "unknown_signing_key"


def test_a_code_of_a_retired_key_still_admits(ring: Keyring, tmp_path: Path) -> None:
    old = code_of(ring)
    rotated = rotate_keyring(tmp_path / "ring.json", now=NOW)
    assert decide(rotated, old, at(JUNE_1)).code == "ok"
    assert decide(rotated, code_of(rotated, ticket_id=8), at(JUNE_1)).code == "ok"


def test_a_voucher_is_no_ticket(ring: Keyring) -> None:
    decision = decide(ring, code_of(ring, kind=CodeKind.VOUCHER), at(JUNE_1))
    assert (decision.admit, decision.code, decision.ticket_id) == (False, "voucher_not_ticket", 7)


# --- genuine tickets refused -------------------------------------------------------------------------------------


def test_a_revoked_ticket_is_refused(ring: Keyring) -> None:
    decision = decide(ring, code_of(ring), at(JUNE_1), revoked={7})
    assert (decision.admit, decision.code, decision.ticket_id) == (False, "revoked", 7)
    assert decide(ring, code_of(ring, ticket_id=8), at(JUNE_1), revoked={7}).code == "ok"


WRONG_DAYS = [
    ("standard", None, at("2010-04-30"), "outside_expo"),
    ("pass_3", None, at("2010-11-01"), "outside_expo"),
    ("standard", None, at("2010-05-02"), "not_yet_valid"),  # standard days begin on 4 May
    ("standard", None, at("2010-10-26"), "expired"),  # and end on 24 October
    ("peak", PEAK, at("2010-09-30"), "not_yet_valid"),  # a peak ticket is good on its day only
    ("peak", PEAK, at("2010-10-02"), "expired"),
    ("standard", None, at("2010-10-01"), "peak_day_not_valid"),  # a peak day that is not its own
    ("pass_7", None, at("2010-05-01"), "peak_day_not_valid"),
    ("evening", None, at("2010-10-05", "18:00"), "peak_day_not_valid"),
]


@pytest.mark.parametrize(("ticket_type", "visit_day", "when", "code"), WRONG_DAYS, ids=str)
def test_a_ticket_on_a_day_it_is_not_good_for_is_refused(
    ring: Keyring, ticket_type: str, visit_day: date | None, when: datetime, code: str
) -> None:
    decision = decide(ring, code_of(ring, ticket_type, visit_day=visit_day), when)
    assert (decision.admit, decision.code, decision.ticket_id) == (False, code, 7)


def test_an_evening_ticket_enters_from_five_pm(ring: Keyring) -> None:
    text = code_of(ring, "evening")
    assert decide(ring, text, at(JUNE_1, "16:59")).code == "evening_not_yet"
    assert decide(ring, text, at(JUNE_1, "17:00")).code == "ok"


def test_a_concession_ticket_asks_for_the_id_even_when_refused(ring: Keyring) -> None:
    text = code_of(ring, "standard_concession")
    assert decide(ring, text, at(JUNE_1)).check_id
    refused = decide(ring, text, at(JUNE_1), lines=[admitted(1, at(JUNE_1, "09:00"))])
    assert (refused.code, refused.check_id) == ("already_used", True)
    assert not decide(ring, code_of(ring), at(JUNE_1)).check_id


# --- what this gate's journal says of the ticket ----------------------------------------------------------------


def test_a_single_day_ticket_scanned_again_at_the_same_gate_is_used(ring: Keyring) -> None:
    text = code_of(ring)
    first = [admitted(1, at(JUNE_1, "09:00"))]
    assert decide(ring, text, at(JUNE_1), lines=first).code == "already_used"
    assert decide(ring, text, at("2010-06-02"), lines=first).code == "already_used"


def test_an_annulled_admission_does_not_count(ring: Keyring) -> None:
    annulled = GateEntry(
        seq=2, event=Event.ANNULLED, at=at(JUNE_1, "09:01"), code="ok", ticket_id=7, annuls_seq=1, paper=True
    )
    refused = GateEntry(seq=3, event=Event.REFUSED, at=at(JUNE_1, "09:02"), code="x", ticket_id=7, paper=True)
    lines = [admitted(1, at(JUNE_1, "09:00")), annulled, refused]
    assert decide(ring, code_of(ring), at(JUNE_1), lines=lines).code == "ok"


def test_a_pass_enters_once_a_day_up_to_its_count(ring: Keyring) -> None:
    text = code_of(ring, "pass_3")
    lines = [admitted(1, at(JUNE_1, "09:00"))]
    assert decide(ring, text, at(JUNE_1, "15:00"), lines=lines).code == "already_entered_today"
    assert decide(ring, text, at("2010-06-02"), lines=lines).code == "ok"
    lines = [*lines, admitted(2, at("2010-06-02")), admitted(3, at("2010-06-05"))]
    assert decide(ring, text, at("2010-06-09"), lines=lines).code == "no_entries_left"


def test_a_paper_tickets_use_is_counted_from_the_lines(ring: Keyring) -> None:
    claim = claim_for(CodeKind.PHYSICAL, kid=1, ticket_id=7, ticket_type="peak", visit_day=PEAK, upgrade_day=None)
    use = paper_use(claim, [admitted(1, at("2010-06-02")), admitted(4, at("2010-06-09", "23:30"))])
    assert (use.visit_day, use.upgrade_day, use.entries_used, use.last_entry_day) == (PEAK, None, 2, date(2010, 6, 9))
    assert paper_use(claim, []).last_entry_day is None
