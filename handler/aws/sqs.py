"""SQS calls the function needs: send (one or in batches), receive, delete, read queue attributes.

The function never creates queues: their names and settings belong to the deployment. A queue URL
only chooses the region: without a configured endpoint the request goes to that region's standard
SQS endpoint, and a URL on any other host is rejected (see `handler.aws.endpoints.queue_endpoint`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from handler.aws.attributes import attribute_size, validated_attributes
from handler.aws.client import AwsClient, get_client
from handler.aws.endpoints import SQS, queue_endpoint
from handler.aws.errors import AwsConfigurationError, AwsError
from handler.retry import Deadline

logger = logging.getLogger(__name__)

# SQS takes at most 10 entries per batch call.
MAX_BATCH_ENTRIES = 10

# A batch call's total payload stays within 256 KiB, SQS's long-standing message and batch size limit.
MAX_BATCH_BYTES = 256 * 1024

# How many times a batch call is made for entries that failed without a sender fault.
MAX_BATCH_ROUNDS = 3

# SQS batch entry IDs: at most 80 letters, digits, hyphens and underscores.
_ENTRY_ID = re.compile(r"[A-Za-z0-9_-]{1,80}", re.ASCII)

# Long polling waits at most 20 s on the server; the read timeout is extended by the wait.
_MAX_WAIT_SECONDS = 20


@dataclass(frozen=True)
class BatchEntry:
    """One message of a `send_message_batch` call.

    Attributes:
        id: the entry ID, unique within the call; `send_message_batch` returns the IDs that failed.
        body: the message body.
        attributes: String message attributes.
        group_id: `MessageGroupId`, required by FIFO queues.
        dedup_id: `MessageDeduplicationId`, for FIFO queues without content-based deduplication.
    """

    id: str
    body: str
    attributes: Mapping[str, str] | None = None
    group_id: str | None = None
    dedup_id: str | None = None


def send_message(
    queue_url: str,
    body: str,
    attributes: Mapping[str, str] | None = None,
    group_id: str | None = None,
    dedup_id: str | None = None,
    deadline: Deadline | None = None,
    *,
    client: AwsClient | None = None,
) -> str:
    """Send one message and return its SQS message ID.

    A transport error or timeout is retried as the AWS SDKs do, so a message that did arrive may be
    sent twice. A FIFO queue's `dedup_id` removes such duplicates.
    """
    client = client or get_client()
    payload = {"QueueUrl": queue_url, **_message_fields(body, attributes, group_id, dedup_id)}
    response = _call(client, "SendMessage", queue_url, payload, deadline)
    return str(response.get("MessageId", ""))


def send_message_batch(
    queue_url: str,
    entries: Sequence[BatchEntry],
    deadline: Deadline | None = None,
    *,
    client: AwsClient | None = None,
) -> list[str]:
    """Send messages in calls of up to 10 and return the IDs of the entries that finally failed.

    Entries that fail without a sender fault (a fault on SQS's side) are sent again, in at most
    `MAX_BATCH_ROUNDS` calls and never past the deadline. Entries with a sender fault fail at once. An empty
    list means every message was sent. A configuration fault (missing queue, denied access) raises.

    NOTE: on a FIFO queue a resent entry can land after later entries of its group; callers that
    need strict order within a group send it with `send_message` instead.
    """
    client = client or get_client()
    _check_entry_ids([entry.id for entry in entries])
    prepared = [
        _Prepared(
            entry.id,
            {"Id": entry.id, **_message_fields(entry.body, entry.attributes, entry.group_id, entry.dedup_id)},
            len(entry.body.encode()) + attribute_size(validated_attributes(entry.attributes)),
        )
        for entry in entries
    ]
    return _run_batches(client, "SendMessageBatch", queue_url, prepared, deadline)


def receive_message(
    queue_url: str,
    max_messages: int = 1,
    wait_seconds: int = 0,
    visibility_timeout: int | None = None,
    deadline: Deadline | None = None,
    *,
    client: AwsClient | None = None,
) -> list[dict[str, Any]]:
    """Receive up to `max_messages` (1 to 10) messages, with all system and message attributes.

    Each message is SQS's own JSON (`MessageId`, `ReceiptHandle`, `Body`, `Attributes`,
    `MessageAttributes`). `wait_seconds` (0 to 20) turns on long polling.
    """
    if not 1 <= max_messages <= MAX_BATCH_ENTRIES:
        raise ValueError(f"invalid max_messages {max_messages!r}: expected 1 to {MAX_BATCH_ENTRIES}")
    if not 0 <= wait_seconds <= _MAX_WAIT_SECONDS:
        raise ValueError(f"invalid wait_seconds {wait_seconds!r}: expected 0 to {_MAX_WAIT_SECONDS}")

    client = client or get_client()
    payload: dict[str, Any] = {
        "QueueUrl": queue_url,
        "MaxNumberOfMessages": max_messages,
        "WaitTimeSeconds": wait_seconds,
        "MessageSystemAttributeNames": ["All"],
        "MessageAttributeNames": ["All"],
    }
    if visibility_timeout is not None:
        payload["VisibilityTimeout"] = visibility_timeout
    response = _call(client, "ReceiveMessage", queue_url, payload, deadline, extra_read_timeout=wait_seconds)
    return list(response.get("Messages") or [])


def delete_message(
    queue_url: str, receipt_handle: str, deadline: Deadline | None = None, *, client: AwsClient | None = None
) -> None:
    """Delete one received message by its receipt handle."""
    client = client or get_client()
    payload = {"QueueUrl": queue_url, "ReceiptHandle": receipt_handle}
    _call(client, "DeleteMessage", queue_url, payload, deadline)


def delete_message_batch(
    queue_url: str,
    receipt_handles: Mapping[str, str],
    deadline: Deadline | None = None,
    *,
    client: AwsClient | None = None,
) -> list[str]:
    """Delete messages in calls of up to 10; `receipt_handles` maps entry IDs to receipt handles.

    Returns the entry IDs that finally failed, with the same resending rules as `send_message_batch`.
    """
    client = client or get_client()
    _check_entry_ids(list(receipt_handles))
    prepared = [
        _Prepared(entry_id, {"Id": entry_id, "ReceiptHandle": handle}, len(handle))
        for entry_id, handle in receipt_handles.items()
    ]
    return _run_batches(client, "DeleteMessageBatch", queue_url, prepared, deadline)


def get_queue_attributes(
    queue_url: str,
    names: Sequence[str] = ("All",),
    deadline: Deadline | None = None,
    *,
    client: AwsClient | None = None,
) -> dict[str, str]:
    """Return the queue's attributes (`ApproximateNumberOfMessages`, `RedrivePolicy`, ...) as strings."""
    client = client or get_client()
    payload = {"QueueUrl": queue_url, "AttributeNames": list(names)}
    response = _call(client, "GetQueueAttributes", queue_url, payload, deadline)
    return dict(response.get("Attributes") or {})


@dataclass(frozen=True)
class _Prepared:
    """A batch entry as sent: its ID, its JSON and its size in bytes."""

    id: str
    payload: dict[str, Any]
    size: int


def _call(
    client: AwsClient,
    operation: str,
    queue_url: str,
    payload: Mapping[str, Any],
    deadline: Deadline | None,
    extra_read_timeout: float = 0.0,
) -> dict[str, Any]:
    if not isinstance(queue_url, str) or not queue_url:
        raise AwsConfigurationError(f"invalid queue URL {queue_url!r}: expected a non-empty string")
    endpoint, region = queue_endpoint(queue_url, _configured_region(client), client.environ)
    return client.call_json(
        SQS,
        operation,
        payload,
        region=region,
        endpoint=endpoint,
        resource=queue_url,
        deadline=deadline,
        extra_read_timeout=extra_read_timeout,
    )


def _configured_region(client: AwsClient) -> str | None:
    """Return the client's region, or None when unset: a queue URL on an AWS host carries its own."""
    try:
        return client.region
    except AwsConfigurationError:
        return None


def _message_fields(
    body: str, attributes: Mapping[str, str] | None, group_id: str | None, dedup_id: str | None
) -> dict[str, Any]:
    if not isinstance(body, str):
        raise ValueError(f"invalid message body of type {type(body).__name__}: expected a string")

    fields: dict[str, Any] = {"MessageBody": body}
    checked = validated_attributes(attributes)
    if checked:
        fields["MessageAttributes"] = {
            name: {"DataType": "String", "StringValue": value} for name, value in checked.items()
        }
    if group_id is not None:
        fields["MessageGroupId"] = group_id
    if dedup_id is not None:
        fields["MessageDeduplicationId"] = dedup_id
    return fields


def _check_entry_ids(ids: Sequence[str]) -> None:
    seen: set[str] = set()
    for entry_id in ids:
        if not isinstance(entry_id, str) or not _ENTRY_ID.fullmatch(entry_id):
            raise ValueError(
                f"invalid batch entry ID {entry_id!r}: expected 1 to 80 letters, digits, '-' or '_'"
            )
        if entry_id in seen:
            raise ValueError(f"duplicate batch entry ID {entry_id!r}: IDs must be unique within a call")
        seen.add(entry_id)


def _run_batches(
    client: AwsClient,
    operation: str,
    queue_url: str,
    entries: Sequence[_Prepared],
    deadline: Deadline | None,
) -> list[str]:
    """Make batch calls until every entry succeeded or failed for good; return the failed IDs in input order."""
    failed: set[str] = set()
    pending = list(entries)
    round_number = 1
    while pending:
        retry: list[_Prepared] = []
        for chunk in _chunks(pending):
            retry.extend(_run_one_batch(client, operation, queue_url, chunk, deadline, failed))

        pending = retry
        if not pending:
            break
        if round_number >= MAX_BATCH_ROUNDS or not client.wait_before_retry(round_number, deadline):
            break
        logger.info("resending %d %s entries to %s (round %d)", len(pending), operation, queue_url, round_number + 1)
        round_number += 1

    for entry in pending:
        failed.add(entry.id)
    if failed:
        logger.warning("%s to %s: %d of %d entries failed", operation, queue_url, len(failed), len(entries))
    return [entry.id for entry in entries if entry.id in failed]


def _run_one_batch(
    client: AwsClient,
    operation: str,
    queue_url: str,
    chunk: Sequence[_Prepared],
    deadline: Deadline | None,
    failed: set[str],
) -> list[_Prepared]:
    """Make one batch call; add sender-fault IDs to `failed` and return the entries worth resending."""
    payload = {"QueueUrl": queue_url, "Entries": [entry.payload for entry in chunk]}
    try:
        response = _call(client, operation, queue_url, payload, deadline)
    except AwsConfigurationError:
        raise
    except AwsError as error:
        logger.warning("%s to %s failed for %d entries: %s", operation, queue_url, len(chunk), error)
        if error.retryable:
            return list(chunk)
        failed.update(entry.id for entry in chunk)
        return []

    succeeded = {item.get("Id") for item in response.get("Successful") or []}
    resend = []
    for item in response.get("Failed") or []:
        entry_id = item.get("Id")
        if entry_id in succeeded:
            continue
        logger.warning(
            "%s entry %s to %s failed: %s %s (sender fault: %s)",
            operation,
            entry_id,
            queue_url,
            item.get("Code"),
            item.get("Message"),
            item.get("SenderFault"),
        )
        if item.get("SenderFault"):
            failed.add(str(entry_id))

    # Whatever is neither a success nor a sender fault (including entries SQS did not mention) is resent.
    for entry in chunk:
        if entry.id not in succeeded and entry.id not in failed:
            resend.append(entry)
    return resend


def _chunks(entries: Sequence[_Prepared]) -> Iterator[list[_Prepared]]:
    """Split entries into calls of at most 10 entries and `MAX_BATCH_BYTES` (a larger entry goes alone)."""
    chunk: list[_Prepared] = []
    size = 0
    for entry in entries:
        if chunk and (len(chunk) == MAX_BATCH_ENTRIES or size + entry.size > MAX_BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(entry)
        size += entry.size
    if chunk:
        yield chunk
