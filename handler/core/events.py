"""The event css-upgrade-scout publishes (schema version 1): models, builders and delivery helpers.

A check, or the end of one step of an upgrade task, becomes one `Event`. This module builds it, gives it
a stable `event_id`, cuts it to the SNS and EventBridge size limit, and derives the SNS message
attributes, the SNS subject and the EventBridge entry. It does no I/O and imports no AWS library.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from datetime import datetime, timezone
from typing import Any, Callable, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)

from handler.core import ids
from handler.core.models import REJECTION_REASONS, Candidate, Cluster, TargetImage, UpgradeTask

SCHEMA_VERSION: Final = "1"

# EventBridge `Source` of every entry.
EVENT_SOURCE: Final = "css-upgrade-scout"

CHECK_EVENT_TYPES: Final = ("upgrade.ready", "upgrade.blocked", "upgrade.none", "check.failed")
LIFECYCLE_EVENT_TYPES: Final = ("upgrade.started", "upgrade.succeeded", "upgrade.failed")
EVENT_TYPES: Final = CHECK_EVENT_TYPES + LIFECYCLE_EVENT_TYPES

# Reason codes allowed per event type. An empty tuple means that `reason` is always null.
# For upgrade.blocked the order is the order of precedence: the first that applies is reported.
REASONS: Final[dict[str, tuple[str, ...]]] = {
    "upgrade.ready": (),
    "upgrade.blocked": ("cluster_not_available", "operation_in_progress", "plugin_upload_required"),
    "upgrade.none": ("no_target_images", "all_rejected_by_policy", "unsupported_engine"),
    "check.failed": ("cluster_not_found", "access_denied", "invalid_request"),
    "upgrade.started": (),
    "upgrade.succeeded": (),
    "upgrade.failed": ("task_failed", "task_partially_failed"),
}

# UpgradeDetail task status that each lifecycle event reports, and the reason code derived from it.
TASK_STATUSES: Final[dict[str, dict[str, str | None]]] = {
    "upgrade.started": {"RUNNING": None},
    "upgrade.succeeded": {"SUCCESS": None},
    "upgrade.failed": {"FAILED": "task_failed", "PARTIAL_FAILED": "task_partially_failed"},
}

TRIGGER_SOURCES: Final = ("sqs", "schedule", "webhook", "workflow", "cli")

# SNS and EventBridge both reject a message or entry above 256 KiB. SNS counts the message attributes
# and EventBridge the Source and DetailType in the same budget, so the event JSON keeps some headroom.
SIZE_LIMIT_BYTES: Final = 262_144
ENVELOPE_HEADROOM_BYTES: Final = 6_144

# Below this limit fit_to_size could not promise a result. An event cut as far as it goes still takes
# an estimated 30 KB when every remaining string consists of characters that JSON escapes.
MIN_LIMIT_BYTES: Final = 65_536

# No legitimate text in an event comes near this length, so a longer string is cut before any
# candidate is dropped.
MAX_TEXT_CHARS: Final = 4_096

# The shortest a string is ever cut to. Every fixed-form value (UUIDs, project IDs, the event ID, the
# timestamp, region and status codes) is shorter, so cutting never touches them.
MIN_CUT_CHARS: Final = 64

CUT_MARK: Final = "..."

UNKNOWN: Final = "unknown"

# SNS subjects must be ASCII, without line breaks or control characters, and less than 100 characters.
MAX_SUBJECT_CHARS: Final = 99

# SNS message attribute values: long enough for any engine name or identifier, short enough to keep
# the attributes well inside the envelope headroom.
MAX_ATTRIBUTE_CHARS: Final = 256

UpgradeType = Literal["same", "cross", "cross-engine"]
TriggerSource = Literal["sqs", "schedule", "webhook", "workflow", "cli"]


class EventModel(BaseModel):
    """Base of the event models: immutable, and unknown fields are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ClusterInfo(EventModel):
    """The cluster an event is about. All fields but the three identifiers are null when its details could not be read."""

    id: str
    project_id: str
    region: str = Field(max_length=64)
    name: str | None = None
    datastore_type: str | None = None
    datastore_version: str | None = None
    current_image: str | None = None
    status: str | None = None

    @field_validator("id")
    @classmethod
    def _valid_cluster_id(cls, value: str) -> str:
        return ids.cluster_id(value, "cluster.id")

    @field_validator("project_id")
    @classmethod
    def _valid_project_id(cls, value: str) -> str:
        return ids.project_id(value, "cluster.project_id")

    @field_validator("region")
    @classmethod
    def _valid_region(cls, value: str) -> str:
        return ids.region(value, "cluster.region")


class ImageInfo(EventModel):
    """A target image as an event shows it; `description` is the API's `imageDesc`."""

    id: str = Field(min_length=1)
    display_name: str
    datastore_type: str | None = None
    datastore_version: str | None = None
    priority: int
    description: str | None = None

    @classmethod
    def from_target(cls, image: TargetImage) -> ImageInfo:
        return cls(
            id=image.id,
            display_name=image.display_name,
            datastore_type=image.datastore_type,
            datastore_version=image.datastore_version,
            priority=image.priority,
            description=image.image_desc,
        )


class CandidateInfo(EventModel):
    """One image the check saw: the chosen one (`selected`), or a rejected one with its reason code."""

    id: str = Field(min_length=1)
    display_name: str
    datastore_type: str | None = None
    datastore_version: str | None = None
    priority: int
    upgrade_type: UpgradeType
    selected: bool
    rejected_reason: str | None = None

    @field_validator("rejected_reason")
    @classmethod
    def _known_rejection_reason(cls, value: str | None) -> str | None:
        if value is not None and value not in REJECTION_REASONS:
            raise ValueError(f"unknown rejected_reason {ids.shown(value)}: expected one of {', '.join(REJECTION_REASONS)}")
        return value

    @model_validator(mode="after")
    def _reason_iff_rejected(self) -> CandidateInfo:
        if self.selected and self.rejected_reason is not None:
            raise ValueError(f"candidate {ids.shown(self.id)} is selected but has rejected_reason {self.rejected_reason!r}")
        if not self.selected and self.rejected_reason is None:
            raise ValueError(f"candidate {ids.shown(self.id)} is not selected but has no rejected_reason")
        return self

    @classmethod
    def from_candidate(cls, candidate: Candidate) -> CandidateInfo:
        image = candidate.image
        return cls(
            id=image.id,
            display_name=image.display_name,
            datastore_type=image.datastore_type,
            datastore_version=image.datastore_version,
            priority=image.priority,
            upgrade_type=ids.upgrade_type(candidate.upgrade_type, "candidate.upgrade_type"),
            selected=candidate.selected,
            rejected_reason=candidate.rejected_reason,
        )


class Trigger(EventModel):
    """Origin of a check: the trigger type, the requester and the IDs that trace the work message."""

    source: TriggerSource = "sqs"
    requested_by: str | None = None
    correlation_id: str | None = None
    message_id: str | None = None


class UpgradeRequest(EventModel):
    """The body of the CSS "upgrade a cluster kernel" call, to be sent once someone approves."""

    target_image_id: str = Field(min_length=1)
    upgrade_type: UpgradeType
    indices_backup_check: Literal[True] = True
    agency: str | None = None


class TaskInfo(EventModel):
    """The upgrade task of a lifecycle event. `execute_times` is the attempt number, null when CSS did not send a number."""

    id: str = Field(min_length=1)
    status: str
    execute_times: int | None = Field(default=None, ge=0)
    approved_by: str | None = None


class Event(EventModel):
    """One event of schema version 1. `task` is present only on lifecycle events and absent from their JSON otherwise."""

    schema_version: Literal["1"] = SCHEMA_VERSION
    event_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    event_type: str
    occurred_at: datetime
    cluster: ClusterInfo
    upgrade_type: UpgradeType | None = None
    target_image: ImageInfo | None = None
    need_upload_upgrade_plugin: bool = False
    candidates: list[CandidateInfo] = Field(default_factory=list)
    candidates_omitted: int = Field(default=0, ge=0)
    unsupported_types: list[UpgradeType] = Field(default_factory=list)
    reason: str | None = None
    detail: str
    trigger: Trigger
    upgrade_request: UpgradeRequest | None = None
    task: TaskInfo | None = None

    @field_validator("event_type")
    @classmethod
    def _known_event_type(cls, value: str) -> str:
        if value not in EVENT_TYPES:
            raise ValueError(f"unknown event_type {ids.shown(value)}: expected one of {', '.join(EVENT_TYPES)}")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _utc_to_the_second(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"occurred_at {value.isoformat()} has no time zone: pass an aware datetime")
        return value.astimezone(timezone.utc).replace(microsecond=0)

    @field_validator("unsupported_types")
    @classmethod
    def _no_repeated_types(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"unsupported_types {value} names a type twice")
        return value

    @field_serializer("occurred_at")
    def _iso_with_z(self, value: datetime) -> str:
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")

    @model_serializer(mode="wrap")
    def _omit_task_when_absent(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        data = handler(self)
        if self.task is None:
            data.pop("task", None)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Event:
        _check_reason(self)
        _check_target(self)
        _check_candidates(self)
        _check_task(self)
        return self

    @property
    def is_lifecycle(self) -> bool:
        return self.event_type in LIFECYCLE_EVENT_TYPES

    def to_dict(self) -> dict[str, Any]:
        """Return the event as JSON-compatible data, keys in schema order."""
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        """Encode the event as compact ASCII JSON, keys in schema order.

        Non-ASCII characters are escaped, so the encoding is the same bytes on every transport and its
        length in characters is its size in bytes.
        """
        return _compact_json(self.to_dict())


def _check_reason(event: Event) -> None:
    allowed = REASONS[event.event_type]
    if not allowed and event.reason is not None:
        raise ValueError(f"event {event.event_type} must have reason null, got {ids.shown(event.reason)}")
    if allowed and event.reason not in allowed:
        raise ValueError(f"invalid reason {ids.shown(event.reason)} for event {event.event_type}: expected one of {', '.join(allowed)}")


def _check_target(event: Event) -> None:
    if event.event_type in ("upgrade.ready", "upgrade.blocked"):
        if event.target_image is None or event.upgrade_type is None or event.upgrade_request is None:
            raise ValueError(f"event {event.event_type} needs target_image, upgrade_type and upgrade_request")
    if event.event_type in ("upgrade.none", "check.failed") and event.target_image is not None:
        raise ValueError(f"event {event.event_type} must have target_image null, got image {ids.shown(event.target_image.id)}")

    request = event.upgrade_request
    if request is None:
        return
    if event.target_image is None:
        raise ValueError("upgrade_request must be null when target_image is null")
    if request.target_image_id != event.target_image.id:
        raise ValueError(f"upgrade_request.target_image_id {ids.shown(request.target_image_id)} differs from target_image.id {ids.shown(event.target_image.id)}")
    if request.upgrade_type != event.upgrade_type:
        raise ValueError(f"upgrade_request.upgrade_type {request.upgrade_type!r} differs from upgrade_type {event.upgrade_type!r}")


def _check_candidates(event: Event) -> None:
    selected = [candidate for candidate in event.candidates if candidate.selected]
    if event.event_type not in ("upgrade.ready", "upgrade.blocked"):
        if selected:
            raise ValueError(f"event {event.event_type} has no target image, so no candidate may be selected")
        return

    assert event.target_image is not None  # _check_target ran first
    if len(selected) != 1:
        raise ValueError(f"event {event.event_type} needs exactly one selected candidate, got {len(selected)}")
    chosen = selected[0]
    if chosen.id != event.target_image.id or chosen.upgrade_type != event.upgrade_type:
        raise ValueError(
            f"the selected candidate {ids.shown(chosen.id)} ({chosen.upgrade_type}) is not the target image "
            f"{ids.shown(event.target_image.id)} ({event.upgrade_type})"
        )


def _check_task(event: Event) -> None:
    if not event.is_lifecycle:
        if event.task is not None:
            raise ValueError(f"event {event.event_type} is a check event and must not carry a task")
        return

    if event.task is None:
        raise ValueError(f"event {event.event_type} needs task")
    statuses = TASK_STATUSES[event.event_type]
    if event.task.status not in statuses:
        raise ValueError(f"invalid task.status {ids.shown(event.task.status)} for event {event.event_type}: expected one of {', '.join(statuses)}")
    if event.reason != statuses[event.task.status]:
        raise ValueError(f"reason {event.reason!r} does not match task.status {event.task.status!r}: expected {statuses[event.task.status]!r}")


# --- event ID -----------------------------------------------------------------------------------------


def make_event_id(
    *,
    event_type: str,
    cluster_id: str,
    upgrade_type: str | None = None,
    target_image_id: str | None = None,
    reason: str | None = None,
    task_id: str | None = None,
    task_status: str | None = None,
    execute_times: int | None = None,
) -> str:
    """Derive the stable ID of an event: 32 hex digits, the first 128 bits of a SHA-256 digest.

    The digest covers a JSON array (compact, ASCII) that starts with "css-upgrade-scout/1", the event
    type and the lower-case cluster ID, followed by:

    - upgrade.ready, upgrade.blocked: the upgrade type and the target image ID. A blocked event whose
      block reason changes keeps its ID, and the same target turning ready gets a new one.
    - upgrade.none, check.failed: the upgrade type (or null) and the reason code, so a new reason is
      a new event.
    - lifecycle events: the task ID, the task status and execute_times, so each attempt's outcome
      has its own ID.

    Arguments that the event type does not use are ignored.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event_type {ids.shown(event_type)}: expected one of {', '.join(EVENT_TYPES)}")

    parts: list[object] = [f"{EVENT_SOURCE}/{SCHEMA_VERSION}", event_type, ids.cluster_id(cluster_id)]
    if event_type in ("upgrade.ready", "upgrade.blocked"):
        if upgrade_type is None or not target_image_id:
            raise ValueError(f"the ID of an {event_type} event needs upgrade_type and target_image_id")
        parts += [upgrade_type, target_image_id]
    elif event_type in ("upgrade.none", "check.failed"):
        parts += [upgrade_type, reason]
    else:
        if not task_id or not task_status:
            raise ValueError(f"the ID of an {event_type} event needs task_id and task_status")
        parts += [task_id, task_status, execute_times]

    canonical = _compact_json(parts)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:32]


# --- builders -----------------------------------------------------------------------------------------


def build_check_event(
    *,
    cluster_id: str,
    project_id: str,
    region: str,
    cluster: Cluster | None,
    event_type: str,
    reason: str | None,
    detail: str,
    upgrade_type: str | None,
    chosen: Candidate | None,
    need_upload_upgrade_plugin: bool,
    candidates: list[Candidate],
    unsupported_types: list[str],
    trigger: Trigger,
    agency: str | None,
    occurred_at: datetime,
) -> Event:
    """Build the event of one check (upgrade.ready, upgrade.blocked, upgrade.none or check.failed).

    `cluster` is the cluster's details, or None when they could not be read. `chosen` is the policy's
    choice and must also appear, selected, in `candidates`. `upgrade_type` may be None when `chosen`
    is given, and otherwise is the last type tried. Raises ValueError (pydantic's ValidationError is
    one) when the arguments contradict the schema, naming the field.
    """
    if event_type not in CHECK_EVENT_TYPES:
        raise ValueError(f"invalid check event_type {ids.shown(event_type)}: expected one of {', '.join(CHECK_EVENT_TYPES)}")

    cluster_info = _cluster_info(cluster_id, project_id, region, cluster)
    effective_type = _effective_upgrade_type(upgrade_type, chosen)

    target = ImageInfo.from_target(chosen.image) if chosen is not None else None
    request = None
    if target is not None and effective_type is not None:
        request = UpgradeRequest(target_image_id=target.id, upgrade_type=effective_type, agency=agency)

    event_id = make_event_id(
        event_type=event_type,
        cluster_id=cluster_info.id,
        upgrade_type=effective_type,
        target_image_id=target.id if target is not None else None,
        reason=reason,
    )
    return Event(
        event_id=event_id,
        event_type=event_type,
        occurred_at=occurred_at,
        cluster=cluster_info,
        upgrade_type=effective_type,
        target_image=target,
        need_upload_upgrade_plugin=need_upload_upgrade_plugin,
        candidates=[CandidateInfo.from_candidate(candidate) for candidate in candidates],
        unsupported_types=[ids.upgrade_type(name, "unsupported_types") for name in unsupported_types],
        reason=reason,
        detail=detail,
        trigger=trigger,
        upgrade_request=request,
    )


def build_lifecycle_event(
    *,
    event_type: str,
    cluster_id: str,
    project_id: str,
    region: str,
    cluster: Cluster | None,
    task: UpgradeTask,
    approved_by: str | None,
    upgrade_type: str | None,
    target: TargetImage | None,
    trigger: Trigger,
    agency: str | None,
    detail: str,
    occurred_at: datetime,
) -> Event:
    """Build an upgrade.started, upgrade.succeeded or upgrade.failed event for one upgrade task.

    The task status must match the event type (RUNNING, SUCCESS, FAILED or PARTIAL_FAILED), and the
    reason of upgrade.failed comes from it. `target` defaults to the task's image, and `agency` to
    the task's agency. `upgrade_request` is set when both the target and the upgrade type are known.
    """
    if event_type not in LIFECYCLE_EVENT_TYPES:
        raise ValueError(f"invalid lifecycle event_type {ids.shown(event_type)}: expected one of {', '.join(LIFECYCLE_EVENT_TYPES)}")
    statuses = TASK_STATUSES[event_type]
    if task.status not in statuses:
        raise ValueError(f"invalid task status {ids.shown(task.status)} for event {event_type}: expected one of {', '.join(statuses)}")

    cluster_info = _cluster_info(cluster_id, project_id, region, cluster)
    effective_type = ids.upgrade_type(upgrade_type) if upgrade_type is not None else None
    image = target if target is not None else task.image_info
    target_info = ImageInfo.from_target(image) if image is not None else None
    effective_agency = agency if agency is not None else task.agency_name

    request = None
    if target_info is not None and effective_type is not None:
        request = UpgradeRequest(target_image_id=target_info.id, upgrade_type=effective_type, agency=effective_agency)

    task_info = TaskInfo(
        id=task.id,
        status=task.status,
        execute_times=_attempt_number(task.execute_times),
        approved_by=approved_by,
    )
    event_id = make_event_id(
        event_type=event_type,
        cluster_id=cluster_info.id,
        task_id=task_info.id,
        task_status=task_info.status,
        execute_times=task_info.execute_times,
    )
    return Event(
        event_id=event_id,
        event_type=event_type,
        occurred_at=occurred_at,
        cluster=cluster_info,
        upgrade_type=effective_type,
        target_image=target_info,
        reason=statuses[task.status],
        detail=detail,
        trigger=trigger,
        upgrade_request=request,
        task=task_info,
    )


def _cluster_info(cluster_id: str, project_id: str, region: str, cluster: Cluster | None) -> ClusterInfo:
    checked_id = ids.cluster_id(cluster_id)
    if cluster is None:
        return ClusterInfo(id=checked_id, project_id=ids.project_id(project_id), region=ids.region(region))

    if cluster.id.lower() != checked_id:
        raise ValueError(f"the cluster details are of cluster {ids.shown(cluster.id)}, not of {checked_id}")
    return ClusterInfo(
        id=checked_id,
        project_id=ids.project_id(project_id),
        region=ids.region(region),
        name=cluster.name,
        datastore_type=cluster.datastore.type,
        datastore_version=cluster.datastore.version,
        current_image=cluster.current_image,
        status=cluster.status,
    )


def _effective_upgrade_type(upgrade_type: str | None, chosen: Candidate | None) -> str | None:
    given = ids.upgrade_type(upgrade_type) if upgrade_type is not None else None
    if chosen is None:
        return given

    chosen_type = ids.upgrade_type(chosen.upgrade_type, "chosen.upgrade_type")
    if given is not None and given != chosen_type:
        raise ValueError(f"upgrade_type {given!r} differs from the chosen image's upgrade type {chosen_type!r}")
    return chosen_type


def _attempt_number(execute_times: str | None) -> int | None:
    # CSS sends executeTimes as a decimal string; anything else is shown as unknown (null).
    if execute_times is None:
        return None
    text = execute_times.strip()
    if not text.isascii() or not text.isdigit():
        return None
    return int(text)


# --- size limit ---------------------------------------------------------------------------------------


def encoded_size(event: Event) -> int:
    """Return the size in bytes of `event.to_json()`."""
    return len(event.to_json())


def fit_to_size(
    event: Event,
    limit_bytes: int = SIZE_LIMIT_BYTES,
    *,
    size_of: Callable[[Event], int] = encoded_size,
) -> Event:
    """Return the event, cut when needed so that its size plus ENVELOPE_HEADROOM_BYTES fits in limit_bytes.

    The size is that of the event JSON by default. A publisher that wraps the event passes `size_of`,
    which returns the size of its whole message for a given event. An SNS message with a per-protocol
    structure is an example: it contains the event JSON escaped once more, plus the email text.

    The JSON is cut in these steps, which stop as soon as the event fits:

    1. Strings longer than MAX_TEXT_CHARS are cut, so one huge description cannot cost the candidates.
    2. Candidates are dropped, lowest priority first (the selected one never), the rest keeping their
       order; `candidates_omitted` grows by the number dropped.
    3. Every string longer than some length L is cut to L characters (ending in "..."), with the
       largest L, not below MIN_CUT_CHARS, that fits. Equal strings stay equal, so the selected
       candidate still matches the target image.

    With `size_of`, the JSON budget shrinks by the excess until the message fits. The event ID is
    never changed. Raises ValueError when limit_bytes is below MIN_LIMIT_BYTES, or when `size_of`
    still exceeds the limit for the event cut as far as it goes.
    """
    if limit_bytes < MIN_LIMIT_BYTES:
        raise ValueError(f"invalid limit_bytes {limit_bytes}: expected at least {MIN_LIMIT_BYTES}")
    budget = limit_bytes - ENVELOPE_HEADROOM_BYTES
    if size_of(event) <= budget:
        return event

    smallest_budget = MIN_LIMIT_BYTES - ENVELOPE_HEADROOM_BYTES
    json_budget = budget
    while True:
        fitted = _fit_json(event, json_budget)
        excess = size_of(fitted) - budget
        if excess <= 0:
            return fitted
        if json_budget == smallest_budget:
            raise ValueError(
                f"event {event.event_id} does not fit in {limit_bytes} bytes: its message takes {excess} bytes "
                "too many even with the event cut as far as it goes"
            )
        # A wrapping message usually shrinks at least as much as the JSON inside it, so cutting the
        # excess from the JSON budget fits within a few rounds. The smallest budget ends the loop.
        json_budget = max(smallest_budget, json_budget - excess)


def _fit_json(event: Event, budget: int) -> Event:
    """Return the event, cut as fit_to_size describes so that its JSON takes at most `budget` bytes."""
    if encoded_size(event) <= budget:
        return event

    data = _cut_strings(event.to_dict(), MAX_TEXT_CHARS)
    if _json_size(data) <= budget:
        return Event.model_validate(data)

    data = _drop_candidates(data, budget)
    if _json_size(data) <= budget:
        return Event.model_validate(data)

    return Event.model_validate(_cut_strings_to_fit(data, budget))


def _json_size(data: object) -> int:
    return len(_compact_json(data))


def _drop_candidates(data: dict[str, Any], budget: int) -> dict[str, Any]:
    candidates: list[dict[str, Any]] = data["candidates"]
    ranked = sorted(range(len(candidates)), key=lambda index: _keep_rank(candidates[index], index))

    # Measure the event without candidates, with candidates_omitted at its largest value so that the
    # final count never needs more digits than were paid for.
    bare = dict(data, candidates=[], candidates_omitted=data["candidates_omitted"] + len(candidates))
    used = _json_size(bare)

    kept: set[int] = set()
    for index in ranked:
        cost = _json_size(candidates[index]) + 1  # plus the separating comma
        if used + cost > budget and not candidates[index]["selected"]:
            break
        used += cost
        kept.add(index)

    return _with_candidates(data, candidates, kept)


def _keep_rank(candidate: dict[str, Any], index: int) -> tuple[int, int, int]:
    # The selected candidate first, then the highest priority; ties keep their order in the list.
    return (0 if candidate["selected"] else 1, -candidate["priority"], index)


def _with_candidates(data: dict[str, Any], candidates: list[dict[str, Any]], kept: set[int]) -> dict[str, Any]:
    remaining = [candidate for index, candidate in enumerate(candidates) if index in kept]
    omitted = data["candidates_omitted"] + len(candidates) - len(remaining)
    return dict(data, candidates=remaining, candidates_omitted=omitted)


def _cut_strings_to_fit(data: dict[str, Any], budget: int) -> dict[str, Any]:
    # Binary search for the largest length L whose uniform cut fits. The size only shrinks as L
    # shrinks, and at MIN_CUT_CHARS it fits because limit_bytes >= MIN_LIMIT_BYTES.
    low, high = MIN_CUT_CHARS, MAX_TEXT_CHARS
    while low < high:
        middle = (low + high + 1) // 2
        if _json_size(_cut_strings(data, middle)) <= budget:
            low = middle
        else:
            high = middle - 1
    return _cut_strings(data, low)


def _cut_strings(value: Any, max_chars: int) -> Any:
    if isinstance(value, str):
        return cut_text(value, max_chars)
    if isinstance(value, dict):
        return {key: _cut_strings(item, max_chars) for key, item in value.items()}
    if isinstance(value, list):
        return [_cut_strings(item, max_chars) for item in value]
    return value


def cut_text(text: str, max_chars: int) -> str:
    """Return `text`, or its first characters followed by "..." so that the result has max_chars characters."""
    if len(text) <= max_chars:
        return text
    return text[: max_chars - len(CUT_MARK)] + CUT_MARK


def _compact_json(data: object) -> str:
    return json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


# --- SNS and EventBridge --------------------------------------------------------------------------------


def sns_message_attributes(event: Event) -> dict[str, str]:
    """Return the seven SNS message attributes of an event as name -> String value.

    Every attribute is always present and never empty: a value that is unknown, or empty once control
    characters are removed, is "unknown". The publisher wraps each value as
    {"DataType": "String", "StringValue": value}.
    """
    values = {
        "event_type": event.event_type,
        "cluster_id": event.cluster.id,
        "project_id": event.cluster.project_id,
        "region": event.cluster.region,
        "schema_version": event.schema_version,
        "upgrade_type": event.upgrade_type,
        "datastore_type": event.cluster.datastore_type,
    }
    return {name: _attribute_value(value) for name, value in values.items()}


def _attribute_value(value: str | None) -> str:
    if value is None:
        return UNKNOWN
    return _printable_line(value)[:MAX_ATTRIBUTE_CHARS].strip() or UNKNOWN


def _printable_line(value: str) -> str:
    # Control and format characters are dropped, any kind of space or line break becomes one space.
    kept = []
    for char in value:
        category = unicodedata.category(char)[0]
        if category == "Z" or char in "\t\n\r\v\f\x1c\x1d\x1e\x1f\x85":
            kept.append(" ")
        elif category != "C":
            kept.append(char)
    return " ".join("".join(kept).split())


_SUBJECT_PREFIXES: Final = {
    "upgrade.ready": "CSS upgrade ready",
    "upgrade.blocked": "CSS upgrade blocked",
    "upgrade.none": "No CSS upgrade",
    "check.failed": "CSS upgrade check failed",
    "upgrade.started": "CSS upgrade started",
    "upgrade.succeeded": "CSS upgrade succeeded",
    "upgrade.failed": "CSS upgrade failed",
}


def sns_subject(event: Event) -> str:
    """Return a short subject line for SNS email: ASCII, one line, at most MAX_SUBJECT_CHARS characters.

    For example "CSS upgrade ready: logs-prod 7.6.2_24.3.3_1224 -> 7.10.2_24.3.4_0109". Characters
    outside ASCII are transliterated where possible and otherwise replaced with "?".
    """
    prefix = _SUBJECT_PREFIXES[event.event_type]
    if event.reason is not None:
        prefix = f"{prefix} ({event.reason})"

    cluster = _subject_text(event.cluster.name or event.cluster.id, 40)
    parts = [f"{prefix}: {cluster}"]
    if event.target_image is not None:
        current = _subject_text(event.cluster.current_image or "?", 24)
        target = _subject_text(event.target_image.display_name or event.target_image.id, 24)
        parts.append(f"{current} -> {target}")

    return cut_text(" ".join(parts), MAX_SUBJECT_CHARS)


def _subject_text(value: str, max_chars: int) -> str:
    return cut_text(ascii_line(value), max_chars)


def ascii_line(value: str) -> str:
    """Return `value` as one line of printable ASCII: accents dropped, other characters replaced with "?"."""
    decomposed = unicodedata.normalize("NFKD", value)
    characters = []
    for char in decomposed:
        if unicodedata.combining(char):
            continue
        if unicodedata.category(char)[0] in ("C", "Z"):
            characters.append(" ")
        elif char.isascii():
            characters.append(char)
        else:
            characters.append("?")
    return " ".join("".join(characters).split())


def eventbridge_entry(event: Event, bus: str) -> dict[str, str]:
    """Return the PutEvents entry of an event: source css-upgrade-scout, detail-type = event_type.

    The event is used as given. Callers apply fit_to_size first, once, so that SNS and EventBridge carry
    the same event.
    """
    if not bus or not bus.strip():
        raise ValueError(f"invalid event bus {ids.shown(bus)}: expected a bus name or ARN")
    return {
        "Source": EVENT_SOURCE,
        "DetailType": event.event_type,
        "Detail": event.to_json(),
        "EventBusName": bus,
    }
