"""Soak: messages through moto SQS, the worker and moto SNS while 20 % of CSS calls fail at random.

Every message must end in exactly one outcome (announced, suppressed or dead-lettered), none may be
lost, the work queue must end empty, and no event ID may be broadcast twice. The small run takes part
in every `make test`; the 10,000-message run is `make soak` (`pytest -q -s -m slow`) and prints its
accounting.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from collections import Counter

import pytest
import requests

from handler import process, runtime, worker
from handler.core.message import InvalidMessage, parse_body
from handler.core.policy import Policy
from handler.local.emulator.catalog import DEFAULT_PROJECT_ID, DEFAULT_REGION
from handler.observability import logger as function_logger

from .soak import INVALID, SOAK_FAULT_KINDS, KNOWN, Accounting, DeliveryLog, Planned, SoakStack, plan_messages, reconcile, run_soak, soak_catalog

FAILURE_RATE = 0.2
MAX_CONCURRENCY = 10
# Clusters whose first delivery always fails, so that every run has redeliveries to account for.
FORCED_REDELIVERIES = 3


class MessageCounter(logging.Handler):
    """Counts log records by message template; keeps the soak's thousands of lines off the terminal."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._counts_lock:
            self.counts[str(record.msg)] += 1


def force_redeliveries(stack: SoakStack, planned: list[Planned], how_many: int) -> list[str]:
    """Arm faults so that the only message of each of `how_many` clusters fails its first delivery.

    A fault for five requests makes the first delivery's four attempts fail and the second
    delivery's first attempt, after which the check succeeds.
    """
    seen = Counter(message.cluster_id for message in planned if message.kind == KNOWN)
    chosen = [cluster for cluster, times in seen.items() if times == 1][:how_many]
    faults = [{"kind": "server_error", "status": 503, "route": "show_cluster", "cluster_id": cluster, "times": 5} for cluster in chosen]
    requests.post(f"{stack.emulator.url}/_emulator/faults", json=faults, timeout=10).raise_for_status()
    return chosen


def soak(monkeypatch: pytest.MonkeyPatch, *, messages: int, clusters: int, seed: int, time_limit: float) -> tuple[Accounting, Counter[str], int]:
    """Run one soak; return its accounting, the function's log lines by template, and the CSS calls made."""
    counter = MessageCounter()
    for name in (function_logger.name, "handler"):
        target = logging.getLogger(name)
        monkeypatch.setattr(target, "handlers", [counter])
        monkeypatch.setattr(target, "propagate", False)

    planned = plan_messages(soak_catalog(clusters, seed), messages, seed)
    with SoakStack(clusters, seed) as stack:
        for name, value in stack.environment(MAX_CONCURRENCY).items():
            monkeypatch.setenv(name, value)
        runtime.reset()
        stack.set_failure_rate(FAILURE_RATE, seed, SOAK_FAULT_KINDS)
        forced = force_redeliveries(stack, planned, FORCED_REDELIVERIES)
        assert len(forced) == FORCED_REDELIVERIES

        deliveries = DeliveryLog()
        monkeypatch.setattr(worker, "process_message", deliveries.wrap(process.process_message))
        # Each invocation prints its metrics to standard output, as in Lambda; they are not shown here.
        with contextlib.redirect_stdout(io.StringIO()):
            run = run_soak(stack, planned, deliveries, time_limit=time_limit)
        remaining = stack.queue_depth(stack.work_queue_url)
        css_calls = stack.css_calls()
    runtime.reset()

    return reconcile(planned, run, deliveries, remaining), counter.counts, css_calls


def report(accounting: Accounting, logs: Counter[str], css_calls: int) -> None:
    print()
    for line in accounting.lines():
        print(f"soak accounting: {line}")
    print(f"soak accounting: css_calls={css_calls} css_retries={logs['retrying CSS call']}")
    for problem in accounting.problems[:20]:
        print(f"soak problem: {problem}")


def check(accounting: Accounting, logs: Counter[str]) -> None:
    assert accounting.problems == [], "\n".join(accounting.lines() + accounting.problems[:20])
    assert accounting.duplicates == 0
    assert accounting.sent == accounting.announced + accounting.suppressed + accounting.dead_lettered
    assert accounting.redeliveries >= FORCED_REDELIVERIES
    assert logs["retrying CSS call"] > 0
    assert logs["configuration fault: the batch stays on the queue until it is fixed"] == 0


def test_planned_invalid_messages_rejected():
    planned = plan_messages(soak_catalog(200, 11), 300, 11)
    invalid = [message for message in planned if message.kind == INVALID]

    assert invalid
    for message in invalid:
        with pytest.raises(InvalidMessage):
            parse_body(message.body, default_project_id=DEFAULT_PROJECT_ID, default_region=DEFAULT_REGION,
                       reply_hosts=("127.0.0.1",), policy=Policy())


# Concurrent invocations in one process share the metrics object, so one may find it already flushed.
@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_soak_small_accounting(monkeypatch):
    accounting, logs, css_calls = soak(monkeypatch, messages=300, clusters=200, seed=11, time_limit=180.0)
    report(accounting, logs, css_calls)
    check(accounting, logs)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_soak_10000_messages(monkeypatch):
    accounting, logs, css_calls = soak(monkeypatch, messages=10_000, clusters=4000, seed=7, time_limit=1800.0)
    report(accounting, logs, css_calls)
    check(accounting, logs)
