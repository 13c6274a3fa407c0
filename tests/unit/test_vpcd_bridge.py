"""The vpcd wire protocol and the reader-side response rules, against a fake vpcd on a local socket."""

import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from simcard.channel import AppletChannel, exchange
from simcard.vpcd import GET_ATR, POWER_OFF, POWER_ON, RESET, VpcdBridge, answer, frame, vpcd_port


class Recorder:
    """A stand-in applet that records power events and echoes command data with 9000."""

    atr = bytes.fromhex("3B8080010101")

    def __init__(self) -> None:
        self.events: list[str] = []

    def power_on(self) -> None:
        self.events.append("on")

    def power_off(self) -> None:
        self.events.append("off")

    def reset(self) -> None:
        self.events.append("reset")

    def process(self, apdu: bytes) -> bytes:
        self.events.append("apdu")
        return apdu[5:] + b"\x90\x00"


class Raising(Recorder):
    def process(self, apdu: bytes) -> bytes:
        raise RuntimeError("a bug")


def test_frames_carry_a_big_endian_length() -> None:
    assert frame(b"\x01\x02\x03") == b"\x00\x03\x01\x02\x03"
    assert frame(b"") == b"\x00\x00"
    with pytest.raises(ValueError, match="65535"):
        frame(bytes(0x10000))
    assert vpcd_port(0) == 35963
    assert vpcd_port(1) == 35964


def test_control_bytes_drive_power_and_only_get_atr_is_answered() -> None:
    applet = Recorder()
    assert answer(applet, bytes([POWER_ON])) is None
    assert answer(applet, bytes([RESET])) is None
    assert answer(applet, bytes([POWER_OFF])) is None
    assert answer(applet, bytes([0x03])) is None
    assert answer(applet, bytes([GET_ATR])) == applet.atr
    assert applet.events == ["on", "reset", "off"]
    assert answer(applet, bytes.fromhex("00010000")) == b"\x90\x00"


def test_an_applet_that_raises_anyway_answers_6f00() -> None:
    assert answer(Raising(), bytes.fromhex("00A4040000")) == bytes.fromhex("6F00")


def test_exchange_follows_61xx_with_get_response_and_6cxx_with_the_right_le() -> None:
    sent: list[bytes] = []
    answers = {
        bytes.fromhex("00B2010C00"): bytes.fromhex("6C04"),
        bytes.fromhex("00B2010C04"): bytes.fromhex("AABB6102"),
        bytes.fromhex("00C0000002"): bytes.fromhex("CCDD9000"),
    }

    def card(apdu: bytes) -> bytes:
        sent.append(apdu)
        return answers[apdu]

    assert exchange(card, bytes.fromhex("00B2010C00")) == bytes.fromhex("AABBCCDD9000")
    assert sent == list(answers)


def test_exchange_gives_up_on_a_card_that_never_stops_saying_61xx() -> None:
    calls = []

    def endless(apdu: bytes) -> bytes:
        calls.append(apdu)
        return bytes.fromhex("016101")

    assert exchange(endless, bytes.fromhex("00010000")).endswith(b"\x61\x01")
    assert len(calls) == 65


def test_the_applet_channel_answers_like_a_reader() -> None:
    assert AppletChannel(Recorder()).transmit(bytes.fromhex("0001000001EE")) == bytes.fromhex("EE9000")


class FakeVpcd:
    """vpcd's side of the socket: writes the header and the body separately (like Debian's vpcd), the body in
    two pieces with a pause, so only an exact-length reader gets whole messages."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> None:
        self.server.settimeout(5)
        self.conn, _ = self.server.accept()
        self.conn.settimeout(5)

    def send(self, message: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(struct.pack(">H", len(message)))
        half = len(message) // 2
        self.conn.sendall(message[:half])
        time.sleep(0.02)
        self.conn.sendall(message[half:])

    def receive(self) -> bytes:
        (length,) = struct.unpack(">H", self._exact(2))
        return self._exact(length)

    def _exact(self, size: int) -> bytes:
        assert self.conn is not None
        data = b""
        while len(data) < size:
            chunk = self.conn.recv(size - len(data))
            assert chunk, "the card closed the connection"
            data += chunk
        return data

    def drop(self) -> None:
        assert self.conn is not None
        self.conn.close()
        self.conn = None


@pytest.fixture
def vpcd() -> Iterator[FakeVpcd]:
    fake = FakeVpcd()
    yield fake
    fake.server.close()


def test_the_bridge_speaks_vpcd_reconnects_and_leaves_on_stop(vpcd: FakeVpcd) -> None:
    applet = Recorder()
    bridge = VpcdBridge(applet, port=vpcd.port, retry_seconds=0.01)
    thread = threading.Thread(target=bridge.serve_forever)
    thread.start()
    try:
        vpcd.accept()
        vpcd.send(bytes([POWER_ON]))
        vpcd.send(bytes([GET_ATR]))
        assert vpcd.receive() == applet.atr
        long_apdu = bytes.fromhex("80010000000400") + bytes(range(256)) * 4  # longer than one segment may carry
        vpcd.send(long_apdu)
        assert vpcd.receive() == long_apdu[5:] + b"\x90\x00"
        vpcd.drop()  # pcscd went away: the card powers off and connects again
        vpcd.accept()
        vpcd.send(bytes([GET_ATR]))
        assert vpcd.receive() == applet.atr
        assert applet.events == ["on", "apdu", "off"]
        bridge.stop()
        assert vpcd.conn is not None
        assert vpcd.conn.recv(1) == b""  # the socket closed: the card was removed
    finally:
        bridge.stop()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert not bridge.connected.is_set()
