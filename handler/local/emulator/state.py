"""The emulator's run-time state: every cluster's current version, actions and upgrade tasks.

The catalog is the starting point and never changes. A Fleet copies it into mutable ClusterState
objects, applies upgrades to them, and renders them as the CSS API's JSON. One lock guards all
state, because every operation is a few dictionary updates.
"""

from __future__ import annotations

import functools
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from .catalog import Catalog, ClusterSpec, Image
from .responses import Reply, css_error

# Reported in a cluster's `actions` while an upgrade task runs. NOTE: the API documents no action
# value for upgrades (only REBOOTING, GROWING, RESTORING, SNAPSHOTTING); UPGRADING is an assumption
# borrowed from UpgradeDetail's `action_mode`.
UPGRADE_ACTION = "UPGRADING"

RUNNING = "RUNNING"
SUCCESS = "SUCCESS"
FAILED = "FAILED"
PARTIAL_FAILED = "PARTIAL_FAILED"

TERMINATED_MESSAGE = "The upgrade task was terminated by the user."

_TASK_NAMESPACE = uuid.UUID("6f1f2b0c-95a4-4c53-8d2e-2f4f8f7d1c3a")
_AGENCY_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)


class ApiError(Exception):
    """A CSS error reply raised from inside an operation: HTTP status, CSS code and message."""

    def __init__(self, code: str, message: str | None = None, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def reply(self) -> Reply:
        return css_error(self.code, self.message, self.status)


@dataclass(frozen=True)
class UpgradeRequest:
    """A validated UpgradeCore body."""

    target_image_id: str
    upgrade_type: str
    indices_backup_check: bool
    agency: str
    cluster_load_check: bool = True
    batch_size: int = 1


@dataclass
class UpgradeTask:
    """One upgrade task and its progress over the nodes of the cluster."""

    id: str
    image: Image
    upgrade_type: str
    agency: str
    node_names: list[str]
    start_time: str
    outcome: str
    batch_size: int = 1
    end_time: str = ""
    status: str = RUNNING
    execute_times: int = 1
    polls: int = 0
    completed: int = 0
    completed_at_attempt_start: int = 0
    fail_message: str = ""
    terminated: bool = False

    def planned_completion(self) -> int:
        """Return how many nodes will be upgraded when the current attempt ends."""
        total = len(self.node_names)
        if self.outcome == SUCCESS:
            return total
        if self.outcome == PARTIAL_FAILED:
            return max(self.completed_at_attempt_start, total - 1)
        return self.completed_at_attempt_start

    def current_node_name(self) -> str:
        if self.status == SUCCESS or self.completed >= len(self.node_names):
            return ""
        return self.node_names[self.completed]

    def to_api(self) -> dict[str, Any]:
        """Return the task as UpgradeDetail sends it (`GetUpgradeDetailInfo`)."""
        current = self.current_node_name()
        return {
            "id": self.id,
            "startTime": self.start_time,
            "endTime": self.end_time,
            "status": self.status,
            "agencyName": self.agency,
            "imageInfo": self.image.to_api(),
            "totalNodes": ",".join(self.node_names),
            "completedNodes": ",".join(self.node_names[: self.completed]),
            "currentNodeName": current,
            "executeTimes": str(self.execute_times),
            "migrateParam": "",
            "finalAzInfoMap": "",
            "currentNodeDetail": self._node_details(current),
            "batchSize": self.batch_size,
            "currentBatchNodes": current,
            "failMessage": self.fail_message,
        }

    def _node_details(self, current: str) -> list[dict[str, Any]]:
        details = []
        for order, name in enumerate(self.node_names, start=1):
            if order <= self.completed:
                status, description = SUCCESS, "The node was upgraded."
            elif name == current and self.status == RUNNING:
                status, description = RUNNING, "Upgrading the node."
            elif name == current:
                status, description = FAILED, self.fail_message
            else:
                status, description = "WAITING", "Waiting for the upgrade."
            details.append({"order": order, "name": name, "status": status, "desc": description})
        return details


@dataclass
class ClusterState:
    """A cluster as it is now: the catalog entry plus what upgrades changed."""

    spec: ClusterSpec
    project_id: str
    datastore_type: str
    version: str
    sub_version: str | None
    updated: str
    actions: list[str]
    images: dict[str, list[Image]]
    tasks: list[UpgradeTask] = field(default_factory=list)
    attempts: int = 0
    rendered: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def node_names(self) -> list[str]:
        return [f"{self.spec.name}-ess-esn-{index}-1" for index in range(1, self.spec.node_count + 1)]

    def running_task(self) -> UpgradeTask | None:
        for task in self.tasks:
            if task.status == RUNNING:
                return task
        return None

    def changed(self) -> None:
        """Drop the cached rendering after a change."""
        self.rendered = None


class Fleet:
    """Every cluster of a catalog with its run-time state, and the operations of the CSS API on them."""

    def __init__(self, catalog: Catalog, clock: Callable[[], float] = time.time) -> None:
        self.catalog = catalog
        self._clock = clock
        self._lock = threading.RLock()
        self._clusters: dict[str, ClusterState] = {}
        self._listed: dict[str, list[ClusterState]] = {}
        self._project_ids = frozenset(project.id for project in catalog.projects)
        self.reset()

    def reset(self) -> None:
        """Return every cluster to its catalog state and forget all upgrade tasks."""
        with self._lock:
            self._clusters = {}
            self._listed = {}
            for project in self.catalog.projects:
                for spec in project.clusters:
                    self._clusters[spec.id] = self._initial_state(project.id, spec)
                live = [self._clusters[spec.id] for spec in project.clusters if not spec.deleted]
                live.sort(key=lambda state: (state.spec.created, state.id), reverse=True)
                self._listed[project.id] = live

    def _initial_state(self, project_id: str, spec: ClusterSpec) -> ClusterState:
        images = {upgrade_type: self.catalog.target_images(spec, upgrade_type) for upgrade_type in spec.images}
        return ClusterState(
            spec=spec,
            project_id=project_id,
            datastore_type=spec.datastore.type,
            version=spec.datastore.version,
            sub_version=spec.datastore.sub_version,
            updated=spec.updated or spec.created,
            actions=list(spec.actions),
            images=images,
        )

    @property
    def project_ids(self) -> frozenset[str]:
        return self._project_ids

    # -- Reads ------------------------------------------------------------------------------------

    def list_images(self, project_id: str, cluster_id: str, upgrade_type: str, offset: int, limit: int) -> dict[str, Any]:
        """Return one page of ListImages; `offset` counts images from 0."""
        with self._lock:
            state = self._cluster(project_id, cluster_id, ApiError("CSS.0015"))
            if upgrade_type in state.spec.unsupported_types:
                raise ApiError("CSS.5140", f"The upgrade type {upgrade_type} is not supported for this cluster.")

            images = state.images.get(upgrade_type, [])
            return {
                "needUploadUpgradePlugin": state.spec.need_upload_upgrade_plugin.get(upgrade_type, False),
                "imageInfoList": [image.to_api() for image in images[offset : offset + limit]],
                "totalSize": len(images),
            }

    def show_cluster(self, project_id: str, cluster_id: str) -> dict[str, Any]:
        """Return ShowClusterDetail's body."""
        with self._lock:
            return self._render(self._cluster(project_id, cluster_id, ApiError("CSS.0015")))

    def list_clusters(
        self,
        project_id: str,
        offset: int,
        limit: int,
        datastore_type: str | None,
        paging: str,
        include_total: bool,
    ) -> dict[str, Any]:
        """Return one page of ListClustersDetails, newest cluster first.

        `offset` is 1-based: a page number when `paging` is "pages", the position of the first
        cluster when it is "items".
        """
        with self._lock:
            states = self._listed.get(project_id, [])
            if datastore_type:
                # Filtered on each call, because a cross-engine upgrade changes a cluster's type.
                states = [state for state in states if state.datastore_type == datastore_type]
            page = one_based_page(states, offset, limit, paging)
            body: dict[str, Any] = {}
            if include_total:
                body["totalSize"] = len(states)
            body["clusters"] = [self._render(state) for state in page]
            return body

    def upgrade_details(self, project_id: str, cluster_id: str, offset: int, limit: int, paging: str, action_mode: str) -> dict[str, Any]:
        """Return one page of UpgradeDetail, newest task first, after advancing running tasks by one poll."""
        with self._lock:
            state = self._cluster(project_id, cluster_id, ApiError("CSS.0015"))
            if action_mode == "AZ_MIGRATION":
                return {"totalSize": 0, "detailList": []}

            for task in state.tasks:
                if task.status == RUNNING:
                    self._advance(state, task)
            page = one_based_page(state.tasks, offset, limit, paging)
            return {"totalSize": len(state.tasks), "detailList": [task.to_api() for task in page]}

    def snapshot(self, cluster_id: str) -> dict[str, Any]:
        """Return a cluster's whole state (details, target images, tasks) for tests and the control API."""
        with self._lock:
            state = self._clusters.get(cluster_id.lower())
            if state is None:
                raise KeyError(cluster_id)
            return {
                "project_id": state.project_id,
                "deleted": state.spec.deleted,
                "cluster": self._render(state),
                "images": {upgrade_type: [image.to_api() for image in images] for upgrade_type, images in state.images.items()},
                "tasks": [task.to_api() for task in state.tasks],
                "attempts": state.attempts,
            }

    # -- Writes -----------------------------------------------------------------------------------

    def start_upgrade(self, project_id: str, cluster_id: str, request: UpgradeRequest) -> UpgradeTask:
        """Create a RUNNING upgrade task (UpgradeCore), or raise ApiError for the first check that fails."""
        with self._lock:
            state = self._cluster(project_id, cluster_id, ApiError("CSS.0047"))
            upgrade_type = request.upgrade_type
            if upgrade_type in state.spec.unsupported_types or state.datastore_type == "logstash":
                raise ApiError("CSS.5140", f"The upgrade type {upgrade_type} is not supported for this cluster.")
            if state.running_task() is not None:
                raise ApiError("CSS.0011", status=409)
            if state.spec.status != "200":
                raise ApiError("CSS.0078", f"The cluster status {state.spec.status} does not allow an upgrade.")
            if state.actions:
                raise ApiError("CSS.6013", f"The cluster is busy with {','.join(state.actions)}. Try again later.")

            image = next((item for item in state.images.get(upgrade_type, []) if item.id == request.target_image_id), None)
            if image is None:
                raise ApiError(
                    "CSS.0001",
                    f"target_image_id {request.target_image_id} is not a target image of the cluster "
                    f"for upgrade type {upgrade_type}.",
                )
            if state.spec.need_upload_upgrade_plugin.get(upgrade_type, False):
                raise ApiError("CSS.5140", "Upload the plugin packages of the target version before upgrading.")

            task = UpgradeTask(
                id=str(uuid.uuid5(_TASK_NAMESPACE, f"{state.id}/{len(state.tasks) + 1}")),
                image=image,
                upgrade_type=upgrade_type,
                agency=request.agency,
                node_names=state.node_names,
                start_time=self._now(),
                outcome=state.spec.upgrade.outcome_of(state.attempts),
                batch_size=request.batch_size,
            )
            state.attempts += 1
            state.tasks.insert(0, task)
            state.actions.append(UPGRADE_ACTION)
            state.changed()
            return task

    def retry_upgrade(self, project_id: str, cluster_id: str, task_id: str, abort: bool) -> UpgradeTask:
        """Retry a failed task (RetryUpgradeTask), or close it for good when `abort` is true."""
        with self._lock:
            state = self._cluster(project_id, cluster_id, ApiError("CSS.0047"))
            task = next((item for item in state.tasks if item.id == task_id), None)
            if task is None:
                raise ApiError("CSS.0001", f"The upgrade task {task_id} does not exist.")
            if task.status == RUNNING:
                raise ApiError("CSS.5140", "The upgrade task is running: it can be retried or terminated only after it fails.")
            if task.status == SUCCESS:
                raise ApiError("CSS.5140", "The upgrade task has succeeded: there is nothing to retry or terminate.")
            if task.terminated:
                raise ApiError("CSS.5140", "The upgrade task was terminated and cannot be retried or terminated again.")

            if abort:
                self._terminate(task)
            else:
                self._restart(state, task)
            state.changed()
            return task

    def _terminate(self, task: UpgradeTask) -> None:
        # A cross-version upgrade may be terminated only while no node runs the new version.
        if task.upgrade_type != "same" and task.completed > 0:
            raise ApiError(
                "CSS.5140",
                "A cross-version upgrade can be terminated only before any node was upgraded.",
            )
        task.terminated = True
        task.fail_message = TERMINATED_MESSAGE

    def _restart(self, state: ClusterState, task: UpgradeTask) -> None:
        if state.running_task() is not None:
            raise ApiError("CSS.0011", status=409)
        task.status = RUNNING
        task.execute_times += 1
        task.polls = 0
        task.end_time = ""
        task.fail_message = ""
        task.completed_at_attempt_start = task.completed
        task.outcome = state.spec.upgrade.outcome_of(state.attempts)
        state.attempts += 1
        state.actions.append(UPGRADE_ACTION)

    # -- Task progress ----------------------------------------------------------------------------

    def _advance(self, state: ClusterState, task: UpgradeTask) -> None:
        """Count one UpgradeDetail poll: move the task's progress on, or end it with its outcome."""
        task.polls += 1
        state.changed()
        polls_before_end = state.spec.upgrade.polls_before_end
        if task.polls <= polls_before_end:
            start = task.completed_at_attempt_start
            span = task.planned_completion() - start
            task.completed = start + span * task.polls // (polls_before_end + 1)
            return

        task.completed = task.planned_completion()
        task.status = task.outcome
        task.end_time = self._now()
        if task.outcome == SUCCESS:
            self._apply_upgrade(state, task)
        else:
            task.fail_message = state.spec.upgrade.fail_message
        if UPGRADE_ACTION in state.actions:
            state.actions.remove(UPGRADE_ACTION)

    def _apply_upgrade(self, state: ClusterState, task: UpgradeTask) -> None:
        """Move the cluster onto the task's image and recompute its target images.

        Afterwards `same` contains the images of the new version with a higher priority, `cross` the
        images of the same engine with a higher version, and `cross-engine` keeps its images only if
        the engine did not change. The pool is every image the cluster listed before.
        """
        target = task.image
        engine_changed = target.datastore_type != state.datastore_type
        pool: dict[str, Image] = {}
        for images in state.images.values():
            for image in images:
                pool[image.id] = image

        state.datastore_type = target.datastore_type
        state.version = target.datastore_version
        state.sub_version = target.display_name
        state.updated = self._now()

        same = [
            image
            for image in pool.values()
            if image.datastore_type == target.datastore_type
            and image.datastore_version == target.datastore_version
            and image.priority > target.priority
        ]
        cross = [
            image
            for image in pool.values()
            if image.datastore_type == target.datastore_type
            and version_key(image.datastore_version) > version_key(target.datastore_version)
        ]
        cross_engine = [] if engine_changed else [
            image for image in state.images.get("cross-engine", []) if image.datastore_type != target.datastore_type
        ]
        state.images = {"same": same, "cross": cross, "cross-engine": cross_engine}

    # -- Helpers ----------------------------------------------------------------------------------

    def _cluster(self, project_id: str, cluster_id: str, missing: ApiError) -> ClusterState:
        state = self._clusters.get(cluster_id.lower())
        if state is None or state.spec.deleted or state.project_id != project_id:
            raise missing
        return state

    def _render(self, state: ClusterState) -> dict[str, Any]:
        if state.rendered is None:
            state.rendered = render_cluster(state, self.catalog.region)
        return state.rendered

    def _now(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self._clock()))


def one_based_page(items: list, offset: int, limit: int, paging: str) -> list:
    """Return the page of a 1-based `offset`: a page number ("pages") or an item position ("items")."""
    start = (offset - 1) * limit if paging == "pages" else offset - 1
    return items[start : start + limit]


def version_key(version: str) -> tuple[int, ...]:
    """Return a version as a tuple of numbers, so that 7.10.2 sorts after 7.9.3."""
    return tuple(int(part) for part in re.findall(r"\d+", version))


def valid_agency_name(name: str) -> bool:
    """Return whether an IAM agency name has the allowed form: 1 to 64 letters, digits, `_`, `.` or `-`."""
    return bool(_AGENCY_NAME.fullmatch(name))


@functools.lru_cache(maxsize=256)
def _project_resource_id(project_id: str, kind: str) -> str:
    return str(uuid.uuid5(_TASK_NAMESPACE, f"{project_id}/{kind}"))


def _action_progress(state: ClusterState) -> dict[str, str]:
    task = state.running_task()
    if task is None:
        return {}
    return {UPGRADE_ACTION: f"{100 * task.completed // len(task.node_names)}%"}


def render_cluster(state: ClusterState, region: str) -> dict[str, Any]:
    """Return a cluster as ShowClusterDetail and ListClustersDetails send it."""
    spec = state.spec
    instance_status = "200" if spec.status == "200" else spec.status
    instances = []
    for index, name in enumerate(state.node_names, start=1):
        instances.append(
            {
                "id": str(uuid.uuid5(_TASK_NAMESPACE, f"{spec.id}/node/{index}")),
                "name": name,
                "type": "ess",
                "status": instance_status,
                "specCode": "ess.spec-4u8g",
                "azCode": f"{region}a",
                "ip": f"192.168.0.{10 + index}",
                "volume": {"type": "HIGH", "size": 40},
            }
        )

    body: dict[str, Any] = {
        "id": spec.id,
        "name": spec.name,
        "status": spec.status,
        "datastore": {
            "type": state.datastore_type,
            "version": state.version,
            "subVersion": state.sub_version,
            "isEosCluster": spec.datastore.is_eos_cluster,
        },
        "instances": instances,
        "created": spec.created,
        "updated": state.updated,
        "endpoint": ",".join(f"{instance['ip']}:9200" for instance in instances[:3]),
        "publicIp": None,
        "httpsEnable": True,
        "authorityEnable": True,
        "diskEncrypted": False,
        "enterpriseProjectId": "0",
        "vpcId": _project_resource_id(state.project_id, "vpc"),
        "subnetId": _project_resource_id(state.project_id, "subnet"),
        "securityGroupId": _project_resource_id(state.project_id, "security-group"),
        "period": False,
        "tags": [],
        "actions": list(state.actions),
        "actionProgress": _action_progress(state),
    }
    if spec.failed_reason is not None:
        body["failedReason"] = {"errorCode": spec.failed_reason.error_code, "errorMsg": spec.failed_reason.error_msg}
    return body
