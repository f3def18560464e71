"""SNS publishing over the query protocol: the message, a cleaned subject and String message attributes.

The topic ARN decides the region: a topic in another region is published to through that region's
endpoint, signed for that region.
"""

from __future__ import annotations

import logging
import unicodedata
from typing import Mapping

from handler.aws.attributes import validated_attributes
from handler.aws.client import AwsClient, find_text, get_client
from handler.aws.endpoints import SNS, parse_arn, resolve_endpoint
from handler.aws.errors import AwsConfigurationError, AwsTransientError
from handler.retry import Deadline

logger = logging.getLogger(__name__)

# SNS subjects: printable ASCII, no line breaks, at most 100 characters.
MAX_SUBJECT_LENGTH = 100
_ELLIPSIS = "..."


def publish(
    topic_arn: str,
    message: str,
    subject: str | None = None,
    attributes: Mapping[str, str] | None = None,
    group_id: str | None = None,
    dedup_id: str | None = None,
    deadline: Deadline | None = None,
    *,
    client: AwsClient | None = None,
    message_structure: str | None = None,
) -> str:
    """Publish `message` to the topic and return SNS's message ID.

    With `message_structure="json"`, `message` is a JSON object of per-protocol messages whose
    `default` key is required (for example `{"default": ..., "email": ...}`).

    The subject is cleaned to what SNS accepts (see `clean_subject`) and left out when nothing
    remains. FIFO topics need `group_id`, and `dedup_id` unless content-based deduplication is on.
    """
    if not isinstance(message, str) or not message:
        raise ValueError("invalid SNS message: expected a non-empty string")
    client = client or get_client()
    arn = parse_arn(topic_arn, expected_service="sns", field="topic ARN")
    if not arn.region:
        raise AwsConfigurationError(f"topic ARN {topic_arn!r} has no region", resource=topic_arn)

    params = {"TopicArn": topic_arn, "Message": message}
    if message_structure is not None:
        if message_structure != "json":
            raise ValueError(f"invalid SNS message structure {message_structure!r}: expected 'json'")
        params["MessageStructure"] = message_structure
    cleaned_subject = clean_subject(subject)
    if cleaned_subject:
        params["Subject"] = cleaned_subject
    params.update(_attribute_params(validated_attributes(attributes)))
    if group_id is not None:
        params["MessageGroupId"] = group_id
    if dedup_id is not None:
        params["MessageDeduplicationId"] = dedup_id

    root = client.call_query(
        SNS,
        "Publish",
        params,
        region=arn.region,
        endpoint=resolve_endpoint(SNS, arn.region, client.environ),
        resource=topic_arn,
        deadline=deadline,
    )
    message_id = find_text(root, "MessageId")
    if not message_id:
        raise AwsTransientError("Publish response has no MessageId", service=SNS.name, operation="Publish", resource=topic_arn)
    logger.debug("published message %s to %s", message_id, topic_arn)
    return message_id


def clean_subject(subject: str | None) -> str | None:
    """Return `subject` as SNS accepts it, or None when nothing printable remains.

    Accented letters lose their accents, other non-ASCII characters are dropped, line breaks and
    other control characters become spaces, runs of spaces shrink to one, and a subject longer
    than 100 characters is cut and ends in "...".
    """
    if subject is None:
        return None
    decomposed = unicodedata.normalize("NFKD", subject)
    ascii_only = decomposed.encode("ascii", "ignore").decode("ascii")
    printable = "".join(char if char.isprintable() else " " for char in ascii_only)
    cleaned = " ".join(printable.split())
    if len(cleaned) > MAX_SUBJECT_LENGTH:
        cleaned = cleaned[: MAX_SUBJECT_LENGTH - len(_ELLIPSIS)].rstrip() + _ELLIPSIS
    return cleaned or None


def _attribute_params(attributes: Mapping[str, str]) -> dict[str, str]:
    """Encode attributes the query-protocol way: `MessageAttributes.entry.N.Name` and `.Value.*`, N from 1."""
    params = {}
    for number, (name, value) in enumerate(attributes.items(), start=1):
        prefix = f"MessageAttributes.entry.{number}"
        params[f"{prefix}.Name"] = name
        params[f"{prefix}.Value.DataType"] = "String"
        params[f"{prefix}.Value.StringValue"] = value
    return params
