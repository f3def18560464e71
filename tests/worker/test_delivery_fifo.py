"""FIFO work queues: records in order, a failure fails only the rest of its message group.

Messages use the cluster ID as their MessageGroupId, as the scan and the webhook send them.
"""

from __future__ import annotations

import json

from handler import worker
from handler.local.emulator.faults import Fault
from handler.local.sandbox import Delivery, Sandbox
from tests.worker.delivery_support import (
    ANNOUNCED,
    DEAD_LETTERED,
    LOGS_PROD,
    OS_LOGS,
    REDELIVERY,
    SUPPRESSED,
    UNKNOWN_CLUSTER,
    captured_logs,
    received_events,
    record_outcomes,
    running_sandbox,
    work_message,
)


def group_of(body: str) -> str:
    """The message group of a work message: its cluster ID."""
    return json.loads(body)["cluster_id"] if body.startswith("{") else body


def send_in_groups(sandbox: Sandbox, bodies: list[str]) -> list[str]:
    return sandbox.send(bodies, group_id=group_of)


def make_failed_visible(sandbox: Sandbox, delivery: Delivery) -> None:
    """Return the delivery's failed records to the queue at once instead of after the visibility timeout.

    When two messages of one FIFO group come back together by timing out, moto 5.2 delivers the later
    one first, which SQS never does. Ending their visibility explicitly keeps moto's group order.
    """
    sqs = sandbox.boto("sqs")
    for record in delivery.event["Records"]:
        if record["messageId"] in delivery.failed:
            sqs.change_message_visibility(QueueUrl=sandbox.work_queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0)


def image_types_listed(sandbox: Sandbox, cluster_id: str) -> list[str]:
    """The upgrade types of the cluster's ListImages calls, oldest first."""
    calls = [call for call in sandbox.emulator.calls if f"/clusters/{cluster_id}/target/" in call.path]
    return [call.path.split("/target/")[1].split("/")[0] for call in calls]


def test_fifo_records_in_order():
    with running_sandbox(fifo=True) as sandbox, captured_logs() as logs:
        bodies = [
            work_message(OS_LOGS, upgrade_types=["cross"]),
            work_message(LOGS_PROD),
            work_message(OS_LOGS, upgrade_types=["same"]),
            work_message(OS_LOGS, upgrade_types=["cross"], source="schedule"),
        ]
        ids = send_in_groups(sandbox, bodies)
        batch = sandbox.receive_event()
        assert [record["messageId"] for record in batch["Records"]] == ids

        delivery = sandbox.invoke(worker.lambda_handler, batch)

        assert delivery.response == {"batchItemFailures": []}
        assert image_types_listed(sandbox, OS_LOGS) == ["cross", "same", "cross"]
        events = received_events(sandbox)
        assert [(event["trigger"]["message_id"], event["upgrade_type"]) for event in events] == [
            (ids[0], "cross"),
            (ids[1], "cross"),
            (ids[2], "same"),
        ]
        outcomes = record_outcomes([delivery], events=events, letters=[], logs=logs)
        assert [outcome for _, outcome in outcomes] == [ANNOUNCED, ANNOUNCED, ANNOUNCED, SUPPRESSED]


def test_fifo_failure_fails_rest_of_group():
    with running_sandbox(fifo=True) as sandbox, captured_logs() as logs:
        # Every cross-type image list of os-logs fails with a CSS internal error, retries included.
        sandbox.emulator.inject(Fault(kind="css_error", error_code="CSS.0036", route="list_images", cluster_id=OS_LOGS, upgrade_type="cross"))
        bodies = [
            work_message(OS_LOGS, upgrade_types=["same"]),
            work_message(LOGS_PROD),
            work_message(OS_LOGS, upgrade_types=["cross"]),
            work_message(LOGS_PROD, source="schedule"),
            work_message(OS_LOGS, upgrade_types=["same"], source="schedule"),
        ]
        ids = send_in_groups(sandbox, bodies)
        batch = sandbox.receive_event()
        assert [record["messageId"] for record in batch["Records"]] == ids

        first = sandbox.invoke(worker.lambda_handler, batch)

        assert first.response == {"batchItemFailures": [{"itemIdentifier": ids[2]}, {"itemIdentifier": ids[4]}]}
        assert image_types_listed(sandbox, OS_LOGS) == ["same"] + ["cross"] * 4  # the last record was never checked

        sandbox.emulator.clear_faults()
        make_failed_visible(sandbox, first)
        retry = sandbox.receive_event()
        assert [record["messageId"] for record in retry["Records"]] == [ids[2], ids[4]]
        second = sandbox.invoke(worker.lambda_handler, retry)

        assert second.response == {"batchItemFailures": []}
        events = received_events(sandbox)
        assert [event["trigger"]["message_id"] for event in events] == [ids[0], ids[1], ids[2]]
        outcomes = record_outcomes([first, second], events=events, letters=[], logs=logs)
        assert [outcome for _, outcome in outcomes] == [
            ANNOUNCED, ANNOUNCED, REDELIVERY, SUPPRESSED, REDELIVERY,
            ANNOUNCED, SUPPRESSED,
        ]  # fmt: skip


def test_fifo_every_record_failing_returns_list():
    with running_sandbox(fifo=True) as sandbox:
        sandbox.emulator.inject(Fault(kind="server_error", route="show_cluster"))
        ids = send_in_groups(sandbox, [work_message(LOGS_PROD), work_message(OS_LOGS), work_message(LOGS_PROD, source="schedule")])

        delivery = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

        assert delivery.error is None
        assert delivery.response == {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in ids]}
        # The first record of each group was tried. The later record of its group was skipped without a call.
        assert sandbox.emulator.call_count("show_cluster") == 2 * 4


def test_fifo_configuration_fault_raises():
    with running_sandbox(fifo=True) as sandbox:
        sandbox.emulator.inject(Fault(kind="gateway_error", error_code="APIGW.0301"))
        ids = send_in_groups(sandbox, [work_message(LOGS_PROD), work_message(OS_LOGS)])

        delivery = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

        assert "APIGW.0301" in str(delivery.error)
        assert delivery.deleted == []
        assert delivery.failed == ids
        assert received_events(sandbox) == []


def test_fifo_dead_letter_keeps_group():
    with running_sandbox(fifo=True) as sandbox, captured_logs() as logs:
        bodies = [work_message(UNKNOWN_CLUSTER), work_message(UNKNOWN_CLUSTER, source="schedule")]
        ids = send_in_groups(sandbox, bodies)

        delivery = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

        assert delivery.response == {"batchItemFailures": []}
        letters = sandbox.read_queue(sandbox.dead_letter_queue_url)
        assert [letter["Body"] for letter in letters] == bodies
        assert [letter["Attributes"]["MessageGroupId"] for letter in letters] == [UNKNOWN_CLUSTER, UNKNOWN_CLUSTER]
        events = received_events(sandbox)
        assert [event["trigger"]["message_id"] for event in events] == ids[:1]
        outcomes = record_outcomes([delivery], events=events, letters=[{"body": letter["Body"]} for letter in letters], logs=logs)
        assert [outcome for _, outcome in outcomes] == [DEAD_LETTERED, DEAD_LETTERED]
