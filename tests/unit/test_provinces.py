"""The 31 provincial companies, phone-number normalization and the number-segment table."""

from importlib import resources
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from expo.data.make_segments import render_csv
from expo.errors import ExpoError
from expo.provinces import (
    PROVINCES,
    SHANGHAI,
    Province,
    SegmentRange,
    find_segment_range,
    load_shipped_segments,
    normalize_msisdn,
    number_segment,
    parse_segment_csv,
    province,
)

EXPECTED_PROVINCES = [
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
]
MOBILE_PREFIXES = [
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "157",
    "158",
    "159",
    "182",
    "187",
    "188",
]
OTHER_OPERATOR_PREFIXES = ["130", "131", "132", "133", "153", "155", "156", "180", "185", "186", "189"]


# --- provinces -------------------------------------------------------------------------------


def test_thirty_one_provinces_in_code_order() -> None:
    assert [(p.code, p.name, p.name_zh) for p in PROVINCES.values()] == EXPECTED_PROVINCES
    assert list(PROVINCES) == sorted(PROVINCES)


@pytest.mark.parametrize(("code", "name", "name_zh"), EXPECTED_PROVINCES)
def test_province_lookup(code: str, name: str, name_zh: str) -> None:
    assert province(code) == Province(code=code, name=name, name_zh=name_zh)


def test_shanghai() -> None:
    assert province(SHANGHAI).name == "Shanghai"


@pytest.mark.parametrize("code", ["00", "16", "71", "81", "1", "310", "", "sh"])
def test_unknown_province(code: str) -> None:
    with pytest.raises(ExpoError) as caught:
        province(code)
    assert caught.value.code == "unknown_province"


# --- phone numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "13912345678",
        "+8613912345678",
        "8613912345678",
        "139 1234 5678",
        "139-1234-5678",
        "+86 139-1234-5678",
        " 13912345678 ",
    ],
)
def test_normalize_msisdn(raw: str) -> None:
    assert normalize_msisdn(raw) == "13912345678"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "1391234567",  # ten digits
        "139123456789",  # twelve digits
        "23912345678",  # not a mobile number
        "12012345678",  # 12x is not a mobile prefix
        "+8513912345678",  # another country
        "008613912345678",
        "+86+8613912345678",
        "1391234567a",
        "(139)12345678",
        "139.1234.5678",
        "１３９１２３４５６７８",  # full-width digits
    ],
)
def test_invalid_msisdn(raw: str) -> None:
    with pytest.raises(ExpoError) as caught:
        normalize_msisdn(raw)
    assert caught.value.code == "invalid_msisdn"


def test_number_segment() -> None:
    assert number_segment("+86 139-1234-5678") == "1391234"
    assert number_segment("18800000000") == "1880000"


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_normalize_is_idempotent_and_accepts_country_code(number: str) -> None:
    assert normalize_msisdn(number) == number
    assert normalize_msisdn(f"+86{number}") == number
    assert normalize_msisdn(normalize_msisdn(number)) == number


# --- segment tables --------------------------------------------------------------------------

HEADER = "first_segment,last_segment,province_code\n"


def test_parse_sorts_and_keeps_fields() -> None:
    text = HEADER + "1390000,1399999,31\n1380000,1380999,11\n\n"
    assert parse_segment_csv(text) == [
        SegmentRange(first="1380000", last="1380999", province_code="11"),
        SegmentRange(first="1390000", last="1399999", province_code="31"),
    ]


def test_parse_single_segment_range_and_bom() -> None:
    ranges = parse_segment_csv("\ufeff" + HEADER + "1390000,1390000,31\n")
    assert ranges == [SegmentRange(first="1390000", last="1390000", province_code="31")]


@pytest.mark.parametrize(
    ("text", "detail_fragment"),
    [
        ("", "line 1"),
        ("first,last,province\n1390000,1390001,31\n", "line 1"),
        (HEADER + "139000,1390001,31\n", "line 2"),  # six digits
        (HEADER + "1390000,13900x1,31\n", "line 2"),
        (HEADER + "1390000,1390001,31\n13900001,13900002,31\n", "line 3"),  # eight digits
        (HEADER + "1390001,1390000,31\n", "line 2"),  # first > last
        (HEADER + "1390000,1390001,99\n", "line 2"),  # unknown province
        (HEADER + "1390000,1390001\n", "line 2"),  # missing field
        (HEADER + "1390000,1390001,31,x\n", "line 2"),
        (HEADER + "1390000,1390500,31\n1380000,1380001,11\n1390500,1390600,32\n", "line 4"),
        (HEADER + "1390000,1390500,31\n1390000,1390500,31\n", "line 3"),  # duplicate
        (HEADER + "1390100,1390200,31\n1390000,1399999,11\n", "line 3"),  # containing
    ],
)
def test_invalid_segment_table(text: str, detail_fragment: str) -> None:
    with pytest.raises(ExpoError) as caught:
        parse_segment_csv(text)
    assert caught.value.code == "invalid_segment_table"
    assert detail_fragment in caught.value.detail


def test_find_segment_range_bounds() -> None:
    ranges = parse_segment_csv(HEADER + "1380000,1380999,11\n1390000,1399999,31\n")
    assert find_segment_range(ranges=ranges, segment="1379999") is None
    assert find_segment_range(ranges=ranges, segment="1380000") == ranges[0]
    assert find_segment_range(ranges=ranges, segment="1380999") == ranges[0]
    assert find_segment_range(ranges=ranges, segment="1381000") is None
    assert find_segment_range(ranges=ranges, segment="1399999") == ranges[1]
    assert find_segment_range(ranges=[], segment="1390000") is None


# --- the shipped table -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> list[SegmentRange]:
    return load_shipped_segments()


def test_shipped_table_is_the_generator_output() -> None:
    text = (resources.files("expo") / "data" / "segments.csv").read_text(encoding="utf-8")
    assert text == render_csv()


def test_shipped_table_shape(shipped: list[SegmentRange]) -> None:
    assert len(shipped) == 15 * 31
    assert {r.province_code for r in shipped} == set(PROVINCES)
    for prefix in MOBILE_PREFIXES:
        under_prefix = [r for r in shipped if r.first.startswith(prefix)]
        assert {r.province_code for r in under_prefix} == set(PROVINCES), prefix
        assert under_prefix[0].first == f"{prefix}0000"
        assert under_prefix[-1].last == f"{prefix}9899"
        # contiguous: every block 0000..9899 is assigned exactly once
        for left, right in pairwise(under_prefix):
            assert int(right.first) == int(left.last) + 1


def test_shipped_table_rotates_provinces(shipped: list[SegmentRange]) -> None:
    first_owner = {r.first[:3]: r.province_code for r in shipped if r.first.endswith("0000")}
    assert first_owner["134"] == "11"
    assert first_owner["135"] == "12"
    assert len(set(first_owner.values())) == 15


@pytest.mark.parametrize("prefix", MOBILE_PREFIXES)
@pytest.mark.parametrize("block", ["9900", "9950", "9999"])
def test_shipped_table_leaves_top_blocks_unassigned(shipped: list[SegmentRange], prefix: str, block: str) -> None:
    assert find_segment_range(ranges=shipped, segment=prefix + block) is None


@pytest.mark.parametrize("prefix", OTHER_OPERATOR_PREFIXES)
@pytest.mark.parametrize("block", ["0000", "5000", "9899"])
def test_shipped_table_leaves_other_operators_unassigned(shipped: list[SegmentRange], prefix: str, block: str) -> None:
    assert find_segment_range(ranges=shipped, segment=prefix + block) is None


def test_shipped_lookup_of_a_number(shipped: list[SegmentRange]) -> None:
    found = find_segment_range(ranges=shipped, segment=number_segment("+86 139-1234-5678"))
    assert found == SegmentRange(first="1390958", last="1391276", province_code="31")
