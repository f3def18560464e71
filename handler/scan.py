"""Lambda entry point of the scheduled fleet scan: list every cluster of `SCAN_TARGETS` and enqueue one check each.

Clusters that cannot be upgraded now are skipped with a logged reason: an engine other than
Elasticsearch or OpenSearch, a status other than 200, or an operation in progress. The others become
work messages (`source: schedule`, the scan ID as `correlation_id`) sent in batches of ten. The
return value is a summary per target. A CSS failure on one target is reported in the summary, and
the scan goes on with the next target. A configuration fault raises, so the invocation fails.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from handler import runtime as runtime_module
from handler.aws import sqs
from handler.aws.client import AwsClient
from handler.aws.errors import AwsConfigurationError
from handler.core.policy import ENGINES
from handler.config import ConfigurationError, ScanTarget
from handler.core import ids
from handler.core.models import Cluster
from handler.css import errors as css_errors
from handler.css.client import CssClient
from handler.observability import count, logger, metrics
from handler.retry import NO_DEADLINE, Deadline

# Time kept back from the Lambda timeout for the last batch call and the summary.
SAFETY_MARGIN_SECONDS = 10.0

# Reasons for not enqueuing a cluster, in the order they are tested (the first that applies is
# reported). The first three are the event schema's codes for the same conditions.
SKIP_REASONS = ("unsupported_engine", "cluster_not_available", "operation_in_progress", "invalid_cluster_id")

# Cluster IDs listed per reason or failure in a summary; counts always cover every cluster. A Lambda
# response stays far below its 6 MB limit with this many.
MAX_LISTED_IDS = 1000

_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}", re.ASCII)


@dataclass
class TargetScan:
    """The result of listing one target: clusters to check, clusters skipped, and a listing error."""

    target: ScanTarget
    clusters_found: int = 0
    eligible: list[Cluster] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None

    @property
    def skipped_count(self) -> int:
        return sum(len(cluster_ids) for cluster_ids in self.skipped.values())


def skip_reason(cluster: Cluster) -> str | None:
    """Return why `cluster` cannot be upgraded now (a code of SKIP_REASONS), or None to check it."""
    try:
        ids.cluster_id(cluster.id)
    except ids.InvalidValue:
        return "invalid_cluster_id"
    if (cluster.datastore.type or "").lower() not in ENGINES:
        return "unsupported_engine"
    if cluster.status != "200":
        return "cluster_not_available"
    if cluster.actions:
        return "operation_in_progress"
    return None


def list_target(
    css: CssClient,
    target: ScanTarget,
    deadline: Deadline = NO_DEADLINE,
    on_cluster: Callable[[Cluster, str | None], None] | None = None,
) -> TargetScan:
    """List every cluster of one target (all pages) and sort them into eligible and skipped.

    A transient or permanent CSS error ends the listing of this target: what was listed so far is
    kept and the error is recorded. A CSS configuration error (credentials rejected) raises.
    `on_cluster(cluster, skip_reason)` is called for each cluster, for progress reports.
    """
    scanned = TargetScan(target)
    try:
        for cluster in css.iter_clusters(project_id=target.project_id, region=target.region, deadline=deadline):
            scanned.clusters_found += 1
            reason = skip_reason(cluster)
            if reason is None:
                scanned.eligible.append(cluster)
            else:
                scanned.skipped.setdefault(reason, []).append(cluster.id)
                logger.info(
                    "cluster skipped",
                    extra={
                        "cluster_id": cluster.id,
                        "project_id": target.project_id,
                        "region": target.region,
                        "reason": reason,
                        "status": cluster.status,
                        "actions": cluster.actions,
                        "datastore_type": cluster.datastore.type,
                    },
                )
            if on_cluster is not None:
                on_cluster(cluster, reason)
    except css_errors.CssConfigurationError as error:
        raise ConfigurationError(f"listing the clusters of project {target.project_id} in {target.region} failed: {error}") from error
    except css_errors.CssError as error:
        scanned.error = str(error)
        count(f"CssError.{error.kind}")
        logger.error(
            "cluster list failed; the scan goes on with the next target",
            extra={"project_id": target.project_id, "region": target.region, "clusters_listed": scanned.clusters_found, "error": str(error)},
        )
    return scanned


def work_message(cluster_id: str, target: ScanTarget, scan_id: str) -> dict[str, str]:
    """Return the work message that requests the check of one cluster of the scan."""
    return {
        "cluster_id": ids.cluster_id(cluster_id),
        "project_id": target.project_id,
        "region": target.region,
        "source": "schedule",
        "correlation_id": scan_id,
    }


def enqueue_checks(
    queue_url: str,
    target: ScanTarget,
    cluster_ids: Iterable[str],
    scan_id: str,
    aws: AwsClient,
    deadline: Deadline = NO_DEADLINE,
) -> list[str]:
    """Send one work message per cluster in batches of ten; return the cluster IDs that could not be sent.

    On a FIFO queue (`.fifo`) each message gets the cluster ID as its group and a deduplication ID
    made of the scan ID and the cluster ID.

    `sqs.send_message_batch` resends entries that failed on SQS's side; what still fails is
    returned. A configuration fault (missing queue, access denied) raises ConfigurationError.
    """
    fifo = queue_url.endswith(".fifo")
    entries = [
        sqs.BatchEntry(
            id=cluster_id,
            body=json.dumps(work_message(cluster_id, target, scan_id), separators=(",", ":")),
            # On a FIFO queue each cluster is its own message group, so one slow cluster holds up no
            # other. The deduplication ID turns a resent entry of this scan into a duplicate that SQS drops.
            group_id=cluster_id.lower() if fifo else None,
            dedup_id=f"{scan_id[:90]}:{cluster_id.lower()}" if fifo else None,
        )
        for cluster_id in cluster_ids
    ]
    if not entries:
        return []
    try:
        failed = sqs.send_message_batch(queue_url, entries, deadline, client=aws)
    except AwsConfigurationError as error:
        raise ConfigurationError(f"enqueuing checks on WORK_QUEUE_URL failed: {error}", variable="WORK_QUEUE_URL") from error
    for cluster_id in failed:
        logger.error(
            "check could not be enqueued",
            extra={"cluster_id": cluster_id, "project_id": target.project_id, "region": target.region},
        )
    return failed


def target_summary(scanned: TargetScan, failed_ids: list[str], enqueued: int) -> dict[str, Any]:
    """Return the summary of one target: counts, skip reasons with their cluster IDs, failures."""
    by_reason = {
        reason: {"count": len(cluster_ids), **_listed("cluster_ids", cluster_ids)}
        for reason, cluster_ids in sorted(scanned.skipped.items())
    }
    return {
        "project_id": scanned.target.project_id,
        "region": scanned.target.region,
        "clusters_found": scanned.clusters_found,
        "skipped": {"count": scanned.skipped_count, "by_reason": by_reason},
        "checks_enqueued": enqueued,
        "failed_to_enqueue": len(failed_ids),
        **_listed("failed_cluster_ids", failed_ids),
        "error": scanned.error,
    }


def fleet_summary(scan_id: str, targets: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the summary of a whole scan: totals over the targets, and each target's summary."""
    skipped_by_reason: dict[str, int] = {}
    for target in targets:
        for reason, entry in target["skipped"]["by_reason"].items():
            skipped_by_reason[reason] = skipped_by_reason.get(reason, 0) + entry["count"]

    found = sum(target["clusters_found"] for target in targets)
    enqueued = sum(target["checks_enqueued"] for target in targets)
    failed = sum(target["failed_to_enqueue"] for target in targets)
    failed_targets = sum(1 for target in targets if target["error"])
    skipped = sum(skipped_by_reason.values())

    message = (
        f"Scan {scan_id}: {found} clusters found in {len(targets)} targets, {skipped} skipped, "
        f"{enqueued} checks enqueued, {failed} failed to enqueue"
    )
    if failed_targets:
        message += f", {failed_targets} targets could not be listed completely"
    return {
        "scan_id": scan_id,
        "status": "completed" if not failed and not failed_targets else "completed_with_errors",
        "message": message + ".",
        "clusters_found": found,
        "skipped": {"count": skipped, "by_reason": dict(sorted(skipped_by_reason.items()))},
        "checks_enqueued": enqueued,
        "failed_to_enqueue": failed,
        "targets_with_errors": failed_targets,
        "targets": targets,
    }


def scan_id_from(event: object) -> str:
    """Return the scan's ID: the scheduler's execution ID when the event carries a usable one, else a fresh one."""
    if isinstance(event, dict):
        execution_id = event.get("execution_id")
        if isinstance(execution_id, str) and _CORRELATION_ID.fullmatch(execution_id):
            return execution_id
    return f"scan-{uuid.uuid4().hex[:16]}"


@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = runtime_module.get()
    settings = runtime.settings
    scan_id = scan_id_from(event)
    logger.append_keys(correlation_id=scan_id)

    if not settings.scan_targets:
        message = f"Scan {scan_id}: SCAN_TARGETS is not set, so there is nothing to scan."
        logger.warning("nothing to scan: SCAN_TARGETS is not set", extra={"scan_id": scan_id})
        return {**fleet_summary(scan_id, []), "status": "nothing_to_scan", "message": message}
    if not settings.work_queue_url:
        raise ConfigurationError("WORK_QUEUE_URL is not set: the scan has no queue to enqueue checks on", variable="WORK_QUEUE_URL")

    deadline = Deadline.from_lambda_context(context, SAFETY_MARGIN_SECONDS)
    targets = []
    for target in settings.scan_targets:
        scanned = list_target(runtime.css, target, deadline)
        cluster_ids = [cluster.id for cluster in scanned.eligible]
        failed = enqueue_checks(settings.work_queue_url, target, cluster_ids, scan_id, runtime.aws, deadline)
        targets.append(target_summary(scanned, failed, enqueued=len(cluster_ids) - len(failed)))

    summary = fleet_summary(scan_id, targets)
    count("ScanClustersFound", summary["clusters_found"])
    count("ScanClustersSkipped", summary["skipped"]["count"])
    count("ScanChecksEnqueued", summary["checks_enqueued"])
    count("ScanEnqueueFailed", summary["failed_to_enqueue"])
    count("ScanTargetErrors", summary["targets_with_errors"])
    log = logger.error if summary["status"] != "completed" else logger.info
    log(summary["message"], extra={"scan_id": scan_id, "skipped_by_reason": summary["skipped"]["by_reason"]})
    logger.remove_keys(["correlation_id"])
    return summary


def _listed(name: str, cluster_ids: list[str]) -> dict[str, Any]:
    """Return `{name: the first MAX_LISTED_IDS IDs}`, plus `{name}_omitted` when some were left out."""
    listed: dict[str, Any] = {name: cluster_ids[:MAX_LISTED_IDS]}
    if len(cluster_ids) > MAX_LISTED_IDS:
        listed[f"{name}_omitted"] = len(cluster_ids) - MAX_LISTED_IDS
    return listed
