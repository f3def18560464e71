"""JSON Schema validation of events for tests: every suite that builds an event can check it against schema version 1.

jsonschema is a test dependency only, so this helper lives with the tests and never in the Lambda code.
Import it as `from tests.core.schema_check import validate_event`.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator


@cache
def event_validator() -> Draft202012Validator:
    """Return a validator for handler/core/event_schema_v1.json, loaded once."""
    text = resources.files("handler.core").joinpath("event_schema_v1.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_errors(document: dict[str, Any]) -> list[str]:
    """Return every schema violation of an event document as "path: message", empty when it is valid."""
    errors = sorted(event_validator().iter_errors(document), key=lambda error: list(error.absolute_path))
    return [f"{'/'.join(str(part) for part in error.absolute_path) or '(root)'}: {error.message}" for error in errors]


def validate_event(document: Any) -> None:
    """Raise AssertionError listing the violations unless `document` is a valid event of schema version 1.

    Accepts an Event (its JSON encoding is checked, the form that subscribers receive), a JSON string or
    a decoded dict.
    """
    if hasattr(document, "to_json"):
        document = document.to_json()
    if isinstance(document, str):
        document = json.loads(document)

    errors = schema_errors(document)
    if errors:
        raise AssertionError("event does not match schema version 1:\n" + "\n".join(errors))
