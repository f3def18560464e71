"""Shared pieces of the AWS client tests: moto in its two modes and a canned-response HTTP server.

Every test file builds its own module-scoped moto server with `running_moto_server` and picks a
mode per test with `moto_backend`: `in-process` (moto's `mock_aws` intercepts `requests` calls to
AWS hosts) or `server` (a `ThreadedMotoServer` on 127.0.0.1 reached through `AWS_ENDPOINT_URL`).
boto3 appears only here and in the tests, to set up and inspect what the client under test did.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import boto3
import requests
from moto import mock_aws
from moto.server import ThreadedMotoServer

from handler.aws.client import AwsClient
from handler.retry import RetryPolicy

REGION = "us-east-1"
OTHER_REGION = "us-west-2"
ACCESS_KEY_ID = "AKIDTESTCLIENT000001"
SECRET_ACCESS_KEY = "test-secret-key-never-shown-0123456789"
SESSION_TOKEN = "test-session-token-never-shown-abcdef"

ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
    "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
    "AWS_SESSION_TOKEN": SESSION_TOKEN,
    "AWS_REGION": REGION,
}

MODES = ("in-process", "server")

# Retries without real waiting: the tests check how often a call is made, not how long it waits.
FAST_RETRIES = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.001)


def no_sleep(seconds: float) -> None:
    """Stand-in for time.sleep in retry loops of tests that count attempts."""


@dataclass
class MotoBackend:
    """A moto instance, a client under test aimed at it, and boto3 clients for setup and inspection."""

    mode: str
    client: AwsClient
    endpoint_url: str | None = None

    def boto(self, service: str, region: str = REGION) -> Any:
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )


@contextlib.contextmanager
def running_moto_server() -> Iterator[str]:
    """Run a moto server on 127.0.0.1 at a free port and yield its URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextlib.contextmanager
def moto_backend(
    mode: str,
    server_url: Callable[[], str],
    moto_config: dict[str, Any] | None = None,
    **client_options: Any,
) -> Iterator[MotoBackend]:
    """Yield a fresh, empty moto backend in `mode`; `server_url` is called only in server mode.

    `moto_config` is moto's own configuration (for example `{"stepfunctions": {"execute_state_machine":
    True}}`) for the duration of the block.
    """
    options = {"retry_policy": FAST_RETRIES, "sleep": no_sleep, **client_options}
    if mode == "in-process":
        with mock_aws(config=moto_config):
            client = AwsClient.from_environ(ENVIRONMENT, **options)
            yield MotoBackend(mode, client)
        client.close()
        return

    url = server_url()
    requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
    previous_config = requests.get(f"{url}/moto-api/config", timeout=10).json()
    if moto_config:
        requests.post(f"{url}/moto-api/config", json=moto_config, timeout=10).raise_for_status()
    client = AwsClient.from_environ({**ENVIRONMENT, "AWS_ENDPOINT_URL": url}, **options)
    try:
        yield MotoBackend(mode, client, endpoint_url=url)
    finally:
        client.close()
        if moto_config:
            requests.post(f"{url}/moto-api/config", json=previous_config, timeout=10).raise_for_status()
        requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class CannedResponse:
    status: int = 200
    body: bytes | str = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/x-amz-json-1.0"})
    hold: threading.Event | None = None
    delay: float = 0.0


class _QuietServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server that does not print the errors of clients that hung up (timeouts under test)."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class CannedServer:
    """An HTTP server on 127.0.0.1 that replies to POSTs with queued responses and records each request.

    When the queue is empty it replies with the `default` response. A response with `hold` set waits for
    that event before answering, to make a client time out; one with `delay` waits that many seconds.
    """

    def __init__(self, default: CannedResponse | None = None) -> None:
        self.requests: list[RecordedRequest] = []
        self.responses: "queue.Queue[CannedResponse]" = queue.Queue()
        self.default = default or CannedResponse()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def enqueue(self, *responses: CannedResponse) -> None:
        for response in responses:
            self.responses.put(response)

    def __enter__(self) -> "CannedServer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_response(self) -> CannedResponse:
        try:
            return self.responses.get_nowait()
        except queue.Empty:
            return self.default

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        canned = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                recorded = RecordedRequest("POST", self.path, dict(self.headers.items()), body, self.client_address[1])
                canned.requests.append(recorded)
                response = canned._next_response()
                if response.hold is not None:
                    response.hold.wait(timeout=30)
                time.sleep(response.delay)
                payload = response.body.encode() if isinstance(response.body, str) else response.body
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature from http.server
                pass

        return Handler


def json_error(status: int, code: str, message: str, **headers: str) -> CannedResponse:
    """A JSON-protocol error response as the AWS JSON services send it."""
    body = json.dumps({"__type": f"com.amazonaws.test#{code}", "message": message})
    return CannedResponse(
        status, body, {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "req-1", **headers}
    )


def client_for(server: CannedServer, **options: Any) -> AwsClient:
    """A client aimed at a canned server, with retries that do not wait."""
    settings = {"retry_policy": FAST_RETRIES, "sleep": no_sleep, **options}
    return AwsClient.from_environ({**ENVIRONMENT, "AWS_ENDPOINT_URL": server.url}, **settings)
