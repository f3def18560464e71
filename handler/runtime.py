"""The objects a Lambda execution environment builds once and reuses: settings, clients, delivery.

Building them validates the configuration; a `ConfigurationError` here fails the invocation before
any message is touched. Tests call `reset()` to build them again from a changed environment.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Mapping

from handler.aws.client import AwsClient
from handler.config import ConfigurationError, Settings, load_settings
from handler.credentials import credentials_from_environment
from handler.css.client import CssClient
from handler.delivery.ledger import AnnounceLedger
from handler.delivery.publish import Broadcaster


@dataclass
class Runtime:
    settings: Settings
    css: CssClient
    aws: AwsClient
    broadcaster: Broadcaster
    ledger: AnnounceLedger | None


_lock = threading.Lock()
_runtime: Runtime | None = None


def build(env: Mapping[str, str] | None = None) -> Runtime:
    """Build a runtime from `env` (the process environment by default)."""
    env = os.environ if env is None else env
    settings = load_settings(env)
    aws = AwsClient(env)
    credentials = credentials_from_environment(env, aws)
    css = CssClient(credentials, endpoint=settings.css_endpoint, pool_size=max(16, settings.max_concurrency + 4))
    ledger = AnnounceLedger(settings.dedupe_table, aws) if settings.dedupe_table else None
    broadcaster = Broadcaster(aws, topic_arn=settings.notify_topic_arn, event_bus=settings.notify_event_bus)
    return Runtime(settings=settings, css=css, aws=aws, broadcaster=broadcaster, ledger=ledger)


def get() -> Runtime:
    """Return the runtime of this execution environment, building it on first use."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = build()
        return _runtime


def reset() -> None:
    """Forget the runtime, so that the next `get()` reads the environment again."""
    global _runtime
    with _lock:
        _runtime = None


__all__ = ["ConfigurationError", "Runtime", "build", "get", "reset"]
