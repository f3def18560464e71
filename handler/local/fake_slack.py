"""A stand-in for Slack on 127.0.0.1, for the tests and the workflow demo.

It plays both of Slack's parts. As Slack's servers it records every JSON post the function sends to a
`response_url` or to the approval incoming webhook. As Slack's client it builds the signed function
URL events that Slack would send the webhook: a slash command, and a click on a button of a recorded
approval request. Nothing here talks to the real Slack.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

from handler import slack_approval, slack_signature

DEFAULT_SIGNING_SECRET = "fake-slack-signing-secret-for-local-runs"
TEAM_ID = "T0LOCAL01"
CHANNEL_ID = "C0LOCAL01"
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
APPROVAL_WEBHOOK_PATH = "/services/T0LOCAL01/B0LOCAL01/approval"


@dataclass
class Post:
    """One request the function sent to the fake Slack."""

    path: str
    headers: dict[str, str]
    raw: bytes = field(repr=False)

    @property
    def body(self) -> Any:
        """The JSON body, or None when it is not JSON."""
        try:
            return json.loads(self.raw)
        except ValueError:
            return None


class FakeSlack:
    """Records posts on 127.0.0.1 and signs requests to the webhook with `signing_secret`.

    Parameters
    ----------
    signing_secret:
        The app's signing secret: set the same value as `SLACK_SIGNING_SECRET` of the webhook.
    clock:
        Unix time for request timestamps.

    Example
    -------
    >>> with FakeSlack() as slack:
    ...     event = slack.slash_command("check ea244205-d641-45d9-9dcb-ab2236bcd07e", user_id="U0APPROVER1")
    """

    def __init__(self, signing_secret: str = DEFAULT_SIGNING_SECRET, *, clock=time.time) -> None:
        self.signing_secret = signing_secret
        self._clock = clock
        self._posts: list[Post] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._statuses: list[int] = []
        self._server: ThreadingHTTPServer | None = None

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> "FakeSlack":
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-slack", daemon=True).start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> "FakeSlack":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- Slack's servers --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake Slack is not running: call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def response_url(self, name: str | None = None) -> str:
        """Return a fresh `response_url` such as Slack sends with each command and click."""
        return f"{self.url}/commands/{TEAM_ID}/{name or uuid.uuid4().hex[:12]}"

    @property
    def approval_webhook_url(self) -> str:
        """The incoming-webhook URL for approval requests (`SLACK_APPROVAL_WEBHOOK_URL`)."""
        return self.url + APPROVAL_WEBHOOK_PATH

    @property
    def posts(self) -> list[Post]:
        """A copy of every post received, oldest first."""
        with self._lock:
            return list(self._posts)

    def posts_to(self, url_or_path: str) -> list[Post]:
        """Return the posts sent to one URL (or path)."""
        path = url_or_path[len(self.url):] if url_or_path.startswith(self.url) else url_or_path
        return [post for post in self.posts if post.path == path]

    def approval_requests(self) -> list[Post]:
        return self.posts_to(APPROVAL_WEBHOOK_PATH)

    def wait_for_posts(self, count: int, timeout: float = 5.0) -> list[Post]:
        """Wait until at least `count` posts arrived; return them (fewer when the timeout passed)."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self._posts) >= count, timeout)
            return list(self._posts)

    def answer_next(self, *statuses: int) -> None:
        """Answer the next posts with these HTTP statuses (then 200 again), to test failures."""
        with self._lock:
            self._statuses.extend(statuses)

    def _record(self, post: Post) -> int:
        with self._arrived:
            self._posts.append(post)
            self._arrived.notify_all()
            return self._statuses.pop(0) if self._statuses else 200

    # -- Slack's client: requests to the webhook --------------------------------------------------

    def slash_command(
        self,
        text: str,
        *,
        user_id: str = "U0LOCALUSER",
        response_url: str | None = None,
        trigger_id: str | None = None,
        command: str = "/css",
        base64_body: bool = True,
        timestamp: int | None = None,
    ) -> dict[str, Any]:
        """Return the signed function URL event of a slash command, as Slack sends it."""
        form = {
            "token": "deprecated-verification-token",
            "team_id": TEAM_ID,
            "team_domain": "local",
            "channel_id": CHANNEL_ID,
            "channel_name": "css-upgrades",
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0LOCAL01",
            "response_url": response_url if response_url is not None else self.response_url(),
            "trigger_id": trigger_id or f"{int(self._clock())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:32]}",
        }
        return self.signed_event("/slack/commands", urlencode(form).encode(), base64_body=base64_body, timestamp=timestamp)

    def click(
        self,
        approval: Post,
        *,
        approve: bool,
        user_id: str,
        response_url: str | None = None,
        timestamp: int | None = None,
    ) -> dict[str, Any]:
        """Return the signed `block_actions` event of a click on a button of a recorded approval request."""
        message = approval.body
        action_id = slack_approval.APPROVE_ACTION_ID if approve else slack_approval.REJECT_ACTION_ID
        button = next(
            element
            for block in message["blocks"]
            if block.get("type") == "actions"
            for element in block["elements"]
            if element.get("action_id") == action_id
        )
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM_ID, "domain": "local"},
            "user": {"id": user_id, "username": user_id.lower(), "team_id": TEAM_ID},
            "api_app_id": "A0LOCAL01",
            "container": {"type": "message", "channel_id": CHANNEL_ID, "is_ephemeral": False},
            "trigger_id": f"{int(self._clock())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:32]}",
            "channel": {"id": CHANNEL_ID, "name": "css-upgrades"},
            "message": {"type": "message", "text": message.get("text", ""), "blocks": message["blocks"]},
            "response_url": response_url if response_url is not None else self.response_url(),
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": slack_approval.ACTIONS_BLOCK_ID,
                    "text": button["text"],
                    "value": button["value"],
                    "style": button.get("style"),
                    "action_ts": f"{self._clock():.6f}",
                }
            ],
        }
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self.signed_event("/slack/actions", body, timestamp=timestamp)

    def signed_event(self, path: str, body: bytes, *, base64_body: bool = True, timestamp: int | None = None) -> dict[str, Any]:
        """Return a function URL event for a POST of `body` to `path`, signed at `timestamp` (default now)."""
        stamp = str(int(self._clock()) if timestamp is None else timestamp)
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            "user-agent": USER_AGENT,
            slack_signature.TIMESTAMP_HEADER: stamp,
            slack_signature.SIGNATURE_HEADER: slack_signature.signature(self.signing_secret, stamp, body),
        }
        return function_url_event(path, body, headers, base64_body=base64_body, now=self._clock())

    def resign(self, event: dict[str, Any], *, timestamp: int | None = None) -> dict[str, Any]:
        """Return `event` (a stored sample) signed again with this secret at `timestamp` (default now)."""
        body = base64.b64decode(event["body"]) if event.get("isBase64Encoded") else event["body"].encode()
        stamp = str(int(self._clock()) if timestamp is None else timestamp)
        headers = dict(event["headers"])
        headers[slack_signature.TIMESTAMP_HEADER] = stamp
        headers[slack_signature.SIGNATURE_HEADER] = slack_signature.signature(self.signing_secret, stamp, body)
        return {**event, "headers": headers}


def function_url_event(path: str, body: bytes, headers: dict[str, str], *, base64_body: bool = True, now: float | None = None) -> dict[str, Any]:
    """Return a Lambda function URL event (payload format 2.0) for a POST."""
    now = time.time() if now is None else now
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "abcdefghij.lambda-url.us-east-1.on.aws", "x-forwarded-proto": "https", **headers},
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghij",
            "domainName": "abcdefghij.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghij",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": headers.get("user-agent", "")},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": base64.b64encode(body).decode("ascii") if base64_body else body.decode("utf-8"),
        "isBase64Encoded": base64_body,
    }


def _handler_for(slack: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in separate writes. With Nagle's algorithm on, the client's delayed
        # ACK then delays the body by about 40 ms per request.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status = slack._record(Post(self.path, {name.lower(): value for name, value in self.headers.items()}, raw))
            body = b"ok" if status == 200 else b"invalid_payload"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
