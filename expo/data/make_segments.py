"""Generate the shipped, ILLUSTRATIVE number-segment table (segments.csv) next to this script.

We do not have the operator's official 2010 segment allocation, so this keeps its structure only:
for each China Mobile 2010 prefix, the 10,000 four-digit blocks after it are dealt out as 31
contiguous ranges, one per province, the province order rotated by the prefix's index so every
province appears under many prefixes. Blocks 9900..9999 of every prefix stay unassigned, and other
operators' prefixes (130-133, 153, 180, 189 ...) are absent, so unknown segments exist on both counts.

Deterministic: `python -m expo.data.make_segments` (from the project root) rewrites
segments.csv byte for byte the same.
"""

from pathlib import Path

from expo.provinces import PROVINCES

CHINA_MOBILE_2010_PREFIXES = (
    "134", "135", "136", "137", "138", "139",
    "150", "151", "152", "157", "158", "159",
    "182", "187", "188",
)  # fmt: skip
ASSIGNED_BLOCKS = 9900  # blocks 0000..9899 are dealt out; 9900..9999 stay unassigned
HEADER = "first_segment,last_segment,province_code"


def segment_rows() -> list[tuple[str, str, str]]:
    """Every (first, last, province_code) row, in segment order."""
    codes = list(PROVINCES)
    rows = []
    for index, prefix in enumerate(CHINA_MOBILE_2010_PREFIXES):
        shift = index % len(codes)
        rotated = codes[shift:] + codes[:shift]
        for slot, code in enumerate(rotated):
            # Integer bounds so the 31 ranges tile 0..9899 exactly, differing in size by at most one.
            start = slot * ASSIGNED_BLOCKS // len(codes)
            end = (slot + 1) * ASSIGNED_BLOCKS // len(codes) - 1
            rows.append((f"{prefix}{start:04d}", f"{prefix}{end:04d}", code))
    return rows


def render_csv() -> str:
    """The table as CSV text with its header and a trailing newline."""
    return "\n".join([HEADER, *(",".join(row) for row in segment_rows())]) + "\n"


def main() -> None:
    """Write segments.csv next to this script."""
    Path(__file__).with_name("segments.csv").write_text(render_csv(), encoding="utf-8")


if __name__ == "__main__":
    main()
