"""CSS credentials from Secrets Manager: read through the boto3-free client, cached, re-read when rejected."""

from __future__ import annotations

import json

from handler import runtime, worker
from handler.local.emulator.catalog import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY

LOGS_PROD = "ea244205-d641-45d9-9dcb-ab2236bcd07e"
SEARCH_PROD = "02bfab90-9f44-5f39-9d58-2fe518687173"


def _use_secret(sandbox, value: str) -> str:
    name = f"css-credentials-{sandbox.table_name[-8:]}"
    sandbox.boto("secretsmanager").create_secret(Name=name, SecretString=value)
    sandbox.apply_environment({"HUAWEICLOUD_SDK_AK": None, "HUAWEICLOUD_SDK_SK": None, "CSS_CREDENTIALS_SECRET": name})
    runtime.reset()
    return name


def test_secret_credentials_used(sandbox):
    _use_secret(sandbox, json.dumps({"ak": DEFAULT_ACCESS_KEY, "sk": DEFAULT_SECRET_KEY}))
    sandbox.send([LOGS_PROD])

    delivery = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

    assert delivery.response == {"batchItemFailures": []}
    assert [event["cluster"]["id"] for event in sandbox.received_events()] == [LOGS_PROD]


def test_rotated_secret_read_again_after_rejection(sandbox):
    name = _use_secret(sandbox, json.dumps({"ak": DEFAULT_ACCESS_KEY, "sk": "secret-before-rotation"}))
    sandbox.send([LOGS_PROD])
    first = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())
    assert first.error is not None  # the cached secret is rejected and re-reading gives the same one

    sandbox.boto("secretsmanager").put_secret_value(SecretId=name, SecretString=json.dumps({"ak": DEFAULT_ACCESS_KEY, "sk": DEFAULT_SECRET_KEY}))
    sandbox.send([SEARCH_PROD])
    events = []
    for delivery in sandbox.drain(worker.lambda_handler):
        assert delivery.error is None
        events.extend(sandbox.received_events())

    assert sorted(event["cluster"]["id"] for event in events) == sorted([LOGS_PROD, SEARCH_PROD])
    rejected = [call for call in sandbox.emulator.calls if call.status == 401]
    assert len(rejected) >= 2


def test_malformed_secret_is_configuration_fault(sandbox):
    _use_secret(sandbox, "not json")
    sandbox.send([LOGS_PROD])

    delivery = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

    assert "CSS_CREDENTIALS_SECRET" in str(delivery.error)
    assert delivery.deleted == []


def test_missing_secret_is_configuration_fault(sandbox):
    sandbox.apply_environment({"HUAWEICLOUD_SDK_AK": None, "HUAWEICLOUD_SDK_SK": None, "CSS_CREDENTIALS_SECRET": "no-such-secret"})
    runtime.reset()
    sandbox.send([LOGS_PROD])

    delivery = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

    assert delivery.error is not None
    assert "no-such-secret" in str(delivery.error)
    assert delivery.deleted == []
