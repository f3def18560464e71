"""Fixtures shared across suites: the CSS emulator and the local stack (emulator + moto server)."""

from __future__ import annotations

from typing import Iterator

import pytest

from handler import runtime
from handler.core.events import Event
from handler.css.client import CssClient
from handler.css.signer import Credentials
from handler.local.emulator.catalog import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY
from handler.local.emulator.server import Emulator
from handler.local.sandbox import Sandbox
from handler.observability import metrics
from handler.retry import RetryPolicy
from tests.core.schema_check import schema_errors


def _validating_to_dict(original):
    """Wrap Event.to_dict so that every event the suite serializes is checked against the JSON Schema.

    Every output path (SNS, EventBridge, standard output, the CLI, renderings of the request) goes
    through `to_dict`, so a schema violation anywhere in the suite fails the test that produced it.
    """

    def to_dict(self: Event):
        document = original(self)
        problems = schema_errors(document)
        if problems:
            raise AssertionError("event violates schema version 1:\n" + "\n".join(problems))
        return document

    return to_dict


Event.to_dict = _validating_to_dict(Event.to_dict)

# Short waits keep retry tests fast while still exercising real backoff and Retry-After handling.
FAST_RETRIES = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)


@pytest.fixture(autouse=True)
def fresh_metrics() -> None:
    """Start every test with an empty metric set.

    The functions share one Powertools `Metrics` object, and while POWERTOOLS_METRICS_DISABLED is
    true its flush neither prints nor clears, so a test could otherwise read counts that an earlier
    test left behind.
    """
    metrics.clear_metrics()


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


@pytest.fixture
def css_client(emulator: Emulator) -> CssClient:
    return CssClient(
        Credentials(ak=DEFAULT_ACCESS_KEY, sk=DEFAULT_SECRET_KEY),
        endpoint=emulator.url,
        retry_policy=FAST_RETRIES,
    )


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """The local stack with the function's environment applied; the runtime is rebuilt around it."""
    with Sandbox() as running:
        running.apply_environment()
        runtime.reset()
        yield running
    runtime.reset()
