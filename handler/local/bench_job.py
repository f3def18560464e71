"""The main job as the two benchmark baselines do it: one SQS batch in, one check and one SNS publish per record.

The floor (`bench_floor`) and the SDK path (`bench_sdk`) share this skeleton and differ only in how
they call CSS and SNS (the `JobApi` they pass in). Like the function, it handles the batch with the
Powertools batch utility, validates with pydantic, logs with the Powertools logger and flushes
Powertools metrics. It does the least the job needs: no policy file, no profiles, no
announce-once ledger, no dead-letter queue, no size limit on the message.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import datetime, timezone
from typing import Any, Callable, Protocol

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

UPGRADE_TYPES = ("same", "cross")


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Datastore(ApiModel):
    type: str
    version: str
    sub_version: str | None = None


class ClusterDetail(ApiModel):
    id: str
    name: str
    status: str
    datastore: Datastore
    actions: list[str] | None = None


class TargetImage(ApiModel):
    id: str
    display_name: str
    datastore_type: str
    datastore_version: str
    priority: int
    image_desc: str | None = None


class ImagePage(ApiModel):
    need_upload_upgrade_plugin: bool = False
    image_info_list: list[TargetImage]
    total_size: int | None = None


class WorkMessage(BaseModel):
    cluster_id: str
    project_id: str
    region: str


class JobApi(Protocol):
    """The calls of one check; the images and cluster have the attribute names of the models above."""

    def show_cluster(self, message: WorkMessage) -> Any: ...

    def list_images(self, message: WorkMessage, upgrade_type: str) -> list[Any]: ...

    def publish(self, message: str, subject: str, attributes: dict[str, str]) -> None: ...


def parse_message(body: str, project_id: str, region: str) -> WorkMessage:
    """Read a bare cluster ID or a JSON object with `cluster_id` and optional project and region."""
    text = body.strip()
    data = json.loads(text) if text.startswith("{") else {"cluster_id": text}
    data.setdefault("project_id", project_id)
    data.setdefault("region", region)
    return WorkMessage.model_validate(data)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def choose(offers: list[tuple[str, list[Any]]]) -> tuple[str | None, Any]:
    """Return the first upgrade type with images and its image of highest priority, then version, then name."""
    for upgrade_type, images in offers:
        if images:
            best = max(images, key=lambda image: (image.priority, _version_key(image.datastore_version), image.display_name))
            return upgrade_type, best
    return None, None


def build_event(message: WorkMessage, cluster: Any, offers: list[tuple[str, list[Any]]], message_id: str) -> dict[str, Any]:
    """Build the event document: cluster, chosen image, every candidate and the trigger."""
    upgrade_type, chosen = choose(offers)
    event_type = "upgrade.ready" if chosen is not None else "upgrade.none"
    identity = f"{message.cluster_id}|{upgrade_type}|{chosen.id if chosen else ''}|{event_type}"
    candidates = [
        {
            "id": image.id,
            "display_name": image.display_name,
            "datastore_type": image.datastore_type,
            "datastore_version": image.datastore_version,
            "priority": image.priority,
            "upgrade_type": offer_type,
            "selected": image is chosen,
        }
        for offer_type, images in offers
        for image in images
    ]
    return {
        "schema_version": "1",
        "event_id": hashlib.sha256(identity.encode()).hexdigest()[:32],
        "event_type": event_type,
        "occurred_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cluster": {
            "id": message.cluster_id,
            "project_id": message.project_id,
            "region": message.region,
            "name": cluster.name,
            "datastore_type": cluster.datastore.type,
            "datastore_version": cluster.datastore.version,
            "current_image": cluster.datastore.sub_version,
            "status": cluster.status,
        },
        "upgrade_type": upgrade_type,
        "target_image": None if chosen is None else {"id": chosen.id, "display_name": chosen.display_name, "priority": chosen.priority},
        "candidates": candidates,
        "trigger": {"source": "sqs", "message_id": message_id},
    }


def make_handler(api_factory: Callable[[], JobApi], project_id: str, region: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """Return a Lambda handler that checks each record of an SQS batch with the API `api_factory` builds (once)."""
    logger = Logger(service="bench-baseline", stream=sys.stderr)
    metrics = Metrics(namespace="BenchBaseline", service="bench-baseline")
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    api = api_factory()

    def record_handler(record: Any) -> None:
        message = parse_message(record.body, project_id, region)
        cluster = api.show_cluster(message)
        offers = [(upgrade_type, api.list_images(message, upgrade_type)) for upgrade_type in UPGRADE_TYPES]
        event = build_event(message, cluster, offers, record.message_id)
        document = json.dumps(event, separators=(",", ":"))
        text = f"{event['event_type']} for cluster {cluster.name} ({message.cluster_id})"
        attributes = {
            "event_type": event["event_type"],
            "cluster_id": message.cluster_id,
            "project_id": message.project_id,
            "region": message.region,
            "schema_version": "1",
            "upgrade_type": event["upgrade_type"] or "unknown",
            "datastore_type": cluster.datastore.type,
        }
        api.publish(json.dumps({"default": document, "email": text}), text[:100], attributes)
        metrics.add_metric(name="Checks", unit=MetricUnit.Count, value=1)
        logger.info("check finished", extra={"cluster_id": message.cluster_id, "event_type": event["event_type"]})

    @metrics.log_metrics(raise_on_empty_metrics=False)
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)

    return lambda_handler
