"""Every fault the CSS emulator can inject, on every CSS call the worker makes, through the real worker.

One message goes from moto SQS through `handler.worker.lambda_handler` to moto SNS and the dead-letter
queue. The expected outcome of each (fault, call) pair comes from the table below, which follows the
outcome rules of a work message. A transient fault is retried: armed for one request only, it is
overcome and the event announced, while a fault that persists sends the record back for redelivery.
A permanent fault is never retried and dead-letters the message with a `check.failed` event. A
configuration fault fails the whole invocation. The worker's CSS client is rebuilt with short
backoff waits (and, for the latency rows, a short read timeout), so the matrix runs in seconds. The
classification, the retry loop and the outcome handling are the project's own. Attempts are
counted as the requests leave the worker, so a delayed reply still on its way does not matter.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest

from handler import runtime, worker
from handler.credentials import credentials_from_environment
from handler.css.client import CssClient
from handler.local.emulator.api import route_name
from handler.local.emulator.faults import Fault
from handler.local.sandbox import Sandbox
from handler.retry import RetryPolicy

from .support import NetworkLog

CLUSTER = "02bfab90-9f44-5f39-9d58-2fe518687173"  # search-prod: same and cross-engine targets, no cross target

# Every upgrade type is tried, so that a fault can be put on ListImages of each.
POLICY = json.dumps({"upgrade_types": ["same", "cross", "cross-engine"], "allow_cross_engine": True})

ATTEMPTS = 4
FAST_RETRIES = RetryPolicy(max_attempts=ATTEMPTS, base_delay=0.01, max_delay=0.05)
# Read timeouts: generous for every row, so that a slow machine never adds an attempt, except for the
# latency rows, whose delayed replies must exceed it.
READ_TIMEOUT = 5.0
LATENCY_READ_TIMEOUT = 0.5
LATENCY_MS = 1500

TRANSIENT = "transient"
CONFIGURATION = "configuration"
INVALID_REQUEST = "invalid_request"

ANNOUNCED = "announced"
REDELIVERED = "reported for redelivery"
DEAD_LETTERED = "dead-lettered"
INVOCATION_FAILED = "invocation failed"


@dataclass(frozen=True)
class FaultKind:
    """One fault the emulator injects, and what it means for the caller."""

    name: str
    fault: dict[str, Any]
    effect: str  # TRANSIENT, CONFIGURATION, or the check.failed reason of a permanent fault


FAULTS = (
    FaultKind("latency", {"kind": "latency", "latency_ms": LATENCY_MS}, TRANSIENT),
    FaultKind("throttle", {"kind": "throttle", "retry_after": 0}, TRANSIENT),
    FaultKind("server_error-500", {"kind": "server_error", "status": 500}, TRANSIENT),
    FaultKind("server_error-503", {"kind": "server_error", "status": 503}, TRANSIENT),
    FaultKind("CSS.0036", {"kind": "css_error", "error_code": "CSS.0036"}, TRANSIENT),
    FaultKind("CSS.6013", {"kind": "css_error", "error_code": "CSS.6013"}, TRANSIENT),
    FaultKind("CSS.0011-409", {"kind": "css_error", "error_code": "CSS.0011", "status": 409}, TRANSIENT),
    FaultKind("CSS.0011-202", {"kind": "css_error", "error_code": "CSS.0011", "status": 202}, TRANSIENT),
    FaultKind("CSS.0015", {"kind": "css_error", "error_code": "CSS.0015"}, "cluster_not_found"),
    FaultKind("CSS.0047", {"kind": "css_error", "error_code": "CSS.0047"}, "cluster_not_found"),
    FaultKind("CSS.0010", {"kind": "css_error", "error_code": "CSS.0010"}, "access_denied"),
    FaultKind("CSS.0001", {"kind": "css_error", "error_code": "CSS.0001"}, INVALID_REQUEST),
    FaultKind("APIGW.0301", {"kind": "gateway_error", "error_code": "APIGW.0301"}, CONFIGURATION),
    FaultKind("APIGW.0308", {"kind": "gateway_error", "error_code": "APIGW.0308"}, TRANSIENT),
    FaultKind("empty_body", {"kind": "empty_body"}, TRANSIENT),
    FaultKind("connection_reset", {"kind": "connection_reset"}, TRANSIENT),
    FaultKind("malformed_json", {"kind": "malformed_json"}, TRANSIENT),
)

# The CSS calls of one check, in order: (emulator route, upgrade type).
CALLS = (("show_cluster", None), ("list_images", "same"), ("list_images", "cross"), ("list_images", "cross-engine"))


@dataclass(frozen=True)
class Row:
    """One (fault, call) pair and the outcome the worker must produce."""

    fault: FaultKind
    route: str
    upgrade_type: str | None
    once: bool
    outcome: str
    attempts: int  # requests the worker sends for the faulted call
    reason: str | None = None  # check.failed reason, or the dead-letter error_reason
    unsupported: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        call = self.route if self.upgrade_type is None else f"{self.route}-{self.upgrade_type}"
        return f"{self.fault.name}-{call}-{'once' if self.once else 'persistent'}"


def expected_rows() -> list[Row]:
    """Build the table: one row per fault kind, CSS call and (for transient faults) duration."""
    rows = []
    for kind in FAULTS:
        for route, upgrade_type in CALLS:
            if kind.effect == TRANSIENT:
                rows.append(Row(kind, route, upgrade_type, once=True, outcome=ANNOUNCED, attempts=2))
                rows.append(Row(kind, route, upgrade_type, once=False, outcome=REDELIVERED, attempts=ATTEMPTS))
            elif kind.effect == CONFIGURATION:
                # Armed for one request only: a retry would succeed, so one attempt proves none was made.
                rows.append(Row(kind, route, upgrade_type, once=True, outcome=INVOCATION_FAILED, attempts=1))
            elif kind.effect == INVALID_REQUEST and route == "list_images":
                # CSS rejecting one upgrade type means the region does not offer it; the check goes on.
                rows.append(Row(kind, route, upgrade_type, once=True, outcome=ANNOUNCED, attempts=1, unsupported=(upgrade_type,)))
            else:
                rows.append(Row(kind, route, upgrade_type, once=True, outcome=DEAD_LETTERED, attempts=1, reason=kind.effect))
    return rows


ROWS = expected_rows()


@pytest.fixture(scope="module")
def stack() -> Iterator[Sandbox]:
    with pytest.MonkeyPatch.context() as patch, Sandbox(dedupe=False) as box:
        for name, value in box.environment().items():
            patch.setenv(name, value)
        patch.setenv("UPGRADE_POLICY", POLICY)
        yield box
    runtime.reset()


@pytest.fixture
def box(stack: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """Return the module's stack with its queues emptied and a fresh work queue."""
    stack.emulator.reset()
    stack.received_events()
    stack.dead_letters()
    # A record reported for redelivery stays in flight on its queue, and SQS allows one purge a
    # minute, so each test gets a work queue of its own.
    stack.work_queue_url = stack.boto("sqs").create_queue(QueueName=f"scout-work-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    return stack


def install_runtime(box: Sandbox, monkeypatch: pytest.MonkeyPatch, read_timeout: float) -> None:
    """Give the worker a runtime whose CSS client waits briefly between attempts."""
    built = runtime.build()
    built.css = CssClient(
        credentials_from_environment(),
        endpoint=box.emulator.url,
        timeout=(1.0, read_timeout),
        retry_policy=FAST_RETRIES,
    )
    monkeypatch.setattr(runtime, "_runtime", built)


def attempts_of(network: NetworkLog, route: str, upgrade_type: str | None) -> int:
    """Count the requests the worker sent for one CSS call of the check."""
    count = 0
    for request in network.requests:
        path = urlsplit(request.url).path
        if route_name(request.method, path) != route:
            continue
        if upgrade_type is not None and f"/target/{upgrade_type}/images" not in path:
            continue
        count += 1
    return count


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_fault_outcome(box, monkeypatch, row):
    install_runtime(box, monkeypatch, LATENCY_READ_TIMEOUT if row.fault.name == "latency" else READ_TIMEOUT)
    network = NetworkLog().install(monkeypatch)
    box.emulator.inject(
        Fault(route=row.route, upgrade_type=row.upgrade_type, cluster_id=CLUSTER, times=1 if row.once else None, **row.fault.fault)
    )
    (message_id,) = box.send([CLUSTER])

    delivery = box.invoke(worker.lambda_handler, box.receive_event())

    attempts = attempts_of(network, row.route, row.upgrade_type)
    events = box.received_events()
    letters = box.dead_letters()
    if row.fault.name == "latency" and row.once:
        # The retry is an undelayed request under the short read timeout. On a loaded machine even
        # that one may time out and be retried again, which does not change the outcome.
        assert attempts >= row.attempts
    else:
        assert attempts == row.attempts

    if row.outcome == ANNOUNCED:
        assert delivery.error is None
        assert delivery.response == {"batchItemFailures": []}
        assert [event["event_type"] for event in events] == ["upgrade.ready"]
        assert events[0]["unsupported_types"] == list(row.unsupported)
        assert letters == []
        assert delivery.deleted == [message_id]

    elif row.outcome == REDELIVERED:
        assert delivery.error is None
        assert delivery.response == {"batchItemFailures": [{"itemIdentifier": message_id}]}
        assert events == []
        assert letters == []
        assert box.queue_depth(box.work_queue_url) == 1

    elif row.outcome == DEAD_LETTERED:
        assert delivery.error is None
        assert delivery.response == {"batchItemFailures": []}
        assert [(event["event_type"], event["reason"]) for event in events] == [("check.failed", row.reason)]
        assert events[0]["upgrade_type"] == row.upgrade_type
        assert [(letter["body"], letter["error_reason"]) for letter in letters] == [(CLUSTER, row.reason)]
        assert row.fault.name in letters[0]["error_detail"]
        assert delivery.deleted == [message_id]

    else:
        assert delivery.error is not None
        assert type(delivery.error).__name__ == "ConfigurationFault"
        assert row.fault.name in str(delivery.error)
        assert events == []
        assert letters == []
        assert delivery.deleted == []
        assert box.queue_depth(box.work_queue_url) == 1


def test_matrix_covers_every_kind():
    kinds = {kind.fault["kind"] for kind in FAULTS}
    assert kinds == set(Fault.model_fields["kind"].annotation.__args__)


def test_matrix_covers_every_call(box, monkeypatch):
    # Without faults, a check makes exactly the calls of the table, one request each.
    install_runtime(box, monkeypatch, READ_TIMEOUT)
    network = NetworkLog().install(monkeypatch)
    box.send([CLUSTER])

    delivery = box.invoke(worker.lambda_handler, box.receive_event())

    assert delivery.response == {"batchItemFailures": []}
    calls_made = []
    for request in network.requests:
        path = urlsplit(request.url).path
        route = route_name(request.method, path)
        if route is not None:
            calls_made.append((route, path.split("/target/")[1].split("/")[0] if "/target/" in path else None))
    assert sorted(calls_made, key=str) == sorted(CALLS, key=str)


# -- deadline -------------------------------------------------------------------------------------

# A Lambda context with this much time left, minus the worker's 5 s safety margin, leaves a 2 s deadline.
REMAINING_SECONDS = 7.0


def test_retry_after_beyond_deadline_not_awaited(sandbox):
    sandbox.emulator.inject(Fault(kind="throttle", route="list_images", cluster_id=CLUSTER, retry_after=30))
    (message_id,) = sandbox.send([CLUSTER])
    event = sandbox.receive_event()

    started = time.monotonic()
    delivery = sandbox.invoke(worker.lambda_handler, event, timeout_seconds=REMAINING_SECONDS)
    elapsed = time.monotonic() - started

    # Waiting as asked would take 30 s; the invocation must end before its Lambda timeout.
    assert elapsed < REMAINING_SECONDS
    assert worker.SAFETY_MARGIN_SECONDS == 5.0
    assert delivery.response == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    assert sandbox.emulator.call_count("list_images", CLUSTER) == 1


def test_slow_reply_cut_at_deadline(sandbox):
    # The reply would come after 20 s; each read timeout is cut to the 2 s left before the deadline.
    sandbox.emulator.inject(Fault(kind="latency", route="show_cluster", cluster_id=CLUSTER, latency_ms=20_000))
    (message_id,) = sandbox.send([CLUSTER])
    event = sandbox.receive_event()

    started = time.monotonic()
    delivery = sandbox.invoke(worker.lambda_handler, event, timeout_seconds=REMAINING_SECONDS)
    elapsed = time.monotonic() - started

    assert elapsed < REMAINING_SECONDS
    assert delivery.response == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    assert sandbox.received_events() == []
