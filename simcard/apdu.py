"""ISO 7816-4 command APDUs, status words and the applet's AID: the byte codec shared by card and readers.

Pure. Short and extended lengths are both understood; anything whose length bytes do not add up is
a `MalformedApdu`, which the card answers 6700.
"""

from dataclasses import dataclass

AID = bytes.fromhex("F0455850 4F323031 3001")

SW_OK = 0x9000
SW_MEMORY_FAILURE = 0x6581
SW_WRONG_LENGTH = 0x6700
SW_SECURITY = 0x6982
SW_COUNTER = 0x6983
SW_NOT_ALLOWED = 0x6985
SW_BAD_MAC = 0x6988
SW_WRONG_DATA = 0x6A80
SW_FILE_NOT_FOUND = 0x6A82
SW_RECORD_NOT_FOUND = 0x6A83
SW_BAD_P1P2 = 0x6A86
SW_BAD_INS = 0x6D00
SW_BAD_CLA = 0x6E00
SW_UNKNOWN = 0x6F00

SHORT_MAX = 256
EXTENDED_MAX = 65536


class MalformedApdu(ValueError):
    """The bytes are not a well-formed command APDU (or a response shorter than its status word)."""


@dataclass(frozen=True)
class CommandApdu:
    """One command: header, command data and the expected response length (None: no Le field)."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    @property
    def header(self) -> bytes:
        """CLA INS P1 P2, the four bytes a command MAC covers."""
        return bytes((self.cla, self.ins, self.p1, self.p2))

    @classmethod
    def parse(cls, raw: bytes) -> "CommandApdu":
        """Decode cases 1-4, short or extended; lengths must account for every byte exactly."""
        if len(raw) < 4:
            raise MalformedApdu(f"an APDU has at least 4 bytes, got {len(raw)}")
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, le=body[0] or SHORT_MAX)
        if body[0] != 0:
            return _short_body(cls(cla, ins, p1, p2), body)
        return _extended_body(cls(cla, ins, p1, p2), body)

    def encode(self) -> bytes:
        """The shortest valid encoding (short unless the data or Le needs extended lengths)."""
        if any(not 0 <= byte <= 0xFF for byte in (self.cla, self.ins, self.p1, self.p2)):
            raise MalformedApdu("header bytes must be 0-255")
        if len(self.data) >= EXTENDED_MAX or (self.le is not None and not 1 <= self.le <= EXTENDED_MAX):
            raise MalformedApdu("data or Le out of range")
        extended = len(self.data) > 255 or (self.le is not None and self.le > SHORT_MAX)
        out = bytearray(self.header)
        if extended:
            out.append(0)
            if self.data:
                out += len(self.data).to_bytes(2, "big") + self.data
            if self.le is not None:
                out += (self.le % EXTENDED_MAX).to_bytes(2, "big")
            return bytes(out)
        if self.data:
            out += bytes((len(self.data),)) + self.data
        if self.le is not None:
            out.append(self.le % SHORT_MAX)
        return bytes(out)


def _short_body(head: CommandApdu, body: bytes) -> CommandApdu:
    lc = body[0]
    if len(body) == 1 + lc:
        return CommandApdu(head.cla, head.ins, head.p1, head.p2, body[1:])
    if len(body) == 2 + lc:
        return CommandApdu(head.cla, head.ins, head.p1, head.p2, body[1:-1], body[-1] or SHORT_MAX)
    raise MalformedApdu(f"Lc {lc} does not match {len(body) - 1} bytes after it")


def _extended_body(head: CommandApdu, body: bytes) -> CommandApdu:
    if len(body) == 3:
        return CommandApdu(head.cla, head.ins, head.p1, head.p2, le=int.from_bytes(body[1:3], "big") or EXTENDED_MAX)
    if len(body) < 3:
        raise MalformedApdu("a truncated extended length")
    lc = int.from_bytes(body[1:3], "big")
    if lc == 0:
        raise MalformedApdu("an extended Lc of zero")
    if len(body) == 3 + lc:
        return CommandApdu(head.cla, head.ins, head.p1, head.p2, body[3:])
    if len(body) == 5 + lc:
        le = int.from_bytes(body[-2:], "big") or EXTENDED_MAX
        return CommandApdu(head.cla, head.ins, head.p1, head.p2, body[3:-2], le)
    raise MalformedApdu(f"extended Lc {lc} does not match {len(body) - 3} bytes after it")


def response(data: bytes, sw: int) -> bytes:
    """A response APDU: the data, then SW1 SW2."""
    return data + sw.to_bytes(2, "big")


def split_response(raw: bytes) -> tuple[bytes, int]:
    """A response APDU split into its data and its status word."""
    if len(raw) < 2:
        raise MalformedApdu(f"a response has at least 2 bytes, got {len(raw)}")
    return raw[:-2], int.from_bytes(raw[-2:], "big")
