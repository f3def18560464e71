"""The workflow function's actions one by one, against the CSS emulator and moto (SNS, DynamoDB) through the sandbox."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from handler import workflow
from handler.check import CheckFailed
from handler.config import ConfigurationError
from handler.local.asl import LambdaContext
from handler.local.emulator import DEFAULT_PROJECT_ID, DEFAULT_REGION

from . import load_event
from .conftest import APPROVER

LOGS_PROD = "ea244205-d641-45d9-9dcb-ab2236bcd07e"
FLAKY = "cdffd3b2-d65d-5545-b8e3-96528dac661c"
PARTIAL = "f3098bf8-3809-5bca-b25c-4bdda199b963"
NO_TARGET = "042a7c87-f31a-5aac-b15f-376b2769c27c"
UNKNOWN = "00000000-0000-4000-8000-000000000000"

# The error names of the workflow contract plus the ones this function adds; Step Functions matches them.
ERROR_NAMES = {
    "ConfigurationError", "CheckFailed", "ExecutionDisabled", "NotApproved", "UpgradeAlreadyRunning", "NoUpgradeTask",
    "InvalidInput", "CssRequestRejected", "TemporaryFailure",
}


@pytest.fixture
def enabled(sandbox, slack, env):
    """Upgrades allowed, approval requests going to the fake Slack."""
    env(UPGRADE_EXECUTION_ENABLED="true", SLACK_APPROVAL_WEBHOOK_URL=slack.approval_webhook_url)
    return sandbox


def run(action: str, **fields):
    return workflow.lambda_handler({"action": action, **fields}, LambdaContext(60))


def checked(cluster_id: str) -> dict:
    return run("check", cluster_id=cluster_id)


def start(cluster_id: str, **overrides) -> dict:
    event = checked(cluster_id)
    fields = {"cluster_id": cluster_id, "upgrade_request": event["upgrade_request"], "approved_by": APPROVER, **overrides}
    return run("start_upgrade", **fields)


def poll_until_done(cluster_id: str, **fields) -> dict:
    for _ in range(10):
        status = run("upgrade_status", cluster_id=cluster_id, **fields)
        if status["status"] != "RUNNING":
            return status
    raise AssertionError(f"the upgrade of {cluster_id} did not end")


def lifecycle(sandbox) -> list[tuple[str, str, int | None]]:
    return [(event["event_type"], event["task"]["status"], event["task"]["execute_times"]) for event in sandbox.received_events()]


def test_error_classes_named_for_catch_rules():
    raised = {workflow.ExecutionDisabled, workflow.NotApproved, workflow.UpgradeAlreadyRunning, workflow.NoUpgradeTask,
              workflow.InvalidInput, workflow.CssRequestRejected, workflow.TemporaryFailure, ConfigurationError, CheckFailed}

    assert {error.__name__ for error in raised} == ERROR_NAMES


# -- check ------------------------------------------------------------------------------------------


def test_check_returns_event_without_broadcast(sandbox):
    event = run("check", cluster_id=LOGS_PROD, requested_by="ops")

    assert event["event_type"] == "upgrade.ready"
    assert event["target_image"]["display_name"] == "7.10.2_24.3.4_0109"
    assert event["trigger"] == {"source": "workflow", "requested_by": "ops", "correlation_id": None, "message_id": None}
    assert event["upgrade_request"]["agency"] == "css-upgrade-agency"
    assert sandbox.received_events() == []


def test_check_failed_raises_with_event(sandbox):
    with pytest.raises(CheckFailed) as raised:
        run("check", cluster_id=UNKNOWN)

    assert raised.value.event.event_type == "check.failed"
    assert raised.value.event.reason == "cluster_not_found"
    assert sandbox.received_events() == []


@pytest.mark.parametrize(
    "event",
    [
        {"action": "check", "cluster_id": "not-a-cluster"},
        {"action": "check", "cluster_id": LOGS_PROD, "upgrade_types": ["sideways"]},
        {"action": "launch"},
        {"cluster_id": LOGS_PROD},
        ["check"],
    ],
    ids=["cluster-id", "upgrade-type", "unknown-action", "no-action", "not-an-object"],
)
def test_invalid_input_raises(sandbox, event):
    with pytest.raises(workflow.InvalidInput):
        workflow.lambda_handler(event, LambdaContext(60))


def test_missing_credentials_raise_configuration_error(sandbox, env):
    env(HUAWEICLOUD_SDK_AK=None, HUAWEICLOUD_SDK_SK=None)

    with pytest.raises(ConfigurationError):
        run("check", cluster_id=LOGS_PROD)


# -- request_approval -------------------------------------------------------------------------------


def test_request_approval_posts_buttons(enabled, slack, tokens, caplog):
    caplog.set_level(logging.DEBUG)
    token = tokens.issue()
    event = checked(LOGS_PROD)

    result = run("request_approval", task_token=token, event=event)

    (request,) = slack.approval_requests()
    actions = [block for block in request.body["blocks"] if block["type"] == "actions"]
    buttons = {element["action_id"]: json.loads(element["value"]) for element in actions[0]["elements"]}
    assert result == {"requested": True}
    assert request.body["text"].startswith("Approval needed: CSS upgrade ready")
    assert buttons["approve_upgrade"] == {"task_token": token, "cluster_id": LOGS_PROD}
    assert buttons["reject_upgrade"] == {"task_token": token, "cluster_id": LOGS_PROD}
    assert request.body["blocks"][-1]["type"] == "context"
    assert all(token not in json.dumps(record.__dict__, default=str) for record in caplog.records)


@pytest.mark.parametrize(
    "fields, error",
    [
        ({"event": "checked"}, workflow.InvalidInput),
        ({"task_token": "token", "event": {"event_type": "upgrade.ready"}}, workflow.InvalidInput),
        ({"task_token": "token", "event": "no-target"}, workflow.InvalidInput),
        ({"task_token": "x" * 2000, "event": "checked"}, workflow.InvalidInput),
    ],
    ids=["no-token", "invalid-event", "nothing-to-approve", "token-too-long"],
)
def test_request_approval_invalid_input(enabled, slack, fields, error):
    events = {"checked": checked(LOGS_PROD), "no-target": checked(NO_TARGET)}
    fields = {name: events.get(value, value) if isinstance(value, str) else value for name, value in fields.items()}

    with pytest.raises(error):
        run("request_approval", **fields)

    assert slack.approval_requests() == []


def test_request_approval_without_webhook(sandbox, tokens):
    with pytest.raises(ConfigurationError) as raised:
        run("request_approval", task_token=tokens.issue(), event=checked(LOGS_PROD))

    assert "SLACK_APPROVAL_WEBHOOK_URL or SLACK_APPROVAL_WEBHOOK_NAME" in str(raised.value)


def test_request_approval_host_not_allowed(sandbox, tokens, env):
    env(SLACK_APPROVAL_WEBHOOK_URL="https://hooks.example.com/services/T0/B0/secret-path")

    with pytest.raises(ConfigurationError) as raised:
        run("request_approval", task_token=tokens.issue(), event=checked(LOGS_PROD))

    assert "SLACK_REPLY_HOSTS" in str(raised.value)
    assert "secret-path" not in str(raised.value)


@pytest.mark.parametrize("shape", ["plain", "json"])
def test_request_approval_webhook_from_secret(sandbox, slack, tokens, env, shape):
    name = f"approval-webhook-{uuid.uuid4().hex}"
    value = slack.approval_webhook_url if shape == "plain" else json.dumps({"url": slack.approval_webhook_url})
    sandbox.boto("secretsmanager").create_secret(Name=name, SecretString=value)
    env(SLACK_APPROVAL_WEBHOOK_NAME=name)

    run("request_approval", task_token=tokens.issue(), event=checked(LOGS_PROD))

    assert len(slack.approval_requests()) == 1


@pytest.mark.parametrize("status, error", [(500, workflow.TemporaryFailure), (404, ConfigurationError)])
def test_request_approval_slack_failure(enabled, slack, tokens, status, error):
    event = checked(LOGS_PROD)
    slack.answer_next(status)

    with pytest.raises(error):
        run("request_approval", task_token=tokens.issue(), event=event)


# -- start_upgrade ----------------------------------------------------------------------------------


def test_start_upgrade_disabled_by_default(sandbox):
    with pytest.raises(workflow.ExecutionDisabled):
        start(LOGS_PROD)

    assert sandbox.emulator.call_count("upgrade_core") == 0


def test_start_upgrade_needs_approver(enabled):
    with pytest.raises(workflow.NotApproved):
        start(LOGS_PROD, approved_by=None)

    assert enabled.emulator.call_count("upgrade_core") == 0


def test_start_upgrade_needs_agency(enabled, env):
    env(CSS_UPGRADE_AGENCY=None)

    with pytest.raises(ConfigurationError) as raised:
        start(LOGS_PROD)

    assert "CSS_UPGRADE_AGENCY" in str(raised.value)
    assert enabled.emulator.call_count("upgrade_core") == 0


def test_start_upgrade_agency_from_setting(enabled, env):
    env(CSS_UPGRADE_AGENCY=None)
    event = checked(LOGS_PROD)
    env(CSS_UPGRADE_AGENCY="deploy-agency")

    run("start_upgrade", cluster_id=LOGS_PROD, upgrade_request=event["upgrade_request"], approved_by=APPROVER)

    assert enabled.emulator.cluster_state(LOGS_PROD)["tasks"][0]["agencyName"] == "deploy-agency"


def test_start_upgrade_runs_and_announces(enabled):
    result = start(LOGS_PROD)

    (event,) = enabled.received_events()
    task = enabled.emulator.cluster_state(LOGS_PROD)["tasks"][0]
    assert result == {"task_id": task["id"], "status": "RUNNING"}
    assert task["imageInfo"]["displayName"] == "7.10.2_24.3.4_0109"
    assert event["event_type"] == "upgrade.started"
    assert event["task"] == {"id": task["id"], "status": "RUNNING", "execute_times": 1, "approved_by": APPROVER}
    assert event["upgrade_request"]["upgrade_type"] == "cross"
    assert event["cluster"]["name"] == "logs-prod"


def test_start_upgrade_refused_while_running(enabled):
    # The emulator ends a task after a number of UpgradeDetail reads; this cluster's task runs for two.
    start(PARTIAL)

    with pytest.raises(workflow.UpgradeAlreadyRunning):
        start(PARTIAL)

    assert enabled.emulator.call_count("upgrade_core") == 1


@pytest.mark.parametrize(
    "request_change, error",
    [
        ({"target_image_id": "../../etc"}, workflow.InvalidInput),
        ({"upgrade_type": "sideways"}, workflow.InvalidInput),
        ({"indices_backup_check": "yes"}, workflow.InvalidInput),
        ({"agency": "agency with spaces"}, workflow.InvalidInput),
        ({"target_image_id": "8f5b0a36-0000-4000-8000-000000000000"}, workflow.CssRequestRejected),
    ],
    ids=["image-id", "upgrade-type", "backup-check", "agency", "image-not-offered"],
)
def test_start_upgrade_checks_request(enabled, request_change, error):
    request = {**checked(LOGS_PROD)["upgrade_request"], **request_change}

    with pytest.raises(error):
        run("start_upgrade", cluster_id=LOGS_PROD, upgrade_request=request, approved_by=APPROVER)

    assert enabled.emulator.cluster_state(LOGS_PROD)["tasks"] == []


# -- upgrade_status ---------------------------------------------------------------------------------


def test_upgrade_status_without_task(sandbox):
    with pytest.raises(workflow.NoUpgradeTask):
        run("upgrade_status", cluster_id=LOGS_PROD, project_id=DEFAULT_PROJECT_ID, region=DEFAULT_REGION)


def test_upgrade_status_announces_success_once(enabled):
    task_id = start(LOGS_PROD)["task_id"]

    final = poll_until_done(LOGS_PROD, approved_by=APPROVER, upgrade_type="cross")
    again = run("upgrade_status", cluster_id=LOGS_PROD, task_id=task_id, approved_by=APPROVER)

    events = enabled.received_events()
    assert final["status"] == "SUCCESS"
    assert final["completed_nodes"] == final["total_nodes"]
    assert len(final["total_nodes"]) == 3
    assert again["status"] == "SUCCESS"
    assert [event["event_type"] for event in events] == ["upgrade.started", "upgrade.succeeded"]
    assert events[1]["task"]["approved_by"] == APPROVER
    assert events[1]["upgrade_type"] == "cross"


def test_upgrade_status_partial_failure_is_failed(enabled):
    start(PARTIAL)

    final = poll_until_done(PARTIAL)

    events = enabled.received_events()
    assert final["status"] == "PARTIAL_FAILED"
    assert len(final["completed_nodes"]) == 4
    assert events[-1]["event_type"] == "upgrade.failed"
    assert events[-1]["reason"] == "task_partially_failed"


def test_upgrade_status_unknown_task(enabled):
    start(LOGS_PROD)

    with pytest.raises(workflow.NoUpgradeTask):
        run("upgrade_status", cluster_id=LOGS_PROD, task_id="no-such-task")


# -- retry_upgrade and abort_upgrade ----------------------------------------------------------------


def test_retry_upgrade_runs_again(enabled):
    task_id = start(FLAKY)["task_id"]
    assert poll_until_done(FLAKY)["status"] == "FAILED"

    retried = run("retry_upgrade", cluster_id=FLAKY, task_id=task_id, approved_by=APPROVER)
    final = poll_until_done(FLAKY)

    assert retried == {"task_id": task_id, "status": "RUNNING", "execute_times": 2}
    assert final["status"] == "SUCCESS"
    assert lifecycle(enabled) == [
        ("upgrade.started", "RUNNING", 1),
        ("upgrade.failed", "FAILED", 1),
        ("upgrade.started", "RUNNING", 2),
        ("upgrade.succeeded", "SUCCESS", 2),
    ]


def test_abort_upgrade_ends_task(enabled):
    task_id = start(FLAKY)["task_id"]
    poll_until_done(FLAKY)

    aborted = run("abort_upgrade", cluster_id=FLAKY, task_id=task_id, approved_by=APPROVER)

    retry_calls = [call for call in enabled.emulator.calls if call.method == "PUT"]
    assert aborted == {"task_id": task_id, "status": "FAILED", "execute_times": 1, "aborted": True}
    assert [call.query for call in retry_calls] == [{"retry_mode": "abort"}]


@pytest.mark.parametrize("action", ["retry_upgrade", "abort_upgrade"])
def test_retry_and_abort_guards(sandbox, env, action):
    with pytest.raises(workflow.ExecutionDisabled):
        run(action, cluster_id=FLAKY, task_id="some-task", approved_by=APPROVER)
    env(UPGRADE_EXECUTION_ENABLED="true")
    with pytest.raises(workflow.NotApproved):
        run(action, cluster_id=FLAKY, task_id="some-task")
    with pytest.raises(workflow.InvalidInput):
        run(action, cluster_id=FLAKY, approved_by=APPROVER)
    with pytest.raises(workflow.NoUpgradeTask):
        run(action, cluster_id=FLAKY, task_id="some-task", approved_by=APPROVER)

    assert sandbox.emulator.call_count("retry_upgrade") == 0


def test_retry_of_running_task_rejected(enabled):
    task_id = start(PARTIAL)["task_id"]

    with pytest.raises(workflow.CssRequestRejected):
        run("retry_upgrade", cluster_id=PARTIAL, task_id=task_id, approved_by=APPROVER)


# -- the stored sample inputs -----------------------------------------------------------------------


def invoke_sample(name: str, **changes) -> dict:
    return workflow.lambda_handler({**load_event(name), **changes}, LambdaContext(60))


def test_sample_check(sandbox):
    event = invoke_sample("workflow-check.json")

    assert event["event_type"] == "upgrade.ready"
    assert event["trigger"]["requested_by"] == "ops.engineer"


def test_sample_request_approval(enabled, slack, tokens):
    token = tokens.issue()

    result = invoke_sample("workflow-request-approval.json", task_token=token)

    (request,) = slack.approval_requests()
    assert result == {"requested": True}
    assert token in request.raw.decode()


def test_sample_start_and_status(enabled):
    started = invoke_sample("workflow-start-upgrade.json")
    status = invoke_sample("workflow-upgrade-status.json", task_id=started["task_id"])

    assert started["status"] == "RUNNING"
    assert status["status"] == "SUCCESS"
    assert [event["task"]["approved_by"] for event in enabled.received_events()] == ["U024BE7LH", "U024BE7LH"]


@pytest.mark.parametrize("name, status", [("workflow-retry-upgrade.json", "RUNNING"), ("workflow-abort-upgrade.json", "FAILED")])
def test_sample_retry_and_abort(enabled, name, status):
    task_id = start(FLAKY)["task_id"]
    poll_until_done(FLAKY)

    result = invoke_sample(name, cluster_id=FLAKY, task_id=task_id)

    assert result["status"] == status
