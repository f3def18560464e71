"""Validation of the identifiers that end up in CSS request paths.

Every value that reaches a URL passes through one of these functions first, so that no message can
change the host, the path or the query of a request. The patterns are anchored and ASCII-only:
look-alike Unicode digits, whitespace, CR/LF, `%2F` and friends are all rejected, never repaired.
"""

from __future__ import annotations

import re
from typing import Final

UPGRADE_TYPES: Final = ("same", "cross", "cross-engine")

# The older documents spell the cross-engine type `crossEngine`; it is accepted as input only.
_UPGRADE_TYPE_SPELLINGS: Final = {
    "same": "same",
    "cross": "cross",
    "cross-engine": "cross-engine",
    "crossEngine": "cross-engine",
}

_CLUSTER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII | re.IGNORECASE)
_PROJECT_ID = re.compile(r"[0-9a-f]{32}", re.ASCII | re.IGNORECASE)
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+(-[0-9]+)?", re.ASCII)

# Long enough to recognise a value in an error message, short enough that a huge hostile
# string never floods a log line.
_MAX_SHOWN = 80


class InvalidValue(ValueError):
    """A value that cannot be used as the named field. Carries the field name and the offending value."""

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"invalid {field} {shown(value)}: expected {expected}")


def shown(value: object) -> str:
    """Render a value for an error message: repr, cut to a safe length."""
    text = repr(value)
    if len(text) > _MAX_SHOWN:
        text = f"{text[:_MAX_SHOWN]}... ({len(text)} characters)"
    return text


def cluster_id(value: object, field: str = "cluster_id") -> str:
    """Return a cluster ID (a UUID, 8-4-4-4-12 hex digits) in lower case, or raise InvalidValue."""
    if not isinstance(value, str) or not _CLUSTER_ID.fullmatch(value):
        raise InvalidValue(field, value, "a UUID such as ea244205-d641-45d9-9dcb-ab2236bcd07e")
    return value.lower()


def project_id(value: object, field: str = "project_id") -> str:
    """Return a project ID (32 hex digits) in lower case, or raise InvalidValue."""
    if not isinstance(value, str) or not _PROJECT_ID.fullmatch(value):
        raise InvalidValue(field, value, "32 hexadecimal digits such as 6204a5bd270343b5885144cf9c8c158d")
    return value.lower()


def region(value: object, field: str = "region") -> str:
    """Return a region name such as ap-southeast-1 or eu-de, or raise InvalidValue."""
    if not isinstance(value, str) or not _REGION.fullmatch(value):
        raise InvalidValue(field, value, "a region name such as ap-southeast-1")
    return value


def upgrade_type(value: object, field: str = "upgrade_type") -> str:
    """Return the canonical upgrade type (`same`, `cross`, `cross-engine`), or raise InvalidValue."""
    canonical = _UPGRADE_TYPE_SPELLINGS.get(value) if isinstance(value, str) else None
    if canonical is None:
        raise InvalidValue(field, value, "one of same, cross, cross-engine")
    return canonical


def task_id(value: object, field: str = "task_id") -> str:
    """Return an upgrade task ID (the API's `action_id`), which CSS issues as a UUID or plain token."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", value, re.ASCII):
        raise InvalidValue(field, value, "letters, digits, '-' or '_' (at most 64)")
    return value
