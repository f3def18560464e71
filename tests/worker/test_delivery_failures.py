"""Failure classes: what the worker does with transient, permanent and configuration faults.

Transient faults make a batch item failure, permanent ones a dead letter at once (plus a check.failed
event when the message was valid), and configuration faults make the handler raise so that no record
of the batch is consumed. Every record of every test is checked for exactly one contract outcome.
"""

from __future__ import annotations

import json

import pytest

from handler import worker
from handler.local.emulator.faults import Fault
from handler.local.sandbox import Delivery, Sandbox
from tests.aws import CannedResponse, CannedServer, json_error
from tests.worker.delivery_support import (
    ANNOUNCED,
    CONFIGURATION_FAULT_MESSAGE,
    DEAD_LETTERED,
    LEGACY_LOGS,
    LOGS_PROD,
    METRICS_PROD,
    NO_CROSS_ENGINE,
    OS_LOGS,
    OS_SEARCH,
    REDELIVERY,
    SEARCH_ARCHIVE,
    SEARCH_PROD,
    UNKNOWN_CLUSTER,
    UPGRADE_FLAKY,
    UPGRADE_PARTIAL,
    captured_logs,
    metric_totals,
    reconfigure,
    received_events,
    record_outcomes,
    running_sandbox,
    work_message,
)

REDELIVERY_MESSAGE = "record reported for redelivery"

# One record per failure class. Faults are armed for the record's cluster on every matching request.
TRANSIENT_FAULTS = {
    "throttled beyond retries": (SEARCH_PROD, Fault(kind="throttle", cluster_id=SEARCH_PROD, retry_after=0)),
    "busy CSS.0011": (LEGACY_LOGS, Fault(kind="css_error", error_code="CSS.0011", cluster_id=LEGACY_LOGS)),
    "busy CSS.0011 as 202": (METRICS_PROD, Fault(kind="css_error", error_code="CSS.0011", status=202, cluster_id=METRICS_PROD)),
    "busy CSS.6013": (OS_LOGS, Fault(kind="css_error", error_code="CSS.6013", cluster_id=OS_LOGS)),
    "5xx HTML": (OS_SEARCH, Fault(kind="server_error", status=502, cluster_id=OS_SEARCH)),
    "connection reset": (NO_CROSS_ENGINE, Fault(kind="connection_reset", cluster_id=NO_CROSS_ENGINE)),
    "malformed JSON 200": (UPGRADE_FLAKY, Fault(kind="malformed_json", route="show_cluster", cluster_id=UPGRADE_FLAKY)),
}
PERMANENT_FAULTS = {
    "access denied": (UPGRADE_PARTIAL, Fault(kind="css_error", error_code="CSS.0010", route="show_cluster", cluster_id=UPGRADE_PARTIAL)),
    "invalid request": (SEARCH_ARCHIVE, Fault(kind="css_error", error_code="CSS.0001", route="show_cluster", cluster_id=SEARCH_ARCHIVE)),
}
INVALID_BODY = "{not json"


def one_batch(sandbox: Sandbox, count: int) -> dict:
    """Receive `count` messages as one Lambda batch (Lambda batches may contain more than ten records)."""
    records: list[dict] = []
    while len(records) < count:
        records += sandbox.receive_event(max_messages=min(10, count - len(records)), wait_seconds=1)["Records"]
    return {"Records": records}


def failed_ids(delivery: Delivery) -> list[str]:
    return sorted(item["itemIdentifier"] for item in delivery.response["batchItemFailures"])


def test_mixed_batch_every_failure_class(capsys):
    with running_sandbox() as sandbox, captured_logs() as logs:
        for _, fault in list(TRANSIENT_FAULTS.values()) + list(PERMANENT_FAULTS.values()):
            sandbox.emulator.inject(fault)
        transient = {name: work_message(cluster_id) for name, (cluster_id, _) in TRANSIENT_FAULTS.items()}
        permanent = {name: work_message(cluster_id) for name, (cluster_id, _) in PERMANENT_FAULTS.items()}
        permanent["cluster not found"] = UNKNOWN_CLUSTER
        permanent["invalid message"] = INVALID_BODY
        bodies = {"ready": LOGS_PROD, **transient, **permanent}
        ids = dict(zip(bodies, sandbox.send(bodies.values())))
        batch = one_batch(sandbox, len(bodies))
        capsys.readouterr()

        delivery = sandbox.invoke(worker.lambda_handler, batch)

        assert delivery.error is None
        assert failed_ids(delivery) == sorted(ids[name] for name in transient)

        letters = sorted(sandbox.dead_letters(), key=lambda letter: letter["error_reason"])
        assert [(letter["body"], letter["error_reason"]) for letter in letters] == [
            (permanent["access denied"], "access_denied"),
            (UNKNOWN_CLUSTER, "cluster_not_found"),
            (INVALID_BODY, "invalid_message"),
            (permanent["invalid request"], "invalid_request"),
        ]
        for letter, code in zip(letters, ("CSS.0010", "CSS.0015", None, "CSS.0001")):
            assert set(letter) == {"body", "error_reason", "error_detail"}
            assert code is None or code in letter["error_detail"]
        assert letters[2]["error_detail"] == "invalid body '{not json': expected valid JSON"

        events = received_events(sandbox)
        summary = sorted((event["trigger"]["message_id"], event["event_type"], event["reason"]) for event in events)
        assert summary == sorted(
            [
                (ids["ready"], "upgrade.ready", None),
                (ids["cluster not found"], "check.failed", "cluster_not_found"),
                (ids["access denied"], "check.failed", "access_denied"),
                (ids["invalid request"], "check.failed", "invalid_request"),
            ]
        )

        expected = {ids["ready"]: ANNOUNCED}
        expected.update({ids[name]: REDELIVERY for name in transient})
        expected.update({ids[name]: DEAD_LETTERED for name in permanent})
        assert dict(record_outcomes([delivery], events=events, letters=letters, logs=logs)) == expected

        redelivery_lines = logs.with_message(REDELIVERY_MESSAGE)
        assert sorted(line["message_id"] for line in redelivery_lines) == sorted(ids[name] for name in transient)

        metrics = metric_totals(capsys.readouterr().out)
        assert {name: value for name, value in metrics.items() if name.startswith("Outcome.")} == {
            "Outcome.announced": 1,
            "Outcome.dead_lettered": len(permanent),
            "Outcome.redelivered": len(transient),
        }


def test_no_time_left_redelivers_everything():
    with running_sandbox() as sandbox, captured_logs() as logs:
        ids = sandbox.send([LOGS_PROD, UNKNOWN_CLUSTER, INVALID_BODY])
        batch = sandbox.receive_event()

        # Lambda's remaining time is no more than the worker's safety margin.
        delivery = sandbox.invoke(worker.lambda_handler, batch, timeout_seconds=worker.SAFETY_MARGIN_SECONDS)

        assert failed_ids(delivery) == sorted(ids)
        assert sandbox.emulator.calls == []
        events = received_events(sandbox)
        assert events == []
        outcomes = record_outcomes([delivery], events=events, letters=sandbox.dead_letters(), logs=logs)
        assert [outcome for _, outcome in outcomes] == [REDELIVERY] * 3


def test_deadline_reached_during_call():
    with running_sandbox() as sandbox, captured_logs() as logs:
        # The cluster responds after 4 s, but the invocation has 2 s left after the safety margin.
        sandbox.emulator.inject(Fault(kind="latency", latency_ms=4000, route="show_cluster", cluster_id=OS_LOGS))
        fast_id, slow_id = sandbox.send([LOGS_PROD, OS_LOGS])

        delivery = sandbox.invoke(worker.lambda_handler, sandbox.receive_event(), timeout_seconds=worker.SAFETY_MARGIN_SECONDS + 2)

        assert delivery.response == {"batchItemFailures": [{"itemIdentifier": slow_id}]}
        events = received_events(sandbox)
        outcomes = record_outcomes([delivery], events=events, letters=sandbox.dead_letters(), logs=logs)
        assert dict(outcomes) == {fast_id: ANNOUNCED, slow_id: REDELIVERY}


MISSING_TOPIC = "arn:aws:sns:us-east-1:123456789012:scout-missing-topic"

# name -> (emulator fault, environment overrides, text the raised error contains)
CONFIGURATION_FAULTS = {
    "rejected credentials APIGW.0301": (Fault(kind="gateway_error", error_code="APIGW.0301"), {}, "APIGW.0301"),
    "rejected credentials 401": (Fault(kind="empty_body", status=401), {}, "HTTP 401"),
    "missing topic": (None, {"NOTIFY_TOPIC_ARN": MISSING_TOPIC}, "scout-missing-topic"),
    "missing table": (None, {"DEDUPE_TABLE": "scout-missing-table"}, "scout-missing-table"),
    "invalid policy": (None, {"UPGRADE_POLICY": '{"plugin_upload": "sometimes"}'}, "plugin_upload"),
}


@pytest.mark.parametrize("name", CONFIGURATION_FAULTS)
def test_configuration_fault_keeps_batch(name, capsys):
    fault, overrides, error_text = CONFIGURATION_FAULTS[name]
    with running_sandbox() as sandbox, captured_logs() as logs:
        if fault is not None:
            sandbox.emulator.inject(fault)
        reconfigure(sandbox, **overrides)
        ids = sandbox.send([LOGS_PROD, OS_LOGS, SEARCH_PROD])
        capsys.readouterr()

        delivery = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

        assert delivery.error is not None
        assert error_text in str(delivery.error)
        assert delivery.deleted == []
        assert sorted(delivery.failed) == sorted(ids)
        assert received_events(sandbox) == []
        assert sandbox.dead_letters() == []
        assert metric_totals(capsys.readouterr().out).get("ConfigurationFault") == 1
        assert len(logs.with_message(CONFIGURATION_FAULT_MESSAGE)) == 1
        assert sandbox.queue_depth(sandbox.work_queue_url) == 3


def test_without_dead_letter_queue_redelivered():
    with running_sandbox(dead_letter=False, max_receive_count=2) as sandbox, captured_logs() as logs:
        ids = sandbox.send([UNKNOWN_CLUSTER, INVALID_BODY])

        first = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())
        second = sandbox.invoke(worker.lambda_handler, sandbox.receive_event(wait_seconds=3))

        assert failed_ids(first) == sorted(ids)
        assert failed_ids(second) == sorted(ids)
        events = received_events(sandbox)
        assert [(event["event_type"], event["reason"]) for event in events] == [("check.failed", "cluster_not_found")]
        outcomes = record_outcomes([first, second], events=events, letters=[], logs=logs)
        assert [outcome for _, outcome in outcomes] == [REDELIVERY] * 4

        # After maxReceiveCount deliveries SQS redrive moves them, without the worker's attributes.
        assert sandbox.receive_event(wait_seconds=2)["Records"] == []
        letters = sandbox.dead_letters()
        assert sorted(letter["body"] for letter in letters) == sorted([UNKNOWN_CLUSTER, INVALID_BODY])
        assert all(set(letter) == {"body"} for letter in letters)


def test_missing_dead_letter_queue_is_configuration_fault(capsys):
    with running_sandbox() as sandbox, captured_logs() as logs:
        missing = sandbox.dead_letter_queue_url.rsplit("/", 1)[0] + "/scout-missing-dlq"
        reconfigure(sandbox, DEAD_LETTER_QUEUE_URL=missing)
        ids = sandbox.send([INVALID_BODY, LOGS_PROD])
        capsys.readouterr()

        delivery = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

        assert "scout-missing-dlq" in str(delivery.error)
        assert sorted(delivery.failed) == sorted(ids)
        assert delivery.deleted == []
        assert metric_totals(capsys.readouterr().out).get("ConfigurationFault") == 1
        assert len(logs.with_message(CONFIGURATION_FAULT_MESSAGE)) == 1


@pytest.mark.parametrize(
    "failure",
    [CannedResponse(503, "<html><body>Service Unavailable</body></html>", {"Content-Type": "text/html"}),
     json_error(400, "ThrottlingException", "Rate exceeded")],
    ids=["5xx", "throttled"],
)
def test_failed_dead_letter_send_redelivered(failure):
    with running_sandbox() as sandbox, captured_logs() as logs, CannedServer(failure) as broken_sqs:
        reconfigure(sandbox, AWS_ENDPOINT_URL_SQS=broken_sqs.url)
        [message_id] = sandbox.send([UNKNOWN_CLUSTER])

        first = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

        assert first.response == {"batchItemFailures": [{"itemIdentifier": message_id}]}
        assert len(broken_sqs.requests) == 4  # the AWS client's attempts
        assert all(request.headers["X-Amz-Target"] == "AmazonSQS.SendMessage" for request in broken_sqs.requests)

        # SQS recovers: the next delivery dead-letters it, and its check.failed event is not repeated.
        reconfigure(sandbox, AWS_ENDPOINT_URL_SQS=None)
        second = sandbox.invoke(worker.lambda_handler, sandbox.receive_event(wait_seconds=3))

        events = received_events(sandbox)
        letters = sandbox.dead_letters()
        assert [event["reason"] for event in events] == ["cluster_not_found"]
        assert [(letter["body"], letter["error_reason"]) for letter in letters] == [(UNKNOWN_CLUSTER, "cluster_not_found")]
        outcomes = record_outcomes([first, second], events=events, letters=letters, logs=logs)
        assert [outcome for _, outcome in outcomes] == [REDELIVERY, DEAD_LETTERED]


def test_check_failed_replied_on_slack():
    with running_sandbox() as sandbox, CannedServer(CannedResponse(200, "ok", {"Content-Type": "text/plain"})) as slack:
        body = work_message(UNKNOWN_CLUSTER, source="webhook", reply_to={"slack_response_url": f"{slack.url}/commands/T0/1/abc"})
        [message_id] = sandbox.send([body])

        delivery = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

        assert delivery.response == {"batchItemFailures": []}
        [event] = received_events(sandbox)
        [letter] = sandbox.dead_letters()
        assert (event["event_type"], event["reason"]) == ("check.failed", "cluster_not_found")
        assert json.loads(letter["body"]) == json.loads(body)
        [reply] = slack.requests
        footer = reply.json()["blocks"][-1]["elements"][0]["text"]
        assert f"Event check.failed {event['event_id']}" in footer
        assert f"message {message_id}" in footer


def test_outcome_check_catches_lost_record():
    # A handler that reports success without doing anything deletes the record with no outcome.
    with pytest.raises(AssertionError, match="without an outcome"):
        with running_sandbox() as sandbox:
            sandbox.send([LOGS_PROD])
            sandbox.invoke(lambda event, context: {"batchItemFailures": []}, sandbox.receive_event())
