"""Announce once: a DynamoDB ledger of the event IDs already broadcast.

Each broadcast first claims its event ID with a conditional write. A claim succeeds when no item
exists or the existing one has expired, so two workers can never both announce the same event. A
claim is written with the invocation's deadline as its expiry: if the worker dies between claim and
publish, the next delivery of the message can claim again, and the announcement is not lost. After
a successful publish the item is confirmed with an expiry of `renotify_after_days`; until then the
same event ID is suppressed. When a publish reaches some targets but fails on another, the claim is
released as `partial` with the targets that have the event, and the next claim carries them, so the
retry publishes only to the rest.

Items: `id` (the event ID), `status` (`claimed`, `partial` or `published`), `claim` (a random token,
so only the claimer confirms or releases), `published_at`, and `published_targets` (a string set on
`partial` items and on the claims that follow them). `expiration` (epoch seconds) is the table's TTL
attribute. The claim condition checks it too, because TTL deletion lags by up to days.

Powertools' idempotency utility is not used: it imports boto3, and it models "same input, same
output" rather than "announce until the target changes".
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from handler.aws import dynamodb
from handler.aws.client import AwsClient
from handler.aws.errors import AwsTransientError, ConditionalCheckFailed
from handler.core.policy import Policy
from handler.retry import NO_DEADLINE, Deadline

logger = logging.getLogger(__name__)

SECONDS_PER_DAY = 86400
DEFAULT_RENOTIFY_AFTER_DAYS: int = Policy.model_fields["renotify_after_days"].default
# A claim outlives the invocation by this much at least, so a slow clock cannot free it early.
_MIN_CLAIM_SECONDS = 60


class AnnouncementInProgress(AwsTransientError):
    """Another worker holds a live claim on this event ID: try again after it publishes or expires."""


# Attribute names in expressions go through placeholders, because `status` is a DynamoDB reserved word.
# DynamoDB rejects a placeholder that the expressions do not use, so the claim leaves out `#targets`.
_CLAIM_NAMES = {"#status": "status", "#expiration": "expiration", "#claim": "claim"}
_PARTIAL_NAMES = {**_CLAIM_NAMES, "#targets": "published_targets"}


@dataclass(frozen=True)
class Claim:
    """The right to broadcast one event ID, with the targets an earlier attempt already published it to."""

    event_id: str
    token: str
    published_targets: frozenset[str] = frozenset()


class AnnounceLedger:
    """Claims, confirms and releases event IDs in the `DEDUPE_TABLE` table."""

    def __init__(self, table: str, client: AwsClient, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self._client = client
        self._clock = clock

    def claim(self, event_id: str, *, deadline: Deadline = NO_DEADLINE) -> Claim | None:
        """Claim `event_id`; return None when it was already published and is still quiet.

        The claim carries the targets of an earlier `partial` attempt. Raises AnnouncementInProgress
        when another worker's claim is still live.
        """
        now = int(self._clock())
        remaining = deadline.remaining()
        hold = _MIN_CLAIM_SECONDS if remaining is None else max(_MIN_CLAIM_SECONDS, int(remaining) + 1)
        token = secrets.token_hex(16)
        try:
            # One atomic write claims the ID and returns the item it replaced.
            previous = dynamodb.update_item(
                self.table,
                {"id": event_id},
                "SET #status = :claimed, #expiration = :hold, #claim = :token",
                condition_expression="attribute_not_exists(id) OR #expiration < :now OR #status = :partial",
                names=_CLAIM_NAMES,
                values={":claimed": "claimed", ":hold": now + hold, ":token": token, ":now": now, ":partial": "partial"},
                return_values="ALL_OLD",
                client=self._client,
                deadline=deadline,
            )
        except ConditionalCheckFailed:
            existing = dynamodb.get_item(self.table, {"id": event_id}, client=self._client, deadline=deadline) or {}
            if existing.get("status") == "published":
                return None
            raise AnnouncementInProgress(
                f"event {event_id} is being announced by another worker",
                service="dynamodb",
                operation="UpdateItem",
            ) from None

        # An expired `published` item starts a new announcement: its targets get the event again.
        carried = previous.get("published_targets") if previous.get("status") != "published" else None
        return Claim(event_id=event_id, token=token, published_targets=frozenset(carried or ()))

    def confirm(self, claim: Claim, renotify_after_days: int, *, deadline: Deadline = NO_DEADLINE) -> None:
        """Record that the event was published; it stays quiet for `renotify_after_days`."""
        now = int(self._clock())
        try:
            dynamodb.put_item(
                self.table,
                {
                    "id": claim.event_id,
                    "status": "published",
                    "expiration": now + renotify_after_days * SECONDS_PER_DAY,
                    "claim": claim.token,
                    "published_at": now,
                },
                condition_expression="claim = :token",
                values={":token": claim.token},
                client=self._client,
                deadline=deadline,
            )
        except ConditionalCheckFailed:
            # Our claim expired and another worker took it over; it will record its own publish.
            logger.warning("announce-once claim was taken over before confirmation", extra={"event_id": claim.event_id})

    def release(
        self,
        claim: Claim,
        *,
        published_targets: Iterable[str] = (),
        renotify_after_days: int = DEFAULT_RENOTIFY_AFTER_DAYS,
        deadline: Deadline = NO_DEADLINE,
    ) -> None:
        """Give the claim back after a failed publish, so the next delivery can announce at once.

        The targets that have the event (`published_targets` and those the claim carried) stay
        recorded in a `partial` item for `renotify_after_days`, so the next claim skips them. With no
        such target the item is deleted.
        """
        targets = set(claim.published_targets) | set(published_targets)
        try:
            if not targets:
                dynamodb.delete_item(
                    self.table,
                    {"id": claim.event_id},
                    condition_expression="#claim = :token",
                    names={"#claim": "claim"},
                    values={":token": claim.token},
                    client=self._client,
                    deadline=deadline,
                )
                return
            dynamodb.update_item(
                self.table,
                {"id": claim.event_id},
                "SET #status = :partial, #expiration = :expiration, #targets = :targets",
                condition_expression="#claim = :token",
                names=_PARTIAL_NAMES,
                values={
                    ":partial": "partial",
                    ":expiration": int(self._clock()) + renotify_after_days * SECONDS_PER_DAY,
                    ":targets": targets,
                    ":token": claim.token,
                },
                client=self._client,
                deadline=deadline,
            )
        except ConditionalCheckFailed:
            pass
