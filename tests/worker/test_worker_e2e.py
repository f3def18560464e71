"""The main job end to end: moto SQS -> worker -> moto SNS -> subscriber queue, CSS over real sockets."""

from __future__ import annotations

import json

from handler import runtime, worker
from handler.local.emulator.faults import Fault
from tests.core.schema_check import validate_event

LOGS_PROD = "ea244205-d641-45d9-9dcb-ab2236bcd07e"
SEARCH_PROD = "02bfab90-9f44-5f39-9d58-2fe518687173"
OS_LOGS = "a4a1bdf6-41a9-58d1-9159-3d8df47655b0"
LEGACY_LOGS = "e08f92c9-cac6-5470-be67-ee133e0f44f9"
UNKNOWN = "0b0e6a29-2f7c-4d38-9a51-7f0f5e3c2a11"
PROJECT = "6204a5bd270343b5885144cf9c8c158d"


def _by_cluster(events):
    return {event["cluster"]["id"]: event for event in events}


def test_mixed_batch_outcomes(sandbox):
    # One record is throttled once and then succeeds; another fails on every attempt.
    sandbox.emulator.inject(Fault(kind="throttle", route="list_images", cluster_id=OS_LOGS, times=1, retry_after=0))
    sandbox.emulator.inject(Fault(kind="server_error", route="show_cluster", cluster_id=LEGACY_LOGS, status=503))
    bodies = [
        json.dumps({"cluster_id": LOGS_PROD, "project_id": PROJECT, "region": "ap-southeast-1", "correlation_id": "corr-1"}),
        SEARCH_PROD,
        "{not json",
        UNKNOWN,
        OS_LOGS,
        LEGACY_LOGS,
    ]
    message_ids = sandbox.send(bodies)
    event = sandbox.receive_event()
    assert len(event["Records"]) == 6

    delivery = sandbox.invoke(worker.lambda_handler, event)

    assert delivery.error is None
    assert delivery.response == {"batchItemFailures": [{"itemIdentifier": message_ids[5]}]}

    events = sandbox.received_events()
    by_cluster = _by_cluster(events)
    assert sorted(by_cluster) == sorted([LOGS_PROD, SEARCH_PROD, UNKNOWN, OS_LOGS])
    assert by_cluster[LOGS_PROD]["event_type"] == "upgrade.ready"
    assert by_cluster[LOGS_PROD]["target_image"]["display_name"] == "7.10.2_24.3.4_0109"
    assert by_cluster[LOGS_PROD]["trigger"]["correlation_id"] == "corr-1"
    assert by_cluster[SEARCH_PROD]["event_type"] == "upgrade.ready"
    assert by_cluster[SEARCH_PROD]["upgrade_type"] == "same"
    assert by_cluster[OS_LOGS]["event_type"] == "upgrade.ready"
    assert by_cluster[UNKNOWN]["event_type"] == "check.failed"
    assert by_cluster[UNKNOWN]["reason"] == "cluster_not_found"
    for received in events:
        attributes = received.pop("_attributes")
        validate_event(received)
        assert attributes["event_type"] == received["event_type"]
        assert attributes["cluster_id"] == received["cluster"]["id"]
        assert set(attributes) == {"event_type", "cluster_id", "project_id", "region", "schema_version", "upgrade_type", "datastore_type"}

    letters = sandbox.dead_letters()
    assert sorted((letter["body"], letter["error_reason"]) for letter in letters) == sorted(
        [("{not json", "invalid_message"), (UNKNOWN, "cluster_not_found")]
    )


def test_throttled_call_retried_then_announced(sandbox):
    sandbox.emulator.inject(Fault(kind="throttle", route="list_images", cluster_id=OS_LOGS, times=1, retry_after=0))
    sandbox.send([OS_LOGS])

    delivery = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

    assert delivery.response == {"batchItemFailures": []}
    assert sandbox.emulator.call_count("list_images", OS_LOGS) == 3  # same twice (throttled, then fine), cross once


def test_redelivered_message_announced_once(sandbox):
    sandbox.send([LOGS_PROD, LOGS_PROD])
    deliveries = sandbox.drain(worker.lambda_handler)

    events = sandbox.received_events()
    assert [event["cluster"]["id"] for event in events] == [LOGS_PROD]
    assert all(delivery.error is None for delivery in deliveries)


def test_every_record_failing_returns_full_list(sandbox):
    sandbox.emulator.inject(Fault(kind="server_error", route="show_cluster"))
    ids = sandbox.send([LOGS_PROD, SEARCH_PROD])

    delivery = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

    assert delivery.error is None
    failures = sorted(item["itemIdentifier"] for item in delivery.response["batchItemFailures"])
    assert failures == sorted(ids)


def test_rejected_credentials_fail_whole_batch(sandbox):
    sandbox.apply_environment({"HUAWEICLOUD_SDK_SK": "not-the-secret"})
    runtime.reset()
    sandbox.send([LOGS_PROD, SEARCH_PROD])

    delivery = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

    assert delivery.error is not None
    assert "APIGW.0301" in str(delivery.error)
    assert delivery.deleted == []
    assert sandbox.received_events() == []


def test_missing_credentials_is_configuration_fault(sandbox):
    sandbox.apply_environment({"HUAWEICLOUD_SDK_AK": None, "HUAWEICLOUD_SDK_SK": None})
    runtime.reset()
    sandbox.send([LOGS_PROD])

    delivery = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

    assert "HUAWEICLOUD_SDK_AK" in str(delivery.error)
    assert delivery.deleted == []
