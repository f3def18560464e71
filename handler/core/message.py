"""The work message: what a queue record, a Slack command or a workflow asks to check.

A body is either a bare cluster ID or a JSON object whose fields may use snake_case or camelCase.
A message is rejected, never repaired with a default, when a field has the wrong type or form, when
both spellings of a field are present, or when it asks for something the policy or the deployment
does not allow. Every rejection is an `InvalidMessage` naming the field and the value.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable
from urllib.parse import urlsplit

from handler.core import ids

if TYPE_CHECKING:
    # Only for annotations: importing the policy loads pydantic and PyYAML, which the Slack webhook
    # (it needs only check_reply_url) keeps off its cold-start path.
    from handler.core.policy import Policy

SOURCES = ("sqs", "schedule", "webhook", "workflow", "cli")

# snake_case name -> camelCase alias
_FIELDS = {
    "cluster_id": "clusterId",
    "project_id": "projectId",
    "region": "region",
    "upgrade_types": "upgradeTypes",
    "policy_profile": "policyProfile",
    "source": "source",
    "requested_by": "requestedBy",
    "correlation_id": "correlationId",
    "reply_to": "replyTo",
}

_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}", re.ASCII)
_PROFILE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}", re.ASCII)
_MAX_REQUESTED_BY = 200
_MAX_REPLY_URL = 2048
_LOOPBACK = "127.0.0.1"


class InvalidMessage(ids.InvalidValue):
    """A work message that can never be processed as it is."""


@dataclass(frozen=True)
class WorkMessage:
    """A validated request to check one cluster."""

    cluster_id: str
    project_id: str
    region: str
    upgrade_types: tuple[str, ...] | None = None
    policy_profile: str | None = None
    source: str = "sqs"
    requested_by: str | None = None
    correlation_id: str | None = None
    reply_url: str | None = None


def parse_body(
    body: object,
    *,
    default_project_id: str | None,
    default_region: str | None,
    reply_hosts: Iterable[str],
    policy: Policy,
    default_source: str = "sqs",
) -> tuple[WorkMessage, Policy]:
    """Parse a queue body into a work message and the policy that applies to it."""
    if not isinstance(body, str):
        raise InvalidMessage("body", body, "a cluster ID or a JSON object")
    text = body.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise InvalidMessage("body", body, "valid JSON") from None
        return parse_fields(
            data,
            default_project_id=default_project_id,
            default_region=default_region,
            reply_hosts=reply_hosts,
            policy=policy,
            default_source=default_source,
        )
    return parse_fields(
        {"cluster_id": text},
        default_project_id=default_project_id,
        default_region=default_region,
        reply_hosts=reply_hosts,
        policy=policy,
        default_source=default_source,
    )


def parse_fields(
    data: object,
    *,
    default_project_id: str | None,
    default_region: str | None,
    reply_hosts: Iterable[str],
    policy: Policy,
    default_source: str = "sqs",
) -> tuple[WorkMessage, Policy]:
    """Validate a decoded message object; return it with its effective policy."""
    if not isinstance(data, dict):
        raise InvalidMessage("body", data, "a JSON object")
    fields = _merge_spellings(data)

    if "cluster_id" not in fields:
        raise InvalidMessage("cluster_id", None, "a cluster ID (the field is required)")
    cluster_id = _checked(ids.cluster_id, fields["cluster_id"], "cluster_id")

    project_id = fields.get("project_id", default_project_id)
    if project_id is None:
        raise InvalidMessage("project_id", None, "a project ID in the message, or CSS_PROJECT_ID set")
    project_id = _checked(ids.project_id, project_id, "project_id")

    region = fields.get("region", default_region)
    if region is None:
        raise InvalidMessage("region", None, "a region in the message, or CSS_REGION set")
    region = _checked(ids.region, region, "region")

    upgrade_types = _upgrade_types(fields.get("upgrade_types"))
    profile = _optional_text(fields, "policy_profile", _PROFILE_NAME, "a profile name")
    try:
        effective = policy.effective(profile, list(upgrade_types) if upgrade_types is not None else None)
    except ids.InvalidValue as error:
        raise InvalidMessage(error.field, error.value, error.expected) from None

    source = fields.get("source", default_source)
    if source not in SOURCES:
        raise InvalidMessage("source", source, f"one of {', '.join(SOURCES)}")

    return (
        WorkMessage(
            cluster_id=cluster_id,
            project_id=project_id,
            region=region,
            upgrade_types=upgrade_types,
            policy_profile=profile,
            source=source,
            requested_by=_requested_by(fields.get("requested_by")),
            correlation_id=_optional_text(fields, "correlation_id", _CORRELATION_ID, "1-128 letters, digits, '.', '_', ':' or '-'"),
            reply_url=_reply_url(fields.get("reply_to"), tuple(reply_hosts)),
        ),
        effective,
    )


def check_reply_url(url: object, reply_hosts: Iterable[str], field: str = "reply_to.slack_response_url") -> str:
    """Return `url` if the function may post to it: https on a host of `reply_hosts` (http only on 127.0.0.1)."""
    hosts = {host.lower() for host in reply_hosts}
    expected = f"an https URL on one of {', '.join(sorted(hosts))}"
    if not isinstance(url, str) or not url or len(url) > _MAX_REPLY_URL or not url.isascii():
        raise InvalidMessage(field, url, expected)
    if any(ord(c) < 0x21 or c in "\\\x7f" for c in url):
        raise InvalidMessage(field, url, expected)
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a malformed port
    except ValueError:
        raise InvalidMessage(field, url, expected) from None
    host = (parts.hostname or "").lower()
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidMessage(field, url, expected)
    if host not in hosts:
        raise InvalidMessage(field, url, expected)
    if parts.scheme == "http" and host != _LOOPBACK:
        raise InvalidMessage(field, url, expected)
    if parts.scheme not in ("https", "http"):
        raise InvalidMessage(field, url, expected)
    del port
    return url


def _merge_spellings(data: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for snake, camel in _FIELDS.items():
        if snake in data and camel != snake and camel in data:
            raise InvalidMessage(snake, data[camel], f"only one of {snake} and {camel}")
        if snake in data:
            fields[snake] = data[snake]
        elif camel in data:
            fields[snake] = data[camel]
    return fields


def _checked(check, value: object, field: str) -> str:
    try:
        return check(value, field)
    except ids.InvalidValue as error:
        raise InvalidMessage(error.field, error.value, error.expected) from None


def _upgrade_types(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise InvalidMessage("upgrade_types", value, "a non-empty list of same, cross, cross-engine")
    types = tuple(_checked(ids.upgrade_type, item, "upgrade_types") for item in value)
    if len(set(types)) != len(types):
        raise InvalidMessage("upgrade_types", value, "each upgrade type at most once")
    return types


def _optional_text(fields: dict[str, Any], name: str, pattern: re.Pattern[str], expected: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidMessage(name, value, expected)
    return value


def _requested_by(value: object) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value
        or len(value) > _MAX_REQUESTED_BY
        or not value.isprintable()
    ):
        raise InvalidMessage("requested_by", value, f"printable text of at most {_MAX_REQUESTED_BY} characters")
    return value


def _reply_url(value: object, reply_hosts: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidMessage("reply_to", value, 'an object {"slack_response_url": URL}')
    if "slack_response_url" in value and "slackResponseUrl" in value:
        raise InvalidMessage("reply_to.slack_response_url", value["slackResponseUrl"], "only one of slack_response_url and slackResponseUrl")
    url = value.get("slack_response_url", value.get("slackResponseUrl"))
    if url is None:
        return None
    return check_reply_url(url, reply_hosts)
