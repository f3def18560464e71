"""Shared pieces of the trigger tests: sample events, an AWS proxy that counts and fails calls, SQS event shapes.

The proxy sits between the function and a moto server on 127.0.0.1. It forwards every request
unchanged, counts the operations (the `X-Amz-Target` of the JSON protocol), and can make chosen
SendMessageBatch entries fail on SQS's side, so the tests see real retries against a real server.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
DEFINITION = ROOT / "infra" / "statemachine" / "upgrade.asl.json"

# Every variable of the configuration contract, plus the AWS endpoint overrides the tests set.
FUNCTION_VARIABLES = (
    "CSS_REGION", "CSS_PROJECT_ID", "CSS_ENDPOINT", "HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK",
    "HUAWEICLOUD_SDK_SECURITY_TOKEN", "CSS_CREDENTIALS_SECRET", "UPGRADE_POLICY", "NOTIFY_TOPIC_ARN",
    "NOTIFY_EVENT_BUS", "DEDUPE_TABLE", "WORK_QUEUE_URL", "DEAD_LETTER_QUEUE_URL", "MAX_CONCURRENCY",
    "CSS_UPGRADE_AGENCY", "UPGRADE_EXECUTION_ENABLED", "SLACK_SIGNING_SECRET", "SLACK_SIGNING_SECRET_NAME",
    "SLACK_APPROVERS", "SLACK_APPROVAL_WEBHOOK_URL", "SLACK_APPROVAL_WEBHOOK_NAME", "SLACK_REPLY_HOSTS",
    "SCAN_TARGETS", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_SFN",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
)


def load_event(name: str) -> dict[str, Any]:
    """Return a stored sample event of events/."""
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def queue_bodies(boto_sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Receive and delete every message of a queue; return the JSON bodies."""
    bodies = []
    while True:
        messages = boto_sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            boto_sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


class AwsProxy:
    """A forwarding proxy on 127.0.0.1 in front of an AWS endpoint (moto) that counts operations.

    `fail_entries` contains SendMessageBatch entry IDs that always fail with a retryable (not sender)
    fault: they are removed from the forwarded request and reported under `Failed`.
    """

    def __init__(self, upstream: str, *, drain: Any = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.operations: Counter[str] = Counter()
        self.fail_entries: set[str] = set()
        # With a boto3 SQS client as `drain`, every message sent through the proxy is received and
        # deleted before the sender gets its response, and its body is kept in `drained`. moto walks
        # all of a queue's messages on every send, so a queue that nobody reads makes 2,000 sends
        # take about a minute.
        self.drain = drain
        self.drained: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _proxy_handler_for(self))
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "AwsProxy":
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._session.close()

    def forward(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        operation = headers.get("X-Amz-Target", "").rpartition(".")[2] or "query"
        with self._lock:
            self.operations[operation] += 1
        failed: list[dict[str, Any]] = []
        if operation == "SendMessageBatch" and self.fail_entries:
            request = json.loads(body)
            failed = [
                {"Id": entry["Id"], "SenderFault": False, "Code": "InternalError", "Message": "injected by the test proxy"}
                for entry in request["Entries"] if entry["Id"] in self.fail_entries
            ]
            request["Entries"] = [entry for entry in request["Entries"] if entry["Id"] not in self.fail_entries]
            if not request["Entries"]:
                return 200, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps({"Successful": [], "Failed": failed}).encode()
            body = json.dumps(request).encode()

        forwarded = {name: value for name, value in headers.items() if name.lower() not in ("host", "content-length")}
        response = self._session.post(self.upstream + path, data=body, headers=forwarded, timeout=30)
        content = response.content
        if failed and response.status_code == 200:
            answer = json.loads(content)
            answer["Failed"] = list(answer.get("Failed") or []) + failed
            content = json.dumps(answer).encode()
        if self.drain is not None and operation == "SendMessageBatch" and response.status_code == 200:
            self._drain(json.loads(body)["QueueUrl"], len(json.loads(response.content).get("Successful") or []))
        kept = {name: value for name, value in response.headers.items() if name.lower() in ("content-type", "x-amzn-requestid")}
        return response.status_code, kept, content


    def _drain(self, queue_url: str, expected: int) -> None:
        received = 0
        while received < expected:
            messages = self.drain.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=120).get("Messages", [])
            if not messages:
                return
            received += len(messages)
            with self._lock:
                self.drained += [json.loads(message["Body"]) for message in messages]
            self.drain.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]} for index, message in enumerate(messages)],
            )


def _proxy_handler_for(proxy: AwsProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in separate writes. With Nagle's algorithm on, the client's delayed
        # ACK then delays the body by about 40 ms per request.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, headers, content = proxy.forward(self.path, dict(self.headers.items()), body)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler

