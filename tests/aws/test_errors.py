"""Error parsing and classification, and retries, against canned AWS error responses on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import random
import zlib

import pytest

from handler.aws import sns, sqs, stepfunctions
from handler.aws.endpoints import DYNAMODB, STEP_FUNCTIONS
from handler.aws.errors import (
    REDACTED,
    THROTTLING_CODES,
    AwsConfigurationError,
    AwsError,
    AwsPermanentError,
    AwsTransientError,
    ConditionalCheckFailed,
    error_from_response,
    parse_error_body,
)
from handler.retry import Deadline, RetryPolicy

from . import FAST_RETRIES, CannedResponse, CannedServer, client_for, json_error

QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/work"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:upgrades"

SNS_NOT_FOUND = (
    '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type>'
    "<Code>NotFound</Code><Message>Topic does not exist</Message></Error>"
    "<RequestId>sns-req-7</RequestId></ErrorResponse>"
)


@pytest.fixture
def canned():
    with CannedServer() as server:
        yield server


# (status, body, headers, class, code, message, request ID)
PARSE_CASES = [
    (
        400,
        '{"__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", "message": "Requested resource not found"}',
        {"x-amzn-RequestId": "ddb-1"},
        AwsConfigurationError,
        "ResourceNotFoundException",
        "Requested resource not found",
        "ddb-1",
    ),
    (
        400,
        '{"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "The specified queue does not exist."}',
        {"x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender"},
        AwsConfigurationError,
        "AWS.SimpleQueueService.NonExistentQueue",
        "The specified queue does not exist.",
        None,
    ),
    (400, '{"code": "ValidationException", "Message": "1 validation error"}', {}, AwsPermanentError, "ValidationException", "1 validation error", None),
    (400, "", {"x-amzn-ErrorType": "ValidationException:http://internal.amazon.com/coral/"}, AwsPermanentError, "ValidationException", None, None),
    (404, SNS_NOT_FOUND, {}, AwsConfigurationError, "NotFound", "Topic does not exist", "sns-req-7"),
    (
        400,
        "<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>",
        {},
        AwsTransientError,
        "Throttling",
        "Rate exceeded",
        None,
    ),
    (
        403,
        "<ErrorResponse><Error><Code>AuthorizationError</Code><Message>not authorized to perform SNS:Publish</Message></Error></ErrorResponse>",
        {},
        AwsConfigurationError,
        "AuthorizationError",
        "not authorized to perform SNS:Publish",
        None,
    ),
    (400, '{"__type": "ConditionalCheckFailedException", "message": "The conditional request failed"}', {}, ConditionalCheckFailed, "ConditionalCheckFailedException", "The conditional request failed", None),
    (400, '{"__type": "ExpiredTokenException", "message": "expired"}', {}, AwsConfigurationError, "ExpiredTokenException", "expired", None),
    (403, '{"__type": "UnrecognizedClientException", "message": "bad key"}', {}, AwsConfigurationError, "UnrecognizedClientException", "bad key", None),
    (400, '{"__type": "AccessDeniedException", "Message": "no"}', {}, AwsConfigurationError, "AccessDeniedException", "no", None),
    (403, "<ErrorResponse><Error><Code>InvalidClientTokenId</Code></Error></ErrorResponse>", {}, AwsConfigurationError, "InvalidClientTokenId", None, None),
    (403, "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code></Error></ErrorResponse>", {}, AwsConfigurationError, "SignatureDoesNotMatch", None, None),
    (400, '{"__type": "ResourceNotFound", "message": "no bus"}', {}, AwsConfigurationError, "ResourceNotFound", "no bus", None),
    (500, "", {}, AwsTransientError, None, None, None),
    (503, "<html><body>Service Unavailable</body></html>", {}, AwsTransientError, None, None, None),
    (500, '{"__type": "InternalServerError"}', {}, AwsTransientError, "InternalServerError", None, None),
    (400, '{"__type": "ServiceUnavailable"}', {}, AwsTransientError, "ServiceUnavailable", None, None),
    (400, '{"__type": "InternalError"}', {}, AwsTransientError, "InternalError", None, None),
    (429, '{"message": "slow down"}', {}, AwsTransientError, None, "slow down", None),
    (403, "{}", {}, AwsConfigurationError, None, None, None),
    (400, '{"__type": "InvalidParameterValue", "message": "bad"}', {}, AwsPermanentError, "InvalidParameterValue", "bad", None),
    (413, "too large", {}, AwsPermanentError, None, "too large", None),
]


@pytest.mark.parametrize(("status", "body", "headers", "error_class", "code", "message", "request_id"), PARSE_CASES)
def test_error_from_response_table(status, body, headers, error_class, code, message, request_id):
    error = error_from_response(status, body.encode(), headers, service="test", operation="Op")

    assert type(error) is error_class
    assert error.code == code
    assert error.request_id == request_id
    assert error.status == status
    if message is not None:
        assert error.detail == message


@pytest.mark.parametrize("code", sorted(THROTTLING_CODES))
def test_error_from_response_throttling_codes(code):
    error = error_from_response(400, json.dumps({"__type": code}).encode(), {}, service="test", operation="Op")
    assert isinstance(error, AwsTransientError)
    assert error.retryable


def test_parse_error_body_long_message_cut():
    _, message, _ = parse_error_body(json.dumps({"message": "x" * 5000}))
    assert len(message) < 400


def test_error_message_names_resource():
    error = error_from_response(
        400, b'{"__type": "QueueDoesNotExist"}', {}, service="sqs", operation="SendMessage", resource=QUEUE_URL
    )
    assert QUEUE_URL in str(error)
    assert "sqs SendMessage" in str(error)
    assert "QueueDoesNotExist" in str(error)


def test_retry_throttling_then_success(canned):
    canned.enqueue(json_error(400, "ThrottlingException", "Rate exceeded"))
    canned.default = CannedResponse(200, '{"ok": true}')

    result = client_for(canned).call_json(DYNAMODB, "GetItem", {"TableName": "t"})

    assert result == {"ok": True}
    assert len(canned.requests) == 2


def test_retry_server_error_then_success(canned):
    canned.enqueue(CannedResponse(500, ""), json_error(503, "ServiceUnavailable", "try later"))
    canned.default = CannedResponse(200, '{"ok": true}')

    result = client_for(canned).call_json(DYNAMODB, "GetItem", {"TableName": "t"})

    assert result == {"ok": True}
    assert len(canned.requests) == 3


def test_retry_gives_up_after_max_attempts(canned):
    canned.default = json_error(400, "ProvisionedThroughputExceededException", "too fast")

    with pytest.raises(AwsTransientError) as caught:
        client_for(canned).call_json(DYNAMODB, "GetItem", {"TableName": "t"})

    assert caught.value.code == "ProvisionedThroughputExceededException"
    assert len(canned.requests) == FAST_RETRIES.max_attempts


@pytest.mark.parametrize(
    ("response", "error_class"),
    [
        (json_error(400, "AccessDeniedException", "not authorized to perform dynamodb:GetItem"), AwsConfigurationError),
        (json_error(400, "ValidationException", "One or more parameter values were invalid"), AwsPermanentError),
        (json_error(400, "ResourceNotFoundException", "Requested resource not found"), AwsConfigurationError),
        (json_error(400, "ConditionalCheckFailedException", "The conditional request failed"), ConditionalCheckFailed),
    ],
)
def test_no_retry_for_lasting_errors(canned, response, error_class):
    canned.default = response

    with pytest.raises(error_class):
        client_for(canned).call_json(DYNAMODB, "GetItem", {"TableName": "t"})

    assert len(canned.requests) == 1


def test_sqs_nonexistent_queue_configuration(canned):
    canned.default = json_error(
        400,
        "QueueDoesNotExist",
        "The specified queue does not exist.",
        **{"x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender"},
    )

    with pytest.raises(AwsConfigurationError) as caught:
        sqs.send_message(QUEUE_URL, "hello", client=client_for(canned))

    assert caught.value.code == "AWS.SimpleQueueService.NonExistentQueue"
    assert QUEUE_URL in str(caught.value)
    assert len(canned.requests) == 1


def test_sns_not_found_configuration(canned):
    canned.default = CannedResponse(404, SNS_NOT_FOUND, {"Content-Type": "text/xml"})

    with pytest.raises(AwsConfigurationError) as caught:
        sns.publish(TOPIC_ARN, "hello", client=client_for(canned))

    assert caught.value.code == "NotFound"
    assert caught.value.request_id == "sns-req-7"
    assert TOPIC_ARN in str(caught.value)


def test_sns_throttling_retried(canned):
    throttled = "<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"
    canned.enqueue(CannedResponse(400, throttled, {"Content-Type": "text/xml"}))
    canned.default = CannedResponse(
        200, "<PublishResponse><PublishResult><MessageId>m-2</MessageId></PublishResult></PublishResponse>", {}
    )

    assert sns.publish(TOPIC_ARN, "hello", client=client_for(canned)) == "m-2"
    assert len(canned.requests) == 2


def test_retry_after_header_waited(canned):
    canned.enqueue(json_error(429, "TooManyRequestsException", "slow down", **{"Retry-After": "2"}))
    sleeps: list[float] = []
    client = client_for(canned, sleep=sleeps.append)

    client.call_json(DYNAMODB, "GetItem", {"TableName": "t"})

    assert sleeps == [2.0]


class FakeClock:
    """A monotonic clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class MaxJitter(random.Random):
    """Always picks the top of the jitter range, so backoff delays are known in advance."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_retries_stop_at_deadline(canned):
    canned.default = json_error(500, "InternalFailure", "boom")
    clock = FakeClock()
    client = client_for(
        canned,
        retry_policy=RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=1.0),
        sleep=clock.sleep,
        rng=MaxJitter(),
    )

    with pytest.raises(AwsTransientError):
        client.call_json(DYNAMODB, "GetItem", {"TableName": "t"}, deadline=Deadline(2.5, clock=clock))

    # Attempts at t=0, 1 and 2; the next wait of 1 s would end past the deadline at 2.5.
    assert len(canned.requests) == 3
    assert clock.now == 2.0


def test_invalid_json_success_retried(canned):
    canned.enqueue(CannedResponse(200, "<html>proxy</html>"))
    canned.default = CannedResponse(200, '{"ok": 1}')

    assert client_for(canned).call_json(DYNAMODB, "GetItem", {"TableName": "t"}) == {"ok": 1}
    assert len(canned.requests) == 2


def test_crc32_mismatch_retried(canned):
    body = b'{"Item": {"id": {"S": "a"}}}'
    good = str(zlib.crc32(body))
    canned.enqueue(CannedResponse(200, body, {"x-amz-crc32": "12345"}))
    canned.default = CannedResponse(200, body, {"x-amz-crc32": good})

    result = client_for(canned).call_json(DYNAMODB, "GetItem", {"TableName": "t"})

    assert result == {"Item": {"id": {"S": "a"}}}
    assert len(canned.requests) == 2


TOKEN = "AAAAKgAAAAIAAAAAAAAAAQ-secret-task-token-value"


def test_task_token_redacted_in_error(canned):
    canned.default = json_error(400, "InvalidToken", f"Invalid token: '{TOKEN}'")

    with pytest.raises(AwsPermanentError) as caught:
        stepfunctions.send_task_success(TOKEN, {"ok": True}, client=client_for(canned))

    assert TOKEN not in str(caught.value)
    assert TOKEN not in caught.value.detail
    assert REDACTED in caught.value.detail
    assert caught.value.code == "InvalidToken"


def test_task_token_redacted_in_retry_log(canned, caplog):
    canned.enqueue(json_error(400, "ThrottlingException", f"too many calls for {TOKEN}"))
    caplog.set_level(logging.DEBUG)

    stepfunctions.send_task_heartbeat(TOKEN, client=client_for(canned))

    assert "retrying" in caplog.text
    assert TOKEN not in caplog.text
    assert json.loads(canned.requests[0].body)["taskToken"] == TOKEN


def test_error_hierarchy():
    assert issubclass(AwsTransientError, AwsError)
    assert issubclass(AwsConfigurationError, AwsError)
    assert issubclass(AwsPermanentError, AwsError)
    assert issubclass(ConditionalCheckFailed, AwsError)
    assert AwsTransientError.retryable
    assert not AwsConfigurationError.retryable
    assert not AwsPermanentError.retryable
    assert not ConditionalCheckFailed.retryable


def test_retried_request_same_operation(canned):
    canned.enqueue(json_error(500, "InternalFailure", "boom"))
    client_for(canned).call_json(STEP_FUNCTIONS, "SendTaskHeartbeat", {"taskToken": "t"})
    targets = [request.headers.get("X-Amz-Target") for request in canned.requests]
    assert targets == ["AWSStepFunctions.SendTaskHeartbeat"] * 2
