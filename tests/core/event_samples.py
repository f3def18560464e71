"""Sample clusters, images, candidates and events for the event and rendering tests."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from handler.core.events import Event, Trigger, build_check_event, build_lifecycle_event
from handler.core.models import Candidate, Cluster, TargetImage, UpgradeTask

CLUSTER_ID = "ea244205-d641-45d9-9dcb-ab2236bcd07e"
PROJECT_ID = "6204a5bd270343b5885144cf9c8c158d"
REGION = "ap-southeast-1"
OCCURRED_AT = datetime(2026, 12, 4, 19, 30, tzinfo=timezone.utc)
AGENCY = "css-upgrade-agency"

TARGET_ID = "439b5d30-5968-45df-b088-d030a858522d"
RUNNER_UP_ID = "5c6f7a10-1111-4e2b-9a8e-3d2c1b0a9f8e"
TASK_ID = "b7f3c2a1-0d9e-4f8a-b6c5-4e3d2c1b0a99"


def cluster(**changes: Any) -> Cluster:
    data: dict[str, Any] = {
        "id": CLUSTER_ID,
        "name": "logs-prod",
        "status": "200",
        "datastore": {"type": "elasticsearch", "version": "7.6.2", "subVersion": "7.6.2_24.3.3_1224"},
        "actions": [],
    }
    data.update(changes)
    return Cluster.model_validate(data)


def image(image_id: str = TARGET_ID, name: str = "7.10.2_24.3.4_0109", priority: int = 16, **changes: Any) -> TargetImage:
    data: dict[str, Any] = {
        "id": image_id,
        "displayName": name,
        "imageDesc": "Elasticsearch 7.10.2 with the 24.3.4 kernel",
        "datastoreType": "elasticsearch",
        "datastoreVersion": "7.10.2",
        "priority": priority,
    }
    data.update(changes)
    return TargetImage.model_validate(data)


def chosen(target: TargetImage | None = None, upgrade_type: str = "cross") -> Candidate:
    return Candidate(image=target or image(), upgrade_type=upgrade_type, selected=True)


def rejected(image_id: str = RUNNER_UP_ID, name: str = "7.10.2_24.3.3_0102", priority: int = 15,
             reason: str = "lower_priority", upgrade_type: str = "cross") -> Candidate:
    return Candidate(image=image(image_id, name, priority), upgrade_type=upgrade_type, rejected_reason=reason)


def trigger(**changes: Any) -> Trigger:
    data: dict[str, Any] = {"source": "sqs", "message_id": "059f36b4-87a3-44ab-83d2-661975830a7d"}
    data.update(changes)
    return Trigger(**data)


def check_event(event_type: str = "upgrade.ready", /, **changes: Any) -> Event:
    """Build a check event of the given type with consistent sample arguments; `changes` override any of them."""
    target_set = event_type in ("upgrade.ready", "upgrade.blocked")
    winner = chosen() if target_set else None
    if event_type == "check.failed":
        others = []
    elif target_set:
        others = [rejected()]
    else:
        others = [rejected(reason="too_new")]
    candidates = [winner, *others] if winner else others
    default_reasons = {
        "upgrade.ready": None,
        "upgrade.blocked": "operation_in_progress",
        "upgrade.none": "all_rejected_by_policy",
        "check.failed": "cluster_not_found",
    }
    arguments: dict[str, Any] = {
        "cluster_id": CLUSTER_ID,
        "project_id": PROJECT_ID,
        "region": REGION,
        "cluster": None if event_type == "check.failed" else cluster(),
        "event_type": event_type,
        "reason": default_reasons[event_type],
        "detail": "Image 7.10.2_24.3.4_0109 has the highest priority (16) of the cross images.",
        "upgrade_type": "cross",
        "chosen": winner,
        "need_upload_upgrade_plugin": False,
        "candidates": candidates,
        "unsupported_types": [],
        "trigger": trigger(),
        "agency": AGENCY,
        "occurred_at": OCCURRED_AT,
    }
    arguments.update(changes)
    return build_check_event(**arguments)


def task(status: str = "RUNNING", execute_times: str | None = "1", **changes: Any) -> UpgradeTask:
    data: dict[str, Any] = {
        "id": TASK_ID,
        "status": status,
        "executeTimes": execute_times,
        "agencyName": AGENCY,
        "imageInfo": image().model_dump(by_alias=True),
        "totalNodes": "css-node-1,css-node-2",
        "completedNodes": "css-node-1",
    }
    data.update(changes)
    return UpgradeTask.model_validate(data)


LIFECYCLE_STATUSES = {"upgrade.started": "RUNNING", "upgrade.succeeded": "SUCCESS", "upgrade.failed": "FAILED"}


def lifecycle_event(event_type: str = "upgrade.started", /, **changes: Any) -> Event:
    """Build a lifecycle event of the given type with consistent sample arguments; `changes` override any of them."""
    arguments: dict[str, Any] = {
        "event_type": event_type,
        "cluster_id": CLUSTER_ID,
        "project_id": PROJECT_ID,
        "region": REGION,
        "cluster": cluster(status="100", actions=["UPGRADING"]),
        "task": task(LIFECYCLE_STATUSES[event_type]),
        "approved_by": "slack:U024BE7LH",
        "upgrade_type": "cross",
        "target": None,
        "trigger": trigger(source="workflow", message_id=None),
        "agency": AGENCY,
        "detail": "The upgrade task of cluster logs-prod changed state.",
        "occurred_at": OCCURRED_AT,
    }
    arguments.update(changes)
    return build_lifecycle_event(**arguments)


def every_event_type() -> dict[str, Event]:
    """Return one sample event per event type, keyed by event type."""
    samples = {name: check_event(name) for name in ("upgrade.ready", "upgrade.blocked", "upgrade.none", "check.failed")}
    samples.update({name: lifecycle_event(name) for name in LIFECYCLE_STATUSES})
    return samples
