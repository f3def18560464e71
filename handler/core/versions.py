"""Version numbers, version ranges, image-name order and image build dates for the selection policy.

Written by hand because image names are not PEP 440 versions: `packaging` rejects
`7.10.2_24.3.4_0109`, and its specifier rules differ from the policy's. The range syntax that the
policy accepts is small enough to read in one screen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final

from handler.core.ids import shown

_VERSION: Final = re.compile(r"[0-9]+(?:\.[0-9]+)*")

# Real versions are short. The bound keeps int() away from Python's limit on huge digit strings.
_MAX_VERSION_LENGTH: Final = 64

# Longest operators first, so that `>=7` is not read as `>` followed by `=7`.
_OPERATORS: Final = (">=", "<=", "==", "!=", ">", "<")

# `<version>_<YY>.<n>.<n>_<MMDD>`, for example `7.10.2_24.3.4_0109`.
_DATED_IMAGE_NAME: Final = re.compile(
    r"[0-9]+(?:\.[0-9]+)*_(?P<year>[0-9]{2})\.[0-9]+\.[0-9]+_(?P<month>[0-9]{2})(?P<day>[0-9]{2})"
)

_NAME_PARTS: Final = re.compile(r"[0-9]+|[^0-9]+")


def parse_version(text: str) -> tuple[int, ...]:
    """Parse a dotted version such as `7.10.2` into a tuple that compares as versions do.

    Trailing zero parts are dropped (`7.10.0` gives `(7, 10)`), so equal versions give equal tuples
    and plain tuple comparison orders them: `7.10` > `7.9`, `8.0.1` > `8`. Raises ValueError naming
    the value for anything other than ASCII digits separated by single dots.
    """
    if not isinstance(text, str) or len(text) > _MAX_VERSION_LENGTH or not _VERSION.fullmatch(text):
        raise ValueError(f"invalid version {shown(text)}: expected numbers separated by dots, such as 7.10.2")

    parts = [int(part) for part in text.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def image_name_key(name: str) -> tuple[tuple[int, int, str], ...]:
    """Return a sort key that orders image names part by part, with runs of digits compared as numbers.

    `7.10.2_24.3.10_0109` sorts after `7.10.2_24.3.4_0109`. Each part also carries its text, so
    names that differ only in leading zeros (`0109`, `109`) still get different keys and the order
    is total.
    """
    key = []
    for part in _NAME_PARTS.findall(name):
        if part[0] in "0123456789":
            key.append((0, int(part), part))
        else:
            key.append((1, 0, part))
    return tuple(key)


@dataclass(frozen=True)
class VersionClause:
    """One comparison of a version range, such as `>=7.10`."""

    operator: str
    version: tuple[int, ...]

    def contains(self, version: tuple[int, ...]) -> bool:
        if self.operator == ">=":
            return version >= self.version
        if self.operator == ">":
            return version > self.version
        if self.operator == "<=":
            return version <= self.version
        if self.operator == "<":
            return version < self.version
        if self.operator == "==":
            return version == self.version
        return version != self.version


@dataclass(frozen=True)
class VersionRange:
    """A set of versions given as comma-separated clauses, all of which must hold (`>=7.10,<8`)."""

    text: str
    clauses: tuple[VersionClause, ...]

    def contains(self, version: str | tuple[int, ...]) -> bool:
        """Return whether every clause holds for the version (a string is parsed with parse_version)."""
        parsed = parse_version(version) if isinstance(version, str) else version
        return all(clause.contains(parsed) for clause in self.clauses)

    def __str__(self) -> str:
        return self.text


def parse_range(text: str) -> VersionRange:
    """Parse a version range such as `>=7.10,<8`.

    Clauses are separated by commas, and spaces around a clause or after its operator are ignored.
    Each clause is one of `>=`, `>`, `<=`, `<`, `==`, `!=` followed by a version. Raises ValueError
    naming the range and the clause that is wrong.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"invalid version range {shown(text)}: expected clauses such as >=7.10,<8")

    clauses = tuple(_parse_clause(text, clause) for clause in text.split(","))
    return VersionRange(text=text, clauses=clauses)


def _parse_clause(text: str, clause: str) -> VersionClause:
    stripped = clause.strip()
    if not stripped:
        raise ValueError(f"invalid version range {shown(text)}: empty clause, expected clauses such as >=7.10,<8")

    operator = next((candidate for candidate in _OPERATORS if stripped.startswith(candidate)), None)
    if operator is None:
        raise ValueError(
            f"invalid version range {shown(text)}: clause {shown(stripped)} does not start with"
            " one of >=, >, <=, <, ==, !="
        )

    version_text = stripped[len(operator) :].strip()
    try:
        version = parse_version(version_text)
    except ValueError:
        raise ValueError(
            f"invalid version range {shown(text)}: clause {shown(stripped)} has an invalid version"
            f" {shown(version_text)}, expected numbers separated by dots, such as 7.10.2"
        ) from None
    return VersionClause(operator=operator, version=version)


def build_date(display_name: str, today: date) -> date | None:
    """Return the build day that an image name such as `7.10.2_24.3.4_0109` carries, or None if unknown.

    The name gives month and day, and the release line's year 20YY, but a line that starts in 20YY
    can still build in January of 20YY+1. So the build date is the later of 20YY-MM-DD and
    20(YY+1)-MM-DD that is not after `today`, which errs toward a younger image. Returns None for
    names of another form, for a day that exists in neither year (`0230`), and when both dates
    are in the future.
    """
    match = _DATED_IMAGE_NAME.fullmatch(display_name)
    if match is None:
        return None

    line_year = 2000 + int(match["year"])
    month = int(match["month"])
    day = int(match["day"])

    for year in (line_year + 1, line_year):
        try:
            built = date(year, month, day)
        except ValueError:
            continue
        if built <= today:
            return built
    return None
