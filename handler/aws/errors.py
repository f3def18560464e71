"""One exception hierarchy for every way an AWS call can fail, and the parser that builds it.

AWS returns errors in two body shapes: JSON (`__type` or `code`, and `message` or `Message`) for the
JSON-protocol services, and `<ErrorResponse><Error><Code>` XML for SNS's query protocol. SQS adds the
older query-protocol code in an `x-amzn-query-error` header. Each class says whether a retry can
help (`retryable`) and whether the fault lies in the deployment (`AwsConfigurationError`). Messages
name the service, operation and resource, and never contain credentials.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from typing import Iterable, Mapping

# Codes that mean "slow down": the same request succeeds later.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "KMSThrottlingException",
        "KmsThrottled",
        "TransactionInProgressException",
    }
)

# Codes that mean the service failed on its side, whatever the HTTP status is.
SERVER_ERROR_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServiceError",
        "InternalServiceErrorException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)

# Codes that mean the credentials are missing, wrong or expired, or the role lacks a permission.
CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "ExpiredToken",
        "ExpiredTokenException",
        "AccessDenied",
        "AccessDeniedException",
        "AuthorizationError",
        "KMSAccessDeniedException",
        "KmsAccessDenied",
    }
)

# Codes that mean the queue, topic, table, bus or secret named in the configuration does not exist.
MISSING_RESOURCE_CODES = frozenset(
    {
        "NotFound",
        "NotFoundException",
        "NonExistentQueue",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "ResourceNotFoundException",
        "ResourceNotFound",
    }
)

CONDITIONAL_CHECK_FAILED_CODE = "ConditionalCheckFailedException"

REDACTED = "[redacted]"

# Service messages are cut to this many characters, so a huge error body never floods a log line.
_MAX_DETAIL = 300


class AwsError(Exception):
    """Base of all AWS call failures.

    Attributes:
        service: the service's short name (`sqs`, `sns`, ...), or None before a call started.
        operation: the API operation (`SendMessage`, `Publish`, ...).
        status: HTTP status, or None when no response arrived.
        code: the AWS error code (`ThrottlingException`, `NotFound`, ...), when the body had one.
        request_id: AWS's request ID, for support cases.
        resource: what the call was about (queue URL, topic ARN, table name), never a secret.
        detail: the service's own message, or a sentence from this client.
        retry_after: seconds the server asked to wait (`Retry-After`), when it did.
        failed_ids: entry IDs of a batch call that finally failed, when the error is about a batch.
    """

    retryable = False

    def __init__(
        self,
        detail: str,
        *,
        service: str | None = None,
        operation: str | None = None,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        resource: str | None = None,
        retry_after: float | None = None,
        failed_ids: Iterable[str] = (),
    ) -> None:
        self.detail = detail
        self.service = service
        self.operation = operation
        self.status = status
        self.code = code
        self.request_id = request_id
        self.resource = resource
        self.retry_after = retry_after
        self.failed_ids = tuple(failed_ids)
        super().__init__(self._render())

    def _render(self) -> str:
        what = " ".join(part for part in (self.service, self.operation) if part)
        if self.resource:
            what = f"{what} on {self.resource}" if what else self.resource
        context = []
        if self.status is not None:
            context.append(f"HTTP {self.status}")
        if self.code:
            context.append(self.code)
        if self.request_id:
            context.append(f"request ID {self.request_id}")
        prefix = f"{what} failed" if what else "AWS call failed"
        if context:
            prefix = f"{prefix} ({', '.join(context)})"
        return f"{prefix}: {self.detail}"


class AwsTransientError(AwsError):
    """Throttling, a 5xx, a timeout or a dropped connection: the same request may succeed later."""

    retryable = True


class AwsConfigurationError(AwsError):
    """A fault of the deployment: missing or rejected credentials, a missing permission, a missing
    queue/topic/table/bus/secret, or an unusable setting. Retrying does not help; fixing the
    configuration does.

    Attributes:
        variable: the environment variable at fault, when one is.
    """

    def __init__(self, detail: str, *, variable: str | None = None, **context: object) -> None:
        self.variable = variable
        super().__init__(detail, **context)  # type: ignore[arg-type]


class AwsPermanentError(AwsError):
    """The service rejected the request itself (validation, size, a 4xx): do not retry it unchanged."""


class ConditionalCheckFailed(AwsError):
    """A DynamoDB conditional write found its condition false. An expected outcome for callers that
    write conditionally (for example "put unless it already exists"), so it is no failure of theirs.
    """


def error_code_from_type(raw: str | None) -> str | None:
    """Reduce an AWS error type to its bare code.

    JSON services send `com.amazonaws.dynamodb.v20120810#ResourceNotFoundException` in the body and
    sometimes `ValidationException:http://internal.amazon.com/...` in `x-amzn-ErrorType`: the code
    is the part after `#` and before `:`.
    """
    if not raw:
        return None
    code = raw.rsplit("#", 1)[-1].split(":", 1)[0].strip()
    return code or None


def parse_error_body(
    body: bytes | str | None, headers: Mapping[str, str] | None = None
) -> tuple[str | None, str | None, str | None]:
    """Return (error code, message, request ID) from a JSON or XML AWS error response.

    SQS's `x-amzn-query-error: AWS.SimpleQueueService.NonExistentQueue;Sender` header wins over the
    body's code, because it carries the code that older SQS clients and documentation use.
    """
    headers = headers or {}
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    stripped = text.strip()

    code, message, request_id = None, None, None
    if stripped.startswith("{"):
        code, message = _parse_json_error(stripped)
    elif stripped.startswith("<"):
        code, message, request_id = _parse_xml_error(stripped)
    elif stripped:
        message = stripped

    code = code or error_code_from_type(_header(headers, "x-amzn-ErrorType"))
    query_error = _header(headers, "x-amzn-query-error")
    if query_error:
        code = query_error.split(";", 1)[0].strip() or code

    request_id = request_id or _header(headers, "x-amzn-RequestId") or _header(headers, "x-amz-request-id")
    return code, _shorten(message), request_id


def error_class_for(status: int | None, code: str | None) -> type[AwsError]:
    """Choose the exception class for an error code and HTTP status; the code decides first."""
    if code == CONDITIONAL_CHECK_FAILED_CODE:
        return ConditionalCheckFailed
    if code in THROTTLING_CODES or code in SERVER_ERROR_CODES:
        return AwsTransientError
    if code in CREDENTIAL_CODES or code in MISSING_RESOURCE_CODES:
        return AwsConfigurationError
    if status is None or status == 429 or status >= 500:
        return AwsTransientError
    if status in (401, 403):
        return AwsConfigurationError
    return AwsPermanentError


def error_from_response(
    status: int,
    body: bytes | str | None,
    headers: Mapping[str, str],
    *,
    service: str,
    operation: str,
    resource: str | None = None,
    redact: Iterable[str] = (),
) -> AwsError:
    """Build the exception that an AWS error response stands for.

    Every string in `redact` (a task token, for example) is replaced in the service's message, since
    some services quote the request's values back.
    """
    code, message, request_id = parse_error_body(body, headers)
    detail = redact_text(message or f"HTTP {status} with no error message", redact)
    error_class = error_class_for(status, code)
    return error_class(
        detail,
        service=service,
        operation=operation,
        status=status,
        code=code,
        request_id=request_id,
        resource=resource,
        retry_after=_retry_after(_header(headers, "Retry-After")),
    )


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret in `text` with a fixed marker."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def _parse_json_error(text: str) -> tuple[str | None, str | None]:
    try:
        data = json.loads(text)
    except ValueError:
        return None, text
    if not isinstance(data, dict):
        return None, text

    code = error_code_from_type(_text(data.get("__type")) or _text(data.get("code")) or _text(data.get("Code")))
    message = _text(data.get("message")) or _text(data.get("Message"))
    return code, message


def _parse_xml_error(text: str) -> tuple[str | None, str | None, str | None]:
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        return None, text, None

    code, message, request_id = None, None, None
    for element in root.iter():
        name = _local_name(element.tag)
        value = (element.text or "").strip() or None
        if name == "Code" and code is None:
            code = value
        elif name == "Message" and message is None:
            message = value
        elif name in ("RequestId", "RequestID") and request_id is None:
            request_id = value
    return code, message, request_id


def _local_name(tag: str) -> str:
    """Return an XML tag without its `{namespace}` prefix."""
    return tag.rsplit("}", 1)[-1]


def _text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if seconds < 0 or seconds != seconds:
        return None
    return seconds


def _shorten(message: str | None) -> str | None:
    if message is None:
        return None
    message = " ".join(message.split())
    if len(message) > _MAX_DETAIL:
        message = message[:_MAX_DETAIL] + "..."
    return message
