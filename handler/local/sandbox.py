"""A local stand-in for the deployed stack: the CSS emulator and a moto server, both on 127.0.0.1.

It creates what `infra/template.yaml` creates (work queue with its dead-letter queue, topic,
announce-once table) plus a subscriber queue on the topic, sets the environment the function reads,
and plays Lambda's part: it receives messages, hands them to the worker as an SQS event, and deletes
the records the worker did not report as failures. Used by the demo, the tests and the benchmarks.
boto3 is used here only to create and inspect the local resources.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import boto3
from moto.server import ThreadedMotoServer

from handler.local.emulator.catalog import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_PROJECT_ID,
    DEFAULT_REGION,
    DEFAULT_SECRET_KEY,
    Catalog,
)
from handler.local.emulator.server import Emulator

# moto's server logs every request through werkzeug; the sandbox's output is about the function.
logging.getLogger("werkzeug").setLevel(logging.ERROR)

AWS_REGION = "us-east-1"
# moto accepts any credentials; these only have to look like AWS's.
AWS_ACCESS_KEY_ID = "AKIALOCALSANDBOX0001"
AWS_SECRET_ACCESS_KEY = "local-sandbox-secret-not-a-real-key"
ACCOUNT_ID = "123456789012"


class FakeLambdaContext:
    """The parts of a Lambda context the handlers read, with a remaining time that counts down."""

    function_name = "css-upgrade-scout-worker"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{AWS_REGION}:{ACCOUNT_ID}:function:css-upgrade-scout-worker"

    def __init__(self, timeout_seconds: float = 60.0) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._ends_at = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._ends_at - time.monotonic()) * 1000))


@dataclass
class Delivery:
    """The record of one simulated Lambda invocation: the event, the response, and the records deleted."""

    event: dict[str, Any]
    response: dict[str, Any] | None
    error: Exception | None
    deleted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class Sandbox:
    """Emulator + moto server + the stack's resources, and the function's environment pointing at them."""

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        dedupe: bool = True,
        dead_letter: bool = True,
        fifo: bool = False,
        visibility_timeout: int = 1,
        max_receive_count: int = 5,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.emulator = Emulator(catalog)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._dedupe = dedupe
        self._dead_letter = dead_letter
        self._fifo = fifo
        self._visibility_timeout = visibility_timeout
        self._max_receive_count = max_receive_count
        self._extra_env = dict(extra_env or {})
        self.moto_url = ""
        self.names: dict[str, str] = {}
        self.work_queue_url = ""
        self.dead_letter_queue_url = ""
        self.subscriber_queue_url = ""
        self.topic_arn = ""
        self.table_name = ""
        self._saved_env: dict[str, str | None] = {}

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> "Sandbox":
        self.emulator.start()
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.moto_url = f"http://{host}:{port}"
        self._create_resources()
        return self

    def stop(self) -> None:
        self.restore_environment()
        self._moto.stop()
        self.emulator.stop()

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- environment -----------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """The variables the function reads, aimed at this sandbox."""
        env = {
            "CSS_ENDPOINT": self.emulator.url,
            "CSS_PROJECT_ID": DEFAULT_PROJECT_ID,
            "CSS_REGION": DEFAULT_REGION,
            "HUAWEICLOUD_SDK_AK": DEFAULT_ACCESS_KEY,
            "HUAWEICLOUD_SDK_SK": DEFAULT_SECRET_KEY,
            "CSS_UPGRADE_AGENCY": "css-upgrade-agency",
            "NOTIFY_TOPIC_ARN": self.topic_arn,
            "WORK_QUEUE_URL": self.work_queue_url,
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_ACCESS_KEY_ID": AWS_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": AWS_SECRET_ACCESS_KEY,
            "AWS_REGION": AWS_REGION,
            "AWS_DEFAULT_REGION": AWS_REGION,
            "SLACK_REPLY_HOSTS": "127.0.0.1",
        }
        if self._dead_letter:
            env["DEAD_LETTER_QUEUE_URL"] = self.dead_letter_queue_url
        if self._dedupe:
            env["DEDUPE_TABLE"] = self.table_name
        env.update(self._extra_env)
        return env

    def apply_environment(self, overrides: Mapping[str, str | None] | None = None) -> None:
        """Set the function's variables in this process (restored by `restore_environment`)."""
        env: dict[str, str | None] = dict(self.environment())
        env.update(overrides or {})
        for name, value in env.items():
            if name not in self._saved_env:
                self._saved_env[name] = os.environ.get(name)
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def restore_environment(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    def boto(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=AWS_REGION,
            endpoint_url=self.moto_url,
            aws_access_key_id=AWS_ACCESS_KEY_ID,
            aws_secret_access_key=AWS_SECRET_ACCESS_KEY,
        )

    # -- resources -------------------------------------------------------------------------------

    def _create_resources(self) -> None:
        suffix = uuid.uuid4().hex[:8]
        fifo = ".fifo" if self._fifo else ""
        sqs, sns = self.boto("sqs"), self.boto("sns")
        fifo_attributes = {"FifoQueue": "true"} if self._fifo else {}

        self.dead_letter_queue_url = sqs.create_queue(
            QueueName=f"scout-dlq-{suffix}{fifo}",
            Attributes={"MessageRetentionPeriod": "1209600", **fifo_attributes},
        )["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=self.dead_letter_queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.work_queue_url = sqs.create_queue(
            QueueName=f"scout-work-{suffix}{fifo}",
            Attributes={
                "VisibilityTimeout": str(self._visibility_timeout),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(self._max_receive_count)}),
                **fifo_attributes,
            },
        )["QueueUrl"]

        self.topic_arn = sns.create_topic(Name=f"scout-events-{suffix}")["TopicArn"]
        self.subscriber_queue_url = sqs.create_queue(QueueName=f"scout-subscriber-{suffix}")["QueueUrl"]
        subscriber_arn = sqs.get_queue_attributes(QueueUrl=self.subscriber_queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=subscriber_arn, Attributes={"RawMessageDelivery": "true"})

        if self._dedupe:
            self.table_name = f"scout-announced-{suffix}"
            dynamodb = self.boto("dynamodb")
            dynamodb.create_table(
                TableName=self.table_name,
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            dynamodb.update_time_to_live(
                TableName=self.table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"},
            )

    # -- playing Lambda --------------------------------------------------------------------------

    def send(self, bodies: Iterable[str], *, group_id: Callable[[str], str] | None = None) -> list[str]:
        """Send bodies to the work queue; return their message IDs."""
        sqs = self.boto("sqs")
        ids = []
        for index, body in enumerate(bodies):
            extra: dict[str, Any] = {}
            if self._fifo:
                extra = {"MessageGroupId": group_id(body) if group_id else "default", "MessageDeduplicationId": uuid.uuid4().hex}
            ids.append(sqs.send_message(QueueUrl=self.work_queue_url, MessageBody=body, **extra)["MessageId"])
            del index
        return ids

    def receive_event(self, max_messages: int = 10, wait_seconds: int = 0) -> dict[str, Any]:
        """Receive up to 10 messages and shape them as the SQS event Lambda would deliver."""
        sqs = self.boto("sqs")
        response = sqs.receive_message(
            QueueUrl=self.work_queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.work_queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return {"Records": [sqs_record(message, queue_arn) for message in response.get("Messages", [])]}

    def invoke(self, handler: Callable[[dict, Any], dict], event: dict[str, Any], timeout_seconds: float = 60.0) -> Delivery:
        """Invoke `handler` with `event` as Lambda would, and delete what it did not report as failed."""
        sqs = self.boto("sqs")
        try:
            response = handler(event, FakeLambdaContext(timeout_seconds))
            error = None
        except Exception as raised:  # noqa: BLE001 - a raising handler leaves every record on the queue
            response, error = None, raised
        delivery = Delivery(event=event, response=response, error=error)
        if error is not None:
            delivery.failed = [record["messageId"] for record in event["Records"]]
            return delivery

        failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
        for record in event["Records"]:
            if record["messageId"] in failed:
                delivery.failed.append(record["messageId"])
            else:
                sqs.delete_message(QueueUrl=self.work_queue_url, ReceiptHandle=record["receiptHandle"])
                delivery.deleted.append(record["messageId"])
        return delivery

    def drain(self, handler: Callable[[dict, Any], dict], *, max_rounds: int = 50, idle_rounds: int = 3) -> list[Delivery]:
        """Deliver batches until the work queue stays empty (failed records come back after the visibility timeout)."""
        deliveries = []
        idle = 0
        for _ in range(max_rounds):
            event = self.receive_event(wait_seconds=1)
            if not event["Records"]:
                if self.queue_depth(self.work_queue_url) == 0:
                    idle += 1
                    if idle >= idle_rounds:
                        break
                continue
            idle = 0
            deliveries.append(self.invoke(handler, event))
        return deliveries

    # -- inspection ------------------------------------------------------------------------------

    def queue_depth(self, queue_url: str) -> int:
        attributes = self.boto("sqs").get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def read_queue(self, queue_url: str) -> list[dict[str, Any]]:
        """Receive and delete everything currently visible on a queue."""
        sqs = self.boto("sqs")
        messages = []
        while True:
            response = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
            )
            batch = response.get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                messages.append(message)
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def received_events(self) -> list[dict[str, Any]]:
        """Events the subscriber queue received (and removes them): each with its message attributes."""
        events = []
        for message in self.read_queue(self.subscriber_queue_url):
            event = json.loads(message["Body"])
            event["_attributes"] = {name: value.get("StringValue") for name, value in message.get("MessageAttributes", {}).items()}
            events.append(event)
        return events

    def dead_letters(self) -> list[dict[str, Any]]:
        """Messages on the dead-letter queue (removed): body and `error_reason` / `error_detail` attributes."""
        letters = []
        for message in self.read_queue(self.dead_letter_queue_url):
            attributes = {name: value.get("StringValue") for name, value in message.get("MessageAttributes", {}).items()}
            letters.append({"body": message["Body"], **attributes})
        return letters


def sqs_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """Shape one ReceiveMessage result as a record of a Lambda SQS event."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": AWS_REGION,
    }
