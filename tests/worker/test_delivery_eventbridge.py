"""EventBridge publishing: the entry's shape, both targets at once, and failed entries.

The worker publishes to a custom bus in moto, whose rule forwards every css-upgrade-scout event to an
SQS queue, so the tests read what a real rule target would receive. Failed entries, which moto never
reports, come from a canned PutEvents server on 127.0.0.1.
"""

from __future__ import annotations

import json

import pytest

from handler import worker
from handler.delivery.publish import Broadcaster
from tests.aws import CannedResponse, CannedServer, client_for
from tests.core import event_samples
from tests.worker.delivery_support import (
    ANNOUNCED,
    LOGS_PROD,
    REDELIVERY,
    SUPPRESSED,
    bus_deliveries,
    captured_logs,
    create_bus,
    reconfigure,
    received_events,
    record_outcomes,
    running_sandbox,
    work_message,
)

SOURCE = "css-upgrade-scout"


def put_events_result(*entries: dict) -> CannedResponse:
    failed = sum(1 for entry in entries if "ErrorCode" in entry)
    body = json.dumps({"FailedEntryCount": failed, "Entries": list(entries)})
    return CannedResponse(200, body, {"Content-Type": "application/x-amz-json-1.1"})


INTERNAL_FAILURE = {"ErrorCode": "InternalFailure", "ErrorMessage": "Internal failure, please retry"}


@pytest.mark.parametrize("bus_form", ["name", "arn"])
def test_eventbridge_entry_shape(bus_form):
    with running_sandbox() as sandbox:
        name, arn, queue_url = create_bus(sandbox)
        reconfigure(sandbox, NOTIFY_EVENT_BUS=name if bus_form == "name" else arn, NOTIFY_TOPIC_ARN=None)
        [message_id] = sandbox.send([LOGS_PROD])

        delivery = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

        assert delivery.response == {"batchItemFailures": []}
        [envelope] = bus_deliveries(sandbox, queue_url)
        assert envelope["source"] == SOURCE
        assert envelope["detail-type"] == "upgrade.ready"
        assert envelope["detail"]["event_type"] == "upgrade.ready"
        assert envelope["detail"]["cluster"]["id"] == LOGS_PROD
        assert envelope["detail"]["trigger"]["message_id"] == message_id
        assert received_events(sandbox) == []


def test_sns_and_eventbridge_both_announced_once():
    with running_sandbox() as sandbox, captured_logs() as logs:
        name, _, queue_url = create_bus(sandbox)
        reconfigure(sandbox, NOTIFY_EVENT_BUS=name)
        sandbox.send([LOGS_PROD])
        first = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())
        sandbox.send([work_message(LOGS_PROD)])
        second = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

        events = received_events(sandbox)
        envelopes = bus_deliveries(sandbox, queue_url)
        assert len(events) == 1
        assert len(envelopes) == 1
        assert envelopes[0]["detail"] == {key: value for key, value in events[0].items() if key != "_attributes"}
        outcomes = record_outcomes([first, second], events=events, letters=[], logs=logs)
        assert [outcome for _, outcome in outcomes] == [ANNOUNCED, SUPPRESSED]


def test_broadcaster_resends_failed_entry():
    event = event_samples.check_event()
    with CannedServer() as bus:
        bus.enqueue(put_events_result(INTERNAL_FAILURE), put_events_result({"EventId": "e-1"}))
        broadcaster = Broadcaster(client_for(bus), event_bus="scout-bus")

        broadcaster.broadcast(event)

        assert len(bus.requests) == 2
        assert bus.requests[0].json() == bus.requests[1].json()
        [entry] = bus.requests[1].json()["Entries"]
        assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (SOURCE, "upgrade.ready", "scout-bus")
        assert entry["Detail"] == event.to_json()


def test_eventbridge_failure_redelivered_then_announced():
    with running_sandbox() as sandbox, captured_logs() as logs, CannedServer(put_events_result(INTERNAL_FAILURE)) as broken_bus:
        name, _, queue_url = create_bus(sandbox)
        reconfigure(sandbox, NOTIFY_EVENT_BUS=name, NOTIFY_TOPIC_ARN=None, AWS_ENDPOINT_URL_EVENTBRIDGE=broken_bus.url)
        [message_id] = sandbox.send([LOGS_PROD])

        first = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

        assert first.response == {"batchItemFailures": [{"itemIdentifier": message_id}]}
        assert len(broken_bus.requests) == 3  # the EventBridge client's resend rounds

        reconfigure(sandbox, AWS_ENDPOINT_URL_EVENTBRIDGE=None)
        second = sandbox.invoke(worker.lambda_handler, sandbox.receive_event(wait_seconds=3))

        envelopes = bus_deliveries(sandbox, queue_url)
        assert [envelope["detail"]["trigger"]["message_id"] for envelope in envelopes] == [message_id]
        events = [envelope["detail"] for envelope in envelopes]
        outcomes = record_outcomes([first, second], events=events, letters=[], logs=logs)
        assert [outcome for _, outcome in outcomes] == [REDELIVERY, ANNOUNCED]


def test_eventbridge_failure_not_repeated_on_sns():
    with running_sandbox() as sandbox, captured_logs() as logs, CannedServer(put_events_result(INTERNAL_FAILURE)) as broken_bus:
        name, _, queue_url = create_bus(sandbox)
        reconfigure(sandbox, NOTIFY_EVENT_BUS=name, AWS_ENDPOINT_URL_EVENTBRIDGE=broken_bus.url)
        [message_id] = sandbox.send([LOGS_PROD])

        # SNS takes the event, then EventBridge fails every resend round.
        first = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())
        assert first.response == {"batchItemFailures": [{"itemIdentifier": message_id}]}
        [item] = sandbox.boto("dynamodb").scan(TableName=sandbox.table_name)["Items"]
        assert item["status"] == {"S": "partial"}
        assert item["published_targets"] == {"SS": [f"sns:{sandbox.topic_arn}"]}

        reconfigure(sandbox, AWS_ENDPOINT_URL_EVENTBRIDGE=None)
        second = sandbox.invoke(worker.lambda_handler, sandbox.receive_event(wait_seconds=3))
        assert second.response == {"batchItemFailures": []}

        events = received_events(sandbox)
        envelopes = bus_deliveries(sandbox, queue_url)
        assert [event["trigger"]["message_id"] for event in events] == [message_id]
        assert [envelope["detail"]["trigger"]["message_id"] for envelope in envelopes] == [message_id]
        outcomes = record_outcomes([first, second], events=events, letters=[], logs=logs)
        assert [outcome for _, outcome in outcomes] == [REDELIVERY, ANNOUNCED]

        # Both targets have the event now, so a later check of the same event is suppressed on both.
        sandbox.send([work_message(LOGS_PROD)])
        third = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())
        assert received_events(sandbox) == []
        assert bus_deliveries(sandbox, queue_url) == []
        assert record_outcomes([third], events=[], letters=[], logs=logs)[0][1] == SUPPRESSED
