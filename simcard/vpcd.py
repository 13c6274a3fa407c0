"""The vpcd bridge: makes an emulated card a card in a real PC/SC reader.

vsmartcard's vpcd driver (loaded by pcscd) listens on TCP port 0x8C7B + slot; the card connects to it as a
client. Every message both ways is a 2-byte big-endian length and the bytes. A 1-byte message is a control
byte (00 power off, 01 power on, 02 reset, 04 get ATR; only 04 is answered, with the ATR); anything longer is
a command APDU, answered by one framed response. A closed socket is a removed card.

Debian's vpcd writes the length and the body in two segments, which stalls on delayed ACKs (about 45 ms per
APDU): the card's socket sets TCP_NODELAY and re-arms TCP_QUICKACK around every read (the kernel clears it).
"""

import contextlib
import logging
import socket
import struct
import threading
from typing import Protocol

VPCD_BASE_PORT = 0x8C7B  # 35963: slot 0; slot n listens on 35963 + n
MAX_ATR = 33

POWER_OFF = 0x00
POWER_ON = 0x01
RESET = 0x02
GET_ATR = 0x04

SW_NO_PRECISE_DIAGNOSIS = bytes.fromhex("6F00")

log = logging.getLogger(__name__)


class Applet(Protocol):
    """What the bridge needs from a card: an ATR, power events and an APDU processor that never raises."""

    @property
    def atr(self) -> bytes: ...

    def power_on(self) -> None: ...

    def power_off(self) -> None: ...

    def reset(self) -> None: ...

    def process(self, apdu: bytes) -> bytes: ...


def vpcd_port(slot: int, *, base: int = VPCD_BASE_PORT) -> int:
    """Slot n of a vpcd reader listens on the reader's channel port + n."""
    if slot < 0:
        raise ValueError("a vpcd slot is 0 or more")
    return base + slot


def frame(payload: bytes) -> bytes:
    """Every vpcd message is its length as 2 big-endian bytes, then its bytes."""
    if len(payload) > 0xFFFF:
        raise ValueError("a vpcd message carries at most 65535 bytes")
    return struct.pack(">H", len(payload)) + payload


def answer(applet: Applet, message: bytes) -> bytes | None:
    """One message from vpcd -> the card's answer: ATR for 04, None for other control bytes, R-APDU otherwise."""
    if len(message) == 1:
        control = message[0]
        if control == GET_ATR:
            return applet.atr[:MAX_ATR]
        if control == POWER_ON:
            applet.power_on()
        elif control == POWER_OFF:
            applet.power_off()
        elif control == RESET:
            applet.reset()
        return None
    if not message:
        return None
    try:
        return applet.process(message)
    except Exception as error:
        # The applet promises never to raise; if it does anyway the card stays in the reader and says so.
        log.error("the applet raised %s on an APDU; answered 6F00", type(error).__name__)
        return SW_NO_PRECISE_DIAGNOSIS


class VpcdBridge:
    """A TCP client to vpcd that serves one applet; reconnects when pcscd restarts; stop() removes the card."""

    def __init__(
        self,
        applet: Applet,
        *,
        host: str = "127.0.0.1",
        port: int = VPCD_BASE_PORT,
        quickack: bool = True,
        retry_seconds: float = 0.2,
    ) -> None:
        self.applet = applet
        self.host = host
        self.port = port
        self.quickack = quickack
        self.retry_seconds = retry_seconds
        self.connected = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.RLock()  # stop() may run in a signal handler on the thread holding it
        self._socket: socket.socket | None = None

    def serve_forever(self) -> None:
        """Keep the card in the reader: connect, answer vpcd until it goes away, connect again; until stop()."""
        waiting_said = False
        try:
            while not self._stopping.is_set():
                sock = self._connect()
                if sock is None:
                    if not waiting_said:
                        log.warning("waiting for vpcd at %s:%d (is pcscd running with vpcd?)", self.host, self.port)
                        waiting_said = True
                    self._stopping.wait(self.retry_seconds)
                    continue
                log.info("card inserted into vpcd at %s:%d", self.host, self.port)
                waiting_said = False
                try:
                    self._serve(sock)
                    if not self._stopping.is_set():
                        log.warning("vpcd closed the connection (pcscd stopped?); reconnecting")
                except OSError as error:
                    if not self._stopping.is_set():
                        log.warning("vpcd connection lost (%s); reconnecting", type(error).__name__)
                finally:
                    self._drop(sock)
                    # The reader is gone or the card was pulled: either way the card lost its power.
                    self.applet.power_off()
        finally:
            self._stopping.set()

    def stop(self) -> None:
        """Take the card out of the reader (closes the socket); safe from any thread or a signal handler."""
        self._stopping.set()
        with self._lock:
            sock = self._socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _connect(self) -> socket.socket | None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=2.0)
        except OSError:
            return None
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._socket = sock
        if self._stopping.is_set():  # stop() ran between the check and the connect
            self._drop(sock)
            return None
        self.connected.set()
        return sock

    def _drop(self, sock: socket.socket) -> None:
        self.connected.clear()
        with self._lock:
            if self._socket is sock:
                self._socket = None
        with contextlib.suppress(OSError):
            sock.close()

    def _serve(self, sock: socket.socket) -> None:
        while True:
            header = self._recv_exact(sock, 2)
            if header is None:
                return
            (length,) = struct.unpack(">H", header)
            message = self._recv_exact(sock, length) if length else b""
            if message is None:
                return
            reply = answer(self.applet, message)
            if reply is not None:
                sock.sendall(frame(reply))

    def _recv_exact(self, sock: socket.socket, size: int) -> bytes | None:
        """Exactly `size` bytes, or None when vpcd closed the connection."""
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size:
            self._arm_quickack(sock)
            count = sock.recv_into(view[got:], size - got)
            self._arm_quickack(sock)
            if count == 0:
                return None
            got += count
        return bytes(buffer)

    def _arm_quickack(self, sock: socket.socket) -> None:
        # Linux clears TCP_QUICKACK after it acknowledges: set it again before and after every read.
        if self.quickack:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
