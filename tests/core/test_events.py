"""Tests of the event model: stable IDs, builders, the JSON Schema, the size limit and the SNS/EventBridge helpers."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from pydantic import ValidationError

from handler.core import ids
from handler.core.events import (
    CHECK_EVENT_TYPES,
    ENVELOPE_HEADROOM_BYTES,
    EVENT_TYPES,
    LIFECYCLE_EVENT_TYPES,
    MAX_SUBJECT_CHARS,
    MIN_LIMIT_BYTES,
    REASONS,
    SIZE_LIMIT_BYTES,
    Event,
    UpgradeType,
    encoded_size,
    eventbridge_entry,
    fit_to_size,
    make_event_id,
    sns_message_attributes,
    sns_subject,
)
from handler.core.models import REJECTION_REASONS, Candidate
from handler.core.render import render_text

from .event_samples import (
    AGENCY,
    CLUSTER_ID,
    OCCURRED_AT,
    PROJECT_ID,
    RUNNER_UP_ID,
    TARGET_ID,
    check_event,
    chosen,
    cluster,
    every_event_type,
    image,
    lifecycle_event,
    rejected,
    task,
    trigger,
)
from .schema_check import schema_errors, validate_event

ATTRIBUTE_NAMES = {"event_type", "cluster_id", "project_id", "region", "schema_version", "upgrade_type", "datastore_type"}


# --- constants -------------------------------------------------------------------------------------------


def test_event_types_listed_once() -> None:
    assert EVENT_TYPES == CHECK_EVENT_TYPES + LIFECYCLE_EVENT_TYPES
    assert len(set(EVENT_TYPES)) == 7
    assert set(REASONS) == set(EVENT_TYPES)


def test_upgrade_types_match_ids() -> None:
    assert UpgradeType.__args__ == ids.UPGRADE_TYPES


def test_schema_lists_same_codes() -> None:
    from .schema_check import event_validator

    schema = event_validator().schema
    assert schema["properties"]["event_type"]["enum"] == list(EVENT_TYPES)
    assert schema["$defs"]["rejected_reason"]["enum"] == list(REJECTION_REASONS)
    for rule in schema["allOf"][:7]:
        event_type = rule["if"]["properties"]["event_type"]["const"]
        reason_rule = rule["then"]["properties"]["reason"]
        allowed = reason_rule.get("enum", [])
        assert tuple(allowed) == REASONS[event_type], event_type


# --- event ID ----------------------------------------------------------------------------------------------


def test_event_id_documented_derivation() -> None:
    canonical = json.dumps(
        ["css-upgrade-scout/1", "upgrade.ready", CLUSTER_ID, "cross", TARGET_ID], separators=(",", ":")
    )
    expected = hashlib.sha256(canonical.encode("ascii")).hexdigest()[:32]

    assert check_event("upgrade.ready").event_id == expected


def test_event_id_ignores_time_and_text() -> None:
    first = check_event("upgrade.ready")
    later = check_event(
        "upgrade.ready",
        occurred_at=OCCURRED_AT + timedelta(days=3),
        detail="another sentence",
        trigger=trigger(source="schedule", message_id="other"),
        candidates=[chosen()],
    )

    assert later.event_id == first.event_id


def test_event_id_ignores_cluster_id_case() -> None:
    lower = check_event("upgrade.ready")
    upper = check_event("upgrade.ready", cluster_id=CLUSTER_ID.upper(), cluster=cluster(id=CLUSTER_ID.upper()))

    assert upper.event_id == lower.event_id


OTHER_TARGET = image("0f0e0d0c-0b0a-4909-8807-060504030201", "7.10.2_24.3.5_0301", 17)

ID_CHANGES: list[tuple[str, Callable[[], Event]]] = [
    ("other target image", lambda: check_event("upgrade.ready", chosen=chosen(OTHER_TARGET), candidates=[chosen(OTHER_TARGET)])),
    ("other upgrade type", lambda: check_event("upgrade.ready", upgrade_type="same", chosen=chosen(upgrade_type="same"), candidates=[chosen(upgrade_type="same")])),
    ("blocked instead of ready", lambda: check_event("upgrade.blocked")),
    ("other cluster", lambda: check_event("upgrade.ready", cluster_id="11111111-2222-4333-8444-555555555555", cluster=None)),
]


@pytest.mark.parametrize(("case", "build"), ID_CHANGES, ids=[case for case, _ in ID_CHANGES])
def test_event_id_changes(case: str, build: Callable[[], Event]) -> None:
    assert build().event_id != check_event("upgrade.ready").event_id


def test_event_id_blocked_then_ready() -> None:
    blocked = check_event("upgrade.blocked", reason="cluster_not_available")
    ready = check_event("upgrade.ready")

    assert blocked.event_id != ready.event_id


def test_event_id_blocked_reason_kept() -> None:
    busy = check_event("upgrade.blocked", reason="operation_in_progress")
    plugin = check_event("upgrade.blocked", reason="plugin_upload_required")

    assert busy.event_id == plugin.event_id


def test_event_id_none_reason_changes() -> None:
    rejected_all = check_event("upgrade.none", reason="all_rejected_by_policy")
    nothing = check_event("upgrade.none", reason="no_target_images", candidates=[])

    assert rejected_all.event_id != nothing.event_id


def test_event_id_failed_reason_changes() -> None:
    not_found = check_event("check.failed", reason="cluster_not_found")
    denied = check_event("check.failed", reason="access_denied")

    assert not_found.event_id != denied.event_id


def test_event_id_lifecycle_stable() -> None:
    first = lifecycle_event("upgrade.started")
    again = lifecycle_event("upgrade.started", detail="other text", occurred_at=OCCURRED_AT + timedelta(hours=1))

    assert again.event_id == first.event_id


LIFECYCLE_ID_CHANGES: list[tuple[str, dict[str, Any]]] = [
    ("next attempt", {"task": task("RUNNING", execute_times="2")}),
    ("other task", {"task": task("RUNNING", id="c0ffee00-0000-4000-8000-000000000001")}),
]


@pytest.mark.parametrize(("case", "changes"), LIFECYCLE_ID_CHANGES, ids=[case for case, _ in LIFECYCLE_ID_CHANGES])
def test_event_id_lifecycle_changes(case: str, changes: dict[str, Any]) -> None:
    assert lifecycle_event("upgrade.started", **changes).event_id != lifecycle_event("upgrade.started").event_id


def test_event_id_lifecycle_status_changes() -> None:
    failed = lifecycle_event("upgrade.failed", task=task("FAILED"))
    partial = lifecycle_event("upgrade.failed", task=task("PARTIAL_FAILED"))

    assert failed.event_id != partial.event_id


def test_event_id_form() -> None:
    for event in every_event_type().values():
        assert len(event.event_id) == 32
        assert set(event.event_id) <= set("0123456789abcdef")


def test_event_ids_distinct_per_type() -> None:
    assert len({event.event_id for event in every_event_type().values()}) == 7


MAKE_ID_ERRORS: list[tuple[str, dict[str, Any]]] = [
    ("unknown event type", {"event_type": "upgrade.maybe", "cluster_id": CLUSTER_ID}),
    ("ready without target", {"event_type": "upgrade.ready", "cluster_id": CLUSTER_ID, "upgrade_type": "cross"}),
    ("lifecycle without task", {"event_type": "upgrade.started", "cluster_id": CLUSTER_ID}),
    ("invalid cluster id", {"event_type": "upgrade.none", "cluster_id": "logs-prod"}),
]


@pytest.mark.parametrize(("case", "arguments"), MAKE_ID_ERRORS, ids=[case for case, _ in MAKE_ID_ERRORS])
def test_make_event_id_rejects(case: str, arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make_event_id(**arguments)


# --- builders and the schema ----------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_type_matches_schema(event_type: str) -> None:
    validate_event(every_event_type()[event_type])


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_json_round_trip(event_type: str) -> None:
    event = every_event_type()[event_type]

    parsed = Event.model_validate(json.loads(event.to_json()))

    assert parsed == event
    assert parsed.to_json() == event.to_json()


@pytest.mark.parametrize("event_type", CHECK_EVENT_TYPES)
def test_check_event_has_no_task_key(event_type: str) -> None:
    assert "task" not in every_event_type()[event_type].to_dict()
    assert '"task"' not in every_event_type()[event_type].to_json()


@pytest.mark.parametrize("event_type", LIFECYCLE_EVENT_TYPES)
def test_lifecycle_event_has_task(event_type: str) -> None:
    data = every_event_type()[event_type].to_dict()

    assert set(data["task"]) == {"id", "status", "execute_times", "approved_by"}


def test_ready_event_fields() -> None:
    data = check_event("upgrade.ready").to_dict()

    assert data["schema_version"] == "1"
    assert data["occurred_at"] == "2026-12-04T19:30:00Z"
    assert data["cluster"] == {
        "id": CLUSTER_ID,
        "project_id": PROJECT_ID,
        "region": "ap-southeast-1",
        "name": "logs-prod",
        "datastore_type": "elasticsearch",
        "datastore_version": "7.6.2",
        "current_image": "7.6.2_24.3.3_1224",
        "status": "200",
    }
    assert data["target_image"] == {
        "id": TARGET_ID,
        "display_name": "7.10.2_24.3.4_0109",
        "datastore_type": "elasticsearch",
        "datastore_version": "7.10.2",
        "priority": 16,
        "description": "Elasticsearch 7.10.2 with the 24.3.4 kernel",
    }
    assert data["upgrade_request"] == {
        "target_image_id": TARGET_ID,
        "upgrade_type": "cross",
        "indices_backup_check": True,
        "agency": AGENCY,
    }
    assert [candidate["selected"] for candidate in data["candidates"]] == [True, False]
    assert data["candidates"][1]["rejected_reason"] == "lower_priority"
    assert data["trigger"] == {"source": "sqs", "requested_by": None, "correlation_id": None, "message_id": "059f36b4-87a3-44ab-83d2-661975830a7d"}


def test_key_order_follows_schema() -> None:
    keys = list(check_event("upgrade.ready").to_dict())

    assert keys == [
        "schema_version", "event_id", "event_type", "occurred_at", "cluster", "upgrade_type", "target_image",
        "need_upload_upgrade_plugin", "candidates", "candidates_omitted", "unsupported_types", "reason",
        "detail", "trigger", "upgrade_request",
    ]


def test_to_json_compact_ascii() -> None:
    event = check_event("upgrade.ready", cluster=cluster(name="journaux-\u00e9t\u00e9"))

    encoded = event.to_json()

    assert encoded.isascii()
    assert "\\u00e9" in encoded
    assert ", " not in encoded.replace("a higher", "").split('"detail"')[0]
    assert encoded == event.to_json()
    assert encoded_size(event) == len(encoded.encode("utf-8"))


def test_cluster_unread_gives_nulls() -> None:
    data = check_event("check.failed", cluster=None).to_dict()["cluster"]

    assert data["id"] == CLUSTER_ID
    assert [data[name] for name in ("name", "datastore_type", "datastore_version", "current_image", "status")] == [None] * 5


def test_ids_sent_lower_case() -> None:
    event = check_event("upgrade.none", cluster_id=CLUSTER_ID.upper(), project_id=PROJECT_ID.upper(), cluster=None)

    assert event.cluster.id == CLUSTER_ID
    assert event.cluster.project_id == PROJECT_ID


def test_none_event_has_no_request() -> None:
    event = check_event("upgrade.none")

    assert event.target_image is None
    assert event.upgrade_request is None


def test_failed_event_without_type() -> None:
    event = check_event("check.failed", upgrade_type=None)

    assert event.upgrade_type is None
    validate_event(event)


def test_upgrade_type_from_chosen() -> None:
    assert check_event("upgrade.ready", upgrade_type=None).upgrade_type == "cross"


def test_agency_unset_gives_null() -> None:
    event = check_event("upgrade.ready", agency=None)

    assert event.upgrade_request is not None
    assert event.upgrade_request.agency is None
    validate_event(event)


def test_unsupported_types_listed() -> None:
    event = check_event("upgrade.none", reason="no_target_images", candidates=[], unsupported_types=["crossEngine"])

    assert event.unsupported_types == ["cross-engine"]
    validate_event(event)


def test_occurred_at_converted_to_utc() -> None:
    local = datetime(2026, 12, 5, 3, 30, 15, 999_999, tzinfo=timezone(timedelta(hours=8)))

    assert check_event("upgrade.ready", occurred_at=local).to_dict()["occurred_at"] == "2026-12-04T19:30:15Z"


def test_lifecycle_defaults_from_task() -> None:
    event = lifecycle_event("upgrade.started", agency=None, target=None)

    assert event.target_image is not None
    assert event.target_image.id == TARGET_ID
    assert event.upgrade_request is not None
    assert event.upgrade_request.agency == AGENCY
    assert event.task is not None
    assert event.task.execute_times == 1
    assert event.task.approved_by == "slack:U024BE7LH"


def test_lifecycle_explicit_target_wins() -> None:
    event = lifecycle_event("upgrade.succeeded", target=OTHER_TARGET)

    assert event.target_image is not None
    assert event.target_image.id == OTHER_TARGET.id


def test_lifecycle_without_type_or_image() -> None:
    event = lifecycle_event("upgrade.succeeded", upgrade_type=None, task=task("SUCCESS", imageInfo=None))

    assert event.target_image is None
    assert event.upgrade_request is None
    validate_event(event)


def test_lifecycle_partial_failure_reason() -> None:
    event = lifecycle_event("upgrade.failed", task=task("PARTIAL_FAILED"))

    assert event.reason == "task_partially_failed"
    validate_event(event)


@pytest.mark.parametrize("execute_times", ["", "two", "\u0663", None])
def test_lifecycle_odd_attempt_count(execute_times: str | None) -> None:
    event = lifecycle_event("upgrade.started", task=task("RUNNING", execute_times=execute_times))

    assert event.task is not None
    assert event.task.execute_times is None
    validate_event(event)


BUILD_ERRORS: list[tuple[str, Callable[[], Event], str]] = [
    ("unknown event type", lambda: check_event("upgrade.ready", event_type="upgrade.maybe"), "event_type"),
    ("lifecycle type to check builder", lambda: check_event("upgrade.ready", event_type="upgrade.started"), "event_type"),
    ("reason of another type", lambda: check_event("upgrade.blocked", reason="cluster_not_found"), "cluster_not_found"),
    ("ready with reason", lambda: check_event("upgrade.ready", reason="operation_in_progress"), "reason"),
    ("none without reason", lambda: check_event("upgrade.none", reason=None), "reason"),
    ("ready without choice", lambda: check_event("upgrade.ready", chosen=None, candidates=[]), "target_image"),
    ("none with choice", lambda: check_event("upgrade.none", chosen=chosen(), candidates=[chosen()]), "target_image"),
    ("choice missing from candidates", lambda: check_event("upgrade.ready", candidates=[rejected()]), "selected"),
    ("two selected candidates", lambda: check_event("upgrade.ready", candidates=[chosen(), chosen(OTHER_TARGET)]), "selected"),
    ("type differs from choice", lambda: check_event("upgrade.ready", upgrade_type="same"), "upgrade_type"),
    ("unknown upgrade type", lambda: check_event("upgrade.none", upgrade_type="sideways"), "sideways"),
    ("unknown unsupported type", lambda: check_event("upgrade.none", unsupported_types=["sideways"]), "sideways"),
    ("repeated unsupported type", lambda: check_event("upgrade.none", unsupported_types=["cross", "cross"]), "unsupported_types"),
    ("unknown rejection reason", lambda: check_event("upgrade.none", candidates=[rejected(reason="ugly")]), "ugly"),
    ("rejected without reason", lambda: check_event("upgrade.none", candidates=[Candidate(image=image(), upgrade_type="cross")]), "rejected_reason"),
    ("naive time", lambda: check_event("upgrade.ready", occurred_at=datetime(2026, 12, 4, 19, 30)), "time zone"),
    ("invalid project id", lambda: check_event("upgrade.ready", project_id="my-project"), "project_id"),
    ("invalid region", lambda: check_event("upgrade.ready", region="Asia Pacific"), "region"),
    ("details of another cluster", lambda: check_event("upgrade.ready", cluster=cluster(id="11111111-2222-4333-8444-555555555555")), "11111111"),
    ("status of another event", lambda: lifecycle_event("upgrade.succeeded", task=task("FAILED")), "FAILED"),
    ("check type to lifecycle builder", lambda: lifecycle_event("upgrade.started", event_type="upgrade.ready"), "event_type"),
]


@pytest.mark.parametrize(("case", "build", "named"), BUILD_ERRORS, ids=[case for case, _, _ in BUILD_ERRORS])
def test_builder_rejects(case: str, build: Callable[[], Event], named: str) -> None:
    with pytest.raises(ValueError) as raised:
        build()

    assert named in str(raised.value)


# Changes that make a valid document invalid; the schema and the model must both reject each one.
Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _delete(key: str) -> Mutation:
    return lambda document: document.pop(key)


INVALID_DOCUMENTS: list[tuple[str, str, Mutation]] = [
    ("ready without target", "upgrade.ready", _set("target_image", None)),
    ("ready without request", "upgrade.ready", _set("upgrade_request", None)),
    ("ready with reason", "upgrade.ready", _set("reason", "operation_in_progress")),
    ("ready without type", "upgrade.ready", _set("upgrade_type", None)),
    ("blocked with foreign reason", "upgrade.blocked", _set("reason", "access_denied")),
    ("blocked without reason", "upgrade.blocked", _set("reason", None)),
    ("none with target", "upgrade.none", _set("target_image", {"id": "x", "display_name": "x", "datastore_type": None, "datastore_version": None, "priority": 1, "description": None})),
    ("none with unknown reason", "upgrade.none", _set("reason", "bored")),
    ("failed with none reason", "check.failed", _set("reason", "no_target_images")),
    ("failed with selected candidate", "check.failed", _set("candidates", [{"id": "x", "display_name": "x", "datastore_type": None, "datastore_version": None, "priority": 1, "upgrade_type": "same", "selected": True, "rejected_reason": None}])),
    ("unknown rejection reason", "upgrade.ready", _set("candidates.1.rejected_reason", "ugly")),
    ("rejected without reason", "upgrade.ready", _set("candidates.1.rejected_reason", None)),
    ("selected with reason", "upgrade.ready", _set("candidates.0.rejected_reason", "denied")),
    ("two selected", "upgrade.ready", _set("candidates.1", {"id": "y", "display_name": "y", "datastore_type": None, "datastore_version": None, "priority": 1, "upgrade_type": "cross", "selected": True, "rejected_reason": None})),
    ("none selected on ready", "upgrade.ready", _set("candidates", [])),
    ("check event with task", "upgrade.ready", _set("task", {"id": "t", "status": "RUNNING", "execute_times": 1, "approved_by": None})),
    ("lifecycle without task", "upgrade.started", _delete("task")),
    ("started with wrong status", "upgrade.started", _set("task.status", "SUCCESS")),
    ("failed with success status", "upgrade.failed", _set("task.status", "SUCCESS")),
    ("failed reason not matching status", "upgrade.failed", _set("reason", "task_partially_failed")),
    ("succeeded with reason", "upgrade.succeeded", _set("reason", "task_failed")),
    ("unknown event type", "upgrade.ready", _set("event_type", "upgrade.maybe")),
    ("other schema version", "upgrade.ready", _set("schema_version", "2")),
    ("unknown field", "upgrade.ready", _set("color", "blue")),
    ("missing detail", "upgrade.ready", _delete("detail")),
    ("time without Z", "upgrade.ready", _set("occurred_at", "2026-12-04T19:30:00")),
    ("upper-case event id", "upgrade.ready", _set("event_id", "08BF2DBF952423D5FF4FCB23DC4D9030")),
    ("short event id", "upgrade.ready", _set("event_id", "08bf2dbf")),
    ("upper-case cluster id", "upgrade.ready", _set("cluster.id", CLUSTER_ID.upper())),
    ("unknown trigger source", "upgrade.ready", _set("trigger.source", "email")),
    ("backup check off", "upgrade.ready", _set("upgrade_request.indices_backup_check", False)),
    ("request without target", "upgrade.none", _set("upgrade_request", {"target_image_id": "x", "upgrade_type": "same", "indices_backup_check": True, "agency": None})),
    ("repeated unsupported type", "upgrade.none", _set("unsupported_types", ["cross", "cross"])),
    ("negative omitted count", "upgrade.ready", _set("candidates_omitted", -1)),
    ("priority as text", "upgrade.ready", _set("target_image.priority", "16")),
]


@pytest.mark.parametrize(("case", "event_type", "mutate"), INVALID_DOCUMENTS, ids=[case for case, _, _ in INVALID_DOCUMENTS])
def test_schema_rejects(case: str, event_type: str, mutate: Mutation) -> None:
    document = copy.deepcopy(every_event_type()[event_type].to_dict())
    assert schema_errors(document) == []

    mutate(document)

    assert schema_errors(document) != []


# Input the model accepts and normalizes (identifiers in either case, numbers as text), so that its
# output still matches the schema.
NORMALIZED_BY_MODEL = {"upper-case cluster id", "priority as text"}


@pytest.mark.parametrize(("case", "event_type", "mutate"), INVALID_DOCUMENTS, ids=[case for case, _, _ in INVALID_DOCUMENTS])
def test_model_rejects(case: str, event_type: str, mutate: Mutation) -> None:
    document = copy.deepcopy(every_event_type()[event_type].to_dict())
    mutate(document)

    if case in NORMALIZED_BY_MODEL:
        assert schema_errors(Event.model_validate(document).to_dict()) == []
        return
    with pytest.raises(ValidationError):
        Event.model_validate(document)


def test_validate_event_lists_errors() -> None:
    document = check_event("upgrade.ready").to_dict()
    document["reason"] = "operation_in_progress"

    with pytest.raises(AssertionError) as raised:
        validate_event(document)

    assert "reason" in str(raised.value)


# --- size limit ----------------------------------------------------------------------------------------------


BUDGET = SIZE_LIMIT_BYTES - ENVELOPE_HEADROOM_BYTES


def _many_candidates(count: int) -> list[Candidate]:
    # Priorities repeat from 0 to 99, so the kept candidates differ from the dropped ones in priority.
    return [
        rejected(f"00000000-0000-4000-8000-{index:012d}", f"7.10.2_24.{index % 7}.{index}_0101", index % 100)
        for index in range(count)
    ]


def test_small_event_unchanged() -> None:
    event = check_event("upgrade.ready")

    assert fit_to_size(event) is event


def test_five_thousand_candidates_cut() -> None:
    others = _many_candidates(5000)
    event = check_event("upgrade.ready", candidates=others[:2500] + [chosen()] + others[2500:])
    assert encoded_size(event) > SIZE_LIMIT_BYTES

    fitted = fit_to_size(event)

    kept = fitted.candidates
    assert encoded_size(fitted) <= BUDGET
    assert fitted.event_id == event.event_id
    assert [candidate.id for candidate in kept if candidate.selected] == [TARGET_ID]
    assert fitted.candidates_omitted == 5001 - len(kept)
    assert fitted.candidates_omitted > 0
    assert len(kept) > 100
    validate_event(fitted)


def test_cut_keeps_highest_priority() -> None:
    others = _many_candidates(5000)
    fitted = fit_to_size(check_event("upgrade.ready", candidates=[chosen()] + others))

    kept_priorities = [candidate.priority for candidate in fitted.candidates if not candidate.selected]
    dropped_max = max(
        candidate.image.priority for candidate in others if candidate.image.id not in {kept.id for kept in fitted.candidates}
    )
    assert min(kept_priorities) >= dropped_max


def test_cut_keeps_list_order() -> None:
    others = _many_candidates(5000)
    order = {candidate.image.id: index for index, candidate in enumerate(others)}

    fitted = fit_to_size(check_event("upgrade.ready", candidates=[chosen()] + others))

    positions = [order[candidate.id] for candidate in fitted.candidates if not candidate.selected]
    assert positions == sorted(positions)


def test_cut_adds_to_omitted_count() -> None:
    event = check_event("upgrade.none", candidates=_many_candidates(5000))
    already = Event.model_validate(dict(event.to_dict(), candidates_omitted=7))

    fitted = fit_to_size(already)

    assert fitted.candidates_omitted == 7 + 5000 - len(fitted.candidates)


def test_huge_detail_keeps_candidates() -> None:
    event = check_event("upgrade.ready", detail="x" * 400_000)

    fitted = fit_to_size(event)

    assert len(fitted.candidates) == 2
    assert fitted.candidates_omitted == 0
    assert len(fitted.detail) < 5_000
    assert fitted.detail.endswith("...")
    validate_event(fitted)


def test_huge_strings_everywhere() -> None:
    huge = "<&\u00e9\U0001f600\n" * 60_000
    target = image(TARGET_ID + huge, huge, 16, imageDesc=huge, datastoreType=huge, datastoreVersion=huge)
    winner = chosen(target)
    event = check_event(
        "upgrade.ready",
        cluster=cluster(name=huge, status=huge, datastore={"type": huge, "version": huge, "subVersion": huge}),
        chosen=winner,
        candidates=[winner] + _many_candidates(300),
        detail=huge,
        trigger=trigger(requested_by=huge, correlation_id=huge, message_id=huge),
        agency=huge,
    )

    fitted = fit_to_size(event)

    assert encoded_size(fitted) <= BUDGET
    assert fitted.event_id == event.event_id
    assert fitted.upgrade_request is not None
    assert fitted.target_image is not None
    assert fitted.upgrade_request.target_image_id == fitted.target_image.id
    validate_event(fitted)


def test_huge_lifecycle_event() -> None:
    huge = "\u2028" * 500_000
    event = lifecycle_event("upgrade.failed", task=task("FAILED", id=huge), approved_by=huge, detail=huge)

    fitted = fit_to_size(event)

    assert encoded_size(fitted) <= BUDGET
    validate_event(fitted)


def test_smaller_limit() -> None:
    fitted = fit_to_size(check_event("upgrade.none", candidates=_many_candidates(5000)), limit_bytes=MIN_LIMIT_BYTES)

    assert encoded_size(fitted) <= MIN_LIMIT_BYTES - ENVELOPE_HEADROOM_BYTES


def _sns_structured_message(event: Event) -> str:
    # SNS MessageStructure=json: the event JSON escaped once more, plus the email text.
    return json.dumps({"default": event.to_json(), "email": render_text(event)}, ensure_ascii=False)


def test_fit_wrapped_message() -> None:
    event = check_event("upgrade.ready", candidates=[chosen()] + _many_candidates(5000))
    assert len(_sns_structured_message(fit_to_size(event)).encode("utf-8")) > SIZE_LIMIT_BYTES

    fitted = fit_to_size(event, size_of=lambda candidate: len(_sns_structured_message(candidate).encode("utf-8")))

    assert len(_sns_structured_message(fitted).encode("utf-8")) <= BUDGET
    assert encoded_size(fitted) > BUDGET // 2
    assert fitted.candidates_omitted == 5001 - len(fitted.candidates)
    validate_event(fitted)


def test_fit_impossible_size_raises() -> None:
    event = check_event("upgrade.ready", detail="x" * 300_000)

    with pytest.raises(ValueError, match="does not fit"):
        fit_to_size(event, size_of=lambda candidate: 10**9)


def test_limit_too_small() -> None:
    with pytest.raises(ValueError, match="limit_bytes"):
        fit_to_size(check_event("upgrade.ready"), limit_bytes=MIN_LIMIT_BYTES - 1)


# Large strings are built by repeating a short random one, so hypothesis does not generate megabytes.
big_text = st.builds(lambda piece, times: piece * times, st.text(min_size=1, max_size=8), st.integers(0, 60_000))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    detail=big_text,
    name=big_text,
    description=big_text,
    candidate_name=st.builds(lambda piece, times: piece * times, st.text(min_size=1, max_size=8), st.integers(0, 500)),
    count=st.integers(0, 3000),
    limit=st.sampled_from([MIN_LIMIT_BYTES, 100_000, SIZE_LIMIT_BYTES]),
)
def test_fit_always_under_limit(detail: str, name: str, description: str, candidate_name: str, count: int, limit: int) -> None:
    target = image(imageDesc=description)
    winner = chosen(target)
    others = [rejected(f"00000000-0000-4000-8000-{index:012d}", candidate_name, index % 50) for index in range(count)]
    event = check_event("upgrade.ready", cluster=cluster(name=name), chosen=winner, candidates=[winner] + others, detail=detail)

    fitted = fit_to_size(event, limit_bytes=limit)

    assert encoded_size(fitted) <= limit - ENVELOPE_HEADROOM_BYTES
    assert fitted.event_id == event.event_id
    assert sum(candidate.selected for candidate in fitted.candidates) == 1
    assert fitted.candidates_omitted == count + 1 - len(fitted.candidates)
    assert schema_errors(fitted.to_dict()) == []


# --- SNS and EventBridge ----------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_attributes_seven_strings(event_type: str) -> None:
    attributes = sns_message_attributes(every_event_type()[event_type])

    assert set(attributes) == ATTRIBUTE_NAMES
    assert all(isinstance(value, str) and value for value in attributes.values())


def test_attributes_of_ready() -> None:
    assert sns_message_attributes(check_event("upgrade.ready")) == {
        "event_type": "upgrade.ready",
        "cluster_id": CLUSTER_ID,
        "project_id": PROJECT_ID,
        "region": "ap-southeast-1",
        "schema_version": "1",
        "upgrade_type": "cross",
        "datastore_type": "elasticsearch",
    }


def test_attributes_unknown_values() -> None:
    attributes = sns_message_attributes(check_event("check.failed", cluster=None, upgrade_type=None))

    assert attributes["datastore_type"] == "unknown"
    assert attributes["upgrade_type"] == "unknown"


@pytest.mark.parametrize("engine", ["", "   ", "\n\t", "\u200b", "\x00\x01"])
def test_attributes_blank_engine(engine: str) -> None:
    event = check_event("upgrade.ready", cluster=cluster(datastore={"type": engine, "version": "7.6.2"}))

    assert sns_message_attributes(event)["datastore_type"] == "unknown"


@settings(max_examples=200, deadline=None)
@given(engine=st.text(max_size=600))
def test_attributes_any_engine(engine: str) -> None:
    event = check_event("upgrade.ready", cluster=cluster(datastore={"type": engine, "version": "7.6.2"}))

    value = sns_message_attributes(event)["datastore_type"]

    assert value
    assert value == value.strip()
    assert len(value) <= 256
    assert all(character.isprintable() or character == " " for character in value)


def test_subject_of_ready() -> None:
    assert sns_subject(check_event("upgrade.ready")) == "CSS upgrade ready: logs-prod 7.6.2_24.3.3_1224 -> 7.10.2_24.3.4_0109"


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_subject_every_type(event_type: str) -> None:
    subject = sns_subject(every_event_type()[event_type])

    assert subject.startswith(("CSS", "No CSS"))
    assert len(subject) <= MAX_SUBJECT_CHARS


HOSTILE_NAMES = [
    "logs\nprod\r\nBcc: everyone",
    "\u65e5\u5fd7-\u751f\u4ea7",
    "journaux-\u00e9t\u00e9",
    "x" * 500,
    "\t\x00\x1b[31m",
    "\U0001f600" * 200,
    "\u2028\u2029\u0085",
    "",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_subject_hostile_names(name: str) -> None:
    hostile = cluster(name=name, datastore={"type": "elasticsearch", "subVersion": name})
    event = check_event("upgrade.ready", cluster=hostile, chosen=chosen(image(name=name * 2)), candidates=[chosen(image(name=name * 2))])

    subject = sns_subject(event)

    assert subject.isascii()
    assert subject.isprintable()
    assert len(subject) <= 100
    assert subject[0].isalpha()


def test_subject_transliterates_accents() -> None:
    assert "journaux-ete" in sns_subject(check_event("upgrade.ready", cluster=cluster(name="journaux-\u00e9t\u00e9")))


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=300), target=st.text(max_size=300))
def test_subject_any_text(name: str, target: str) -> None:
    winner = chosen(image(name=target))
    event = check_event("upgrade.ready", cluster=cluster(name=name), chosen=winner, candidates=[winner])

    subject = sns_subject(event)

    assert subject.isascii()
    assert subject.isprintable()
    assert len(subject) <= MAX_SUBJECT_CHARS


def test_eventbridge_entry() -> None:
    event = check_event("upgrade.blocked")

    entry = eventbridge_entry(event, "css-upgrades")

    assert entry == {
        "Source": "css-upgrade-scout",
        "DetailType": "upgrade.blocked",
        "Detail": event.to_json(),
        "EventBusName": "css-upgrades",
    }
    assert json.loads(entry["Detail"]) == event.to_dict()


@pytest.mark.parametrize("bus", ["", "  "])
def test_eventbridge_entry_needs_bus(bus: str) -> None:
    with pytest.raises(ValueError, match="event bus"):
        eventbridge_entry(check_event("upgrade.ready"), bus)


# --- the documented filter policies and rule patterns, checked against moto ---------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def _json_blocks(heading: str) -> list[Any]:
    """Return the ```json blocks of docs/events.md between `heading` and the next heading of its level."""
    text = DOCS.read_text(encoding="utf-8")
    level = heading.split(" ")[0]
    section = text.split(heading + "\n", 1)[1]
    section = re.split(rf"\n#{{1,{len(level)}}} ", section, maxsplit=1)[0]
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", section, flags=re.DOTALL)]


# Event types that each documented filter policy or rule pattern lets through, in document order.
# The samples are Elasticsearch clusters in ap-southeast-1 with upgrade type cross. The rule patterns
# also see an OpenSearch variant of upgrade.ready and an upgrade.ready of upgrade type same.
FILTER_POLICY_MATCHES = [
    {"upgrade.ready"},
    {"upgrade.blocked", "check.failed", "upgrade.failed"},
    set(EVENT_TYPES) - {"upgrade.none"},
    set(EVENT_TYPES) - {"check.failed"},
]
RULE_PATTERN_MATCHES = [{"opensearch-ready"}, {"same-ready"}, {"upgrade.failed"}]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


def _drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get("Messages", [])
        if not batch:
            return received
        received += batch
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_documented_filter_policies(aws: None) -> None:
    policies = _json_blocks("### Subscription filter policies")
    assert len(policies) == len(FILTER_POLICY_MATCHES)
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="css-upgrade-events")["TopicArn"]
    queues = []
    for index, policy in enumerate(policies):
        url = sqs.create_queue(QueueName=f"subscriber-{index}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"FilterPolicy": json.dumps(policy), "RawMessageDelivery": "true"},
        )
        queues.append(url)

    for event in every_event_type().values():
        attributes = sns_message_attributes(event)
        sns.publish(
            TopicArn=topic,
            Message=event.to_json(),
            Subject=sns_subject(event),
            MessageAttributes={name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()},
        )

    for url, expected in zip(queues, FILTER_POLICY_MATCHES):
        received = _drain(sqs, url)
        assert {json.loads(message["Body"])["event_type"] for message in received} == expected, url
        assert all(message["MessageAttributes"]["schema_version"]["StringValue"] == "1" for message in received)


def test_documented_rule_patterns(aws: None) -> None:
    patterns = _json_blocks("## EventBridge")
    assert len(patterns) == len(RULE_PATTERN_MATCHES)
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    events.create_event_bus(Name="css-upgrades")
    queues = []
    for index, pattern in enumerate(patterns):
        url = sqs.create_queue(QueueName=f"rule-{index}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=f"rule-{index}", EventBusName="css-upgrades", EventPattern=json.dumps(pattern))
        events.put_targets(Rule=f"rule-{index}", EventBusName="css-upgrades", Targets=[{"Id": "queue", "Arn": arn}])
        queues.append(url)

    samples = dict(every_event_type())
    opensearch = cluster(datastore={"type": "opensearch", "version": "1.3.6", "subVersion": "1.3.6_24.3.3_1224"})
    samples["opensearch-ready"] = check_event("upgrade.ready", cluster=opensearch)
    same = chosen(upgrade_type="same")
    samples["same-ready"] = check_event("upgrade.ready", upgrade_type="same", chosen=same, candidates=[same])
    entries = {name: eventbridge_entry(event, "css-upgrades") for name, event in samples.items()}
    for entry in entries.values():
        assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0

    details = {entry["Detail"]: name for name, entry in entries.items()}
    for url, expected in zip(queues, RULE_PATTERN_MATCHES):
        received = _drain(sqs, url)
        assert {details[json.dumps(json.loads(message["Body"])["detail"], separators=(",", ":"))] for message in received} == expected, url
