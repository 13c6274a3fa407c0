"""QR pictures of ticket codes: drawn with `qrcode` and Pillow, read back from a photo or file with zxing-cpp.

Reading refuses a picture that holds no QR code (`no_code`) or more than one (`several_codes`): a clerk
or gate must never pick one of two vouchers in a picture at random.
"""

import io
from pathlib import Path

import qrcode
import zxingcpp
from PIL import Image, UnidentifiedImageError
from qrcode.constants import ERROR_CORRECT_M
from qrcode.image.pil import PilImage

from ticketing.signed_codes import CodeRefused

MAX_PIXELS = 40_000_000  # a phone camera's photo is well below; a decompression bomb is not


def qr_image(text: str, *, box_size: int = 6, border: int = 4) -> Image.Image:
    """The QR code of a text as a Pillow image (error correction M: a crumpled printout still reads)."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=border, image_factory=PilImage)
    code.add_data(text)
    code.make(fit=True)
    image = code.make_image()
    assert isinstance(image, PilImage)
    return image.get_image().convert("L")


def qr_png(text: str, *, box_size: int = 6) -> bytes:
    """The QR code of a text as PNG bytes."""
    out = io.BytesIO()
    qr_image(text, box_size=box_size).save(out, format="PNG", optimize=True)
    return out.getvalue()


def read_qr(source: bytes | Path) -> str:
    """The text of the one QR code in a picture (PNG, JPEG, ... as bytes or a file).

    Refusals: `image_unreadable` (not a picture), `no_code`, `several_codes`."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise CodeRefused("image_unreadable", "the picture is too large")
            picture = opened.convert("L")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise CodeRefused("image_unreadable", f"not a picture that can be read ({type(error).__name__})") from None
    found = [result for result in zxingcpp.read_barcodes(picture) if result.format == zxingcpp.BarcodeFormat.QRCode]
    texts = {result.text for result in found}
    if not found:
        raise CodeRefused("no_code", "no QR code was found in the picture")
    if len(found) > 1:
        raise CodeRefused("several_codes", f"the picture holds {len(found)} QR codes ({len(texts)} different)")
    return found[0].text
