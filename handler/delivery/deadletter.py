"""Sending a message that can never succeed to the work queue's dead-letter queue at once.

The original body travels unchanged; why it failed travels in the message attributes
`error_reason` (a code such as `invalid_message` or `cluster_not_found`) and `error_detail` (one
sentence). Messages that SQS itself redrives after `maxReceiveCount` carry no such attributes, which
is how an operator tells the two apart.
"""

from __future__ import annotations

from handler.aws import sqs
from handler.aws.client import AwsClient
from handler.retry import NO_DEADLINE, Deadline

# SQS message attribute values are limited only by the 256 KB message size; a sentence is plenty.
_MAX_DETAIL = 1000


def dead_letter(
    queue_url: str,
    body: str,
    *,
    reason: str,
    detail: str,
    message_id: str,
    group_id: str | None,
    client: AwsClient,
    deadline: Deadline = NO_DEADLINE,
) -> None:
    """Send `body` unchanged to the dead-letter queue with the reason in message attributes."""
    fifo = queue_url.endswith(".fifo")
    sqs.send_message(
        queue_url,
        body,
        attributes={"error_reason": reason, "error_detail": detail[:_MAX_DETAIL]},
        # A FIFO dead-letter queue needs a group; the original message ID makes a resend after a
        # crash a duplicate that SQS drops within its five-minute deduplication window.
        group_id=(group_id or "dead-letter") if fifo else None,
        dedup_id=message_id if fifo else None,
        client=client,
        deadline=deadline,
    )
