"""Instruments shared by the hardening suites: what the function sends, logs and connects to.

`NetworkLog` records every request that `requests` sends in this process and then sends it unchanged,
so a test checks the real traffic. `LookupGuard` records every host name resolved and refuses any
name that is not a loopback address, so no test can reach another host even by mistake.
`LogCapture` keeps every log line of the function. `Listener` stands for an attacker's host, and
`RedirectServer` returns a redirect to it for every request.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import socketserver
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable, Iterator
from urllib.parse import urlsplit

import pytest
from requests.adapters import HTTPAdapter

from handler.observability import logger as function_logger

# Loggers of the stand-ins (moto, the emulator, boto3 in the tests): not the function's output.
_STAND_IN_LOGGERS = ("botocore", "boto3", "s3transfer", "moto", "werkzeug", "handler.local")

# The function's own loggers, whose level POWERTOOLS_LOG_LEVEL sets.
_FUNCTION_LOGGERS = ("handler", function_logger.name)


@dataclass(frozen=True)
class SentRequest:
    """One request as it left the process: method, URL, headers and body."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()

    @property
    def text(self) -> str:
        """Everything the request carries, as one string, for searching."""
        headers = "\n".join(f"{name}: {value}" for name, value in self.headers.items())
        return f"{self.method} {self.url}\n{headers}\n\n{self.body.decode('utf-8', 'replace')}"


class NetworkLog:
    """Every request `requests` sends while installed; each is recorded and then sent unchanged."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[SentRequest] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> "NetworkLog":
        original = HTTPAdapter.send
        log = self

        def send(adapter: HTTPAdapter, request: Any, *args: Any, **kwargs: Any) -> Any:
            log.record(request)
            return original(adapter, request, *args, **kwargs)

        monkeypatch.setattr(HTTPAdapter, "send", send)
        return self

    def record(self, request: Any) -> None:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        sent = SentRequest(request.method or "", request.url or "", {k: str(v) for k, v in request.headers.items()}, bytes(body))
        with self._lock:
            self._requests.append(sent)

    @property
    def requests(self) -> list[SentRequest]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests = []

    def to_host(self, host: str) -> list[SentRequest]:
        return [request for request in self.requests if request.host == host]

    def carrying(self, value: str) -> list[SentRequest]:
        """Return the requests whose URL, headers or body contain `value`."""
        return [request for request in self.requests if value in request.text]


class LookupGuard:
    """Records every name passed to `socket.getaddrinfo` and refuses names that are not loopback addresses."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.refused: list[str] = []
        self._lock = threading.Lock()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> "LookupGuard":
        original = socket.getaddrinfo
        guard = self

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
            with guard._lock:
                guard.names.append(name)
            if not _is_loopback(name):
                with guard._lock:
                    guard.refused.append(name)
                raise socket.gaierror(socket.EAI_NONAME, f"lookup of {name!r} refused by the test guard")
            return original(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return self


def _is_loopback(name: str) -> bool:
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


class LogCapture(logging.Handler):
    """Keeps every log line of the process but the stand-ins', formatted as the function's logger formats them.

    Lines of the stand-ins (moto, the emulator, boto3 in the tests) are left out: their requests are
    signed by the tests, not by the function.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(function_logger.registered_formatter)
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []
        self._lines_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_STAND_IN_LOGGERS):
            return
        line = self.format(record)
        with self._lines_lock:
            self.lines.append(line)
            self.records.append(record)

    @property
    def text(self) -> str:
        with self._lines_lock:
            return "\n".join(self.lines)

    def messages(self) -> list[str]:
        with self._lines_lock:
            return [record.getMessage() for record in self.records]


class capture_logs:
    """Context manager: attach a LogCapture at the most verbose logging an operator can configure, restore after.

    That is the function's loggers at DEBUG (`POWERTOOLS_LOG_LEVEL`) and the root logger at DEBUG
    (`AWS_LAMBDA_LOG_LEVEL`), so libraries log at DEBUG too unless the function sets their level.
    """

    def __enter__(self) -> LogCapture:
        self.capture = LogCapture()
        self._levels = {}
        for name in ("", *_FUNCTION_LOGGERS):
            target = logging.getLogger(name)
            self._levels[name] = target.level
            target.setLevel(logging.DEBUG)
        # The function's logger propagates to the root logger; the `handler` library logger does not.
        logging.getLogger().addHandler(self.capture)
        logging.getLogger("handler").addHandler(self.capture)
        return self.capture

    def __exit__(self, *exc_info: object) -> None:
        logging.getLogger().removeHandler(self.capture)
        logging.getLogger("handler").removeHandler(self.capture)
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)


class Listener:
    """A TCP server standing for an attacker's host: it records every connection and returns HTTP 200.

    It binds 127.0.0.2 (another loopback address, so that it is a different host than the stand-ins
    on 127.0.0.1) and falls back to 127.0.0.1 where that address is not configured.
    """

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self._lock = threading.Lock()
        listener = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(1.0)
                data = b""
                try:
                    while b"\r\n\r\n" not in data and len(data) < 65536:
                        chunk = self.request.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                except OSError:
                    pass
                with listener._lock:
                    listener.received.append(data)
                try:
                    self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                except OSError:
                    pass

        self._server = _bind_threading_tcp(Handler)

    @property
    def host(self) -> str:
        return self._server.server_address[0]

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self.received)

    def __enter__(self) -> "Listener":
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _bind_threading_tcp(handler: type[socketserver.BaseRequestHandler]) -> socketserver.ThreadingTCPServer:
    for host in ("127.0.0.2", "127.0.0.1"):
        try:
            server = socketserver.ThreadingTCPServer((host, 0), handler)
        except OSError:
            continue
        server.daemon_threads = True
        return server
    raise OSError("no loopback address to bind the listener to")


class RedirectServer:
    """An HTTP server on 127.0.0.1 that returns `status` and `Location: location` for every request."""

    def __init__(self, status: int, location: str) -> None:
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _redirect(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                server.requests.append(f"{self.command} {self.path}")
                self.send_response(status)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_DELETE = _redirect

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "RedirectServer":
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class EchoServer:
    """An HTTP server on 127.0.0.1 that fails every request and echoes the request back in the error body.

    It stands for a misbehaving proxy or gateway, to show that what the function logs and raises
    from an error body cannot carry its credentials or signatures. `shape` is "html" (a 500 page) or
    "json" (a 400 body in the CSS and AWS error shapes).
    """

    def __init__(self, shape: str) -> None:
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _echo(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                server.requests += 1
                # Credential headers first, so that no length cut in an error message can hide them.
                first = ("authorization", "x-security-token", "x-amz-security-token")
                headers = sorted(self.headers.items(), key=lambda item: item[0].lower() not in first)
                lines = "\n".join(f"{name}: {value}" for name, value in headers)
                request = f"{lines}\n{self.command} {self.path}\n{body}"
                if shape == "json":
                    status, content_type = 400, "application/json"
                    payload = json.dumps({"errCode": "CSS.0001", "externalMessage": request, "__type": "ValidationError",
                                          "message": request, "error_code": "APIGW.0101", "error_msg": request})
                else:
                    status, content_type = 500, "text/html"
                    payload = f"<html><body><pre>{request}</pre></body></html>"
                data = payload.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _echo

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "EchoServer":
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def occurrences(haystacks: Iterable[str], needles: Iterable[str]) -> list[tuple[str, str]]:
    """Return (needle, excerpt) for every needle found in any haystack, for assertion messages."""
    found = []
    for needle in needles:
        for haystack in haystacks:
            index = haystack.find(needle)
            if index >= 0:
                found.append((needle, haystack[max(0, index - 60) : index + len(needle) + 60]))
                break
    return found


def iterate_strings(value: Any) -> Iterator[str]:
    """Yield every string inside a JSON-like value (keys included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from iterate_strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from iterate_strings(item)
