"""The 31 provincial companies and the number-segment (号段) rules that give a phone number its home province.

The home province of the ordering number decides the settlement (commission 15 : 85 between Shanghai
and the home province). Pure, except load_shipped_segments, which reads the table shipped as package data.
"""

import csv
import io
import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from itertools import pairwise
from types import MappingProxyType

from expo.errors import ExpoError


@dataclass(frozen=True)
class Province:
    """A provincial company, keyed by its GB/T 2260 two-digit code."""

    code: str
    name: str
    name_zh: str


_PROVINCE_ROWS = (
    ("11", "Beijing", "北京"),
    ("12", "Tianjin", "天津"),
    ("13", "Hebei", "河北"),
    ("14", "Shanxi", "山西"),
    ("15", "Inner Mongolia", "内蒙古"),
    ("21", "Liaoning", "辽宁"),
    ("22", "Jilin", "吉林"),
    ("23", "Heilongjiang", "黑龙江"),
    ("31", "Shanghai", "上海"),
    ("32", "Jiangsu", "江苏"),
    ("33", "Zhejiang", "浙江"),
    ("34", "Anhui", "安徽"),
    ("35", "Fujian", "福建"),
    ("36", "Jiangxi", "江西"),
    ("37", "Shandong", "山东"),
    ("41", "Henan", "河南"),
    ("42", "Hubei", "湖北"),
    ("43", "Hunan", "湖南"),
    ("44", "Guangdong", "广东"),
    ("45", "Guangxi", "广西"),
    ("46", "Hainan", "海南"),
    ("50", "Chongqing", "重庆"),
    ("51", "Sichuan", "四川"),
    ("52", "Guizhou", "贵州"),
    ("53", "Yunnan", "云南"),
    ("54", "Tibet", "西藏"),
    ("61", "Shaanxi", "陕西"),
    ("62", "Gansu", "甘肃"),
    ("63", "Qinghai", "青海"),
    ("64", "Ningxia", "宁夏"),
    ("65", "Xinjiang", "新疆"),
)

PROVINCES: Mapping[str, Province] = MappingProxyType(
    {code: Province(code=code, name=name, name_zh=name_zh) for code, name, name_zh in _PROVINCE_ROWS}
)
SHANGHAI = "31"

# Mainland mobile numbers are 11 digits starting 13..19; the optional country code is +86 / 86.
_NATIONAL = re.compile(r"1[3-9][0-9]{9}")
_WITH_COUNTRY_CODE = re.compile(r"\+?86(1[3-9][0-9]{9})")
_SEGMENT = re.compile(r"[0-9]{7}")
_CSV_HEADER = ["first_segment", "last_segment", "province_code"]


def province(code: str) -> Province:
    """The provincial company for a GB/T 2260 code; only the 31 companies exist."""
    try:
        return PROVINCES[code]
    except KeyError:
        raise ExpoError("unknown_province", f"no provincial company {code!r}") from None


def normalize_msisdn(raw: str) -> str:
    """A mainland mobile number as its 11 national digits; +86/86 and spaces or dashes are accepted."""
    compact = re.sub(r"[ \-]", "", raw)
    if _NATIONAL.fullmatch(compact):
        return compact
    international = _WITH_COUNTRY_CODE.fullmatch(compact)
    if international:
        return international.group(1)
    raise ExpoError("invalid_msisdn", f"{raw!r} is not a mainland mobile number")


def number_segment(msisdn: str) -> str:
    """The number segment (号段) is the first seven digits of the national number."""
    return normalize_msisdn(msisdn)[:7]


@dataclass(frozen=True)
class SegmentRange:
    """An inclusive range of 7-digit number segments belonging to one province."""

    first: str
    last: str
    province_code: str


def parse_segment_csv(text: str) -> list[SegmentRange]:
    """Parse a segment table (first_segment,last_segment,province_code); ranges must not overlap.

    Returns the ranges sorted by first segment. Any defect is refused whole, naming the line.
    """
    rows = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = next(rows, None)
    if header is None or [cell.strip() for cell in header] != _CSV_HEADER:
        raise _invalid(f"line 1: header must be {','.join(_CSV_HEADER)}")
    located: list[tuple[SegmentRange, int]] = []
    for row in rows:
        if not row or all(not cell.strip() for cell in row):
            continue
        located.append((_parse_row(row, line=rows.line_num), rows.line_num))
    located.sort(key=lambda pair: pair[0].first)
    for (previous, previous_line), (current, line) in pairwise(located):
        if current.first <= previous.last:
            raise _invalid(
                f"line {line}: {current.first}-{current.last} overlaps "
                f"line {previous_line}: {previous.first}-{previous.last}"
            )
    return [segment_range for segment_range, _ in located]


def _parse_row(row: list[str], *, line: int) -> SegmentRange:
    if len(row) != len(_CSV_HEADER):
        raise _invalid(f"line {line}: expected {len(_CSV_HEADER)} fields, got {len(row)}")
    first, last, code = (cell.strip() for cell in row)
    for segment in (first, last):
        if not _SEGMENT.fullmatch(segment):
            raise _invalid(f"line {line}: {segment!r} is not a 7-digit segment")
    if first > last:
        raise _invalid(f"line {line}: first segment {first} is after last segment {last}")
    if code not in PROVINCES:
        raise _invalid(f"line {line}: unknown province {code!r}")
    return SegmentRange(first=first, last=last, province_code=code)


def _invalid(detail: str) -> ExpoError:
    return ExpoError("invalid_segment_table", detail)


def find_segment_range(*, ranges: Sequence[SegmentRange], segment: str) -> SegmentRange | None:
    """The range holding a segment, in ranges sorted as parse_segment_csv returns them; None if unassigned."""
    index = bisect_right([r.first for r in ranges], segment) - 1
    if index >= 0 and segment <= ranges[index].last:
        return ranges[index]
    return None


def load_shipped_segments() -> list[SegmentRange]:
    """The segment table shipped with the code: ILLUSTRATIVE, not the operator's 2010 allocation.

    Generated by expo/data/make_segments.py from China Mobile's 2010 prefixes with the blocks
    dealt out to the 31 provinces in rotation (see docs/segments.md); replace it with the real table
    for anything but demos and tests.
    """
    text = (resources.files("expo") / "data" / "segments.csv").read_text(encoding="utf-8")
    return parse_segment_csv(text)
