"""What becomes of one work message: announced, suppressed, dead-lettered, or reported for redelivery.

`process_message` returns the outcome of a message that is finished with, and raises for one that
must come back: `Redeliver` (a transient fault) or `ConfigurationFault` (the deployment is broken,
so the whole batch must stay on the queue). Each record ends in exactly one of these outcomes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from handler import runtime as runtime_module
from handler.aws.errors import AwsConfigurationError, AwsError, AwsTransientError
from handler.check import CheckFailed, run_check
from handler.config import ConfigurationError
from handler.core.events import Event, Trigger
from handler.core.message import InvalidMessage, WorkMessage, parse_body
from handler.core.render import render_slack
from handler.css import errors as css_errors
from handler.delivery.announce import announce
from handler.delivery.deadletter import dead_letter
from handler.delivery.slack import SlackPostError, post_json
from handler.observability import count, logger
from handler.retry import Deadline


class Outcome(str, enum.Enum):
    ANNOUNCED = "announced"
    SUPPRESSED = "suppressed"
    DEAD_LETTERED = "dead_lettered"


class Redeliver(Exception):
    """A transient fault: the record is reported as a batch item failure and SQS delivers it again."""


class ConfigurationFault(Exception):
    """The deployment is broken (credentials, signature, missing topic or table, invalid policy)."""


@dataclass(frozen=True)
class Record:
    """The parts of an SQS record the pipeline needs."""

    body: str
    message_id: str
    group_id: str | None = None


def process_message(record: Record, runtime: runtime_module.Runtime, deadline: Deadline) -> Outcome:
    """Check the record's cluster and deliver the result; see the module docstring for the outcomes."""
    settings = runtime.settings
    try:
        message, policy = parse_body(
            record.body,
            default_project_id=settings.css_project_id,
            default_region=settings.css_region,
            reply_hosts=settings.slack_reply_hosts,
            policy=settings.policy,
        )
    except InvalidMessage as error:
        logger.warning("invalid work message", extra={"message_id": record.message_id, "error": str(error)})
        return _permanent_failure(record, runtime, deadline, reason="invalid_message", detail=str(error), event=None)

    logger.thread_safe_append_keys(cluster_id=message.cluster_id, correlation_id=message.correlation_id or record.message_id)
    trigger = Trigger(
        source=message.source,
        requested_by=message.requested_by,
        correlation_id=message.correlation_id,
        message_id=record.message_id,
    )

    try:
        result = run_check(runtime.css, message, policy, trigger=trigger, agency=settings.upgrade_agency, deadline=deadline)
    except CheckFailed as failure:
        count(f"CssError.{failure.cause.kind}")
        logger.warning("check failed for good", extra={"reason": failure.reason, "error": str(failure.cause)})
        # NOTE: without DEAD_LETTER_QUEUE_URL every redelivery of this message replies on Slack again,
        # until SQS redrive moves it after maxReceiveCount deliveries.
        _reply(message, failure.event, runtime)
        return _permanent_failure(
            record, runtime, deadline, reason=failure.reason or "invalid_request", detail=str(failure.cause), event=failure.event
        )
    except css_errors.CssConfigurationError as error:
        count(f"CssError.{error.kind}")
        raise ConfigurationFault(str(error)) from error
    except css_errors.CssTransientError as error:
        count(f"CssError.{error.kind}")
        raise Redeliver(str(error)) from error
    except (ConfigurationError, AwsConfigurationError) as error:
        # Reading the CSS credentials from Secrets Manager failed for good: a deployment fault.
        raise ConfigurationFault(str(error)) from error
    except AwsError as error:
        raise Redeliver(f"reading the CSS credentials failed: {error}") from error

    event = result.event
    count("ImagesFound", result.images_found)
    count(f"Event.{event.event_type}")
    outcome = _announce(event, runtime, deadline, renotify_after_days=policy.renotify_after_days)
    logger.info(
        "check finished",
        extra={"upgrade_type": event.upgrade_type, "event_type": event.event_type, "event_id": event.event_id, "outcome": outcome.value},
    )
    _reply(message, event, runtime)
    # Counted last: a failed Slack reply still turns the record into a redelivery.
    count(f"Outcome.{outcome.value}")
    return outcome


def _announce(event: Event, runtime: runtime_module.Runtime, deadline: Deadline, *, renotify_after_days: int) -> Outcome:
    """Broadcast `event` unless the same event ID was announced within the renotify window.

    Counts nothing: the caller counts the record's outcome, which for a check.failed event is dead_lettered.
    """
    try:
        announced = announce(
            event, runtime.broadcaster, runtime.ledger, renotify_after_days=renotify_after_days, deadline=deadline
        )
    except AwsConfigurationError as error:
        raise ConfigurationFault(str(error)) from error
    except AwsError as error:
        raise Redeliver(str(error)) from error
    if not announced:
        logger.info("event already announced; broadcast suppressed", extra={"event_id": event.event_id})
        return Outcome.SUPPRESSED
    return Outcome.ANNOUNCED


def _permanent_failure(
    record: Record,
    runtime: runtime_module.Runtime,
    deadline: Deadline,
    *,
    reason: str,
    detail: str,
    event: Event | None,
) -> Outcome:
    """Dead-letter a message that can never succeed, with its `check.failed` event when there is one."""
    settings = runtime.settings
    if event is not None:
        count("Event.check.failed")
        _announce(event, runtime, deadline, renotify_after_days=settings.policy.renotify_after_days)

    if not settings.dead_letter_queue_url:
        # Without a dead-letter URL, SQS redrive moves the message after maxReceiveCount deliveries.
        raise Redeliver(f"{reason}: {detail} (DEAD_LETTER_QUEUE_URL is not set, so SQS redrive will move it)")
    try:
        dead_letter(
            settings.dead_letter_queue_url,
            record.body,
            reason=reason,
            detail=detail,
            message_id=record.message_id,
            group_id=record.group_id,
            client=runtime.aws,
            deadline=deadline,
        )
    except AwsConfigurationError as error:
        raise ConfigurationFault(str(error)) from error
    except AwsError as error:
        raise Redeliver(f"dead-letter send failed: {error}") from error

    count("Outcome.dead_lettered")
    logger.warning("message dead-lettered", extra={"message_id": record.message_id, "error_reason": reason})
    return Outcome.DEAD_LETTERED


def _reply(message: WorkMessage, event: Event, runtime: runtime_module.Runtime) -> None:
    """Post the event to the Slack `response_url` of a chat request; the reply always carries the event."""
    if not message.reply_url:
        return
    try:
        post_json(message.reply_url, render_slack(event), runtime.settings.slack_reply_hosts)
    except SlackPostError as error:
        if error.retryable:
            raise Redeliver(str(error)) from error
        logger.warning("Slack reply rejected; not retried", extra={"error": str(error)})


__all__ = ["ConfigurationError", "ConfigurationFault", "Outcome", "Record", "Redeliver", "process_message", "AwsTransientError"]
