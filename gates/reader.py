"""The device's card reader: a PC/SC reader through pcscd, the gate's tap loop and a one-tap check.

pyscard comes with the `pcsc` extra; without it the device says so (`no_pcsc`) instead of failing on
import. The default reader is the first vpcd reader pcscd lists. The loop never taps a card twice while it
lies on the reader: after a tap it waits for the reader to be empty. A reader that goes away while the gate
runs (pcscd restarting) is waited for: the gate does not stop for it.
"""

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from gates.errors import GateError
from gates.validator import TapResult
from simcard.channel import CardChannel

POLL = 0.5  # seconds per wait for a card, so a stop request is seen within half a second

READER_RETRY = 1.0  # seconds between looks for a reader that went away
READER_LOST = frozenset({"no_reader", "pcsc_error"})

log = logging.getLogger("gates.reader")

Tap = Callable[[CardChannel], TapResult]  # one decision on the card in the reader (entry, force, souvenir)


class CardSource(Protocol):
    """The device's reader: the next card (within `wait` seconds, else GateError `no_card`) and its removal."""

    def card(self, wait: float) -> AbstractContextManager[CardChannel]: ...

    def removed(self, wait: float) -> bool: ...


class PcscReader:
    """A PC/SC reader through pcscd (the `pcsc` extra): the named one or the first vpcd reader."""

    def __init__(self, name: str | None) -> None:
        try:
            from simcard import pcsc  # noqa: PLC0415  # optional: the `pcsc` extra
        except ImportError as error:
            raise GateError("no_pcsc", "pyscard is not installed (pip install -e '.[pcsc]')") from error
        self._pcsc = pcsc
        readers = pcsc.vpcd_readers() if name is None else [name]
        if not readers:
            raise GateError("no_reader", "pcscd shows no vpcd reader; is pcscd running with vsmartcard-vpcd?")
        self.name = readers[0]

    @contextmanager
    def card(self, wait: float) -> Iterator[CardChannel]:
        """The card in the reader, connected for one tap and reset when the tap ends."""
        try:
            card = self._pcsc.wait_for_card(self.name, wait)
        except (self._pcsc.NoCard, self._pcsc.CardRemoved) as error:
            raise GateError("no_card", str(error)) from None  # none came, or it left before the tap began
        except self._pcsc.PcscError as error:
            raise GateError(error.code, str(error)) from None  # no_reader (pcscd gone), pcsc_error
        with card:
            yield card

    def removed(self, wait: float) -> bool:
        """True once the reader is empty (or gone: then no card can lie on it either)."""
        try:
            return bool(self._pcsc.wait_for_removal(self.name, wait))
        except self._pcsc.PcscError:
            return True


def run_taps(
    source: CardSource,
    tap: Tap,
    *,
    show: Callable[[TapResult], None],
    stop: threading.Event,
    taps: int | None = None,
) -> int:
    """The gate's loop: wait for a card, decide and show, wait for its removal; until `stop` or `taps` taps."""
    done = 0
    reader_lost = False
    while not stop.is_set() and (taps is None or done < taps):
        result: TapResult | None = None
        try:
            with source.card(POLL) as channel:
                result = tap(channel)
        except GateError as error:
            if error.code in READER_LOST:
                if not reader_lost:
                    log.warning("the card reader is gone (%s: %s); waiting for it to come back", error.code, error)
                reader_lost = True
                stop.wait(READER_RETRY)  # pcscd restarting: the gate stays up and comes back with it
                continue
            if error.code != "no_card":
                raise
        if reader_lost:
            log.info("the card reader is back")
            reader_lost = False
        if result is None:
            continue
        show(result)
        done += 1
        while not stop.is_set() and not source.removed(POLL):
            pass  # the same card lying on the reader is not tapped again
    return done


def one_tap(source: CardSource, tap: Tap, *, wait: float) -> TapResult:
    """A handheld's or souvenir terminal's single tap: the card within `wait` seconds, decided."""
    with source.card(wait) as channel:
        return tap(channel)
