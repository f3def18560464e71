"""One exception hierarchy for every way a CSS call can fail, and the classifier that builds it.

CSS returns errors in three body shapes: its own `{"errCode", "externalMessage"}`, the API gateway's
`{"error_code", "error_msg", "request_id"}`, and HTML or empty bodies from proxies. CSS also reuses
HTTP statuses (internal error `CSS.0036`, busy `CSS.6013` and not found `CSS.0047` all arrive as 400;
busy `CSS.0011` as 202 or 409), so the error code decides first and the status only second.

Each class tells its caller whether a retry can help (`retryable`) and whether the fault lies in the
deployment rather than in the message (`CssConfigurationError`). Messages name the operation, cluster,
HTTP status, error code and request ID, and never contain credentials.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

# Error codes, grouped by what they mean for the caller.
NOT_FOUND_CODES = frozenset({"CSS.0015", "CSS.0047", "CSS.0002", "CSS.0022", "CSS.3027"})
ACCESS_DENIED_CODES = frozenset({"CSS.0010", "CSS.5045", "APIGW.0302", "APIGW.0303"})
THROTTLED_CODES = frozenset({"APIGW.0308", "APIG.0308"})
BUSY_CODES = frozenset({"CSS.0011", "CSS.6013", "CSS.0029", "CSS.3004"})
SERVER_ERROR_CODES = frozenset({"CSS.0036", "CSS.0005", "CSS.1004", "CSS.9999"})
CREDENTIAL_CODES = frozenset({"APIGW.0301", "APIG.0301", "APIGW.0101"})

# HTML and plain-text bodies are cut to this many characters in messages.
_BODY_EXCERPT = 120


class CssError(Exception):
    """Base of all CSS API failures.

    Attributes:
        retryable: whether the same request may succeed later.
        status: HTTP status, or None when no response arrived.
        error_code: `CSS.xxxx` or `APIGW.xxxx` from the body, when the body had one.
        request_id: the gateway's request ID (`X-Request-Id` header or `request_id` field), for support tickets.
        retry_after: seconds the server asked to wait (`Retry-After`), when it did.
    """

    retryable = False
    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        operation: str | None = None,
        cluster_id: str | None = None,
        status: int | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.detail = message
        self.operation = operation
        self.cluster_id = cluster_id
        self.status = status
        self.error_code = error_code
        self.request_id = request_id
        self.retry_after = retry_after
        super().__init__(self._render())

    def _render(self) -> str:
        context = []
        if self.operation:
            context.append(self.operation)
        if self.cluster_id:
            context.append(f"cluster {self.cluster_id}")
        if self.status is not None:
            context.append(f"HTTP {self.status}")
        if self.error_code:
            context.append(self.error_code)
        if self.request_id:
            context.append(f"request ID {self.request_id}")
        prefix = f"{', '.join(context)}: " if context else ""
        return f"{prefix}{self.detail}"


class CssTransientError(CssError):
    """A failure that may pass: retry later."""

    retryable = True
    kind = "transient"


class ThrottledError(CssTransientError):
    kind = "throttled"


class BusyError(CssTransientError):
    """Another operation is running on the cluster."""

    kind = "busy"


class ServerError(CssTransientError):
    """A 5xx, an internal-error code, or a success body that cannot be read."""

    kind = "server_error"


class TransportError(CssTransientError):
    """No usable response: timeout, connection refused or reset, TLS failure."""

    kind = "transport_error"


class DeadlineExceeded(CssTransientError):
    """The caller's deadline came before the call could succeed."""

    kind = "deadline"


class CssPermanentError(CssError):
    """A failure that repeats for the same request: do not retry it unchanged."""

    kind = "permanent"


class NotFoundError(CssPermanentError):
    kind = "not_found"


class AccessDeniedError(CssPermanentError):
    kind = "access_denied"


class InvalidRequestError(CssPermanentError):
    """CSS rejected the request as invalid (for example an upgrade type the region does not offer)."""

    kind = "invalid_request"


class CssConfigurationError(CssError):
    """A fault of the deployment, not of the message: credentials missing or rejected, bad signature."""

    kind = "configuration"


class CredentialError(CssConfigurationError):
    kind = "credentials"


def parse_error_body(body: bytes | str | None) -> tuple[str | None, str | None, str | None]:
    """Return (error code, message, request ID) from any of the three CSS error body shapes."""
    if body is None:
        return None, None, None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    stripped = text.strip()
    if not stripped:
        return None, None, None

    try:
        data = json.loads(stripped)
    except ValueError:
        return None, _excerpt(stripped), None
    if not isinstance(data, dict):
        return None, _excerpt(stripped), None

    code = _first_text(data, "errCode", "error_code", "errorCode", "code")
    message = _first_text(data, "externalMessage", "error_msg", "errorMsg", "message")
    request_id = _first_text(data, "request_id", "requestId")
    return code, message, request_id


def classify(
    status: int,
    body: bytes | str | None,
    headers: Mapping[str, str] | None = None,
    *,
    operation: str | None = None,
    cluster_id: str | None = None,
) -> CssError | None:
    """Return the exception an HTTP response stands for, or None when it is a success.

    A 2xx whose body carries an `errCode` is an error too (CSS returns "busy" as 202 with `CSS.0011`).
    """
    code, message, request_id = parse_error_body(body)
    headers = headers or {}
    request_id = request_id or _header(headers, "X-Request-Id")

    if 200 <= status < 300 and code is None:
        return None

    error_class = _class_for(status, code)
    retry_after = _retry_after(_header(headers, "Retry-After"))
    if not message:
        message = _default_message(status)
    return error_class(
        message,
        operation=operation,
        cluster_id=cluster_id,
        status=status,
        error_code=code,
        request_id=request_id,
        retry_after=retry_after,
    )


def _class_for(status: int, code: str | None) -> type[CssError]:
    if code in CREDENTIAL_CODES:
        return CredentialError
    if code in THROTTLED_CODES:
        return ThrottledError
    if code in BUSY_CODES:
        return BusyError
    if code in SERVER_ERROR_CODES:
        return ServerError
    if code in NOT_FOUND_CODES:
        return NotFoundError
    if code in ACCESS_DENIED_CODES:
        return AccessDeniedError

    if status == 401:
        return CredentialError
    if status == 429:
        return ThrottledError
    if status == 409:
        return BusyError
    if status >= 500:
        return ServerError
    if status == 404:
        return NotFoundError
    if status == 403:
        return AccessDeniedError
    if 400 <= status < 500:
        return InvalidRequestError
    # A 2xx or 3xx carrying an unknown error code: the request did not do what was asked, and CSS
    # gave no sign that repeating it can help.
    return InvalidRequestError


def _default_message(status: int) -> str:
    if status >= 500:
        return "the server failed without an error body"
    return "the request failed without an error body"


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        # The HTTP-date form is legal but not used by the API gateway; ignore it rather than guess.
        return None
    if seconds < 0 or seconds != seconds:
        return None
    return seconds


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _first_text(data: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return None


def _excerpt(text: str) -> str:
    # An HTML error page: its <style> and <script> blocks are not text, and its first heading (or
    # else its title) describes the failure.
    text = re.sub(r"(?is)<(style|script)\b.*?</\1\s*>", " ", text)
    for tag in ("h1", "title"):
        heading = re.search(rf"(?is)<{tag}\b[^>]*>(.*?)</{tag}\s*>", text)
        if heading and heading.group(1).strip():
            text = heading.group(1)
            break
    plain = re.sub(r"<[^>]*>", " ", text)
    plain = " ".join(plain.split())
    if len(plain) > _BODY_EXCERPT:
        plain = plain[:_BODY_EXCERPT] + "..."
    return plain or "unreadable error body"
