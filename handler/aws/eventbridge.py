"""EventBridge `PutEvents` to a named bus, with the per-entry failures that the call can report.

`PutEvents` returns HTTP 200 even when some entries failed, and `FailedEntryCount` and each entry's
`ErrorCode` show which. Entries that failed on EventBridge's side are sent again, a bounded number of
times; an entry that still fails raises, so no event is lost silently.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from handler.aws.client import AwsClient, get_client
from handler.aws.endpoints import EVENTBRIDGE, region_of_identifier, resolve_endpoint
from handler.aws.errors import AwsError, AwsTransientError, error_class_for
from handler.retry import Deadline

logger = logging.getLogger(__name__)

# PutEvents takes at most 10 entries and 256 KiB per call.
MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 256 * 1024

# How many PutEvents calls are made for entries that failed on EventBridge's side.
MAX_ROUNDS = 3

# Per-entry error codes worth resending; others (MalformedDetail, AccessDeniedException, ...) are not.
_RESENDABLE_CODES = frozenset({"InternalFailure", "InternalException", "ThrottlingException"})


@dataclass(frozen=True)
class EventEntry:
    """One event of a `put_events` call.

    Attributes:
        source: the event's `source`, for rules to match.
        detail_type: the event's `detail-type`.
        detail: the event body; a mapping is JSON-encoded, a string is sent as it is (it must be a JSON object).
        resources: ARNs the event is about.
    """

    source: str
    detail_type: str
    detail: Mapping[str, Any] | str
    resources: Sequence[str] = ()


def put_events(
    entries: Sequence[EventEntry],
    bus: str,
    deadline: Deadline | None = None,
    *,
    client: AwsClient | None = None,
) -> list[str]:
    """Put the events on `bus` (a name or an ARN) and return their event IDs, in entry order.

    Raises an `AwsError` subclass (chosen by the first failed entry's error code) when some entries
    still failed after resending. Its `failed_ids` contains the failed entries' positions as strings.
    """
    if not isinstance(bus, str) or not bus:
        raise ValueError(f"invalid event bus {bus!r}: expected a bus name or ARN")
    client = client or get_client()
    region = region_of_identifier(bus, expected_service="events", field="event bus") or client.region
    endpoint = resolve_endpoint(EVENTBRIDGE, region, client.environ)

    encoded = [_encode(entry, bus) for entry in entries]
    event_ids: list[str | None] = [None] * len(encoded)
    errors: dict[int, tuple[str, str]] = {}
    pending = list(range(len(encoded)))
    round_number = 1
    while pending:
        resend = []
        for chunk in _chunks(pending, encoded):
            response = client.call_json(
                EVENTBRIDGE,
                "PutEvents",
                {"Entries": [encoded[index] for index in chunk]},
                region=region,
                endpoint=endpoint,
                resource=f"event bus {bus}",
                deadline=deadline,
            )
            resend.extend(_collect(response, chunk, event_ids, errors))

        pending = resend
        if not pending or round_number >= MAX_ROUNDS or not client.wait_before_retry(round_number, deadline):
            break
        logger.info("resending %d events to bus %s (round %d)", len(pending), bus, round_number + 1)
        round_number += 1

    failed = [index for index, event_id in enumerate(event_ids) if event_id is None]
    if failed:
        raise _failure(failed, errors, len(encoded), bus)
    return [event_id for event_id in event_ids if event_id is not None]


def _encode(entry: EventEntry, bus: str) -> dict[str, Any]:
    detail = entry.detail if isinstance(entry.detail, str) else json.dumps(entry.detail, separators=(",", ":"))
    encoded: dict[str, Any] = {
        "Source": entry.source,
        "DetailType": entry.detail_type,
        "Detail": detail,
        "EventBusName": bus,
    }
    if entry.resources:
        encoded["Resources"] = list(entry.resources)
    return encoded


def _entry_size(encoded: Mapping[str, Any]) -> int:
    """Return an entry's size as EventBridge counts it: source, detail type, detail and resources, in bytes."""
    parts = [encoded["Source"], encoded["DetailType"], encoded["Detail"], *encoded.get("Resources", [])]
    return sum(len(part.encode()) for part in parts)


def _chunks(indexes: Sequence[int], encoded: Sequence[Mapping[str, Any]]) -> Iterator[list[int]]:
    chunk: list[int] = []
    size = 0
    for index in indexes:
        entry_size = _entry_size(encoded[index])
        if chunk and (len(chunk) == MAX_BATCH_ENTRIES or size + entry_size > MAX_BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(index)
        size += entry_size
    if chunk:
        yield chunk


def _collect(
    response: Mapping[str, Any],
    chunk: Sequence[int],
    event_ids: list[str | None],
    errors: dict[int, tuple[str, str]],
) -> list[int]:
    """Record event IDs and errors of one call; return the indexes worth resending.

    EventBridge returns one result per entry, in request order.
    """
    results = response.get("Entries") or []
    resend = []
    for position, index in enumerate(chunk):
        result = results[position] if position < len(results) else {}
        event_id = result.get("EventId")
        if event_id and not result.get("ErrorCode"):
            event_ids[index] = event_id
            errors.pop(index, None)
            continue

        code = result.get("ErrorCode") or "MissingResult"
        message = result.get("ErrorMessage") or "no result for this entry"
        errors[index] = (code, message)
        logger.warning("event %d failed: %s %s", index, code, message)
        if code in _RESENDABLE_CODES or code == "MissingResult":
            resend.append(index)
    return resend


def _failure(failed: Sequence[int], errors: Mapping[int, tuple[str, str]], total: int, bus: str) -> AwsError:
    code, message = errors.get(failed[0], ("MissingResult", "no result for this entry"))
    error_class = error_class_for(200, code)
    if code in _RESENDABLE_CODES or code == "MissingResult":
        error_class = AwsTransientError
    return error_class(
        f"{len(failed)} of {total} events failed; first failure: entry {failed[0]}: {message}",
        service=EVENTBRIDGE.name,
        operation="PutEvents",
        code=code,
        resource=f"event bus {bus}",
        failed_ids=[str(index) for index in failed],
    )
