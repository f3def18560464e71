"""Announce once: redeliveries, concurrent duplicates, lost claims, the renotify window and new event IDs.

Every test runs the worker against the CSS emulator and moto over real sockets (see delivery_support)
and counts what reached the topic's subscriber queue.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import Any, Iterator

from handler import worker
from handler.core.events import make_event_id
from handler.local.emulator.faults import Fault
from handler.local.sandbox import Delivery, FakeLambdaContext, Sandbox
from tests.aws import CannedResponse, CannedServer
from tests.worker.delivery_support import (
    ANNOUNCED,
    LOGS_PROD,
    LOGS_PROD_TARGET,
    METRICS_PROD,
    OS_LOGS,
    REDELIVERY,
    SUPPRESSED,
    SUPPRESSED_MESSAGE,
    atomic_conditional_writes,
    captured_logs,
    metric_totals,
    reconfigure,
    received_events,
    record_outcomes,
    replay,
    running_sandbox,
    work_message,
)

SECONDS_PER_DAY = 86400
LOGS_PROD_READY_ID = make_event_id(
    event_type="upgrade.ready", cluster_id=LOGS_PROD, upgrade_type="cross", target_image_id=LOGS_PROD_TARGET
)


def deliver_until_empty(sandbox: Sandbox, max_rounds: int = 6) -> list[Delivery]:
    """Invoke the worker on each batch until the work queue is empty; failed records come back after 1 s."""
    deliveries = []
    for _ in range(max_rounds):
        if sandbox.queue_depth(sandbox.work_queue_url) == 0:
            break
        event = sandbox.receive_event(wait_seconds=3)
        if event["Records"]:
            deliveries.append(sandbox.invoke(worker.lambda_handler, event))
    assert sandbox.queue_depth(sandbox.work_queue_url) == 0
    return deliveries


def ledger_item(sandbox: Sandbox, event_id: str) -> dict[str, Any] | None:
    item = sandbox.boto("dynamodb").get_item(TableName=sandbox.table_name, Key={"id": {"S": event_id}}, ConsistentRead=True)
    if "Item" not in item:
        return None
    return {name: next(iter(value.values())) for name, value in item["Item"].items()}


def put_ledger_item(sandbox: Sandbox, event_id: str, *, status: str, expiration: int) -> None:
    sandbox.boto("dynamodb").put_item(
        TableName=sandbox.table_name,
        Item={
            "id": {"S": event_id},
            "status": {"S": status},
            "expiration": {"N": str(expiration)},
            "claim": {"S": "token-of-another-worker"},
        },
    )


def final_outcomes(outcomes: list[tuple[str, str]]) -> dict[str, str]:
    """The last outcome of each message ID: what finally became of it."""
    return dict(outcomes)


def test_redelivered_message_suppressed(capsys):
    with running_sandbox() as sandbox, captured_logs() as logs:
        [message_id] = sandbox.send([LOGS_PROD])
        first = sandbox.receive_event()
        # The invocation announces but its records are never deleted (as when Lambda times out afterwards).
        response = worker.lambda_handler(first, FakeLambdaContext())
        assert response == {"batchItemFailures": []}

        again = sandbox.receive_event(wait_seconds=3)
        assert [record["messageId"] for record in again["Records"]] == [message_id]
        assert again["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
        capsys.readouterr()
        delivery = sandbox.invoke(worker.lambda_handler, again)

        events = received_events(sandbox)
        assert [event["event_id"] for event in events] == [LOGS_PROD_READY_ID]
        assert events[0]["trigger"]["message_id"] == message_id
        assert delivery.response == {"batchItemFailures": []}
        assert [line["event_id"] for line in logs.with_message(SUPPRESSED_MESSAGE)] == [LOGS_PROD_READY_ID]
        assert metric_totals(capsys.readouterr().out)["Outcome.suppressed"] == 1
        assert sandbox.queue_depth(sandbox.work_queue_url) == 0


def test_duplicates_in_one_batch_announced_once():
    with running_sandbox() as sandbox, captured_logs() as logs, atomic_conditional_writes():
        # Slow cluster reads make both records reach the announce step at about the same time.
        sandbox.emulator.inject(Fault(kind="latency", latency_ms=200, route="show_cluster", cluster_id=LOGS_PROD))
        first_id, second_id = sandbox.send([LOGS_PROD, work_message(LOGS_PROD)])
        batch = sandbox.receive_event()
        assert len(batch["Records"]) == 2

        deliveries = [sandbox.invoke(worker.lambda_handler, batch)]
        deliveries += deliver_until_empty(sandbox)

        events = received_events(sandbox)
        outcomes = record_outcomes(deliveries, events=events, letters=sandbox.dead_letters(), logs=logs)
        assert [event["event_id"] for event in events] == [LOGS_PROD_READY_ID]
        first_round = dict(outcomes[:2])
        assert sorted(first_round.values()) in ([ANNOUNCED, REDELIVERY], [ANNOUNCED, SUPPRESSED])
        finished = final_outcomes(outcomes)
        assert sorted(finished.values()) == [ANNOUNCED, SUPPRESSED]
        assert set(finished) == {first_id, second_id}


def test_concurrent_invocations_announce_once():
    with running_sandbox() as sandbox, captured_logs() as logs, atomic_conditional_writes():
        sandbox.emulator.inject(Fault(kind="latency", latency_ms=200, route="show_cluster"))
        sandbox.send([LOGS_PROD, OS_LOGS])
        first = sandbox.receive_event(max_messages=2)
        sandbox.send([work_message(LOGS_PROD), work_message(OS_LOGS)])
        second = sandbox.receive_event(max_messages=2)
        assert len(first["Records"]) == len(second["Records"]) == 2

        results: dict[str, tuple[dict | None, Exception | None]] = {}

        def invoke(name: str, event: dict) -> None:
            try:
                results[name] = (worker.lambda_handler(event, FakeLambdaContext()), None)
            except Exception as error:  # noqa: BLE001 - reported through results
                results[name] = (None, error)

        threads = [threading.Thread(target=invoke, args=item) for item in (("first", first), ("second", second))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

        deliveries = [sandbox.invoke(replay(*results[name]), event) for name, event in (("first", first), ("second", second))]
        for delivery in deliveries:
            own_ids = {record["messageId"] for record in delivery.event["Records"]}
            reported = {item["itemIdentifier"] for item in delivery.response["batchItemFailures"]}
            assert reported <= own_ids
        deliveries += deliver_until_empty(sandbox)

        events = received_events(sandbox)
        outcomes = record_outcomes(deliveries, events=events, letters=sandbox.dead_letters(), logs=logs)
        assert sorted(event["cluster"]["id"] for event in events) == sorted([LOGS_PROD, OS_LOGS])
        assert sorted(final_outcomes(outcomes).values()) == [ANNOUNCED, ANNOUNCED, SUPPRESSED, SUPPRESSED]


def test_expired_claim_announced():
    with running_sandbox() as sandbox, captured_logs() as logs:
        # A worker claimed the event and died before publishing; its claim has expired.
        put_ledger_item(sandbox, LOGS_PROD_READY_ID, status="claimed", expiration=int(time.time()) - 10)
        sandbox.send([LOGS_PROD])

        delivery = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

        events = received_events(sandbox)
        assert [event["event_id"] for event in events] == [LOGS_PROD_READY_ID]
        assert record_outcomes([delivery], events=events, letters=[], logs=logs)[0][1] == ANNOUNCED
        item = ledger_item(sandbox, LOGS_PROD_READY_ID)
        assert item["status"] == "published"
        assert item["claim"] != "token-of-another-worker"


def test_live_claim_redelivered_then_suppressed():
    with running_sandbox() as sandbox, captured_logs() as logs:
        # Another worker has a live claim: this delivery must neither announce nor drop the message.
        put_ledger_item(sandbox, LOGS_PROD_READY_ID, status="claimed", expiration=int(time.time()) + 600)
        [message_id] = sandbox.send([LOGS_PROD])

        first = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())
        assert first.response == {"batchItemFailures": [{"itemIdentifier": message_id}]}

        # The other worker publishes and confirms.
        put_ledger_item(sandbox, LOGS_PROD_READY_ID, status="published", expiration=int(time.time()) + SECONDS_PER_DAY)
        second = sandbox.invoke(worker.lambda_handler, sandbox.receive_event(wait_seconds=3))

        events = received_events(sandbox)
        assert events == []
        outcomes = record_outcomes([first, second], events=events, letters=[], logs=logs)
        assert [outcome for _, outcome in outcomes] == [REDELIVERY, SUPPRESSED]


def test_failed_publish_releases_claim():
    with running_sandbox() as sandbox, CannedServer(CannedResponse(503, "<html>Service Unavailable</html>")) as broken_sns:
        working_topic = sandbox.topic_arn
        reconfigure(sandbox, AWS_ENDPOINT_URL_SNS=broken_sns.url)
        [message_id] = sandbox.send([LOGS_PROD])

        failed = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

        assert failed.response == {"batchItemFailures": [{"itemIdentifier": message_id}]}
        assert len(broken_sns.requests) == 4  # the AWS client's attempts
        assert ledger_item(sandbox, LOGS_PROD_READY_ID) is None

        reconfigure(sandbox, AWS_ENDPOINT_URL_SNS=None, NOTIFY_TOPIC_ARN=working_topic)
        recovered = sandbox.invoke(worker.lambda_handler, sandbox.receive_event(wait_seconds=3))

        assert recovered.response == {"batchItemFailures": []}
        events = received_events(sandbox)
        assert [event["event_id"] for event in events] == [LOGS_PROD_READY_ID]
        assert events[0]["trigger"]["message_id"] == message_id


@contextlib.contextmanager
def failing_dynamodb_put_item() -> Iterator[None]:
    """Make moto answer every DynamoDB PutItem with HTTP 500, while UpdateItem and GetItem keep working."""
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.put_item

    def fail(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected DynamoDB PutItem failure")

    DynamoDBBackend.put_item = fail
    try:
        yield
    finally:
        DynamoDBBackend.put_item = original


def test_failed_confirm_not_redelivered():
    with running_sandbox() as sandbox, captured_logs() as logs:
        [message_id] = sandbox.send([LOGS_PROD])

        # The event is published, but recording the announcement fails on every attempt.
        with failing_dynamodb_put_item():
            delivery = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

        assert delivery.response == {"batchItemFailures": []}
        events = received_events(sandbox)
        assert [event["trigger"]["message_id"] for event in events] == [message_id]
        assert ledger_item(sandbox, LOGS_PROD_READY_ID)["status"] == "claimed"
        [warning] = logs.with_message("event published, but recording the announcement failed")
        assert warning["event_id"] == LOGS_PROD_READY_ID


def test_announced_again_after_renotify_window():
    policy = json.dumps({"renotify_after_days": 3})
    with running_sandbox(extra_env={"UPGRADE_POLICY": policy}) as sandbox:
        sandbox.send([LOGS_PROD])
        before = int(time.time())
        sandbox.invoke(worker.lambda_handler, sandbox.receive_event())
        after = int(time.time())

        item = ledger_item(sandbox, LOGS_PROD_READY_ID)
        assert item["status"] == "published"
        assert before + 3 * SECONDS_PER_DAY <= int(item["expiration"]) <= after + 3 * SECONDS_PER_DAY

        sandbox.send([work_message(LOGS_PROD)])
        sandbox.invoke(worker.lambda_handler, sandbox.receive_event())
        assert len(received_events(sandbox)) == 1

        # Three days pass: the item's expiration is behind us (DynamoDB's TTL may not have removed it yet).
        put_ledger_item(sandbox, LOGS_PROD_READY_ID, status="published", expiration=int(time.time()) - 1)
        sandbox.send([work_message(LOGS_PROD, source="schedule")])
        sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

        events = received_events(sandbox)
        assert [event["event_id"] for event in events] == [LOGS_PROD_READY_ID]
        assert events[0]["trigger"]["source"] == "schedule"


def test_new_target_announced():
    with running_sandbox() as sandbox:
        sandbox.send([LOGS_PROD])
        sandbox.invoke(worker.lambda_handler, sandbox.receive_event())
        [first] = received_events(sandbox)

        # The operator denies the chosen image: the next best image is a new target, so a new event.
        reconfigure(sandbox, UPGRADE_POLICY=json.dumps({"deny_images": ["7.10.2_24.3.4_0109"]}))
        sandbox.send([work_message(LOGS_PROD)])
        sandbox.invoke(worker.lambda_handler, sandbox.receive_event())
        [second] = received_events(sandbox)

        sandbox.send([work_message(LOGS_PROD, requested_by="slack:U024BE7LH")])
        sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

        assert first["target_image"]["display_name"] == "7.10.2_24.3.4_0109"
        assert second["target_image"]["display_name"] == "7.10.2_24.3.3_0102"
        assert second["event_id"] != first["event_id"]
        assert received_events(sandbox) == []


def test_blocked_then_ready_announced():
    with running_sandbox() as sandbox:
        sandbox.send([METRICS_PROD])
        sandbox.invoke(worker.lambda_handler, sandbox.receive_event())
        [blocked] = received_events(sandbox)

        reconfigure(sandbox, UPGRADE_POLICY=json.dumps({"plugin_upload": "allow"}))
        sandbox.send([work_message(METRICS_PROD)])
        sandbox.invoke(worker.lambda_handler, sandbox.receive_event())
        [ready] = received_events(sandbox)

        assert (blocked["event_type"], blocked["reason"]) == ("upgrade.blocked", "plugin_upload_required")
        assert (ready["event_type"], ready["reason"]) == ("upgrade.ready", None)
        assert ready["target_image"]["id"] == blocked["target_image"]["id"]
        assert ready["event_id"] != blocked["event_id"]


def test_slack_reply_even_when_suppressed():
    with running_sandbox() as sandbox, CannedServer(CannedResponse(200, "ok", {"Content-Type": "text/plain"})) as slack:
        reply_to = {"slack_response_url": f"{slack.url}/commands/T0LOCAL01/1/abc"}
        message_ids = []
        for requester in ("slack:U0FIRST01", "slack:U0SECOND1"):
            message_ids += sandbox.send([work_message(LOGS_PROD, source="webhook", requested_by=requester, reply_to=reply_to)])
            delivery = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())
            assert delivery.response == {"batchItemFailures": []}

        events = received_events(sandbox)
        assert [event["trigger"]["message_id"] for event in events] == message_ids[:1]
        assert len(slack.requests) == 2
        for request, message_id in zip(slack.requests, message_ids):
            assert request.path == "/commands/T0LOCAL01/1/abc"
            footer = request.json()["blocks"][-1]["elements"][0]["text"]
            assert f"Event upgrade.ready {LOGS_PROD_READY_ID}" in footer
            assert f"message {message_id}" in footer
