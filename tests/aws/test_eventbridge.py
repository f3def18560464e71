"""EventBridge PutEvents end to end against moto, and per-entry failures against canned responses."""

from __future__ import annotations

import json

import pytest

from handler.aws import eventbridge
from handler.aws.errors import AwsConfigurationError, AwsPermanentError, AwsTransientError
from handler.aws.eventbridge import EventEntry

from . import MODES, OTHER_REGION, CannedResponse, CannedServer, client_for, moto_backend, running_moto_server

SOURCE = "css-upgrade-scout"


@pytest.fixture(scope="module")
def moto_server():
    with running_moto_server() as url:
        yield url


@pytest.fixture(params=MODES)
def aws(request):
    with moto_backend(request.param, lambda: request.getfixturevalue("moto_server")) as backend:
        yield backend


@pytest.fixture
def canned():
    with CannedServer() as server:
        yield server


def bus_with_queue_target(backend, bus_name, region="us-east-1"):
    """Create a custom bus whose rule sends every css-upgrade-scout event to a new queue; return (bus ARN, queue URL)."""
    events = backend.boto("events", region)
    sqs = backend.boto("sqs", region)
    bus_arn = events.create_event_bus(Name=bus_name)["EventBusArn"]
    queue_url = sqs.create_queue(QueueName=f"{bus_name}-target")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all", EventBusName=bus_name, EventPattern=json.dumps({"source": [SOURCE]}))
    events.put_targets(Rule="all", EventBusName=bus_name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return bus_arn, queue_url


def delivered(backend, queue_url, region="us-east-1"):
    bodies = []
    sqs = backend.boto("sqs", region)
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_put_events_custom_bus(aws):
    _, queue_url = bus_with_queue_target(aws, "upgrades")
    event = {"schema_version": "1", "event_type": "upgrade.ready", "cluster": {"id": "c-1"}}

    event_ids = eventbridge.put_events([EventEntry(SOURCE, "upgrade.ready", event)], "upgrades", client=aws.client)

    bodies = delivered(aws, queue_url)
    assert len(event_ids) == 1
    assert bodies[0]["id"] == event_ids[0]
    assert bodies[0]["source"] == SOURCE
    assert bodies[0]["detail-type"] == "upgrade.ready"
    assert bodies[0]["detail"] == event


def test_put_events_more_than_ten(aws):
    _, queue_url = bus_with_queue_target(aws, "upgrades")
    entries = [EventEntry(SOURCE, "upgrade.none", {"n": number}) for number in range(23)]

    event_ids = eventbridge.put_events(entries, "upgrades", client=aws.client)

    bodies = delivered(aws, queue_url)
    assert len(event_ids) == 23
    assert len(set(event_ids)) == 23
    assert sorted(body["detail"]["n"] for body in bodies) == list(range(23))


def test_put_events_bus_arn_other_region(aws):
    bus_arn, queue_url = bus_with_queue_target(aws, "upgrades", region=OTHER_REGION)

    eventbridge.put_events([EventEntry(SOURCE, "upgrade.ready", {"a": 1})], bus_arn, client=aws.client)

    assert [body["region"] for body in delivered(aws, queue_url, OTHER_REGION)] == [OTHER_REGION]


def test_put_events_malformed_entry_raises(aws):
    _, queue_url = bus_with_queue_target(aws, "upgrades")
    entries = [EventEntry(SOURCE, "upgrade.ready", {"a": 1}), EventEntry(SOURCE, "upgrade.ready", "{not json")]

    with pytest.raises(AwsPermanentError) as caught:
        eventbridge.put_events(entries, "upgrades", client=aws.client)

    assert caught.value.code == "MalformedDetail"
    assert caught.value.failed_ids == ("1",)
    assert "1 of 2 events failed" in str(caught.value)
    assert len(delivered(aws, queue_url)) == 1


def test_put_events_missing_bus(aws):
    with pytest.raises(AwsConfigurationError) as caught:
        eventbridge.put_events([EventEntry(SOURCE, "upgrade.ready", {"a": 1})], "missing", client=aws.client)
    assert "missing" in str(caught.value)


def put_events_response(*results: dict) -> CannedResponse:
    failed = sum(1 for result in results if "ErrorCode" in result)
    return CannedResponse(200, json.dumps({"FailedEntryCount": failed, "Entries": list(results)}))


def test_put_events_resends_internal_failures(canned):
    canned.enqueue(
        put_events_response({"EventId": "e-0"}, {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}, {"EventId": "e-2"}),
        put_events_response({"EventId": "e-1"}),
    )
    entries = [EventEntry(SOURCE, "upgrade.ready", {"n": number}) for number in range(3)]

    event_ids = eventbridge.put_events(entries, "upgrades", client=client_for(canned))

    resent = canned.requests[1].json()["Entries"]
    assert event_ids == ["e-0", "e-1", "e-2"]
    assert [json.loads(entry["Detail"]) for entry in resent] == [{"n": 1}]
    assert resent[0]["EventBusName"] == "upgrades"


def test_put_events_resending_bounded(canned):
    canned.default = put_events_response({"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"})

    with pytest.raises(AwsTransientError) as caught:
        eventbridge.put_events([EventEntry(SOURCE, "upgrade.ready", {})], "upgrades", client=client_for(canned))

    assert caught.value.failed_ids == ("0",)
    assert len(canned.requests) == eventbridge.MAX_ROUNDS


def test_put_events_access_denied_entry(canned):
    canned.default = put_events_response({"ErrorCode": "AccessDeniedException", "ErrorMessage": "not authorized"})

    with pytest.raises(AwsConfigurationError):
        eventbridge.put_events([EventEntry(SOURCE, "upgrade.ready", {})], "upgrades", client=client_for(canned))

    assert len(canned.requests) == 1


def test_put_events_wire_format(canned):
    canned.default = put_events_response({"EventId": "e-0"})

    eventbridge.put_events(
        [EventEntry(SOURCE, "upgrade.ready", {"a": 1}, resources=["arn:aws:s3:::x"])], "upgrades", client=client_for(canned)
    )

    request = canned.requests[0]
    assert request.headers["X-Amz-Target"] == "AWSEvents.PutEvents"
    assert request.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert request.json() == {
        "Entries": [
            {
                "Source": SOURCE,
                "DetailType": "upgrade.ready",
                "Detail": '{"a":1}',
                "EventBusName": "upgrades",
                "Resources": ["arn:aws:s3:::x"],
            }
        ]
    }


def test_put_events_split_by_size(canned):
    canned.enqueue(put_events_response({"EventId": "e-0"}, {"EventId": "e-1"}), put_events_response({"EventId": "e-2"}))
    entries = [EventEntry(SOURCE, "upgrade.ready", {"pad": "x" * 100_000}) for _ in range(3)]

    event_ids = eventbridge.put_events(entries, "upgrades", client=client_for(canned))

    assert event_ids == ["e-0", "e-1", "e-2"]
    assert [len(request.json()["Entries"]) for request in canned.requests] == [2, 1]


def test_put_events_invalid_bus():
    with pytest.raises(ValueError, match="event bus"):
        eventbridge.put_events([], "")
