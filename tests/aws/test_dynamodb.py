"""DynamoDB typed-JSON conversion, and item calls end to end against moto."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handler.aws import dynamodb
from handler.aws.errors import AwsConfigurationError, ConditionalCheckFailed

from . import MODES, moto_backend, running_moto_server

TABLE = "dedupe"


@pytest.fixture(scope="module")
def moto_server():
    with running_moto_server() as url:
        yield url


@pytest.fixture(params=MODES)
def aws(request):
    with moto_backend(request.param, lambda: request.getfixturevalue("moto_server")) as backend:
        backend.boto("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield backend


# (Python value, typed JSON)
CONVERSIONS = [
    (None, {"NULL": True}),
    (True, {"BOOL": True}),
    (False, {"BOOL": False}),
    (0, {"N": "0"}),
    (-42, {"N": "-42"}),
    (10**30, {"N": "1" + "0" * 30}),
    (1.5, {"N": "1.5"}),
    (Decimal("0.1"), {"N": "0.1"}),
    ("text", {"S": "text"}),
    ("", {"S": ""}),
    (b"\x00\x01", {"B": "AAE="}),
    ([1, "a", None], {"L": [{"N": "1"}, {"S": "a"}, {"NULL": True}]}),
    ((1, 2), {"L": [{"N": "1"}, {"N": "2"}]}),
    ({"a": {"b": [True]}}, {"M": {"a": {"M": {"b": {"L": [{"BOOL": True}]}}}}}),
    ({"b", "a"}, {"SS": ["a", "b"]}),
    ({2, 1}, {"NS": ["1", "2"]}),
]


@pytest.mark.parametrize(("value", "typed"), CONVERSIONS)
def test_to_attribute_value_table(value, typed):
    assert dynamodb.to_attribute_value(value) == typed


# (typed JSON, Python value)
READS = [
    ({"N": "7"}, 7),
    ({"N": "-7"}, -7),
    ({"N": "1.25"}, Decimal("1.25")),
    ({"N": "1E+2"}, Decimal("100")),
    ({"S": "x"}, "x"),
    ({"BOOL": False}, False),
    ({"NULL": True}, None),
    ({"B": "AAE="}, b"\x00\x01"),
    ({"SS": ["a", "b"]}, {"a", "b"}),
    ({"NS": ["1", "2.5"]}, {1, Decimal("2.5")}),
    ({"BS": ["AAE="]}, {b"\x00\x01"}),
    ({"L": [{"N": "1"}, {"M": {"k": {"S": "v"}}}]}, [1, {"k": "v"}]),
]


@pytest.mark.parametrize(("typed", "value"), READS)
def test_from_attribute_value_table(typed, value):
    assert dynamodb.from_attribute_value(typed) == value


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (float("nan"), ValueError, "finite"),
        (float("inf"), ValueError, "finite"),
        (Decimal("NaN"), ValueError, "finite"),
        (set(), ValueError, "empty set"),
        ({1, "a"}, TypeError, "mixed"),
        (object(), TypeError, "type object"),
        ({1: "x"}, TypeError, "keys are strings"),
    ],
)
def test_to_attribute_value_rejects(value, error, message):
    with pytest.raises(error, match=message):
        dynamodb.to_attribute_value(value)


def test_to_item_error_names_path():
    with pytest.raises(TypeError, match=r"item\.cluster\.tags\[1\]"):
        dynamodb.to_item({"cluster": {"tags": ["ok", object()]}})


@pytest.mark.parametrize("typed", [{}, {"S": "a", "N": "1"}, {"XX": "1"}, "S"])
def test_from_attribute_value_rejects(typed):
    with pytest.raises(ValueError):
        dynamodb.from_attribute_value(typed)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_round_trip_json_values(value):
    assert dynamodb.from_attribute_value(dynamodb.to_attribute_value(value)) == value


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_round_trip_floats(value):
    restored = dynamodb.from_attribute_value(dynamodb.to_attribute_value(value))
    assert float(restored) == value


def test_put_and_get_item(aws):
    item = {"id": "event-1", "expiration": 1_900_000_000, "score": Decimal("2.5"), "tags": ["a"], "meta": {"ok": True}}

    dynamodb.put_item(TABLE, item, client=aws.client)

    assert dynamodb.get_item(TABLE, {"id": "event-1"}, client=aws.client) == item
    assert aws.boto("dynamodb").get_item(TableName=TABLE, Key={"id": {"S": "event-1"}})["Item"]["expiration"] == {"N": "1900000000"}


def test_get_item_missing(aws):
    assert dynamodb.get_item(TABLE, {"id": "nothing"}, client=aws.client) is None


def test_put_item_conditional_second_fails(aws):
    condition = "attribute_not_exists(id)"
    dynamodb.put_item(TABLE, {"id": "event-1", "n": 1}, condition_expression=condition, client=aws.client)

    with pytest.raises(ConditionalCheckFailed) as caught:
        dynamodb.put_item(TABLE, {"id": "event-1", "n": 2}, condition_expression=condition, client=aws.client)

    assert caught.value.code == "ConditionalCheckFailedException"
    assert TABLE in str(caught.value)
    assert dynamodb.get_item(TABLE, {"id": "event-1"}, client=aws.client)["n"] == 1


def test_put_item_condition_with_names_and_values(aws):
    dynamodb.put_item(TABLE, {"id": "event-1", "expiration": 100}, client=aws.client)
    condition = "attribute_not_exists(id) OR #expiration < :now"

    dynamodb.put_item(
        TABLE,
        {"id": "event-1", "expiration": 500},
        condition_expression=condition,
        names={"#expiration": "expiration"},
        values={":now": 200},
        client=aws.client,
    )

    with pytest.raises(ConditionalCheckFailed):
        dynamodb.put_item(
            TABLE,
            {"id": "event-1", "expiration": 900},
            condition_expression=condition,
            names={"#expiration": "expiration"},
            values={":now": 200},
            client=aws.client,
        )
    assert dynamodb.get_item(TABLE, {"id": "event-1"}, client=aws.client)["expiration"] == 500


def test_update_item_returns_new(aws):
    dynamodb.put_item(TABLE, {"id": "event-1", "count": 1}, client=aws.client)

    attributes = dynamodb.update_item(
        TABLE,
        {"id": "event-1"},
        "SET #count = #count + :one, note = :note",
        names={"#count": "count"},
        values={":one": 1, ":note": "seen"},
        return_values="ALL_NEW",
        client=aws.client,
    )

    assert attributes == {"id": "event-1", "count": 2, "note": "seen"}


def test_update_item_condition_fails(aws):
    with pytest.raises(ConditionalCheckFailed):
        dynamodb.update_item(
            TABLE, {"id": "event-1"}, "SET note = :note", condition_expression="attribute_exists(id)",
            values={":note": "x"}, client=aws.client,
        )


def test_update_item_invalid_return_values():
    with pytest.raises(ValueError, match="return_values"):
        dynamodb.update_item(TABLE, {"id": "x"}, "SET a = :a", return_values="EVERYTHING")


def test_delete_item(aws):
    dynamodb.put_item(TABLE, {"id": "event-1"}, client=aws.client)

    dynamodb.delete_item(TABLE, {"id": "event-1"}, client=aws.client)

    assert dynamodb.get_item(TABLE, {"id": "event-1"}, client=aws.client) is None


def test_delete_item_condition_fails(aws):
    dynamodb.put_item(TABLE, {"id": "event-1", "owner": "a"}, client=aws.client)

    with pytest.raises(ConditionalCheckFailed):
        dynamodb.delete_item(
            TABLE, {"id": "event-1"}, condition_expression="#owner = :me", names={"#owner": "owner"},
            values={":me": "b"}, client=aws.client,
        )

    assert dynamodb.get_item(TABLE, {"id": "event-1"}, client=aws.client) is not None


def test_missing_table_configuration(aws):
    with pytest.raises(AwsConfigurationError) as caught:
        dynamodb.get_item("missing", {"id": "x"}, client=aws.client)
    assert caught.value.code == "ResourceNotFoundException"
    assert "table missing" in str(caught.value)


def test_table_arn_accepted(aws):
    table_arn = aws.boto("dynamodb").describe_table(TableName=TABLE)["Table"]["TableArn"]

    dynamodb.put_item(table_arn, {"id": "by-arn"}, client=aws.client)

    assert dynamodb.get_item(TABLE, {"id": "by-arn"}, client=aws.client) == {"id": "by-arn"}
