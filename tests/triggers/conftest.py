"""Fixtures of the trigger tests: a clean function environment, the local sandbox, the fake Slack and the task token server."""

from __future__ import annotations

from typing import Iterator

import pytest

from handler import runtime
from handler.aws import secrets
from handler.aws.client import get_client
from handler.local.asl import TaskTokenServer
from handler.local.fake_slack import FakeSlack
from handler.local.sandbox import Sandbox

from . import FUNCTION_VARIABLES

APPROVER = "U0APPROVER1"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Start every test without the function's variables, with fresh runtime objects and an empty secret cache."""
    for name in FUNCTION_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    runtime.reset()
    secrets.cache_for(get_client()).clear()
    yield
    runtime.reset()
    secrets.cache_for(get_client()).clear()


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """The CSS emulator (default catalog) and a moto server with the stack's resources, environment applied."""
    with Sandbox() as box:
        for name, value in box.environment().items():
            monkeypatch.setenv(name, value)
        runtime.reset()
        yield box


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def tokens() -> Iterator[TaskTokenServer]:
    with TaskTokenServer() as server:
        yield server


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch):
    """Return a setter of function variables (None removes one); monkeypatch restores them after the test."""

    def set_variables(**variables: str | None) -> None:
        for name, value in variables.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        runtime.reset()

    return set_variables
