"""QR pictures of ticket codes: drawn and read back, from a PNG or a photo-like JPEG; a picture with no code,
several codes, no picture at all or a decompression bomb is refused with its stable code."""

import io
import random
import struct
import zlib
from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image, ImageFilter

from ticketing.qr import MAX_PIXELS, qr_image, qr_png, read_qr
from ticketing.signed_codes import CodeKind, CodeRefused, claim_for, sign_claim

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def _code(ticket_id: int = 4711) -> str:
    claim = claim_for(CodeKind.VOUCHER, kid=1, ticket_id=ticket_id, ticket_type="peak", visit_day=date(2010, 10, 3),
                      upgrade_day=None)  # fmt: skip
    return sign_claim(claim, KEY)


def _refusal(source: bytes | Path) -> str:
    with pytest.raises(CodeRefused) as refused:
        read_qr(source)
    return refused.value.code


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_a_code_round_trips_through_png_bytes_and_file(tmp_path: Path) -> None:
    code = _code()
    png = qr_png(code)
    assert png.startswith(b"\x89PNG")
    assert read_qr(png) == code
    path = tmp_path / "voucher.png"
    path.write_bytes(png)
    assert read_qr(path) == code


def test_the_image_is_greyscale_with_a_quiet_zone() -> None:
    image = qr_image(_code(), box_size=4, border=4)
    assert image.mode == "L"
    assert image.width == image.height
    corner = image.crop((0, 0, 16, 16))
    assert corner.getextrema() == (255, 255)  # four white modules around the symbol


def _photo(code: str, *, angle: float, blur: float, quality: int) -> bytes:
    """The code as a phone might photograph it: small, turned, soft, on a grey noisy desk, as a JPEG."""
    rng = random.Random(20100501)
    qr = qr_image(code, box_size=5).convert("RGB")
    turned = qr.rotate(angle, expand=True, fillcolor=(255, 255, 255), resample=Image.Resampling.BICUBIC)
    desk = Image.new("RGB", (turned.width + 400, turned.height + 300), (150, 140, 130))
    noise = Image.effect_noise(desk.size, 25).convert("RGB")
    desk = Image.blend(desk, noise, 0.25)
    desk.paste(turned, (rng.randrange(50, 350), rng.randrange(50, 250)))
    shot = desk.filter(ImageFilter.GaussianBlur(blur))
    out = io.BytesIO()
    shot.save(out, format="JPEG", quality=quality)
    return out.getvalue()


@pytest.mark.parametrize(("angle", "blur", "quality"), [(0, 0.8, 70), (13, 1.0, 60), (-28, 1.2, 50), (90, 0.5, 40)])
def test_a_photo_like_jpeg_reads(angle: float, blur: float, quality: int) -> None:
    code = _code()
    picture = _photo(code, angle=angle, blur=blur, quality=quality)
    assert picture.startswith(b"\xff\xd8")
    assert read_qr(picture) == code


def test_a_picture_without_a_code() -> None:
    assert _refusal(_png(Image.new("L", (300, 300), 255))) == "no_code"
    assert _refusal(_png(Image.effect_noise((300, 300), 60))) == "no_code"


def test_a_picture_with_several_codes_is_refused() -> None:
    first, second = qr_image(_code(1)), qr_image(_code(2))
    both = Image.new("L", (first.width + second.width, max(first.height, second.height)), 255)
    both.paste(first, (0, 0))
    both.paste(second, (first.width, 0))
    assert _refusal(_png(both)) == "several_codes"
    twice = Image.new("L", (first.width * 2, first.height), 255)
    twice.paste(first, (0, 0))
    twice.paste(first, (first.width, 0))
    assert _refusal(_png(twice)) == "several_codes"  # even the same code twice: which one was meant is unknown


@pytest.mark.parametrize("data", [b"", b"not a picture", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, b"%PDF-1.4\n"])
def test_what_is_not_a_picture(data: bytes) -> None:
    assert _refusal(data) == "image_unreadable"


def test_a_missing_file_or_a_folder(tmp_path: Path) -> None:
    assert _refusal(tmp_path / "none.png") == "image_unreadable"
    assert _refusal(tmp_path) == "image_unreadable"


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size: its header and nothing to decode (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("width", "height"), [(8000, 6000), (100_000, 100_000), (2**31 - 1, 2)])
def test_a_huge_picture_is_refused_before_it_is_decoded(width: int, height: int) -> None:
    assert width * height > MAX_PIXELS
    assert _refusal(_png_header_only(width, height)) == "image_unreadable"
