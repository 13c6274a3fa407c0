"""Fonts for the pictures the programs print (souvenir tickets, physical tickets, slips' Chinese text).

The test command installs Debian's fonts-wqy-microhei; the other candidates are what a desktop may have.
Without any of them Pillow's built-in font draws Latin text only.
"""

from functools import cache
from pathlib import Path

from PIL import ImageFont

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

LATIN = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",)
MONO = ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",)
CJK = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)


@cache
def _first(candidates: tuple[str, ...], size: int) -> Font:
    for candidate in candidates:
        if Path(candidate).is_file():
            return ImageFont.truetype(candidate, size)
    return ImageFont.load_default()


def cjk_font(size: int) -> Font:
    """A font that draws Chinese and Latin text."""
    return _first((*CJK, *LATIN), size)


def latin_font(size: int) -> Font:
    """A proportional Latin font."""
    return _first((*LATIN, *CJK), size)


def mono_font(size: int) -> Font:
    """A monospaced font, for codes a person types."""
    return _first((*MONO, *CJK), size)
