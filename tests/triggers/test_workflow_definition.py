"""The upgrade state machine against the workflow function: static checks, then whole runs state by state.

The runs use the local ASL interpreter with the workflow function standing in for every Lambda task,
the CSS emulator and moto (SNS topic with a subscriber queue, announce-once table) over real sockets,
and the fake Slack. The approval is a click sent through the real webhook function, which completes
the task token with a signed call to the interpreter's token server.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from handler import cli, webhook, workflow
from handler.local.asl import LAMBDA_INVOKE, LAMBDA_INVOKE_WAIT, LambdaContext, StateMachine, load_definition, read_path

from . import DEFINITION, load_event
from .conftest import APPROVER
from .test_workflow import ERROR_NAMES

LOGS_PROD = "ea244205-d641-45d9-9dcb-ab2236bcd07e"
FLAKY = "cdffd3b2-d65d-5545-b8e3-96528dac661c"
PARTIAL = "f3098bf8-3809-5bca-b25c-4bdda199b963"
BUSY = "d198abca-2d81-5b12-bd0e-17517cb43246"
UNKNOWN = "00000000-0000-4000-8000-000000000000"
OUTSIDER = "U0OUTSIDER1"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:css-upgrade-scout-workflow"

# The input fields each action cannot work without (project and region default from the settings).
REQUIRED_INPUT = {
    "request_approval": {"task_token", "event"},
    "start_upgrade": {"cluster_id", "upgrade_request", "approved_by"},
    "upgrade_status": {"cluster_id"},
    "retry_upgrade": {"cluster_id", "task_id", "approved_by"},
    "abort_upgrade": {"cluster_id", "task_id", "approved_by"},
}

# Errors that Step Functions or the Lambda service raise, not the function.
SERVICE_ERRORS = {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"}


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return load_definition(str(DEFINITION), {"WorkflowFunctionArn": FUNCTION_ARN})


def tasks(definition) -> dict[str, dict[str, Any]]:
    return {name: state for name, state in definition["States"].items() if state["Type"] == "Task"}


def payload_fields(state: dict[str, Any]) -> tuple[str, set[str]]:
    """Return a Task's action and the input fields it passes (the Check state merges the execution input)."""
    parameters = state["Parameters"]
    if "Payload.$" in parameters:
        merged = re.findall(r"\$\.(\w+)", parameters["Payload.$"])
        return "check", {"execution input"} | set(merged)
    payload = parameters["Payload"]
    return payload["action"], {key.removesuffix(".$") for key in payload if key != "action"}


# -- static checks ----------------------------------------------------------------------------------


def test_every_state_reachable(definition):
    states = definition["States"]
    reached, pending = set(), [definition["StartAt"]]
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        reached.add(name)
        state = states[name]
        pending += [state[key] for key in ("Next", "Default") if key in state]
        pending += [rule["Next"] for rule in state.get("Choices", []) + state.get("Catch", [])]

    assert set(states) == reached


def test_tasks_name_real_actions_with_their_inputs(definition):
    for name, state in tasks(definition).items():
        action, fields = payload_fields(state)

        assert action in workflow.ACTIONS, name
        assert REQUIRED_INPUT.get(action, set()) <= fields, name
        assert state["Resource"] == (LAMBDA_INVOKE_WAIT if action == "request_approval" else LAMBDA_INVOKE), name


def test_catch_rules_name_errors_the_function_raises(definition):
    for name, state in tasks(definition).items():
        for rule in state.get("Catch", []) + state.get("Retry", []):
            unknown = {error for error in rule["ErrorEquals"] if not error.startswith("States.")} - ERROR_NAMES - SERVICE_ERRORS
            assert unknown == set(), name


def test_choices_read_fields_actions_return(definition, approved_run):
    """Each Choice reads `$.slot.field`; the Task writing `slot` must select `field` from a key its action returns."""
    execution, outputs = approved_run
    states = definition["States"]
    for name, state in states.items():
        if state["Type"] != "Choice":
            continue
        for variable in choice_variables(state):
            slot, field, *rest = variable.split(".")[1:]
            writers = [writer for writer in states.values() if writer.get("ResultPath") == f"$.{slot}"]
            assert writers, f"{name}: nothing writes $.{slot}"
            for writer in writers:
                if writer["Type"] == "Pass":
                    assert f"{field}.$" in writer["Parameters"] or field in writer["Parameters"], name
                    continue
                action, _ = payload_fields(writer)
                # The path inside the Lambda result that the Choice ends up reading.
                path = ".".join([writer["ResultSelector"][f"{field}.$"], *rest])
                assert read_path(path, {"Payload": outputs[action]}, {}) is not None, f"{name}: {action} returns nothing at {path}"


def choice_variables(state: dict[str, Any]) -> list[str]:
    variables = []

    def walk(rule: dict[str, Any]) -> None:
        if "Variable" in rule:
            variables.append(rule["Variable"])
        for nested in rule.get("And", []) + rule.get("Or", []) + ([rule["Not"]] if "Not" in rule else []):
            walk(nested)

    for rule in state["Choices"]:
        walk(rule)
    return variables


# -- whole runs -------------------------------------------------------------------------------------


@pytest.fixture
def workflow_env(sandbox, slack, tokens, env):
    env(
        UPGRADE_EXECUTION_ENABLED="true",
        SLACK_SIGNING_SECRET=slack.signing_secret,
        SLACK_APPROVERS=APPROVER,
        SLACK_APPROVAL_WEBHOOK_URL=slack.approval_webhook_url,
        AWS_ENDPOINT_URL_SFN=tokens.url,
    )
    return sandbox


class Clicker:
    """Clicks a button of the newest approval request in the fake Slack, through the webhook, when the workflow waits."""

    def __init__(self, slack, *, approve: bool | None, user_id: str = APPROVER) -> None:
        self.slack = slack
        self.approve = approve
        self.user_id = user_id
        self.responses: list[dict[str, Any]] = []
        self.reply_url = ""

    def __call__(self, state: str, payload: Any) -> None:
        if self.approve is None:
            return
        request = self.slack.approval_requests()[-1]
        self.reply_url = self.slack.response_url()
        event = self.slack.click(request, approve=self.approve, user_id=self.user_id, response_url=self.reply_url)
        self.responses.append(webhook.lambda_handler(event, LambdaContext(10)))


class RecordingFunction:
    """The workflow function, keeping each action's last result."""

    def __init__(self) -> None:
        self.outputs: dict[str, dict[str, Any]] = {}

    def __call__(self, payload: Any, context: Any) -> Any:
        result = workflow.lambda_handler(payload, context)
        self.outputs[payload["action"]] = result
        return result


def run_workflow(definition, tokens, clicker, cluster_id: str, function=workflow.lambda_handler):
    machine = StateMachine(definition, function, tokens=tokens, on_wait=clicker)
    return machine.run({"cluster_id": cluster_id, "requested_by": "test"})


def lifecycle(sandbox) -> list[tuple[str, str, int | None]]:
    return [(event["event_type"], event["task"]["status"], event["task"]["execute_times"]) for event in sandbox.received_events()]


def upgrade_posts(sandbox) -> int:
    return sum(1 for call in sandbox.emulator.calls if call.method == "POST")


@pytest.fixture
def approved_run(definition, workflow_env, slack, tokens):
    function = RecordingFunction()
    execution = run_workflow(definition, tokens, Clicker(slack, approve=True), FLAKY, function)
    return execution, function.outputs


def test_approved_upgrade_succeeds(definition, workflow_env, slack, tokens):
    clicker = Clicker(slack, approve=True)

    execution = run_workflow(definition, tokens, clicker, LOGS_PROD)

    assert execution.status == "SUCCEEDED"
    assert execution.states == ["Prepare", "Check", "IsUpgradeReady", "RequestApproval", "StartUpgrade", "WaitForUpgrade",
                                "UpgradeStatus", "UpgradeOutcome", "UpgradeSucceeded"]
    assert execution.output["approval"] == {"approved_by": APPROVER}
    assert execution.output["upgrade"]["status"] == "SUCCESS"
    assert [response["statusCode"] for response in clicker.responses] == [200]
    assert tokens.answers and all(answer.output == {"approved_by": APPROVER} for answer in tokens.answers.values())
    assert upgrade_posts(workflow_env) == 1
    assert lifecycle(workflow_env) == [("upgrade.started", "RUNNING", 1), ("upgrade.succeeded", "SUCCESS", 1)]


def test_failed_upgrade_retried_to_success(approved_run, workflow_env):
    execution, _ = approved_run

    events = workflow_env.received_events()
    assert execution.status == "SUCCEEDED"
    assert execution.states.count("RetryUpgrade") == 1
    assert execution.output["retry"] == {"count": 1}
    assert [(event["event_type"], event["task"]["status"], event["task"]["execute_times"]) for event in events] == [
        ("upgrade.started", "RUNNING", 1),
        ("upgrade.failed", "FAILED", 1),
        ("upgrade.started", "RUNNING", 2),
        ("upgrade.succeeded", "SUCCESS", 2),
    ]
    assert len({event["event_id"] for event in events}) == 4
    assert all(event["task"]["approved_by"] == APPROVER for event in events)
    assert upgrade_posts(workflow_env) == 1
    assert workflow_env.emulator.call_count("retry_upgrade") == 1


def test_partial_failure_retried_to_success(definition, workflow_env, slack, tokens):
    execution = run_workflow(definition, tokens, Clicker(slack, approve=True), PARTIAL)

    assert execution.status == "SUCCEEDED"
    assert [event[:2] for event in lifecycle(workflow_env)] == [
        ("upgrade.started", "RUNNING"), ("upgrade.failed", "PARTIAL_FAILED"), ("upgrade.started", "RUNNING"), ("upgrade.succeeded", "SUCCESS"),
    ]


def test_rejected_upgrade_sends_nothing(definition, workflow_env, slack, tokens):
    clicker = Clicker(slack, approve=False)

    execution = run_workflow(definition, tokens, clicker, LOGS_PROD)

    (update,) = slack.posts_to(clicker.reply_url)
    assert execution.status == "FAILED"
    assert execution.error == "NotApproved"
    assert execution.states[-2:] == ["RequestApproval", "NotApproved"]
    assert execution.history[-2].error == "Rejected"
    assert upgrade_posts(workflow_env) == 0
    assert workflow_env.received_events() == []
    assert "Rejected by" in update.body["text"]


def test_outsider_click_changes_nothing(definition, workflow_env, slack, tokens):
    clicker = Clicker(slack, approve=True, user_id=OUTSIDER)

    execution = run_workflow(definition, tokens, clicker, LOGS_PROD)

    (refusal,) = slack.posts_to(clicker.reply_url)
    assert execution.status == "FAILED"
    assert execution.error == "ApprovalTimedOut"
    assert execution.history[-2].error == "States.Timeout"
    assert tokens.calls == []
    assert "not allowed to approve" in refusal.body["text"]
    assert upgrade_posts(workflow_env) == 0
    assert workflow_env.received_events() == []


def test_execution_disabled_stops_after_approval(definition, workflow_env, slack, tokens, env):
    env(UPGRADE_EXECUTION_ENABLED=None)

    execution = run_workflow(definition, tokens, Clicker(slack, approve=True), LOGS_PROD)

    assert execution.status == "FAILED"
    assert execution.error == "ExecutionDisabled"
    assert execution.states[-2:] == ["StartUpgrade", "ExecutionDisabled"]
    assert upgrade_posts(workflow_env) == 0


def test_blocked_cluster_needs_no_approval(definition, workflow_env, slack, tokens):
    execution = run_workflow(definition, tokens, Clicker(slack, approve=True), BUSY)

    assert execution.status == "SUCCEEDED"
    assert execution.states[-1] == "NothingToUpgrade"
    assert execution.output["check"]["event"]["event_type"] == "upgrade.blocked"
    assert slack.approval_requests() == []


def test_unknown_cluster_fails_check(definition, workflow_env, slack, tokens):
    execution = run_workflow(definition, tokens, Clicker(slack, approve=True), UNKNOWN)

    failure = json.loads(execution.history[1].cause)
    assert execution.status == "FAILED"
    assert execution.error == "CheckFailed"
    assert failure["errorType"] == "CheckFailed"
    assert slack.approval_requests() == []


def test_input_cannot_choose_the_action(definition, workflow_env, slack, tokens):
    machine = StateMachine(definition, workflow.lambda_handler, tokens=tokens, on_wait=Clicker(slack, approve=None))

    execution = machine.run({"cluster_id": BUSY, "action": "start_upgrade"})

    assert execution.states[:3] == ["Prepare", "Check", "IsUpgradeReady"]
    assert upgrade_posts(workflow_env) == 0


def test_workflow_demo_command(capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")

    status = cli.main(["workflow-demo"])

    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert status == 0
    assert result["status"] == "SUCCEEDED"
    assert "RetryUpgrade" in result["states"]
    assert "clicked Approve; the webhook answered HTTP 200" in captured.err
    assert "Event upgrade.succeeded" in captured.err


def test_sample_execution_input(definition, workflow_env, slack, tokens):
    machine = StateMachine(definition, workflow.lambda_handler, tokens=tokens, on_wait=Clicker(slack, approve=True))

    execution = machine.run(load_event("workflow-execution-input.json"))

    assert execution.status == "SUCCEEDED"
    assert execution.output["check"]["event"]["trigger"]["requested_by"] == "ops.engineer"
