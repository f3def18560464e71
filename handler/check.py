"""One check of one cluster: read its details, list its target images, choose, and build the event.

This is the core that every trigger shares (queue worker, workflow, CLI, demo). It makes the CSS
calls and leaves delivery (publishing, replies, dead-lettering) to its caller.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from handler.core.events import Event, Trigger, build_check_event
from handler.core.message import WorkMessage
from handler.core.models import Cluster
from handler.core.policy import ENGINES, Offer, Policy, choose
from handler.css import errors
from handler.css.client import CssClient
from handler.retry import NO_DEADLINE, Deadline

logger = logging.getLogger(__name__)

# Which `check.failed` reason a permanent CSS failure stands for.
_FAILED_REASONS: dict[type[errors.CssPermanentError], str] = {
    errors.NotFoundError: "cluster_not_found",
    errors.AccessDeniedError: "access_denied",
    errors.InvalidRequestError: "invalid_request",
}


class CheckFailed(Exception):
    """The check cannot succeed and will not be retried. Carries the `check.failed` event.

    The class name is part of the workflow contract: Step Functions `Catch` rules match it.
    """

    def __init__(self, event: Event, cause: errors.CssPermanentError) -> None:
        self.event = event
        self.reason = event.reason
        self.cause = cause
        super().__init__(event.detail)


@dataclass(frozen=True)
class CheckResult:
    """The event of a finished check, and the number of CSS calls it made (for metrics)."""

    event: Event
    images_found: int


def run_check(
    client: CssClient,
    message: WorkMessage,
    policy: Policy,
    *,
    trigger: Trigger,
    agency: str | None,
    deadline: Deadline = NO_DEADLINE,
    now: datetime | None = None,
) -> CheckResult:
    """Check one cluster and return its event.

    Raises CheckFailed for a permanent failure (cluster not found, access denied, invalid
    request), and the CSS client's transient or configuration errors unchanged.
    """
    now = now or datetime.now(timezone.utc)
    scope = {"project_id": message.project_id, "region": message.region, "cluster_id": message.cluster_id}
    cluster: Cluster | None = None
    last_type: str | None = None

    try:
        cluster = client.show_cluster(**scope, deadline=deadline)
        offers: list[Offer] = []
        unsupported: list[str] = []
        engine = (cluster.datastore.type or "").lower()

        if engine in ENGINES:
            for upgrade_type in policy.upgrade_types:
                last_type = upgrade_type
                try:
                    found = client.list_images(**scope, upgrade_type=upgrade_type, deadline=deadline)
                except errors.InvalidRequestError as error:
                    logger.info(
                        "upgrade type not supported for this cluster",
                        extra={"cluster_id": message.cluster_id, "upgrade_type": upgrade_type, "error": str(error)},
                    )
                    unsupported.append(upgrade_type)
                    continue
                offers.append(
                    Offer(
                        upgrade_type=upgrade_type,
                        need_upload_upgrade_plugin=found.need_upload_upgrade_plugin,
                        images=found.images,
                    )
                )
    except errors.CssPermanentError as error:
        event = _failed_event(message, cluster, last_type, error, trigger, agency, now)
        raise CheckFailed(event, error) from error

    decision = choose(cluster, offers, unsupported, policy, now.date())
    event = build_check_event(
        cluster_id=message.cluster_id,
        project_id=message.project_id,
        region=message.region,
        cluster=cluster,
        event_type=decision.event_type,
        reason=decision.reason,
        detail=decision.detail,
        upgrade_type=decision.upgrade_type,
        chosen=decision.chosen,
        need_upload_upgrade_plugin=decision.need_upload_upgrade_plugin,
        candidates=decision.candidates,
        unsupported_types=unsupported,
        trigger=trigger,
        agency=agency,
        occurred_at=now,
    )
    return CheckResult(event=event, images_found=sum(len(offer.images) for offer in offers))


def _failed_event(
    message: WorkMessage,
    cluster: Cluster | None,
    last_type: str | None,
    error: errors.CssPermanentError,
    trigger: Trigger,
    agency: str | None,
    now: datetime,
) -> Event:
    reason = next((code for kind, code in _FAILED_REASONS.items() if isinstance(error, kind)), "invalid_request")
    return build_check_event(
        cluster_id=message.cluster_id,
        project_id=message.project_id,
        region=message.region,
        cluster=cluster,
        event_type="check.failed",
        reason=reason,
        detail=f"The check failed and will not be retried: {error}",
        upgrade_type=last_type,
        chosen=None,
        need_upload_upgrade_plugin=False,
        candidates=[],
        unsupported_types=[],
        trigger=trigger,
        agency=agency,
        occurred_at=now,
    )
