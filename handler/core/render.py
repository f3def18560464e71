"""Human-readable renderings of an event: plain text for SNS email subscribers and Slack Block Kit for chat.

Both renderings are built by hand from one summary of the event, because the texts depend on the event
type and the reason code and no library provides them. Every value that comes from the CSS API or from a
message is put on one line and cut to a fixed length. In Slack text `&`, `<` and `>` are also escaped,
so a hostile image name cannot add mentions or links.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any, Final, Literal

from handler.core.events import CandidateInfo, Event, cut_text

UNKNOWN: Final = "unknown"

UPGRADE_API: Final = "POST /v1.0/{project_id}/clusters/{cluster_id}/inst-type/all/image/upgrade"

# Maximum length, in characters, of a single value (an image name, an ID, a description) as shown.
MAX_VALUE_CHARS: Final = 200
MAX_DETAIL_CHARS: Final = 1_000

# Other candidates listed in the plain text; Slack lists as many as fit in one section.
MAX_TEXT_CANDIDATES: Final = 20

# Block Kit limits, from Slack's block reference: a message has at most 50 blocks, a header's text at
# most 150 characters, a section's text at most 3000 and each of at most 10 section fields 2000.
MAX_BLOCKS: Final = 50
MAX_HEADER_CHARS: Final = 150
MAX_SECTION_CHARS: Final = 3_000
MAX_FIELD_CHARS: Final = 2_000
MAX_FALLBACK_CHARS: Final = 3_000

HEADLINES: Final = {
    "upgrade.ready": "CSS upgrade ready",
    "upgrade.blocked": "CSS upgrade blocked",
    "upgrade.none": "No CSS upgrade available",
    "check.failed": "CSS upgrade check failed",
    "upgrade.started": "CSS upgrade started",
    "upgrade.succeeded": "CSS upgrade succeeded",
    "upgrade.failed": "CSS upgrade failed",
}

REASON_TEXTS: Final = {
    "cluster_not_available": "the cluster status is not 200 (available)",
    "operation_in_progress": "another operation is running on the cluster",
    "plugin_upload_required": "the target image needs the upgrade plugin uploaded first",
    "no_target_images": "CSS offers no target image for the upgrade types tried",
    "all_rejected_by_policy": "the selection policy rejected every target image",
    "unsupported_engine": "the cluster's engine cannot be upgraded by the CSS upgrade API",
    "cluster_not_found": "the cluster was not found in this project and region",
    "access_denied": "CSS rejected the credentials or their permissions",
    "invalid_request": "CSS rejected the request as invalid",
    "task_failed": "the upgrade task failed",
    "task_partially_failed": "the upgrade task failed on some nodes",
}

REJECTION_TEXTS: Final = {
    "current_image": "the cluster already runs this image",
    "denied": "listed in deny_images",
    "engine_change_not_allowed": "changes the engine, and allow_cross_engine is false",
    "version_not_allowed": "version not allowed by the policy's versions",
    "too_new": "younger than min_age_days",
    "unknown_age": "age unknown, and unknown_age is reject",
    "earlier_type_chosen": "an image of an earlier upgrade type was chosen",
    "lower_priority": "lower priority than the chosen image",
    "lost_tie_break": "same priority, lost the tie-break (version, name, ID)",
}

NEXT_STEPS: Final = {
    ("upgrade.ready", None): (
        "Review the target image. To upgrade, approve it in the upgrade workflow or send the request below; "
        "CSS then checks that every index has a snapshot (indices_backup_check)."
    ),
    ("upgrade.blocked", "cluster_not_available"): (
        "Bring the cluster back to status 200 (available). The next check announces the upgrade as ready."
    ),
    ("upgrade.blocked", "operation_in_progress"): (
        "Wait until the running operation finishes. The next check announces the upgrade as ready."
    ),
    ("upgrade.blocked", "plugin_upload_required"): (
        "Upload the upgrade plugin for the target image in the CSS console, or set plugin_upload to allow "
        "in the selection policy."
    ),
    ("upgrade.none", "no_target_images"): "Nothing to do: CSS offers no newer image for this cluster.",
    ("upgrade.none", "all_rejected_by_policy"): (
        "Nothing to do unless one of the rejected images should be allowed. In that case change the "
        "selection policy (deny_images, versions, min_age_days)."
    ),
    ("upgrade.none", "unsupported_engine"): "Nothing to do: this cluster's engine has no kernel upgrade in CSS.",
    ("check.failed", "cluster_not_found"): (
        "Check the cluster ID, the project ID and the region. The cluster may have been deleted."
    ),
    ("check.failed", "access_denied"): (
        "Check the AK/SK credentials and their IAM permissions to read this cluster and its target images."
    ),
    ("check.failed", "invalid_request"): (
        "Check the cluster ID, the project ID, the region and the upgrade types of the request."
    ),
    ("upgrade.started", None): "Nothing to do now. The workflow reports when the task ends.",
    ("upgrade.succeeded", None): "Check the cluster's health and the applications that use it.",
    ("upgrade.failed", "task_failed"): (
        "Read the task's failure in the CSS console, fix the cause, then retry or abort the task from the "
        "upgrade workflow."
    ),
    ("upgrade.failed", "task_partially_failed"): (
        "Read the task's failure in the CSS console, fix the cause, then retry or abort the task from the "
        "upgrade workflow."
    ),
}

NOTES: Final = {
    "upgrade.blocked": "Nothing is upgraded while the upgrade is blocked.",
    "upgrade.none": "There is nothing to upgrade to now. A new event follows when an eligible image appears.",
    "check.failed": "This check is not retried. Fix the cause, then request the check again.",
    "upgrade.failed": (
        "Nodes that finished before the failure keep the new image, so the cluster can run mixed images "
        "until the task is retried or aborted."
    ),
}


@dataclass(frozen=True)
class Summary:
    """The facts both renderings show, as plain one-line strings (not yet escaped for Slack)."""

    headline: str
    cluster_label: str
    cluster_id: str
    project_region: str
    engine: str
    current: str
    target: str
    target_name: str
    target_description: str | None
    task: str | None
    why: str
    next_step: str
    note: str | None
    unsupported: str | None
    api_path: str | None
    request_json: str | None
    other_candidates: list[str]
    candidates_not_listed: int
    footer: str


def summarize(event: Event) -> Summary:
    """Collect what the renderings show of an event, every value on one line and cut to a fixed length."""
    cluster = event.cluster
    cluster_label = _line(cluster.name) if cluster.name else cluster.id

    return Summary(
        headline=f"{HEADLINES[event.event_type]}: {cut_text(cluster_label, 60)}",
        cluster_label=cluster_label,
        cluster_id=cluster.id,
        project_region=f"project {cluster.project_id}, region {cluster.region}",
        engine=_engine(cluster.datastore_type, cluster.datastore_version, cluster.status),
        current=_line(cluster.current_image) if cluster.current_image else UNKNOWN,
        target=_target(event),
        target_name=_target_name(event),
        target_description=_line(event.target_image.description) if event.target_image and event.target_image.description else None,
        task=_task(event),
        why=_why(event),
        next_step=NEXT_STEPS[(event.event_type, event.reason)],
        note=NOTES.get(event.event_type),
        unsupported=_unsupported(event),
        api_path=_api_path(event),
        request_json=_request_json(event),
        other_candidates=[_candidate_line(candidate) for candidate in event.candidates if not candidate.selected],
        candidates_not_listed=event.candidates_omitted,
        footer=_footer(event),
    )


def _line(value: str | None, max_chars: int = MAX_VALUE_CHARS) -> str:
    """Return a value as one line: control characters and line breaks become spaces, runs of spaces one space."""
    if value is None:
        return UNKNOWN
    spaced = "".join(" " if unicodedata.category(char)[0] in ("C", "Z") else char for char in value)
    return cut_text(" ".join(spaced.split()), max_chars)


def _engine(datastore_type: str | None, datastore_version: str | None, status: str | None) -> str:
    engine = " ".join(_line(part) for part in (datastore_type, datastore_version) if part) or UNKNOWN
    if status is None:
        return engine
    state = "available" if status == "200" else "not available"
    return f"{engine}, status {_line(status, 20)} ({state})"


def _target_name(event: Event) -> str:
    image = event.target_image
    if image is None:
        return "none"
    return _line(image.display_name) if image.display_name else _line(image.id)


def _target(event: Event) -> str:
    image = event.target_image
    if image is None:
        return "none"

    name = _target_name(event)
    facts = [" ".join(_line(part) for part in (image.datastore_type, image.datastore_version) if part)]
    if event.upgrade_type is not None:
        facts.append(f"upgrade type {event.upgrade_type}")
    facts.append(f"priority {image.priority}")
    if event.need_upload_upgrade_plugin:
        facts.append("needs the upgrade plugin")
    return f"{name} ({', '.join(fact for fact in facts if fact)})"


def _task(event: Event) -> str | None:
    task = event.task
    if task is None:
        return None
    attempt = "attempt unknown" if task.execute_times is None else f"attempt {task.execute_times}"
    approved = f", approved by {_line(task.approved_by)}" if task.approved_by else ""
    return f"{_line(task.id)}, status {_line(task.status, 20)}, {attempt}{approved}"


def _why(event: Event) -> str:
    detail = _line(event.detail, MAX_DETAIL_CHARS) if event.detail.strip() else ""
    if event.reason is None:
        return detail or "No reason was given."
    reason = f"{REASON_TEXTS[event.reason]} ({event.reason})"
    return f"{detail} Reason: {reason}." if detail else f"Reason: {reason}."


def _unsupported(event: Event) -> str | None:
    if not event.unsupported_types:
        return None
    return f"CSS rejected these upgrade types as invalid for this cluster: {', '.join(event.unsupported_types)}."


def _api_path(event: Event) -> str | None:
    if event.upgrade_request is None:
        return None
    return UPGRADE_API.format(project_id=event.cluster.project_id, cluster_id=event.cluster.id)


def _request_json(event: Event) -> str | None:
    if event.upgrade_request is None:
        return None
    body = event.upgrade_request.model_dump(mode="json")
    body = {key: cut_text(value, MAX_VALUE_CHARS) if isinstance(value, str) else value for key, value in body.items()}
    return json.dumps(body, indent=2, ensure_ascii=True)


def _candidate_line(candidate: CandidateInfo) -> str:
    name = _line(candidate.display_name) if candidate.display_name else _line(candidate.id)
    reason = REJECTION_TEXTS.get(candidate.rejected_reason, candidate.rejected_reason or "")
    return f"{name} ({candidate.upgrade_type}, priority {candidate.priority}): {reason}"


def _footer(event: Event) -> str:
    trigger = event.trigger
    origin = [f"from {trigger.source}"]
    if trigger.requested_by:
        origin.append(f"requested by {_line(trigger.requested_by, 80)}")
    if trigger.message_id:
        origin.append(f"message {_line(trigger.message_id, 80)}")
    if trigger.correlation_id:
        origin.append(f"correlation {_line(trigger.correlation_id, 80)}")
    occurred = event.to_dict()["occurred_at"]
    return f"Event {event.event_type} {event.event_id} at {occurred}, {', '.join(origin)}"


# --- plain text -----------------------------------------------------------------------------------------


def render_text(event: Event) -> str:
    """Render an event as plain text for email: what happened, why, what to do next, and the upgrade request."""
    summary = summarize(event)
    lines = [summary.headline, ""]

    lines.append(f"Cluster:       {summary.cluster_label} ({summary.cluster_id})")
    lines.append(f"Where:         {summary.project_region}")
    lines.append(f"Engine:        {summary.engine}")
    lines.append(f"Current image: {summary.current}")
    lines.append(f"Target image:  {summary.target}")
    if summary.target_description:
        lines.append(f"               {summary.target_description}")
    if summary.task:
        lines.append(f"Upgrade task:  {summary.task}")

    lines += ["", f"Why: {summary.why}"]
    if summary.unsupported:
        lines.append(summary.unsupported)
    lines += ["", f"Next step: {summary.next_step}"]
    if summary.note:
        lines += ["", f"Note: {summary.note}"]

    if summary.request_json is not None and summary.api_path is not None:
        label = "Upgrade request (send once approved):" if event.event_type in ("upgrade.ready", "upgrade.blocked") else "Upgrade request:"
        lines += ["", label, summary.api_path, summary.request_json]
        if event.upgrade_request is not None and event.upgrade_request.agency is None:
            lines.append("The agency is not set: CSS rejects the request without one. Set CSS_UPGRADE_AGENCY to the IAM agency CSS upgrades with.")

    lines += _text_candidates(summary)
    lines += ["", summary.footer]
    return "\n".join(lines) + "\n"


def _text_candidates(summary: Summary) -> list[str]:
    others = summary.other_candidates
    if not others and not summary.candidates_not_listed:
        return []

    lines = ["", "Other candidates:"]
    lines += [f"- {line}" for line in others[:MAX_TEXT_CANDIDATES]]
    not_listed = len(others) - min(len(others), MAX_TEXT_CANDIDATES)
    if not_listed:
        lines.append(f"- ... {not_listed} more in the event")
    if summary.candidates_not_listed:
        lines.append(f"- ... {summary.candidates_not_listed} more left out of the event to fit the size limit")
    return lines


# --- Slack ------------------------------------------------------------------------------------------------


def escape_mrkdwn(text: str) -> str:
    """Escape Slack's control characters `&`, `<` and `>` as `&amp;`, `&lt;` and `&gt;`."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut_escaped(text: str, max_chars: int) -> str:
    """Cut escaped Slack text to max_chars characters without splitting an `&amp;`, `&lt;` or `&gt;`."""
    if len(text) <= max_chars:
        return text

    kept = text[: max_chars - 1]
    ampersand = kept.rfind("&", max(0, len(kept) - 4))
    if ampersand != -1 and ";" not in kept[ampersand:]:
        kept = kept[:ampersand]
    return kept + "\u2026"


def render_slack(event: Event, *, response_type: Literal["in_channel", "ephemeral"] = "in_channel") -> dict[str, Any]:
    """Render an event as a Slack message payload: `text` fallback plus Block Kit `blocks`.

    `response_type` is "in_channel" (the reply is visible to the whole channel) or "ephemeral" (visible
    only to the requester). Every text is cut to Block Kit's limits, and mrkdwn texts are `verbatim`, so
    Slack does not turn names, channels or URLs in them into links or mentions.
    """
    if response_type not in ("in_channel", "ephemeral"):
        raise ValueError(f"invalid response_type {response_type!r}: expected in_channel or ephemeral")

    summary = summarize(event)
    blocks: list[dict[str, Any]] = [_header(summary.headline), _facts(summary)]
    blocks.append(_section("*Why*\n" + _escaped(summary.why) + (f"\n{_escaped(summary.unsupported)}" if summary.unsupported else "")))
    next_step = "*Next step*\n" + _escaped(summary.next_step)
    if summary.note:
        next_step += f"\n_{_escaped(summary.note)}_"
    blocks.append(_section(next_step))

    if summary.request_json is not None and summary.api_path is not None:
        blocks.append(_request_section(summary.api_path, summary.request_json))
    if summary.other_candidates or summary.candidates_not_listed:
        blocks.append(_candidates_section(summary))
    blocks.append(_context(summary.footer))

    return {
        "response_type": response_type,
        "text": cut_escaped(_escaped(_fallback(event, summary)), MAX_FALLBACK_CHARS),
        "blocks": blocks[:MAX_BLOCKS],
    }


def _escaped(text: str) -> str:
    return escape_mrkdwn(text)


def _fallback(event: Event, summary: Summary) -> str:
    if event.target_image is None:
        return summary.headline
    return f"{summary.headline} {summary.current} \u2192 {summary.target_name}"


def _header(text: str) -> dict[str, Any]:
    # NOTE: Slack documents the &amp;, &lt; and &gt; escapes for mrkdwn text. The header's plain_text is
    # escaped the same way, so no raw `<` ever reaches Slack, but Slack may show an escape literally there.
    return {"type": "header", "text": {"type": "plain_text", "text": cut_escaped(_escaped(text), MAX_HEADER_CHARS), "emoji": False}}


def _mrkdwn(text: str, max_chars: int) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": cut_escaped(text, max_chars), "verbatim": True}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text, MAX_SECTION_CHARS)}


def _facts(summary: Summary) -> dict[str, Any]:
    fields = [
        f"*Cluster*\n{_escaped(summary.cluster_label)}\n`{summary.cluster_id}`",
        f"*Engine*\n{_escaped(summary.engine)}",
        f"*Current image*\n{_escaped(summary.current)}",
        f"*Target image*\n{_escaped(summary.target)}",
    ]
    if summary.task:
        fields.append(f"*Upgrade task*\n{_escaped(summary.task)}")
    fields.append(f"*Where*\n{_escaped(summary.project_region)}")
    return {"type": "section", "fields": [_mrkdwn(field, MAX_FIELD_CHARS) for field in fields]}


def _request_section(api_path: str, request_json: str) -> dict[str, Any]:
    opening = f"*Upgrade request*\n`{api_path}`\n```"
    closing = "```"
    room = MAX_SECTION_CHARS - len(opening) - len(closing)
    # The code block is cut inside its fences, so a cut never leaves a block open.
    code = cut_escaped(_escaped(request_json), room)
    return {"type": "section", "text": {"type": "mrkdwn", "text": opening + code + closing, "verbatim": True}}


def _candidates_section(summary: Summary) -> dict[str, Any]:
    text = "*Other candidates*"
    listed = 0
    for line in summary.other_candidates:
        entry = "\n\u2022 " + _escaped(line)
        # Keep room for the closing "more" line, at most about 80 characters.
        if len(text) + len(entry) > MAX_SECTION_CHARS - 80:
            break
        text += entry
        listed += 1

    not_listed = len(summary.other_candidates) - listed + summary.candidates_not_listed
    if not_listed:
        text += f"\n\u2026 and {not_listed} more"
    return _section(text)


def _context(footer: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(_escaped(footer), MAX_FIELD_CHARS)]}
