"""Shared pieces of the delivery tests: local stacks, log and metric capture, and each record's outcome.

The contract gives every record of a batch exactly one outcome: announced, suppressed, dead-lettered
or reported for redelivery. `record_outcomes` reads that outcome from what the worker did to the
outside world (the subscriber queue, the dead-letter queue, its logs and its response), so a record
that left the queue without any of them shows up as "lost". `running_sandbox` runs that check on
every record it delivered when its block ends.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from typing import Any, Callable, Iterable, Iterator, Mapping

from handler import runtime
from handler.core.events import EVENT_SOURCE
from handler.local.sandbox import Delivery, Sandbox
from handler.observability import logger as function_logger
from tests.core.schema_check import validate_event

# Clusters of the emulator's default catalog, and what the default policy makes of them.
LOGS_PROD = "ea244205-d641-45d9-9dcb-ab2236bcd07e"  # ready: cross to 7.10.2_24.3.4_0109
LOGS_PROD_TARGET = "439b5d30-5968-45df-b088-d030a858522d"
SEARCH_PROD = "02bfab90-9f44-5f39-9d58-2fe518687173"  # ready: same
LEGACY_LOGS = "e08f92c9-cac6-5470-be67-ee133e0f44f9"  # ready: same
METRICS_PROD = "5b2a4984-fcd4-5a5a-ae0e-4ccd28427a5b"  # blocked: plugin_upload_required
OS_LOGS = "a4a1bdf6-41a9-58d1-9159-3d8df47655b0"  # ready: same
OS_NEWEST = "042a7c87-f31a-5aac-b15f-376b2769c27c"  # none: no_target_images
OS_SEARCH = "3dc68721-84f6-5b81-8b8a-51aa5108924e"  # ready: same
BUSY_SNAPSHOT = "d198abca-2d81-5b12-bd0e-17517cb43246"  # blocked: operation_in_progress
BROKEN_SEARCH = "91a0a411-aab7-5e56-b92b-fe201054c23d"  # blocked: cluster_not_available
NO_CROSS_ENGINE = "395f0ca1-3853-5f1c-b786-2e62f741eddf"  # ready: same
UPGRADE_FLAKY = "cdffd3b2-d65d-5545-b8e3-96528dac661c"  # ready: same
UPGRADE_PARTIAL = "f3098bf8-3809-5bca-b25c-4bdda199b963"  # ready: same
SEARCH_ARCHIVE = "a0679251-9037-54b2-984f-9472867467f3"  # ready: same
UNKNOWN_CLUSTER = "0b0e6a29-2f7c-4d38-9a51-7f0f5e3c2a11"  # not in the catalog: cluster_not_found
PROJECT = "6204a5bd270343b5885144cf9c8c158d"

ANNOUNCED = "announced"
SUPPRESSED = "suppressed"
DEAD_LETTERED = "dead_lettered"
REDELIVERY = "redelivery"
LOST = "lost"

SUPPRESSED_MESSAGE = "event already announced; broadcast suppressed"
CONFIGURATION_FAULT_MESSAGE = "configuration fault: the batch stays on the queue until it is fixed"


class TrackedSandbox(Sandbox):
    """A Sandbox that remembers every delivery and every message read from a queue.

    `check_outcomes` uses them to prove that no record left the work queue without an outcome.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deliveries: list[Delivery] = []
        self.messages_read: list[tuple[str, dict[str, Any]]] = []

    def invoke(self, handler: Callable[[dict, Any], dict], event: dict[str, Any], timeout_seconds: float = 60.0) -> Delivery:
        delivery = super().invoke(handler, event, timeout_seconds)
        self.deliveries.append(delivery)
        return delivery

    def read_queue(self, queue_url: str) -> list[dict[str, Any]]:
        messages = super().read_queue(queue_url)
        self.messages_read += [(queue_url, message) for message in messages]
        return messages

    def check_outcomes(self, logs: LogCapture) -> None:
        """Assert that every record of every delivery was announced, suppressed, dead-lettered or redelivered."""
        self.read_queue(self.subscriber_queue_url)
        self.read_queue(self.dead_letter_queue_url)

        events, letters = [], []
        for queue_url, message in self.messages_read:
            if queue_url == self.dead_letter_queue_url:
                letters.append({"body": message["Body"]})
                continue
            document = json.loads(message["Body"])
            # An EventBridge rule target receives the envelope, with the event as `detail`.
            events.append(document["detail"] if "detail-type" in document else document)

        outcomes = record_outcomes(self.deliveries, events=events, letters=letters, logs=logs)
        lost = [message_id for message_id, outcome in outcomes if outcome == LOST]
        assert not lost, f"records left the work queue without an outcome: {lost}"


@contextlib.contextmanager
def running_sandbox(catalog: Any = None, **options: Any) -> Iterator[TrackedSandbox]:
    """Start a TrackedSandbox, apply the function's environment and rebuild the runtime around it.

    When the block ends without an error, every record the block delivered must have an outcome.
    """
    with TrackedSandbox(catalog, **options) as sandbox, captured_logs() as logs:
        sandbox.apply_environment()
        runtime.reset()
        try:
            yield sandbox
            sandbox.check_outcomes(logs)
        finally:
            runtime.reset()


def reconfigure(sandbox: Sandbox, **overrides: str | None) -> None:
    """Change the function's environment (None removes a variable), as a new deployment would."""
    sandbox.apply_environment(overrides)
    runtime.reset()


def work_message(cluster_id: str, **fields: Any) -> str:
    """A JSON work message for `cluster_id` with extra fields."""
    return json.dumps({"cluster_id": cluster_id, **fields})


def received_events(sandbox: Sandbox) -> list[dict[str, Any]]:
    """Events on the topic's subscriber queue (removed), each checked against the event schema.

    The SNS message attributes stay in `_attributes`.
    """
    events = sandbox.received_events()
    for event in events:
        validate_event({key: value for key, value in event.items() if key != "_attributes"})
    return events


def create_bus(sandbox: Sandbox) -> tuple[str, str, str]:
    """Create a custom bus with a rule that sends css-upgrade-scout events to a new queue.

    Returns the bus name, its ARN and the queue URL.
    """
    name = f"scout-bus-{uuid.uuid4().hex[:8]}"
    events, sqs = sandbox.boto("events"), sandbox.boto("sqs")
    bus_arn = events.create_event_bus(Name=name)["EventBusArn"]
    queue_url = sqs.create_queue(QueueName=f"{name}-target")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="scout-events", EventBusName=name, EventPattern=json.dumps({"source": [EVENT_SOURCE]}))
    events.put_targets(Rule="scout-events", EventBusName=name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return name, bus_arn, queue_url


def bus_deliveries(sandbox: Sandbox, queue_url: str) -> list[dict]:
    """EventBridge envelopes that reached the rule's queue (removed), their `detail` checked against the schema."""
    envelopes = [json.loads(message["Body"]) for message in sandbox.read_queue(queue_url)]
    for envelope in envelopes:
        validate_event(envelope["detail"])
    return envelopes


class LogCapture(logging.Handler):
    """Collects the function's log lines as the JSON documents Powertools writes."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(function_logger.registered_formatter)
        self.lines: list[dict[str, Any]] = []
        self._lines_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        # Formatting here, in the logging thread, keeps the thread's own appended keys (cluster_id, ...).
        document = json.loads(self.format(record))
        with self._lines_lock:
            self.lines.append(document)

    def with_message(self, message: str) -> list[dict[str, Any]]:
        with self._lines_lock:
            return [line for line in self.lines if line.get("message") == message]


@contextlib.contextmanager
def captured_logs() -> Iterator[LogCapture]:
    """Capture what the function logs, through its Powertools logger and the `handler` library logger."""
    capture = LogCapture()
    loggers = [logging.getLogger(function_logger.service), logging.getLogger("handler")]
    for target in loggers:
        target.addHandler(capture)
    try:
        yield capture
    finally:
        for target in loggers:
            target.removeHandler(capture)


def metric_totals(stdout: str) -> dict[str, float]:
    """Sum the values of every metric in the embedded-metric-format lines of `stdout`."""
    totals: dict[str, float] = {}
    for line in stdout.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                name = metric["Name"]
                values = document[name] if isinstance(document[name], list) else [document[name]]
                totals[name] = totals.get(name, 0.0) + sum(values)
    return totals


def record_outcomes(
    deliveries: Iterable[Delivery],
    *,
    events: Iterable[Mapping[str, Any]],
    letters: Iterable[Mapping[str, Any]],
    logs: LogCapture,
) -> list[tuple[str, str]]:
    """Return (message ID, outcome) for every record of every delivery, in delivery order.

    A record reported as a batch item failure (or left by a raising handler) is "redelivery". A record
    the worker let go is "dead_lettered" when its body is on the dead-letter queue, "announced" when an
    event names its message ID, "suppressed" when a suppression was logged for it, and "lost" otherwise.
    Bodies must be unique within a test and must carry no correlation ID, which would replace the
    message ID in the logs.
    """
    announced = {event["trigger"]["message_id"] for event in events}
    dead_lettered = {letter["body"] for letter in letters}
    suppressed = {line.get("correlation_id") for line in logs.with_message(SUPPRESSED_MESSAGE)}

    outcomes = []
    for delivery in deliveries:
        for record in delivery.event["Records"]:
            message_id = record["messageId"]
            if message_id in delivery.failed:
                outcome = REDELIVERY
            elif record["body"] in dead_lettered:
                outcome = DEAD_LETTERED
            elif message_id in announced:
                outcome = ANNOUNCED
            elif message_id in suppressed:
                outcome = SUPPRESSED
            else:
                outcome = LOST
            outcomes.append((message_id, outcome))
    return outcomes


def replay(response: dict[str, Any] | None, error: Exception | None) -> Callable[[dict, Any], dict]:
    """A handler that returns (or raises) what a worker invocation run elsewhere returned (or raised).

    Lets `Sandbox.invoke` settle the queue for invocations that ran concurrently in other threads.
    """

    def handler(event: dict, context: Any) -> dict:
        if error is not None:
            raise error
        assert response is not None
        return response

    return handler


@contextlib.contextmanager
def atomic_conditional_writes() -> Iterator[None]:
    """Make moto apply each DynamoDB item write atomically, as DynamoDB does.

    moto's server checks a write's condition and then stores the item without holding a lock, so two
    requests arriving together can both pass the same `attribute_not_exists` condition. DynamoDB never
    lets that happen. Tests of concurrent claims serialize moto's item writes to get DynamoDB's behaviour.
    """
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.Lock()
    originals = {name: getattr(DynamoDBBackend, name) for name in ("put_item", "update_item", "delete_item")}

    def serialized(original: Callable[..., Any]) -> Callable[..., Any]:
        def write(self: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(self, *args, **kwargs)

        return write

    for name, original in originals.items():
        setattr(DynamoDBBackend, name, serialized(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(DynamoDBBackend, name, original)
