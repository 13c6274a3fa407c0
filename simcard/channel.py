"""How terminals and gates talk to a card: one `transmit(apdu) -> response` call, over PC/SC or in process.

`simcard.pcsc.PcscCard` is the real channel (pyscard through pcscd); `AppletChannel` hands APDUs straight to
an emulated applet for the demo and volume runs where no PC/SC stack is present. Both follow the same
ISO 7816-4 response rules (`exchange`), so code written against `CardChannel` runs on either.
"""

from collections.abc import Callable
from typing import Protocol

MAX_GET_RESPONSE = 64  # a card that keeps saying 61xx forever is not allowed to hang a terminal


class CardChannel(Protocol):
    """A card in a reader (or in process): one command APDU in, the complete response APDU out."""

    def transmit(self, apdu: bytes) -> bytes: ...


class ProcessingApplet(Protocol):
    def process(self, apdu: bytes) -> bytes: ...


def exchange(send: Callable[[bytes], bytes], apdu: bytes) -> bytes:
    """Send one command; on 6Cxx resend it with Le = xx, on 61xx collect the rest with GET RESPONSE."""
    response = send(apdu)
    if _sw1(response) == 0x6C and len(apdu) == 5:
        response = send(apdu[:4] + response[-1:])
    data = bytearray()
    for _ in range(MAX_GET_RESPONSE):
        if _sw1(response) != 0x61:
            break
        data += response[:-2]
        response = send(bytes([apdu[0] & 0x03, 0xC0, 0x00, 0x00, response[-1]]))
    return bytes(data) + response


def _sw1(response: bytes) -> int | None:
    return response[-2] if len(response) >= 2 else None


class AppletChannel:
    """The in-process channel: the applet answers directly, as it would through vpcd and pcscd."""

    def __init__(self, applet: ProcessingApplet) -> None:
        self.applet = applet

    def transmit(self, apdu: bytes) -> bytes:
        """The applet's answer to one command, with the same response handling as a PC/SC reader."""
        return exchange(self.applet.process, apdu)
