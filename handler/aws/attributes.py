"""Validation of SQS and SNS message attributes, which both services limit the same way.

Attributes here are plain strings (`DataType` `String`), the type that subscription filter
policies match most simply. A name or value the services would reject raises `ValueError` naming
it, before any request is sent.
"""

from __future__ import annotations

import re
from typing import Mapping

# At most 10 attributes per message: SQS's limit, and SNS's limit for deliveries to SQS.
MAX_ATTRIBUTES = 10

# Letters, digits, `_`, `-` and `.`; at most 256 characters; no leading, trailing or doubled period;
# no `AWS.` or `Amazon.` prefix in any case.
_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", re.ASCII)
_MAX_NAME_LENGTH = 256
_RESERVED_PREFIXES = ("aws.", "amazon.")


def validated_attributes(attributes: Mapping[str, str] | None) -> dict[str, str]:
    """Return the attributes as a new dict after checking every name and value, or raise `ValueError`."""
    if not attributes:
        return {}
    if len(attributes) > MAX_ATTRIBUTES:
        raise ValueError(f"too many message attributes: {len(attributes)}, at most {MAX_ATTRIBUTES} are allowed")

    checked = {}
    for name, value in attributes.items():
        _check_name(name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"message attribute {name!r} has value {value!r}: expected a non-empty string")
        checked[name] = value
    return checked


def attribute_size(attributes: Mapping[str, str]) -> int:
    """Return the bytes the attributes add to a message's size (name, type and value, as SQS counts)."""
    return sum(len(name.encode()) + len("String") + len(value.encode()) for name, value in attributes.items())


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"invalid message attribute name {name!r}: expected a non-empty string")
    if len(name) > _MAX_NAME_LENGTH or not _NAME.fullmatch(name):
        raise ValueError(
            f"invalid message attribute name {name[:80]!r}: use at most {_MAX_NAME_LENGTH} letters, digits, "
            "'_', '-' and single inner periods"
        )
    if name.lower().startswith(_RESERVED_PREFIXES):
        raise ValueError(f"invalid message attribute name {name!r}: the prefixes 'AWS.' and 'Amazon.' are reserved")
