"""Replies of the emulator in the body shapes that the real CSS API and its gateway send.

Three error shapes exist: the CSS backend's `{"errCode", "externalMessage"}`, the API gateway's
`{"error_code", "error_msg", "request_id"}`, and an HTML page from the Tomcat layer for 5xx.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

JSON_TYPE = "application/json;charset=UTF-8"
HTML_TYPE = "text/html;charset=utf-8"

# Default HTTP status and message text of the CSS error codes the emulator sends. Texts are the
# emulator's own wording of each code's documented meaning.
CSS_ERRORS: dict[str, tuple[int, str]] = {
    "CSS.0001": (400, "Invalid request parameter."),
    "CSS.0006": (400, "A required parameter is empty."),
    "CSS.0010": (403, "You are not authorized to perform this operation."),
    "CSS.0011": (409, "The instance is busy because another operation is being performed on the cluster."),
    "CSS.0015": (403, "The resource does not exist or you have no access to it."),
    "CSS.0036": (400, "Internal error."),
    "CSS.0047": (400, "The cluster does not exist or has been deleted."),
    "CSS.0078": (400, "The cluster status does not allow an upgrade."),
    "CSS.5130": (400, "The agency name is invalid."),
    "CSS.5140": (400, "The operation is not supported in the current state."),
    "CSS.6013": (400, "Another operation is being performed on the cluster. Try again later."),
    "CSS.5301": (400, "The cluster is frozen."),
}

# Default HTTP status and message of the API gateway codes the emulator sends.
GATEWAY_ERRORS: dict[str, tuple[int, str]] = {
    "APIGW.0101": (404, "The API does not exist or has not been published in the environment"),
    "APIGW.0301": (401, "Incorrect IAM authentication information: verify aksk signature fail"),
    "APIGW.0302": (403, "The IAM user is not authorized to access the API"),
    "APIGW.0308": (429, "The throttling threshold has been reached: policy user over ratelimit,limit:200,time:1 second"),
}


@dataclass
class Reply:
    """An HTTP response to send: status, body bytes and extra headers.

    With `reset` set, the server closes the connection with a TCP reset and sends no response.
    """

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False


def json_reply(status: int, payload: Any) -> Reply:
    """Reply with a compact JSON body."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Reply(status, body, JSON_TYPE)


def empty_reply(status: int = 200) -> Reply:
    """Reply with no body, as UpgradeCore and RetryUpgradeTask do on success."""
    return Reply(status)


def css_error(code: str, message: str | None = None, status: int | None = None) -> Reply:
    """Reply with a CSS backend error body: `{"errCode": code, "externalMessage": "code : message"}`."""
    default_status, default_message = CSS_ERRORS.get(code, (400, "The request failed."))
    text = message or default_message
    return json_reply(status or default_status, {"errCode": code, "externalMessage": f"{code} : {text}"})


def gateway_error(request_id: str, code: str, message: str | None = None, status: int | None = None) -> Reply:
    """Reply with an API gateway error body: `{"error_code", "error_msg", "request_id"}`."""
    default_status, default_message = GATEWAY_ERRORS.get(code, (400, "The request was rejected by the gateway"))
    payload = {"error_code": code, "error_msg": message or default_message, "request_id": request_id}
    return json_reply(status or default_status, payload)


def throttled(request_id: str, retry_after: int) -> Reply:
    """Reply 429 with APIGW.0308 and a `Retry-After` header in seconds."""
    reply = gateway_error(request_id, "APIGW.0308")
    reply.headers["Retry-After"] = str(retry_after)
    return reply


def html_error(status: int = 500) -> Reply:
    """Reply with a Tomcat-style HTML error page, as the CSS middleware layer sends for 5xx."""
    phrase = _phrase(status)
    page = (
        '<!doctype html><html lang="en"><head>'
        f"<title>HTTP Status {status} \u2013 {phrase}</title>"
        '<style type="text/css">body {font-family:Tahoma,Arial,sans-serif;} h1 {font-size:22px;} '
        ".line {height:1px;background-color:#525D76;border:none;}</style>"
        f"</head><body><h1>HTTP Status {status} \u2013 {phrase}</h1>"
        '<hr class="line" /><p><b>Type</b> Status Report</p>'
        "<p><b>Description</b> The server encountered an unexpected condition that prevented it "
        "from fulfilling the request.</p>"
        '<hr class="line" /><h3>CloudMiddleWareTomcat</h3></body></html>'
    )
    return Reply(status, page.encode("utf-8"), HTML_TYPE)


def truncated_json(reply: Reply) -> Reply:
    """Return a 200 reply with the first half of a reply's body, so that the client receives malformed JSON."""
    if not reply.body:
        return Reply(200, b'{"', JSON_TYPE)
    return Reply(200, reply.body[: max(1, len(reply.body) // 2)], JSON_TYPE)


def reason_phrase(status: int) -> str:
    """Return the standard reason phrase of an HTTP status, or an empty string for an unknown status."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _phrase(status: int) -> str:
    return reason_phrase(status) or "Error"
