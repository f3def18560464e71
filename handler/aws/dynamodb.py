"""DynamoDB item calls (put, update, get, delete) and the conversion between Python values and
DynamoDB's typed JSON (`{"S": "text"}`, `{"N": "42"}`, ...).

A conditional write whose condition is false raises `ConditionalCheckFailed`, a class of its own,
because for "put unless it exists" that is an expected outcome, not a failure.
"""

from __future__ import annotations

import base64
import math
from decimal import Decimal
from typing import Any, Mapping

from handler.aws.client import AwsClient, get_client
from handler.aws.endpoints import DYNAMODB, region_of_identifier, resolve_endpoint
from handler.retry import Deadline

# DynamoDB's names for what to return from an update.
_RETURN_VALUES = frozenset({"NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"})


def to_attribute_value(value: Any, path: str = "value") -> dict[str, Any]:
    """Convert a Python value to DynamoDB's typed JSON.

    None becomes NULL, bool BOOL, int, float and Decimal N (sent as decimal text), str S and bytes B.
    A mapping with string keys becomes M and a list or tuple L. A non-empty set of strings, numbers
    or bytes becomes SS, NS or BS. `path` names the value in errors.
    """
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float, Decimal)):
        return {"N": _number_text(value, path)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (bytes, bytearray)):
        return {"B": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Mapping):
        return {"M": _typed_map(value, path)}
    if isinstance(value, (list, tuple)):
        return {"L": [to_attribute_value(item, f"{path}[{index}]") for index, item in enumerate(value)]}
    if isinstance(value, (set, frozenset)):
        return _typed_set(value, path)
    raise TypeError(f"{path} has type {type(value).__name__}, which DynamoDB cannot store")


def from_attribute_value(typed: Mapping[str, Any]) -> Any:
    """Convert DynamoDB's typed JSON back to Python values.

    N becomes int when it has no fraction or exponent, else Decimal (exact, as DynamoDB stores it).
    """
    if not isinstance(typed, Mapping) or len(typed) != 1:
        raise ValueError(f"invalid DynamoDB attribute value {typed!r}: expected one type key")

    kind, raw = next(iter(typed.items()))
    if kind == "NULL":
        return None
    if kind in ("S", "BOOL"):
        return raw
    if kind == "N":
        return _parse_number(raw)
    if kind == "B":
        return base64.b64decode(raw)
    if kind == "M":
        return {name: from_attribute_value(item) for name, item in raw.items()}
    if kind == "L":
        return [from_attribute_value(item) for item in raw]
    if kind == "SS":
        return set(raw)
    if kind == "NS":
        return {_parse_number(item) for item in raw}
    if kind == "BS":
        return {base64.b64decode(item) for item in raw}
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def to_item(item: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Convert a mapping of attribute names to Python values into a typed DynamoDB item."""
    return _typed_map(item, "item")


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """Convert a typed DynamoDB item into a mapping of attribute names to Python values."""
    return {name: from_attribute_value(value) for name, value in item.items()}


def put_item(
    table: str,
    item: Mapping[str, Any],
    condition_expression: str | None = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
    deadline: Deadline | None = None,
    *,
    client: AwsClient | None = None,
) -> None:
    """Write an item, optionally only when `condition_expression` holds.

    `names` fills `#placeholders` and `values` (Python values) fills `:placeholders` of the
    expression. Raises `ConditionalCheckFailed` when the condition is false.
    """
    payload: dict[str, Any] = {"TableName": table, "Item": to_item(item)}
    payload.update(_expression_fields(condition_expression, names, values))
    _call(client, "PutItem", table, payload, deadline)


def update_item(
    table: str,
    key: Mapping[str, Any],
    update_expression: str,
    condition_expression: str | None = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
    return_values: str = "NONE",
    deadline: Deadline | None = None,
    *,
    client: AwsClient | None = None,
) -> dict[str, Any]:
    """Apply `update_expression` to the item with `key` and return the attributes that `return_values` selects.

    Raises `ConditionalCheckFailed` when `condition_expression` is false.
    """
    if return_values not in _RETURN_VALUES:
        raise ValueError(f"invalid return_values {return_values!r}: expected one of {sorted(_RETURN_VALUES)}")
    payload: dict[str, Any] = {
        "TableName": table,
        "Key": to_item(key),
        "UpdateExpression": update_expression,
        "ReturnValues": return_values,
    }
    payload.update(_expression_fields(condition_expression, names, values))
    response = _call(client, "UpdateItem", table, payload, deadline)
    return from_item(response.get("Attributes") or {})


def get_item(
    table: str,
    key: Mapping[str, Any],
    consistent_read: bool = True,
    deadline: Deadline | None = None,
    *,
    client: AwsClient | None = None,
) -> dict[str, Any] | None:
    """Return the item with `key` as Python values, or None when there is none.

    Reads are strongly consistent by default, so a write just made is always seen.
    """
    payload = {"TableName": table, "Key": to_item(key), "ConsistentRead": consistent_read}
    response = _call(client, "GetItem", table, payload, deadline)
    item = response.get("Item")
    return None if item is None else from_item(item)


def delete_item(
    table: str,
    key: Mapping[str, Any],
    condition_expression: str | None = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
    deadline: Deadline | None = None,
    *,
    client: AwsClient | None = None,
) -> None:
    """Delete the item with `key` (deleting a missing item succeeds); raises `ConditionalCheckFailed`
    when `condition_expression` is false."""
    payload: dict[str, Any] = {"TableName": table, "Key": to_item(key)}
    payload.update(_expression_fields(condition_expression, names, values))
    _call(client, "DeleteItem", table, payload, deadline)


def _call(
    client: AwsClient | None, operation: str, table: str, payload: Mapping[str, Any], deadline: Deadline | None
) -> dict[str, Any]:
    if not isinstance(table, str) or not table:
        raise ValueError(f"invalid table {table!r}: expected a table name or ARN")
    client = client or get_client()
    region = region_of_identifier(table, expected_service="dynamodb", field="table") or client.region
    return client.call_json(
        DYNAMODB,
        operation,
        payload,
        region=region,
        endpoint=resolve_endpoint(DYNAMODB, region, client.environ),
        resource=f"table {table}",
        deadline=deadline,
    )


def _expression_fields(
    condition_expression: str | None, names: Mapping[str, str] | None, values: Mapping[str, Any] | None
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if condition_expression:
        fields["ConditionExpression"] = condition_expression
    if names:
        fields["ExpressionAttributeNames"] = dict(names)
    if values:
        fields["ExpressionAttributeValues"] = {
            placeholder: to_attribute_value(value, placeholder) for placeholder, value in values.items()
        }
    return fields


def _typed_map(value: Mapping[Any, Any], path: str) -> dict[str, dict[str, Any]]:
    typed = {}
    for name, item in value.items():
        if not isinstance(name, str):
            raise TypeError(f"{path} has key {name!r} of type {type(name).__name__}: DynamoDB keys are strings")
        typed[name] = to_attribute_value(item, f"{path}.{name}")
    return typed


def _typed_set(value: set[Any] | frozenset[Any], path: str) -> dict[str, Any]:
    if not value:
        raise ValueError(f"{path} is an empty set, which DynamoDB cannot store")
    if all(isinstance(item, str) for item in value):
        return {"SS": sorted(value)}
    if all(isinstance(item, (int, float, Decimal)) and not isinstance(item, bool) for item in value):
        return {"NS": sorted(_number_text(item, path) for item in value)}
    if all(isinstance(item, (bytes, bytearray)) for item in value):
        return {"BS": sorted(base64.b64encode(bytes(item)).decode("ascii") for item in value)}
    raise TypeError(f"{path} is a set of mixed or unsupported types; DynamoDB sets hold strings, numbers or bytes")


def _number_text(value: int | float | Decimal, path: str) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{path} is {value!r}: DynamoDB numbers must be finite")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"{path} is {value!r}: DynamoDB numbers must be finite")
    return repr(value) if isinstance(value, float) else str(value)


def _parse_number(text: str) -> int | Decimal:
    if any(char in text for char in ".eE"):
        return Decimal(text)
    return int(text)
