"""Settings read from the environment once per cold start, validated before any request is made.

Every problem is a `ConfigurationError` naming the variable and its value (secret values are never
shown). The Lambda entry points turn it into a failed invocation, so no message is consumed while
the deployment is broken; the CLI turns it into exit status 2.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

from handler.core import ids
from handler.core.policy import Policy, PolicyError, load_policy
from handler.css.endpoints import EndpointError, resolve_endpoint

DEFAULT_REPLY_HOSTS = ("hooks.slack.com",)
DEFAULT_MAX_CONCURRENCY = 10
# Beyond this a batch would open more CSS connections at once than the API's rate limits welcome.
MAX_MAX_CONCURRENCY = 50


class ConfigurationError(Exception):
    """A missing or invalid setting: a fault of the deployment, not of any message.

    The class name is part of the workflow contract: Step Functions `Catch` rules match it.
    """

    def __init__(self, message: str, *, variable: str | None = None) -> None:
        self.variable = variable
        super().__init__(message)


@dataclass(frozen=True)
class ScanTarget:
    """One project and region that the scheduled scan covers."""

    project_id: str
    region: str


@dataclass(frozen=True)
class Settings:
    """Everything the entry points read from the environment (see the README's configuration table)."""

    css_region: str | None = None
    css_project_id: str | None = None
    css_endpoint: str | None = None
    policy: Policy = field(default_factory=Policy)
    notify_topic_arn: str | None = None
    notify_event_bus: str | None = None
    dedupe_table: str | None = None
    work_queue_url: str | None = None
    dead_letter_queue_url: str | None = None
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    upgrade_agency: str | None = None
    execution_enabled: bool = False
    slack_reply_hosts: tuple[str, ...] = DEFAULT_REPLY_HOSTS
    slack_approvers: frozenset[str] = frozenset()
    scan_targets: tuple[ScanTarget, ...] = ()


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; raise ConfigurationError on the first invalid value."""
    env = os.environ if env is None else env

    css_region = _optional(env, "CSS_REGION", ids.region)
    css_project_id = _optional(env, "CSS_PROJECT_ID", ids.project_id)
    css_endpoint = _text(env, "CSS_ENDPOINT")
    if css_endpoint:
        try:
            resolve_endpoint(css_region or "ap-southeast-1", css_endpoint)
        except EndpointError as error:
            raise ConfigurationError(str(error), variable="CSS_ENDPOINT") from None

    try:
        policy = load_policy(_text(env, "UPGRADE_POLICY"))
    except PolicyError as error:
        raise ConfigurationError(str(error), variable="UPGRADE_POLICY") from None

    return Settings(
        css_region=css_region,
        css_project_id=css_project_id,
        css_endpoint=css_endpoint,
        policy=policy,
        notify_topic_arn=_optional(env, "NOTIFY_TOPIC_ARN", _sns_topic_arn),
        notify_event_bus=_optional(env, "NOTIFY_EVENT_BUS", _event_bus),
        dedupe_table=_optional(env, "DEDUPE_TABLE", _table_name),
        work_queue_url=_optional(env, "WORK_QUEUE_URL", _queue_url),
        dead_letter_queue_url=_optional(env, "DEAD_LETTER_QUEUE_URL", _queue_url),
        max_concurrency=_max_concurrency(env),
        upgrade_agency=_optional(env, "CSS_UPGRADE_AGENCY", _agency),
        execution_enabled=_boolean(env, "UPGRADE_EXECUTION_ENABLED"),
        slack_reply_hosts=_reply_hosts(env),
        slack_approvers=_approvers(env),
        scan_targets=_scan_targets(env),
    )


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def _optional(env: Mapping[str, str], name: str, check) -> str | None:
    value = _text(env, name)
    if value is None:
        return None
    try:
        return check(value)
    except ValueError as error:
        raise ConfigurationError(f"{name}: {error}", variable=name) from None


def _fail(name: str, value: str, expected: str) -> ConfigurationError:
    return ConfigurationError(f"invalid {name} {ids.shown(value)}: expected {expected}", variable=name)


def _sns_topic_arn(value: str) -> str:
    parts = value.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sns" or not parts[5]:
        raise ValueError(f"invalid topic ARN {ids.shown(value)}: expected arn:aws:sns:REGION:ACCOUNT:NAME")
    return value


def _event_bus(value: str) -> str:
    if value.startswith("arn:"):
        parts = value.split(":")
        if len(parts) != 6 or parts[2] != "events" or not parts[5].startswith("event-bus/"):
            raise ValueError(f"invalid event bus ARN {ids.shown(value)}: expected arn:aws:events:REGION:ACCOUNT:event-bus/NAME")
        return value
    if not all(c.isascii() and (c.isalnum() or c in "._-/") for c in value) or len(value) > 256:
        raise ValueError(f"invalid event bus name {ids.shown(value)}")
    return value


def _table_name(value: str) -> str:
    if not (3 <= len(value) <= 255) or not all(c.isascii() and (c.isalnum() or c in "._-") for c in value):
        raise ValueError(f"invalid table name {ids.shown(value)}: expected 3-255 letters, digits, '.', '_' or '-'")
    return value


def _queue_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.path.count("/") != 2:
        raise ValueError(f"invalid queue URL {ids.shown(value)}: expected https://sqs.REGION.amazonaws.com/ACCOUNT/NAME")
    return value


def _agency(value: str) -> str:
    if len(value) > 64 or not all(c.isascii() and (c.isalnum() or c in "._-") for c in value):
        raise ValueError(f"invalid agency name {ids.shown(value)}: expected letters, digits, '.', '_' or '-'")
    return value


def _max_concurrency(env: Mapping[str, str]) -> int:
    value = _text(env, "MAX_CONCURRENCY")
    if value is None:
        return DEFAULT_MAX_CONCURRENCY
    if not value.isdigit() or not 1 <= int(value) <= MAX_MAX_CONCURRENCY:
        raise _fail("MAX_CONCURRENCY", value, f"a whole number from 1 to {MAX_MAX_CONCURRENCY}")
    return int(value)


def _boolean(env: Mapping[str, str], name: str) -> bool:
    value = _text(env, name)
    if value is None:
        return False
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise _fail(name, value, "true or false")


def _reply_hosts(env: Mapping[str, str]) -> tuple[str, ...]:
    value = _text(env, "SLACK_REPLY_HOSTS")
    if value is None:
        return DEFAULT_REPLY_HOSTS
    hosts = []
    for item in value.split(","):
        host = item.strip().lower()
        if not host:
            continue
        labels = host.split(".")
        if not all(label and len(label) <= 63 and all(c.isascii() and (c.isalnum() or c == "-") for c in label) for label in labels):
            raise _fail("SLACK_REPLY_HOSTS", item, "comma-separated host names such as hooks.slack.com")
        hosts.append(host)
    if not hosts:
        raise _fail("SLACK_REPLY_HOSTS", value, "at least one host name")
    return tuple(hosts)


def _approvers(env: Mapping[str, str]) -> frozenset[str]:
    value = _text(env, "SLACK_APPROVERS")
    if value is None:
        return frozenset()
    approvers = set()
    for item in value.split(","):
        user = item.strip()
        if not user:
            continue
        if not (user.isascii() and user.isalnum() and len(user) <= 32):
            raise _fail("SLACK_APPROVERS", user, "comma-separated Slack user IDs such as U024BE7LH")
        approvers.add(user)
    return frozenset(approvers)


def _scan_targets(env: Mapping[str, str]) -> tuple[ScanTarget, ...]:
    value = _text(env, "SCAN_TARGETS")
    if value is None:
        return ()
    try:
        data = json.loads(value)
    except ValueError:
        raise _fail("SCAN_TARGETS", value, 'a JSON list such as [{"project_id": "...", "region": "ap-southeast-1"}]') from None
    if not isinstance(data, list):
        raise _fail("SCAN_TARGETS", value, "a JSON list of objects")
    targets = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise _fail(f"SCAN_TARGETS[{index}]", json.dumps(item), 'an object {"project_id": ..., "region": ...}')
        try:
            targets.append(ScanTarget(project_id=ids.project_id(item.get("project_id"), f"SCAN_TARGETS[{index}].project_id"),
                                      region=ids.region(item.get("region"), f"SCAN_TARGETS[{index}].region")))
        except ids.InvalidValue as error:
            raise ConfigurationError(str(error), variable="SCAN_TARGETS") from None
    return tuple(targets)
