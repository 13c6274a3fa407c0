"""The reader's side of the card: SELECT, plain reads and secure sessions, over any `transmit`.

Used by gates (their SAM derives the card key), by the platform (it builds WRITE TICKET for a
session a terminal opened: `Session.start` needs only the OPEN SESSION exchange, no transport) and by
tests. `InProcessReader` is the transport without PC/SC.
"""

import secrets
from collections.abc import Callable
from datetime import datetime

from simcard.apdu import (
    SW_BAD_MAC,
    SW_COUNTER,
    SW_FILE_NOT_FOUND,
    SW_NOT_ALLOWED,
    SW_OK,
    SW_RECORD_NOT_FOUND,
    SW_SECURITY,
    CommandApdu,
    MalformedApdu,
    split_response,
)
from simcard.applet import CardApplet
from simcard.keys import MAC_BYTES, MacChain, SessionKeys, macs_equal
from simcard.messages import (
    CHALLENGE_BYTES,
    CLA_SECURED,
    INS_MARK_ENTRY,
    INS_WRITE_TICKET,
    P2_ENTRY,
    CardInfo,
    MalformedResponse,
    SessionOpening,
    mark_entry_data,
    open_session_command,
    parse_fci,
    read_log_command,
    read_ticket_command,
    select_command,
)
from simcard.record import RECORD_BYTES, LogEntry, encode_time

Transmit = Callable[[bytes], bytes]

_SW_CODES = {
    SW_FILE_NOT_FOUND: "card_no_applet",
    SW_SECURITY: "card_no_session",
    SW_BAD_MAC: "card_bad_mac",
    SW_RECORD_NOT_FOUND: "card_no_record",
    SW_NOT_ALLOWED: "card_not_allowed",
    SW_COUNTER: "card_counter_exhausted",
}


class CardError(Exception):
    """The card refused a command or answered something unexpected; `code` is stable, `sw` the status word."""

    def __init__(self, code: str, detail: str, *, sw: int | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.sw = sw


def expect_ok(transmit: Transmit, apdu: bytes) -> bytes:
    """Send one APDU; the response data on 9000, else CardError with a code for the status word."""
    try:
        data, sw = split_response(transmit(apdu))
    except MalformedApdu as error:
        raise CardError("card_bad_response", "the card's answer is shorter than a status word") from error
    if sw != SW_OK:
        raise CardError(_SW_CODES.get(sw, "card_refused"), f"the card answered {sw:04X}", sw=sw)
    return data


def select(transmit: Transmit) -> CardInfo:
    """SELECT the Expo applet and read its FCI (CSN, province, key version, CTR, occupied slots)."""
    data = expect_ok(transmit, select_command())
    try:
        return parse_fci(data)
    except MalformedResponse as error:
        raise CardError("card_bad_response", str(error)) from error


def read_ticket(transmit: Transmit, slot: int) -> bytes | None:
    """The 32-byte record in a slot, or None when the slot is empty."""
    try:
        return expect_ok(transmit, read_ticket_command(slot))
    except CardError as error:
        if error.sw == SW_RECORD_NOT_FOUND:
            return None
        raise


def read_log(transmit: Transmit, newest: int) -> LogEntry | None:
    """The n-th newest log entry (1 = newest), or None past the end of the log."""
    try:
        return LogEntry.decode(expect_ok(transmit, read_log_command(newest)))
    except CardError as error:
        if error.sw == SW_RECORD_NOT_FOUND:
            return None
        raise


class Session:
    """A verified secure session: it MACs commands in chain order and checks the card's response MACs."""

    def __init__(self, opening: SessionOpening, key_type: int, rnd_t: bytes, keys: SessionKeys) -> None:
        self.csn = opening.csn
        self.ctr = opening.ctr
        self.key_version = opening.key_version
        self.key_type = key_type
        self.rnd_t = rnd_t
        self.rnd_c = opening.rnd_c
        self._keys = keys
        self._chain = MacChain(keys.s_mac)

    @property
    def terminal_cryptogram(self) -> bytes:
        """The terminal cryptogram of this session (derived when first asked for)."""
        return self._keys.terminal_cryptogram

    def __repr__(self) -> str:
        return f"Session(csn={self.csn.hex()}, ctr={self.ctr}, key_type={self.key_type})"

    @classmethod
    def start(cls, card_key: bytes, key_type: int, rnd_t: bytes, opening: SessionOpening) -> "Session":
        """Derive the session keys; CardError `card_not_authentic` unless the card's cryptogram is right."""
        keys = SessionKeys.derive(card_key, rnd_t, opening.rnd_c, opening.ctr)
        if not macs_equal(keys.card_cryptogram, opening.card_cryptogram):
            raise CardError("card_not_authentic", "the card's cryptogram is wrong: not a genuine card for this key")
        return cls(opening, key_type, rnd_t, keys)

    def command(self, ins: int, p1: int, p2: int, data: bytes, *, le: int | None = None) -> bytes:
        """A secured (CLA 84) APDU: data || the next chained MAC over the header and data."""
        header = bytes((CLA_SECURED, ins, p1, p2))
        mac = self._chain.command_mac(header, data)
        return CommandApdu(CLA_SECURED, ins, p1, p2, data + mac, le).encode()

    def checked_response(self, data: bytes) -> bytes:
        """The response data without its MAC; CardError `card_bad_response_mac` if the MAC is not the card's."""
        body, mac = data[:-MAC_BYTES], data[-MAC_BYTES:]
        if len(data) < MAC_BYTES or not macs_equal(self._chain.response_mac(body), mac):
            raise CardError("card_bad_response_mac", "the card's response MAC is wrong")
        return body

    def write_ticket_command(self, slot: int, record: bytes) -> bytes:
        """WRITE TICKET: 84 DC slot 00 28 record(32) MAC(8)."""
        if len(record) != RECORD_BYTES:
            raise ValueError("a ticket record is 32 bytes")
        return self.command(INS_WRITE_TICKET, slot, 0, record)

    def mark_entry_command(self, slot: int, gate_id: int, at: datetime, *, event: int = P2_ENTRY) -> bytes:
        """MARK ENTRY: 84 8E slot event 13 gate(4) time(7) MAC(8) 00; event 01 entry, 02 souvenir, 03 annul."""
        return self.command(INS_MARK_ENTRY, slot, event, mark_entry_data(gate_id, encode_time(at)), le=256)


def open_session(transmit: Transmit, key_type: int, card_key: bytes, *, rnd_t: bytes | None = None) -> Session:
    """OPEN SESSION with a fresh RND_T and check the card cryptogram (CardError otherwise)."""
    challenge = secrets.token_bytes(CHALLENGE_BYTES) if rnd_t is None else rnd_t
    data = expect_ok(transmit, open_session_command(key_type, challenge))
    try:
        opening = SessionOpening.parse(data)
    except MalformedResponse as error:
        raise CardError("card_bad_response", str(error)) from error
    return Session.start(card_key, key_type, challenge, opening)


def write_ticket(transmit: Transmit, session: Session, slot: int, record: bytes) -> None:
    """Write a signed record into a slot within an ISSUE session."""
    expect_ok(transmit, session.write_ticket_command(slot, record))


def mark_entry(
    transmit: Transmit, session: Session, slot: int, gate_id: int, at: datetime, *, event: int = P2_ENTRY
) -> bytes:
    """Record an entry (or souvenir, or annulment) within a VALIDATE session; the new record, its card MAC checked."""
    return session.checked_response(expect_ok(transmit, session.mark_entry_command(slot, gate_id, at, event=event)))


class InProcessReader:
    """A reader with the card in it, in this process: `transmit` calls the applet directly."""

    def __init__(self, applet: CardApplet) -> None:
        self.applet = applet
        applet.power_on()

    def transmit(self, apdu: bytes) -> bytes:
        """One APDU to the card and its answer."""
        return self.applet.process(apdu)

    def tap(self) -> None:
        """Take the card away and present it again: a new tap (the session ends)."""
        self.applet.power_off()
        self.applet.power_on()
