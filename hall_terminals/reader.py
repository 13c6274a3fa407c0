"""The card reader of a hall terminal: a card in a PC/SC reader (pcscd), connected for one tap.

pyscard comes with the `pcsc` extra; without it the terminal says so (`no_pcsc`) instead of failing on
import. The default reader is the first vpcd reader pcscd lists.
"""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from hall_terminals.errors import TerminalError
from simcard.channel import CardChannel

Connect = Callable[[], AbstractContextManager[CardChannel]]


def pcsc_connector(reader: str | None, *, wait: float) -> Connect:
    """Connect to the card in `reader` (default: the first vpcd reader), waiting up to `wait` seconds for it."""

    @contextmanager
    def connect() -> Iterator[CardChannel]:
        try:
            from simcard import pcsc  # noqa: PLC0415  # optional: the `pcsc` extra
        except ImportError as error:
            raise TerminalError("no_pcsc", "pyscard is not installed (pip install -e '.[pcsc]')") from error
        name = reader or _first_vpcd_reader(pcsc.vpcd_readers())
        with pcsc.wait_for_card(name, wait) as card:
            yield card

    return connect


def _first_vpcd_reader(readers: list[str]) -> str:
    if not readers:
        raise TerminalError("no_reader", "pcscd shows no vpcd reader; is pcscd running with vsmartcard-vpcd?")
    return readers[0]
