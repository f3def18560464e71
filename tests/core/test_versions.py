"""Tests of version parsing, version ranges, image-name order and build dates."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handler.core.versions import build_date, image_name_key, parse_range, parse_version


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7", (7,)),
        ("7.10.2", (7, 10, 2)),
        ("2.11.0", (2, 11)),
        ("7.0.0", (7,)),
        ("0", (0,)),
        ("0.0", (0,)),
        ("1.03", (1, 3)),
    ],
)
def test_parse_version_values(text: str, expected: tuple[int, ...]) -> None:
    assert parse_version(text) == expected


@pytest.mark.parametrize(
    ("higher", "lower"),
    [
        ("7.10", "7.9"),
        ("7.10.2", "7.9.3"),
        ("2.11.0", "1.3.6"),
        ("8.0.1", "8"),
        ("7.10.1", "7.10"),
        ("10.0", "9.99.99"),
    ],
)
def test_parse_version_order(higher: str, lower: str) -> None:
    assert parse_version(higher) > parse_version(lower)


@pytest.mark.parametrize(("first", "second"), [("7.10", "7.10.0"), ("8", "8.0.0"), ("1.3.6", "1.3.6.0")])
def test_parse_version_equal_forms(first: str, second: str) -> None:
    assert parse_version(first) == parse_version(second)


@pytest.mark.parametrize(
    "text",
    ["", "7.", ".7", "7..1", "v7.10", "7.10.2-SNAPSHOT", " 7.10", "7.10 ", "7,10", "٧.١", "1" * 65, "x"],
)
def test_parse_version_rejects(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_version(text)
    assert "invalid version" in str(caught.value)
    assert repr(text)[:40] in str(caught.value)


@pytest.mark.parametrize("value", [None, 7, 7.1, ["7"]])
def test_parse_version_rejects_non_text(value: object) -> None:
    with pytest.raises(ValueError) as caught:
        parse_version(value)  # type: ignore[arg-type]
    assert repr(value) in str(caught.value)


@pytest.mark.parametrize(
    ("later", "earlier"),
    [
        ("7.10.2_24.3.10_0109", "7.10.2_24.3.4_0109"),
        ("24.3.10", "24.3.4"),
        ("7.10.2_24.3.4_0110", "7.10.2_24.3.4_0109"),
        ("7.10.2_24.3.4_0109", "7.9.3_24.3.4_0109"),
        ("1.3.6_24.3.4_0109b", "1.3.6_24.3.4_0109a"),
        ("1.3.6_24.3.4_0109a", "1.3.6_24.3.4_0109"),
        ("b", "a"),
        ("a1", "a"),
    ],
)
def test_image_name_order(later: str, earlier: str) -> None:
    assert image_name_key(later) > image_name_key(earlier)


def test_image_name_sorting() -> None:
    names = ["24.3.10", "24.3.4", "24.3.9", "24.10.1", "24.3.4a"]

    assert sorted(names, key=image_name_key) == ["24.3.4", "24.3.4a", "24.3.9", "24.3.10", "24.10.1"]


def test_image_name_leading_zeros_distinct() -> None:
    assert image_name_key("0109") != image_name_key("109")


def test_image_name_unicode_digits() -> None:
    # Superscript two is a digit for str.isdigit() but not for int(); it must sort as text.
    assert image_name_key("7²") > image_name_key("7")


@given(st.lists(st.text(alphabet="0123456789._ab", max_size=12), min_size=2, max_size=6))
@settings(max_examples=200, deadline=None)
def test_image_name_order_total(names: list[str]) -> None:
    ordered = sorted(names, key=image_name_key)

    assert sorted(reversed(names), key=image_name_key) == ordered
    for first, second in zip(ordered, ordered[1:]):
        assert image_name_key(first) != image_name_key(second) or first == second


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        (">=7.10,<8", ["7.10", "7.10.0", "7.10.2", "7.17.25"], ["7.9.3", "8", "8.0.0", "8.1"]),
        (">7.10", ["7.10.1", "8"], ["7.10", "7.10.0", "7.9"]),
        ("<=2.11", ["2.11", "2.11.0", "1.3.6"], ["2.11.1", "2.19"]),
        ("<2", ["1.3.6"], ["2", "2.0.0", "2.11.0"]),
        ("==7.10", ["7.10", "7.10.0"], ["7.10.2"]),
        ("!=7.10.2", ["7.10.1", "7.9"], ["7.10.2", "7.10.2.0"]),
        (" >= 7.10 , != 7.10.1 , < 8 ", ["7.10.2", "7.10"], ["7.10.1", "8.0"]),
        (">=2.11", ["2.11.0", "2.19.0"], ["1.3.6"]),
    ],
)
def test_range_contains(text: str, inside: list[str], outside: list[str]) -> None:
    version_range = parse_range(text)

    for version in inside:
        assert version_range.contains(version), f"{version} should be in {text}"
    for version in outside:
        assert not version_range.contains(version), f"{version} should not be in {text}"


def test_range_contains_tuple() -> None:
    assert parse_range(">=7.10").contains((7, 10, 2))


def test_range_keeps_text() -> None:
    assert str(parse_range(">=7.10,<8")) == ">=7.10,<8"


def test_range_contains_malformed_version() -> None:
    with pytest.raises(ValueError, match="7.x"):
        parse_range(">=7").contains("7.x")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("", "''"),
        ("   ", "'   '"),
        (">=7.10,", "empty clause"),
        (",<8", "empty clause"),
        ("7.10", "clause '7.10' does not start with"),
        (">=7.10,=<8", "clause '=<8'"),
        ("~=7.10", "clause '~=7.10'"),
        (">=7.x", "clause '>=7.x' has an invalid version '7.x'"),
        (">=7.10,<8-rc1", "clause '<8-rc1' has an invalid version '8-rc1'"),
        (">=", "clause '>=' has an invalid version ''"),
        ("=>7", "clause '=>7'"),
        ("==7.*", "clause '==7.*'"),
    ],
)
def test_range_errors(text: str, named: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_range(text)
    message = str(caught.value)
    assert message.startswith(f"invalid version range {text!r}")
    assert named in message


def test_range_rejects_non_text() -> None:
    with pytest.raises(ValueError, match="invalid version range 7"):
        parse_range(7)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "today", "expected"),
    [
        # The plain case: the release line's own year.
        ("7.10.2_24.3.4_0109", date(2024, 6, 1), date(2024, 1, 9)),
        # Later in the following year, the following year's date is the later one in the past.
        ("7.10.2_24.3.4_0109", date(2025, 6, 1), date(2025, 1, 9)),
        # Around new year: December of the line's year, evaluated in January.
        ("7.10.2_24.3.4_1230", date(2025, 1, 5), date(2024, 12, 30)),
        # January of the following year, evaluated shortly after.
        ("7.10.2_24.3.4_0105", date(2025, 1, 10), date(2025, 1, 5)),
        # Built today counts as not in the future.
        ("7.10.2_24.3.4_0105", date(2025, 1, 5), date(2025, 1, 5)),
        ("7.10.2_24.3.4_0106", date(2025, 1, 5), date(2024, 1, 6)),
        # 29 February exists only in 2024, so for line 23 only 2024-02-29 qualifies.
        ("1.3.6_23.1.1_0229", date(2024, 3, 1), date(2024, 2, 29)),
        ("1.3.6_24.1.1_0229", date(2025, 3, 1), date(2024, 2, 29)),
        ("2.11.0_99.1.1_1231", date(2100, 1, 1), date(2099, 12, 31)),
        ("7_24.3.4_0109", date(2024, 6, 1), date(2024, 1, 9)),
    ],
)
def test_build_date_values(name: str, today: date, expected: date) -> None:
    assert build_date(name, today) == expected


@pytest.mark.parametrize(
    ("name", "today"),
    [
        # A day that exists in no year.
        ("7.10.2_24.3.4_0230", date(2025, 6, 1)),
        ("7.10.2_24.3.4_1301", date(2025, 6, 1)),
        ("7.10.2_24.3.4_0000", date(2025, 6, 1)),
        ("7.10.2_24.3.4_0132", date(2025, 6, 1)),
        # 29 February in neither 2025 nor 2026.
        ("7.10.2_25.3.4_0229", date(2026, 6, 1)),
        # In the future of both candidate years.
        ("7.10.2_24.3.4_0601", date(2024, 5, 1)),
        ("7.10.2_25.3.4_0109", date(2024, 12, 31)),
        # Other forms of name.
        ("7.10.2_24.3.4", date(2025, 6, 1)),
        ("7.10.2_24.3_0109", date(2025, 6, 1)),
        ("7.10.2_2024.3.4_0109", date(2025, 6, 1)),
        ("7.10.2_24.3.4_109", date(2025, 6, 1)),
        ("7.10.2_24.3.4_0109_1", date(2025, 6, 1)),
        ("v7.10.2_24.3.4_0109", date(2025, 6, 1)),
        ("css-7.10.2", date(2025, 6, 1)),
        ("", date(2025, 6, 1)),
        ("7.10.2_٢٤.3.4_0109", date(2025, 6, 1)),
    ],
)
def test_build_date_unknown(name: str, today: date) -> None:
    assert build_date(name, today) is None


@given(
    year=st.integers(min_value=0, max_value=98),
    month=st.integers(min_value=1, max_value=12),
    day=st.integers(min_value=1, max_value=28),
    today=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)),
)
@settings(max_examples=300, deadline=None)
def test_build_date_never_future(year: int, month: int, day: int, today: date) -> None:
    name = f"7.10.2_{year:02d}.3.4_{month:02d}{day:02d}"

    built = build_date(name, today)

    if built is not None:
        assert built <= today
        assert built.year in (2000 + year, 2001 + year)
        assert (built.month, built.day) == (month, day)
    else:
        assert date(2000 + year, month, day) > today
