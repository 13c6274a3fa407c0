"""The Expo ticket applet, emulated: every CARD.md command with its status words and session rules.

Pure apart from `on_commit`, through which every persistent change goes (the card file, in
`open_card`). State is immutable: a change is built, committed, and only then becomes the card's,
so a failed commit leaves the card as it was. `process` never raises.
"""

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from simcard.apdu import (
    SW_BAD_CLA,
    SW_BAD_INS,
    SW_BAD_MAC,
    SW_BAD_P1P2,
    SW_COUNTER,
    SW_FILE_NOT_FOUND,
    SW_MEMORY_FAILURE,
    SW_NOT_ALLOWED,
    SW_OK,
    SW_RECORD_NOT_FOUND,
    SW_SECURITY,
    SW_UNKNOWN,
    SW_WRONG_DATA,
    SW_WRONG_LENGTH,
    CommandApdu,
    MalformedApdu,
    response,
)
from simcard.keys import KEY_ISSUE, KEY_TYPES, KEY_VALIDATE, MAC_BYTES, MacChain, SessionKeys, macs_equal
from simcard.messages import (
    CHALLENGE_BYTES,
    CLA_PLAIN,
    CLA_PROPRIETARY,
    CLA_SECURED,
    INS_GET_CHALLENGE,
    INS_MARK_ENTRY,
    INS_OPEN_SESSION,
    INS_READ,
    INS_SELECT,
    INS_WRITE_TICKET,
    MARK_DATA_BYTES,
    P2_ANNUL,
    P2_ENTRY,
    P2_READ_LOG,
    P2_READ_TICKET,
    P2_SOUVENIR,
    CardInfo,
    SessionOpening,
    encode_fci,
    split_mac,
)
from simcard.record import (
    CARD_PART_OFFSET,
    EVENT_ANNULLED,
    EVENT_ENTRY,
    EVENT_SOUVENIR,
    EVENT_WRITTEN,
    LOG_BYTES,
    RECORD_BYTES,
    LogEntry,
    TicketRecord,
    after_annul,
    after_entry,
    after_souvenir,
    day_number,
    decode_time,
)
from simcard.state import CTR_MAX, CardState
from simcard.store import CardFile

log = logging.getLogger(__name__)

Reply = tuple[bytes, int]
CommitHook = Callable[[CardState], None]


def _with_tck(body: bytes) -> bytes:
    check = 0
    for byte in body[1:]:
        check ^= byte
    return body + bytes((check,))


# TS 3B, T0 88 (TD1, 8 historical bytes), TD1 80 (TD2, T=0), TD2 01 (T=1), "EXPO2010", TCK.
ATR = _with_tck(bytes.fromhex("3B888001") + b"EXPO2010")


@dataclass
class _Session:
    key_type: int
    ctr: int
    chain: MacChain


class CardApplet:
    """One emulated card: its state, the current tap (selection, session) and the command handlers."""

    atr: bytes = ATR

    def __init__(
        self,
        state: CardState,
        *,
        on_commit: CommitHook | None = None,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self.state = state
        self._on_commit = on_commit
        self._random_bytes = random_bytes
        self._lock = threading.Lock()
        self._selected = False
        self._session: _Session | None = None
        self._session_opened = False
        self._handlers: dict[int, tuple[int, Callable[[CommandApdu], Reply]]] = {
            INS_SELECT: (CLA_PLAIN, self._select),
            INS_GET_CHALLENGE: (CLA_PLAIN, self._get_challenge),
            INS_OPEN_SESSION: (CLA_PROPRIETARY, self._open_session),
            INS_READ: (CLA_PLAIN, self._read),
            INS_WRITE_TICKET: (CLA_SECURED, self._write_ticket),
            INS_MARK_ENTRY: (CLA_SECURED, self._mark_entry),
        }

    def __repr__(self) -> str:
        return f"CardApplet(csn={self.state.csn.hex()}, ctr={self.state.ctr})"

    def power_on(self) -> None:
        """A new tap: nothing selected, no session, a session may be opened once."""
        self._new_tap()

    def power_off(self) -> None:
        """The phone left the field: the session ends."""
        self._new_tap()

    def reset(self) -> None:
        """A warm reset ends the tap like a power cycle."""
        self._new_tap()

    def _new_tap(self) -> None:
        with self._lock:
            self._selected = False
            self._session = None
            self._session_opened = False

    def process(self, apdu: bytes) -> bytes:
        """Answer one command APDU; any error closes the session; never raises."""
        with self._lock:
            try:
                data, sw = self._dispatch(apdu)
            except Exception as error:  # the card must answer whatever happens
                log.error("applet fault: %s", type(error).__name__)
                data, sw = b"", SW_UNKNOWN
            if sw != SW_OK:
                self._session = None
                data = b""
            return response(data, sw)

    def _dispatch(self, raw: bytes) -> Reply:
        try:
            command = CommandApdu.parse(raw)
        except MalformedApdu:
            return b"", SW_WRONG_LENGTH
        if command.cla not in (CLA_PLAIN, CLA_PROPRIETARY, CLA_SECURED):
            return b"", SW_BAD_CLA
        handler = self._handlers.get(command.ins)
        if handler is None:
            return b"", SW_BAD_INS
        cla, handle = handler
        if command.cla != cla:
            return b"", SW_SECURITY if cla == CLA_SECURED else SW_BAD_CLA
        if not self._selected and command.ins != INS_SELECT:
            return b"", SW_NOT_ALLOWED
        return handle(command)

    def _commit(self, new_state: CardState) -> bool:
        """Persist first, adopt after: a failing hook leaves the in-memory card unchanged too."""
        if self._on_commit is not None:
            try:
                self._on_commit(new_state)
            except Exception as error:
                log.error("card %s: commit failed: %s", self.state.csn.hex(), type(error).__name__)
                return False
        self.state = new_state
        return True

    # --- plain commands ---------------------------------------------------------------------------

    def _select(self, command: CommandApdu) -> Reply:
        if (command.p1, command.p2) != (0x04, 0x00):
            return b"", SW_BAD_P1P2
        if command.data != self.state.aid:
            self._selected = False
            return b"", SW_FILE_NOT_FOUND
        self._selected = True
        state = self.state
        return encode_fci(CardInfo(state.csn, state.province, state.key_version, state.ctr, state.occupied())), SW_OK

    def _get_challenge(self, command: CommandApdu) -> Reply:
        if command.p1 or command.p2:
            return b"", SW_BAD_P1P2
        if command.data or command.le not in (CHALLENGE_BYTES, 256):
            return b"", SW_WRONG_LENGTH
        return self._random_bytes(CHALLENGE_BYTES), SW_OK

    def _read(self, command: CommandApdu) -> Reply:
        if command.p2 == P2_READ_TICKET:
            found, size = self.state.slot(command.p1), RECORD_BYTES
        elif command.p2 == P2_READ_LOG:
            found, size = self.state.log_entry(command.p1), LOG_BYTES
        else:
            return b"", SW_BAD_P1P2
        if command.data or command.le not in (size, 256):
            return b"", SW_WRONG_LENGTH
        return (b"", SW_RECORD_NOT_FOUND) if found is None else (found, SW_OK)

    # --- sessions ---------------------------------------------------------------------------------

    def _open_session(self, command: CommandApdu) -> Reply:
        key_type = command.p1
        if key_type not in KEY_TYPES or key_type not in self.state.keys or command.p2:
            return b"", SW_BAD_P1P2
        if len(command.data) != CHALLENGE_BYTES:
            return b"", SW_WRONG_LENGTH
        if self._session_opened:
            return b"", SW_NOT_ALLOWED
        if self.state.ctr >= CTR_MAX:
            return b"", SW_COUNTER
        if not self._commit(self.state.with_next_ctr()):
            return b"", SW_MEMORY_FAILURE
        state = self.state
        rnd_c = self._random_bytes(CHALLENGE_BYTES)
        keys = SessionKeys.derive(state.keys[key_type], command.data, rnd_c, state.ctr)
        self._session = _Session(key_type, state.ctr, MacChain(keys.s_mac))
        self._session_opened = True
        return SessionOpening(state.csn, rnd_c, state.ctr, state.key_version, keys.card_cryptogram).encode(), SW_OK

    def _verified(self, command: CommandApdu, *, key_type: int, body_bytes: int) -> tuple[_Session | None, int]:
        """The live session if this secured command belongs to it and its MAC is right, else the SW."""
        session = self._session
        if session is None or session.key_type != key_type:
            return None, SW_SECURITY
        if len(command.data) != body_bytes + MAC_BYTES:
            return None, SW_WRONG_LENGTH
        body, mac = split_mac(command.data)
        if not macs_equal(session.chain.command_mac(command.header, body), mac):
            return None, SW_BAD_MAC
        return session, SW_OK

    def _write_ticket(self, command: CommandApdu) -> Reply:
        session, sw = self._verified(command, key_type=KEY_ISSUE, body_bytes=RECORD_BYTES)
        if session is None:
            return b"", sw
        if command.p2:
            return b"", SW_BAD_P1P2
        if not 1 <= command.p1 <= len(self.state.slots):
            return b"", SW_RECORD_NOT_FOUND
        raw = command.data[:RECORD_BYTES]
        record = TicketRecord.decode(raw)
        if not record.is_fresh():
            return b"", SW_WRONG_DATA
        current = self.state.slot(command.p1)
        if current is not None:
            # The same ticket again is a retried write whose answer was lost: done already, nothing changes.
            return (b"", SW_OK) if current[:CARD_PART_OFFSET] == raw[:CARD_PART_OFFSET] else (b"", SW_RECORD_NOT_FOUND)
        entry = LogEntry(session.ctr, EVENT_WRITTEN, record.ticket_id).encode()
        if not self._commit(self.state.with_slot(command.p1, raw, log_entry=entry)):
            return b"", SW_MEMORY_FAILURE
        return b"", SW_OK

    def _mark_entry(self, command: CommandApdu) -> Reply:
        session, sw = self._verified(command, key_type=KEY_VALIDATE, body_bytes=MARK_DATA_BYTES)
        if session is None:
            return b"", sw
        if command.p2 not in (P2_ENTRY, P2_SOUVENIR, P2_ANNUL):
            return b"", SW_BAD_P1P2
        current = self.state.slot(command.p1)
        if current is None:
            return b"", SW_RECORD_NOT_FOUND
        gate_id, time_bcd = int.from_bytes(command.data[:4], "big"), command.data[4:MARK_DATA_BYTES]
        try:
            at = decode_time(time_bcd)
            today = day_number(at.date())
        except ValueError:
            return b"", SW_WRONG_DATA
        record = TicketRecord.decode(current)
        if command.p2 == P2_ENTRY:
            changed, event = after_entry(record, today=today, gate_id=gate_id), EVENT_ENTRY
        elif command.p2 == P2_SOUVENIR:
            changed, event = after_souvenir(record), EVENT_SOUVENIR
        else:
            newest = self.state.log_entry(1)
            newest_log = None if newest is None else LogEntry.decode(newest)
            changed = after_annul(record, today=today, gate_id=gate_id, at=at, newest_log=newest_log)
            event = EVENT_ANNULLED
        if changed is None:
            return b"", SW_NOT_ALLOWED
        new_raw = changed.encode()
        entry = LogEntry(session.ctr, event, gate_id, time_bcd).encode()
        if not self._commit(self.state.with_slot(command.p1, new_raw, log_entry=entry)):
            return b"", SW_MEMORY_FAILURE
        return new_raw + session.chain.response_mac(new_raw), SW_OK


def open_card(path: Path | str) -> CardApplet:
    """The card stored in a card file, committing every change back to it atomically."""
    card_path = Path(path)
    return CardApplet(CardFile.load(card_path), on_commit=lambda state: CardFile.save(card_path, state))
