"""The local ASL interpreter on small definitions: paths, intrinsic functions, Choice rules, Retry and Catch."""

from __future__ import annotations

import pytest

from handler.local.asl import StateMachine, evaluate, matches, place


class Flaky:
    """A Lambda stand-in that raises `error` on its first `failures` calls, then returns its payload."""

    def __init__(self, failures: int, error: type[Exception]) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self, payload, context):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error("not yet")
        return {"echo": payload}


class Busy(Exception):
    pass


def task(**fields):
    return {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "f", "Payload.$": "$"}, "End": True, **fields}


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("$.a.b", 1),
        ("$.list[1]", "y"),
        ("States.MathAdd($.a.b, 41)", 42),
        ("States.JsonMerge($.a, $.c, false)", {"b": 1, "d": 2}),
        ("States.Format('{} of {}', $.a.b, 'two')", "1 of two"),
        ("States.Array($.a.b, 'x', States.MathAdd(1, 1))", [1, "x", 2]),
        ("$$.Execution.Name", "run-1"),
    ],
)
def test_evaluate(expression, expected):
    data = {"a": {"b": 1}, "c": {"d": 2}, "list": ["x", "y"]}

    assert evaluate(expression, data, {"Execution": {"Name": "run-1"}}) == expected


@pytest.mark.parametrize(
    "path, expected",
    [("$", {"r": 1}), ("$.result", {"keep": 0, "result": {"r": 1}}), ("$.x.y", {"keep": 0, "x": {"y": {"r": 1}}}), (None, {"keep": 0})],
)
def test_place_result(path, expected):
    assert place(path, {"keep": 0}, {"r": 1}) == expected


@pytest.mark.parametrize(
    "rule, expected",
    [
        ({"Variable": "$.s", "StringEquals": "RUNNING"}, True),
        ({"Variable": "$.n", "NumericLessThan": 2}, True),
        ({"Variable": "$.n", "NumericLessThan": 1}, False),
        ({"Variable": "$.s", "NumericLessThan": 2}, False),
        ({"Or": [{"Variable": "$.s", "StringEquals": "FAILED"}, {"Variable": "$.s", "StringEquals": "RUNNING"}]}, True),
        ({"Not": {"Variable": "$.s", "StringEquals": "RUNNING"}}, False),
        ({"Variable": "$.missing", "IsPresent": False}, True),
    ],
)
def test_choice_rules(rule, expected):
    assert matches(rule, {"s": "RUNNING", "n": 1}, {}) is expected


def test_retry_until_success():
    function = Flaky(2, Busy)
    machine = StateMachine({"StartAt": "T", "States": {"T": task(Retry=[{"ErrorEquals": ["Busy"], "MaxAttempts": 2}])}}, function)

    execution = machine.run({"x": 1})

    assert execution.status == "SUCCEEDED"
    assert function.calls == 3
    assert execution.history[0].retries == 2
    assert execution.output["Payload"] == {"echo": {"x": 1}}


def test_retry_zero_attempts_goes_to_catch():
    function = Flaky(1, Busy)
    definition = {"StartAt": "T", "States": {
        "T": task(Retry=[{"ErrorEquals": ["Busy"], "MaxAttempts": 0}, {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}],
                  Catch=[{"ErrorEquals": ["Busy"], "ResultPath": "$.failure", "Next": "Caught"}]),
        "Caught": {"Type": "Succeed"},
    }}
    definition["States"]["T"].pop("End")
    definition["States"]["T"]["Next"] = "Caught"

    execution = StateMachine(definition, function).run({"x": 1})

    assert function.calls == 1
    assert execution.states == ["T", "Caught"]
    assert execution.output["x"] == 1
    assert execution.output["failure"]["Error"] == "Busy"


def test_uncaught_error_fails_execution():
    execution = StateMachine({"StartAt": "T", "States": {"T": task()}}, Flaky(1, Busy)).run({})

    assert execution.status == "FAILED"
    assert execution.error == "Busy"


def test_missing_path_is_runtime_error():
    machine = StateMachine(
        {"StartAt": "Read", "States": {"Read": {"Type": "Pass", "Parameters": {"x.$": "$.missing"}, "End": True}}},
        lambda payload, context: payload,
    )

    execution = machine.run({})

    assert execution.status == "FAILED"
    assert execution.error == "States.Runtime"
