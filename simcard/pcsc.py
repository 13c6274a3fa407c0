"""The reader side of PC/SC, used by hall terminals and gates: find the vpcd readers, wait for a card, talk to it.

A thin layer over pyscard's `smartcard.scard` (the PC/SC API itself) so every failure becomes one of three
clear errors with a stable code: `NoReader` (pcscd not running or no such reader), `NoCard` (the reader is
empty, or no card came in time) and `CardRemoved` (the card went away during a conversation: whatever was
being written may or may not have reached it, which is what the platform's retryable writes are for).
Needs the `pcsc` extra (pyscard) and a running pcscd; `PCSCLITE_CSOCK_NAME` selects a private pcscd socket.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self

from smartcard import scard

from simcard.channel import exchange

VPCD_READER_NAME = "Virtual PCD"
POLL_MS = 250  # upper bound of one status wait, so deadlines stay accurate


def _code(hresult: int) -> int:
    return hresult & 0xFFFFFFFF


_NO_SERVICE = {_code(scard.SCARD_E_NO_SERVICE), _code(scard.SCARD_E_SERVICE_STOPPED)}
_NO_READER = {
    *_NO_SERVICE,
    _code(scard.SCARD_E_NO_READERS_AVAILABLE),
    _code(scard.SCARD_E_UNKNOWN_READER),
    _code(scard.SCARD_E_READER_UNAVAILABLE),
}
_NO_CARD = {
    _code(scard.SCARD_E_NO_SMARTCARD),
    _code(scard.SCARD_W_REMOVED_CARD),
    _code(scard.SCARD_W_UNPOWERED_CARD),
    _code(scard.SCARD_W_UNRESPONSIVE_CARD),
}
# During a conversation, the card or its reader going away shows up as any of these.
_LOST = {
    *_NO_CARD,
    *_NO_SERVICE,
    _code(scard.SCARD_W_RESET_CARD),
    _code(scard.SCARD_E_NOT_TRANSACTED),
    _code(scard.SCARD_E_READER_UNAVAILABLE),
    _code(scard.SCARD_E_INVALID_HANDLE),
}


class PcscError(Exception):
    """A PC/SC failure; `code` is stable, the message says what was being done and what PC/SC answered."""

    code = "pcsc_error"

    def __init__(self, message: str, *, hresult: int | None = None) -> None:
        super().__init__(message)
        self.hresult = hresult


class NoReader(PcscError):
    code = "no_reader"


class NoCard(PcscError):
    code = "no_card"


class CardRemoved(PcscError):
    code = "card_removed"


def _error(hresult: int, doing: str, *, lost: bool = False) -> PcscError:
    """The clear error for a failed PC/SC call: lost (mid-conversation), no reader, no card, or other."""
    code = _code(hresult)
    text = f"{doing}: {scard.SCardGetErrorMessage(hresult)} (0x{code:08X})"
    if lost and code in _LOST:
        return CardRemoved(text, hresult=code)
    if code in _NO_SERVICE:
        return NoReader(f"{text}; is pcscd running?", hresult=code)
    if code in _NO_READER:
        return NoReader(text, hresult=code)
    if code in _NO_CARD:
        return NoCard(text, hresult=code)
    return PcscError(text, hresult=code)


@contextmanager
def _context() -> Iterator[Any]:
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        raise _error(hresult, "connecting to pcscd")
    try:
        yield context
    finally:
        scard.SCardReleaseContext(context)


def list_readers() -> list[str]:
    """Every reader pcscd knows, in its order; none is an empty list, pcscd not running is NoReader."""
    with _context() as context:
        hresult, readers = scard.SCardListReaders(context, [])
    if _code(hresult) == _code(scard.SCARD_E_NO_READERS_AVAILABLE):
        return []
    if hresult != scard.SCARD_S_SUCCESS:
        raise _error(hresult, "listing readers")
    return [str(reader) for reader in readers]


def vpcd_readers() -> list[str]:
    """The virtual readers of vpcd ("Virtual PCD 00 00", "Virtual PCD 00 01", ...), one per card slot."""
    return [reader for reader in list_readers() if reader.startswith(VPCD_READER_NAME)]


def vpcd_reader(slot: int) -> str:
    """The vpcd reader whose card connects on port 0x8C7B + slot (pcscd names it "... 00 <slot in hex>")."""
    suffix = f" {slot:02X}"
    for reader in vpcd_readers():
        if reader.endswith(suffix):
            return reader
    raise NoReader(f"no vpcd reader for slot {slot}; is pcscd running with the vsmartcard-vpcd driver?")


def _state(context: Any, reader: str, known: int, wait_ms: int) -> tuple[int, bytes] | None:
    """The reader's state once it differs from `known` (None when nothing changed within wait_ms)."""
    hresult, states = scard.SCardGetStatusChange(context, wait_ms, [(reader, known)])
    if _code(hresult) == _code(scard.SCARD_E_TIMEOUT):
        return None
    if hresult != scard.SCARD_S_SUCCESS:
        raise _error(hresult, f"watching {reader}")
    _, event, atr = states[0]
    if event & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE):
        raise NoReader(f"reader {reader!r} is not available")
    return event, bytes(atr)


def _wait_for(reader: str, timeout: float, *, present: bool) -> bool:
    """True once the reader holds a card (present) or is empty (not present), False at the deadline."""
    deadline = time.monotonic() + timeout
    with _context() as context:
        known = scard.SCARD_STATE_UNAWARE
        while True:
            remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
            state = _state(context, reader, known, min(POLL_MS, remaining_ms))
            if state is not None:
                known = state[0]
                holds_card = bool(known & scard.SCARD_STATE_PRESENT) and not known & scard.SCARD_STATE_MUTE
                if holds_card == present:
                    return True
            if remaining_ms == 0:
                return False


def card_present(reader: str) -> bool:
    """Whether a card that answers (not mute) is in the reader right now."""
    return _wait_for(reader, 0, present=True)


def wait_for_card(reader: str, timeout: float) -> "PcscCard":
    """Wait up to `timeout` seconds for a card in the reader and connect to it; NoCard if none came."""
    deadline = time.monotonic() + timeout
    while True:
        if not _wait_for(reader, max(0.0, deadline - time.monotonic()), present=True):
            raise NoCard(f"no card in {reader!r} after {timeout:g} s")
        try:
            return PcscCard.connect(reader)
        except NoCard:
            # Taken away between the status change and the connect: keep waiting while time is left.
            if time.monotonic() >= deadline:
                raise


def wait_for_removal(reader: str, timeout: float) -> bool:
    """True once the reader is empty (the card was taken away), False if it is still there after `timeout`."""
    return _wait_for(reader, timeout, present=False)


class PcscCard:
    """A connected card: `transmit` one APDU at a time; `close` ends the tap (the card is reset)."""

    def __init__(self, *, reader: str, context: Any, handle: Any, protocol: int, atr: bytes) -> None:
        self.reader = reader
        self.atr = atr
        self._context = context
        self._handle = handle
        self._protocol = protocol

    @classmethod
    def connect(cls, reader: str) -> Self:
        """Connect (shared) to the card in the reader; NoReader / NoCard when there is nothing to talk to."""
        hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hresult != scard.SCARD_S_SUCCESS:
            raise _error(hresult, "connecting to pcscd")
        hresult, handle, protocol = scard.SCardConnect(
            context, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
        )
        if hresult != scard.SCARD_S_SUCCESS:
            scard.SCardReleaseContext(context)
            raise _error(hresult, f"connecting to the card in {reader!r}")
        hresult, _, _, _, atr = scard.SCardStatus(handle)
        if hresult != scard.SCARD_S_SUCCESS:
            scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
            scard.SCardReleaseContext(context)
            raise _error(hresult, f"reading the ATR in {reader!r}")
        return cls(reader=reader, context=context, handle=handle, protocol=protocol, atr=bytes(atr))

    def transmit(self, apdu: bytes) -> bytes:
        """The card's complete response (data + SW1 SW2) to one command; CardRemoved if it went away."""
        return exchange(self._transmit_once, apdu)

    def _transmit_once(self, apdu: bytes) -> bytes:
        if self._handle is None:
            raise CardRemoved(f"the connection to {self.reader!r} is closed")
        hresult, response = scard.SCardTransmit(self._handle, self._protocol, list(apdu))
        if hresult != scard.SCARD_S_SUCCESS:
            raise _error(hresult, f"sending an APDU to the card in {self.reader!r}", lost=True)
        return bytes(response)

    def close(self) -> None:
        """End the tap: reset the card (its secure session ends) and release the connection; idempotent."""
        if self._handle is not None:
            # The card may already be gone; there is nothing to report about a disconnect.
            scard.SCardDisconnect(self._handle, scard.SCARD_RESET_CARD)
            self._handle = None
        if self._context is not None:
            scard.SCardReleaseContext(self._context)
            self._context = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
