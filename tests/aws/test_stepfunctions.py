"""Step Functions callbacks end to end against moto running a real waitForTaskToken state machine.

moto executes the definition (`execute_state_machine`): its task state sends the task token to an
SQS queue, the test reads the token there, and the client under test completes the task.
"""

from __future__ import annotations

import json
import time

import pytest

from handler.aws import stepfunctions
from handler.aws.errors import REDACTED, AwsPermanentError

from . import MODES, CannedServer, client_for, json_error, moto_backend, running_moto_server

EXECUTE = {"stepfunctions": {"execute_state_machine": True}}
ROLE_ARN = "arn:aws:iam::123456789012:role/workflow"


@pytest.fixture(scope="module")
def moto_server():
    with running_moto_server() as url:
        yield url


@pytest.fixture(params=MODES)
def aws(request, monkeypatch):
    def server_url():
        url = request.getfixturevalue("moto_server")
        # moto's state machine engine calls SQS through boto3 at localhost:MOTO_PORT in server mode.
        monkeypatch.setenv("MOTO_PORT", url.rsplit(":", 1)[1])
        return url

    with moto_backend(request.param, server_url, moto_config=EXECUTE) as backend:
        yield backend


@pytest.fixture
def canned():
    with CannedServer() as server:
        yield server


def wait_for(condition, what, limit=20.0):
    """Poll `condition` until it returns a true value, failing after `limit` seconds."""
    give_up = time.monotonic() + limit
    while time.monotonic() < give_up:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def waiting_execution(backend):
    """Start an execution that waits for its task token; return (execution ARN, task token)."""
    sqs = backend.boto("sqs")
    queue_url = sqs.create_queue(QueueName="approvals")["QueueUrl"]
    definition = {
        "StartAt": "WaitForApproval",
        "States": {
            "WaitForApproval": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue_url, "MessageBody": {"token.$": "$$.Task.Token"}},
                "HeartbeatSeconds": 3600,
                "End": True,
            }
        },
    }
    sfn = backend.boto("stepfunctions")
    machine_arn = sfn.create_state_machine(name="upgrade", definition=json.dumps(definition), roleArn=ROLE_ARN)[
        "stateMachineArn"
    ]
    execution_arn = sfn.start_execution(stateMachineArn=machine_arn, input="{}")["executionArn"]

    messages = wait_for(lambda: sqs.receive_message(QueueUrl=queue_url).get("Messages"), "the task token message")
    return execution_arn, json.loads(messages[0]["Body"])["token"]


def finished(backend, execution_arn):
    def status():
        execution = backend.boto("stepfunctions").describe_execution(executionArn=execution_arn)
        return execution if execution["status"] != "RUNNING" else None

    return wait_for(status, "the execution to finish")


def test_send_task_success(aws):
    execution_arn, token = waiting_execution(aws)

    stepfunctions.send_task_success(token, {"approved_by": "U024BE7LH"}, client=aws.client)

    execution = finished(aws, execution_arn)
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"]) == {"approved_by": "U024BE7LH"}


def test_send_task_failure(aws):
    execution_arn, token = waiting_execution(aws)

    stepfunctions.send_task_failure(token, "NotApproved", "rejected in Slack", client=aws.client)

    execution = finished(aws, execution_arn)
    history = aws.boto("stepfunctions").get_execution_history(executionArn=execution_arn)["events"]
    failures = [event["executionFailedEventDetails"] for event in history if event["type"] == "ExecutionFailed"]
    # NOTE: moto 5.2 drops SendTaskFailure's `cause`; test_send_task_failure_wire_format checks it is sent.
    assert execution["status"] == "FAILED"
    assert [failure["error"] for failure in failures] == ["NotApproved"]


def test_send_task_heartbeat_keeps_running(aws):
    execution_arn, token = waiting_execution(aws)

    stepfunctions.send_task_heartbeat(token, client=aws.client)

    execution = aws.boto("stepfunctions").describe_execution(executionArn=execution_arn)
    assert execution["status"] == "RUNNING"


def test_send_task_success_wire_format(canned):
    stepfunctions.send_task_success("token-1", {"a": [1, 2]}, client=client_for(canned))

    request = canned.requests[0]
    assert request.headers["X-Amz-Target"] == "AWSStepFunctions.SendTaskSuccess"
    assert request.headers["Content-Type"] == "application/x-amz-json-1.0"
    assert request.json() == {"taskToken": "token-1", "output": '{"a":[1,2]}'}


def test_send_task_failure_wire_format(canned):
    stepfunctions.send_task_failure("token-1", "NotApproved", "rejected in Slack", client=client_for(canned))

    request = canned.requests[0]
    assert request.headers["X-Amz-Target"] == "AWSStepFunctions.SendTaskFailure"
    assert request.json() == {"taskToken": "token-1", "error": "NotApproved", "cause": "rejected in Slack"}


def test_send_task_failure_cut_to_limits(canned):
    stepfunctions.send_task_failure("token-1", "E" * 300, "c" * 40_000, client=client_for(canned))

    payload = canned.requests[0].json()
    assert len(payload["error"]) == stepfunctions.MAX_ERROR_LENGTH
    assert len(payload["cause"]) == stepfunctions.MAX_CAUSE_LENGTH


def test_task_timed_out_redacted(canned):
    token = "AQCEAAAAKgAAAAMAAAAAAAAAAf-secret-token"
    canned.default = json_error(400, "TaskTimedOut", f"Task Timed Out: '{token}'")

    with pytest.raises(AwsPermanentError) as caught:
        stepfunctions.send_task_success(token, {}, client=client_for(canned))

    assert caught.value.code == "TaskTimedOut"
    assert token not in str(caught.value)
    assert REDACTED in str(caught.value)


@pytest.mark.parametrize("token", ["", "   ", None])
def test_invalid_token_rejected(token):
    with pytest.raises(ValueError, match="task token"):
        stepfunctions.send_task_heartbeat(token)
