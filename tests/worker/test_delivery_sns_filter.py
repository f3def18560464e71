"""SNS subscription filter policies on the seven message attributes select events by type."""

from __future__ import annotations

import json

from handler import worker
from handler.local.sandbox import Sandbox
from tests.core.schema_check import validate_event
from tests.worker.delivery_support import (
    BUSY_SNAPSHOT,
    LOGS_PROD,
    OS_NEWEST,
    UNKNOWN_CLUSTER,
    received_events,
    running_sandbox,
)


def filtered_subscription(sandbox: Sandbox, filter_policy: dict) -> str:
    """Subscribe a new queue to the topic with raw delivery and `filter_policy`; return the queue URL."""
    sqs, sns = sandbox.boto("sqs"), sandbox.boto("sns")
    queue_url = sqs.create_queue(QueueName="scout-ready-only")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=sandbox.topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true", "FilterPolicy": json.dumps(filter_policy)},
    )
    return queue_url


def test_filter_policy_selects_ready_events():
    with running_sandbox() as sandbox:
        ready_only = filtered_subscription(sandbox, {"event_type": ["upgrade.ready"]})
        ids = dict(zip(["ready", "blocked", "none", "failed"], sandbox.send([LOGS_PROD, BUSY_SNAPSHOT, OS_NEWEST, UNKNOWN_CLUSTER])))

        delivery = sandbox.invoke(worker.lambda_handler, sandbox.receive_event())

        assert delivery.response == {"batchItemFailures": []}
        everything = received_events(sandbox)
        assert sorted(event["event_type"] for event in everything) == [
            "check.failed",
            "upgrade.blocked",
            "upgrade.none",
            "upgrade.ready",
        ]
        for event in everything:
            attributes = event["_attributes"]
            assert attributes["event_type"] == event["event_type"]
            assert attributes["cluster_id"] == event["cluster"]["id"]

        selected = [json.loads(message["Body"]) for message in sandbox.read_queue(ready_only)]
        for event in selected:
            validate_event(event)
        assert [(event["event_type"], event["trigger"]["message_id"]) for event in selected] == [("upgrade.ready", ids["ready"])]
