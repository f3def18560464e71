"""Announce once: claim the event ID, broadcast to the targets that lack the event, record the result.

Shared by every caller that broadcasts (the worker, the CLI with `--publish`, the workflow's
lifecycle events), so all of them suppress and resume partial broadcasts the same way. Raises the
AWS client's errors; each caller maps them onto its own outcomes.
"""

from __future__ import annotations

import logging

from handler.aws.errors import AwsConfigurationError, AwsError
from handler.core.events import Event
from handler.delivery.ledger import AnnounceLedger, Claim
from handler.delivery.publish import Broadcaster
from handler.retry import NO_DEADLINE, Deadline

logger = logging.getLogger(__name__)


def announce(
    event: Event,
    broadcaster: Broadcaster,
    ledger: AnnounceLedger | None,
    *,
    renotify_after_days: int,
    deadline: Deadline = NO_DEADLINE,
) -> bool:
    """Broadcast `event` unless its ID was announced within `renotify_after_days`; return whether it was."""
    claim = ledger.claim(event.event_id, deadline=deadline) if ledger else None
    if ledger and claim is None:
        # Callers log the suppression with their own context (the record, the CLI command).
        return False

    # Targets that got the event in an earlier, partly failed attempt are skipped this time.
    published = set(claim.published_targets) if claim is not None else set()
    try:
        broadcaster.broadcast(event, deadline=deadline, published_targets=published)
    except Exception:
        if ledger and claim is not None:
            _release_quietly(ledger, claim, published, renotify_after_days, deadline)
        raise

    if ledger and claim is not None:
        _confirm_quietly(ledger, claim, renotify_after_days, deadline)
    return True


def _confirm_quietly(ledger: AnnounceLedger, claim: Claim, renotify_after_days: int, deadline: Deadline) -> None:
    """Record a publish that succeeded.

    A transient failure here does not fail the announcement, because a redelivery would publish the
    event again once the claim expires.
    """
    try:
        ledger.confirm(claim, renotify_after_days, deadline=deadline)
    except AwsConfigurationError:
        raise
    except AwsError as error:
        # The claim stays until it expires; a check of the same event after that announces it again.
        logger.warning("event published, but recording the announcement failed", extra={"event_id": claim.event_id, "error": str(error)})


def _release_quietly(ledger: AnnounceLedger, claim: Claim, published: set[str], renotify_after_days: int, deadline: Deadline) -> None:
    try:
        ledger.release(claim, published_targets=published, renotify_after_days=renotify_after_days, deadline=deadline)
    except AwsError as error:
        # The claim then expires with the invocation, and a redelivery can claim again.
        logger.warning("could not release announce-once claim", extra={"event_id": claim.event_id, "error": str(error)})
