"""APDU fuzzing: random and mutated commands never crash the applet and never change a ticket or the log
without a valid MAC. Seeded, so a failure reproduces; a few seconds in all.

"Crash" includes a fault the applet caught itself (6F00): any exception inside the applet is a bug.
"""

import random
from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simcard.apdu import SW_OK, SW_UNKNOWN, CommandApdu, MalformedApdu
from simcard.keys import KEY_AUDIT, KEY_ISSUE, KEY_VALIDATE
from simcard.messages import P2_ENTRY, P2_SOUVENIR
from simcard.state import CardState
from tests.unit.card_support import Card, record, signed

SEED = 20100501
KNOWN_CLA = (0x00, 0x80, 0x84)
KNOWN_INS = (0xA4, 0x84, 0x8A, 0xDC, 0xB2, 0x8E)


def _sw(raw: bytes) -> int:
    assert len(raw) >= 2
    return int.from_bytes(raw[-2:], "big")


def _same_content(state: CardState, before: CardState) -> bool:
    return state.slots == before.slots and state.log == before.log


def random_apdu(rng: random.Random) -> bytes:
    """Random bytes, or random bytes behind a header the applet knows, or a well-formed APDU of random fields."""
    choice = rng.random()
    if choice < 0.3:
        return rng.randbytes(rng.randrange(0, 300))
    header = bytes((rng.choice(KNOWN_CLA), rng.choice(KNOWN_INS), rng.randrange(256), rng.randrange(256)))
    if choice < 0.6:
        return header + rng.randbytes(rng.randrange(0, 80))
    data = rng.randbytes(rng.choice((0, 8, 11, 19, 32, 40, rng.randrange(1, 300))))
    le = rng.choice((None, 8, 16, 32, 256, rng.randrange(1, 65537)))
    return CommandApdu(header[0], header[1], header[2], header[3], data, le).encode()


def mutate(rng: random.Random, apdu: bytes) -> bytes:
    """One to three random edits: bit flips, byte changes, cuts, insertions, deletions, a new Lc or Le."""
    out = bytearray(apdu)
    for _ in range(rng.randrange(1, 4)):
        at = rng.randrange(len(out)) if out else 0
        kind = rng.randrange(8)
        if kind == 0 and out:
            out[at] ^= 1 << rng.randrange(8)
        elif kind == 1 and out:
            out[at] = rng.randrange(256)
        elif kind == 2:
            del out[rng.randrange(len(out) + 1) :]
        elif kind == 3:
            out[at:at] = rng.randbytes(rng.randrange(1, 4))
        elif kind == 4 and out:
            del out[at]
        elif kind == 5 and len(out) > 4:
            out[4] = rng.randrange(256)
        elif kind == 6:
            out.append(rng.randrange(256))
        elif out:
            out[rng.randrange(min(4, len(out)))] = rng.randrange(256)
    return bytes(out)


def _content(apdu: bytes) -> tuple[int, int, int, int, bytes] | None:
    """What a MAC covers (header and data); None when the bytes do not parse."""
    try:
        parsed = CommandApdu.parse(apdu)
    except MalformedApdu:
        return None
    return parsed.cla, parsed.ins, parsed.p1, parsed.p2, parsed.data


def _card_with_a_pass() -> Card:
    card = Card()
    assert card.write(1, signed(card.csn, record(entries=7, last=datetime(2010, 10, 31).date()))) == SW_OK
    assert card.write(3, signed(card.csn, record(9))) == SW_OK
    return card


def test_random_apdus_never_crash_and_change_nothing() -> None:
    rng = random.Random(SEED)
    card = _card_with_a_pass()
    before = card.applet.state
    for i in range(20_000):
        if i % 40 == 0:
            card.session(rng.choice((KEY_ISSUE, KEY_VALIDATE, KEY_AUDIT)))  # secured commands meet a live session
        elif i % 40 == 20:
            card.applet.power_off()
            card.applet.power_on()  # ... and an unselected card
        apdu = random_apdu(rng)
        ctr = card.applet.state.ctr
        sw = _sw(card.reader.transmit(apdu))
        assert sw != SW_UNKNOWN, apdu.hex()
        assert _same_content(card.applet.state, before), apdu.hex()
        assert card.applet.state.ctr == ctr or apdu[:2] == b"\x80\x8a"


def test_mutated_secured_commands_never_change_anything_without_a_valid_mac() -> None:
    rng = random.Random(SEED + 1)
    card = _card_with_a_pass()
    base = card.applet.state
    empty_slots = replace(base, slots=(None,) * 4)
    accepted = refused = 0
    for i in range(5000):
        writing = i % 2 == 0
        card.applet.state = empty_slots if writing else base
        session = card.session(KEY_ISSUE if writing else KEY_VALIDATE)
        if i % 5 == 0:  # a valid command first, so the mutant meets a chain past chain_0
            first = (
                session.write_ticket_command(4, signed(card.csn, record(99)))
                if writing
                else session.mark_entry_command(3, 1, datetime(2010, 6, 1, 9))
            )
            assert card.send(first)[1] == SW_OK
        at = datetime(2010, 6, 1, 10) + timedelta(days=rng.randrange(150), minutes=rng.randrange(600))
        if writing:
            original = session.write_ticket_command(rng.randrange(1, 5), signed(card.csn, record(rng.randrange(1000))))
        else:
            original = session.mark_entry_command(
                1, rng.randrange(2**32), at, event=rng.choice((P2_ENTRY, P2_SOUVENIR))
            )
        mutant = mutate(rng, original)
        before = card.applet.state
        sw = _sw(card.reader.transmit(mutant))
        assert sw != SW_UNKNOWN, mutant.hex()
        if _content(mutant) == _content(original):
            accepted += 1  # only Le changed: the MAC still covers exactly what was signed
        else:
            refused += 1
            assert sw != SW_OK, (original.hex(), mutant.hex())
            assert _same_content(card.applet.state, before), (original.hex(), mutant.hex())
    assert refused > 4000
    assert accepted > 0


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(max_size=64), min_size=1, max_size=6))
def test_hypothesis_sequences_of_raw_apdus(apdus: list[bytes]) -> None:
    card = Card()
    card.session(KEY_VALIDATE)
    before = card.applet.state
    for apdu in apdus:
        assert _sw(card.reader.transmit(apdu)) != SW_UNKNOWN
    assert _same_content(card.applet.state, before)
