"""The CSS API emulator: a real HTTP server on 127.0.0.1 that behaves like Huawei Cloud CSS.

It is built on the standard library's ThreadingHTTPServer rather than a web framework: that adds no
dependency, and clients, tests and benchmarks talk to it over real sockets exactly as they would to
CSS (keep-alive connections, TCP resets, truncated bodies). Every request is checked in the
gateway's order: route, AK/SK signature, project, injected fault, then the CSS operation.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, NamedTuple, Sequence
from urllib.parse import parse_qsl

from . import responses
from .api import ROUTES, Request, Route, Settings, match_route, route_name
from .catalog import Catalog, default_catalog
from .control import PREFIX as CONTROL_PREFIX
from .control import handle_control
from .faults import DEFAULT_RANDOM_KINDS, Fault, FaultBook
from .responses import Reply
from .signature import SignatureError, SigningCredential, Verifier
from .state import ApiError, Fleet

logger = logging.getLogger(__name__)

PAGING_READINGS = ("pages", "items")

# Request bodies above this size are rejected with 413; the CSS bodies are a few hundred bytes.
MAX_BODY_BYTES = 1024 * 1024

# Canonical upgrade types for fault matching, keyed by their path spelling.
_PATH_UPGRADE_TYPES = {"same": "same", "cross": "cross", "cross-engine": "cross-engine", "crossEngine": "cross-engine"}


class Call(NamedTuple):
    """One API request the emulator received. `status` is 0 when the connection was reset."""

    method: str
    path: str
    query: dict[str, str]
    status: int


class Emulator:
    """A CSS API emulator serving a catalog on a local port.

    Parameters
    ----------
    catalog:
        What to serve; the shipped default catalog when None.
    host, port:
        Where to listen; port 0 picks a free port (read it back from `url`).
    cluster_paging:
        How ListClustersDetails and UpgradeDetail read their 1-based `offset`: "pages" (a page number,
        at most 1000) or "items" (the position of the first item, not capped).
    cluster_total_size:
        Whether ListClustersDetails sends `totalSize`.
    clock:
        Epoch seconds, used for X-Sdk-Date checks and task timestamps.

    Example
    -------
    >>> with Emulator() as emulator:
    ...     emulator.inject(Fault(kind="throttle", route="list_images", times=1))
    ...     url = emulator.url
    """

    def __init__(
        self,
        catalog: Catalog | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        cluster_paging: str = "pages",
        *,
        cluster_total_size: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.catalog = catalog if catalog is not None else default_catalog()
        self.fleet = Fleet(self.catalog, clock)
        self.faults = FaultBook()
        self._settings = Settings()
        self.cluster_paging = cluster_paging
        self.cluster_total_size = cluster_total_size

        signing = [SigningCredential(item.ak, item.sk, item.security_token) for item in self.catalog.credentials]
        self._verifier = Verifier(signing, clock=clock)
        self._allowed_projects = {item.ak: item.projects for item in self.catalog.credentials}

        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._calls: list[Call] = []
        self._calls_lock = threading.Lock()

    # -- Life cycle -------------------------------------------------------------------------------

    def start(self) -> "Emulator":
        """Bind the port and serve in a background thread; return self."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        server = _Server((self._host, self._port), _RequestHandler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="css-emulator", daemon=True)
        self._thread.start()
        logger.info("CSS emulator listening on %s (cluster paging %s)", self.url, self.cluster_paging)
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and release the port."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_open_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        logger.info("CSS emulator on %s stopped", self._url_of(server))

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, for example `http://127.0.0.1:49152`."""
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start() first")
        return self._url_of(self._server)

    @staticmethod
    def _url_of(server: ThreadingHTTPServer) -> str:
        host, port = server.server_address[:2]
        return f"http://{host}:{port}"

    # -- Settings ---------------------------------------------------------------------------------

    @property
    def cluster_paging(self) -> str:
        return self._settings.cluster_paging

    @cluster_paging.setter
    def cluster_paging(self, value: str) -> None:
        if value not in PAGING_READINGS:
            raise ValueError(f"invalid cluster_paging {value!r}: expected 'pages' or 'items'")
        self._settings.cluster_paging = value

    @property
    def cluster_total_size(self) -> bool:
        return self._settings.cluster_total_size

    @cluster_total_size.setter
    def cluster_total_size(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise ValueError(f"invalid cluster_total_size {value!r}: expected true or false")
        self._settings.cluster_total_size = value

    # -- Calls, faults and state ------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """A copy of the API calls received so far, oldest first (control requests are not included)."""
        with self._calls_lock:
            return list(self._calls)

    def reset_calls(self) -> None:
        with self._calls_lock:
            self._calls = []

    def call_count(self, route: str | None = None, cluster_id: str | None = None) -> int:
        """Count the recorded calls of a route (a name such as "list_images") and, optionally, a cluster."""
        count = 0
        for call in self.calls:
            if route is not None and route_name(call.method, call.path) != route:
                continue
            if cluster_id is not None and f"/clusters/{cluster_id.lower()}" not in call.path.lower():
                continue
            count += 1
        return count

    def inject(self, fault: Fault | dict[str, Any]) -> None:
        """Arm a fault (a Fault or its JSON object form)."""
        self.faults.add(fault if isinstance(fault, Fault) else Fault.model_validate(fault))

    def clear_faults(self) -> None:
        """Disarm every fault and stop random failures."""
        self.faults.clear()

    def set_failure_rate(
        self,
        rate: float,
        seed: int,
        kinds: Sequence[str | Fault] = DEFAULT_RANDOM_KINDS,
        routes: Sequence[str] | None = None,
    ) -> None:
        """Fail a fraction `rate` of API calls with faults drawn from `kinds` by a generator seeded with `seed`."""
        self.faults.set_failure_rate(rate, seed, kinds, routes)

    def cluster_state(self, cluster_id: str) -> dict[str, Any]:
        """Return a cluster's current details, target images and upgrade tasks; KeyError if not in the catalog."""
        return self.fleet.snapshot(cluster_id)

    def reset(self) -> None:
        """Return every cluster to its catalog state, disarm all faults and forget recorded calls."""
        self.fleet.reset()
        self.clear_faults()
        self.reset_calls()

    # -- Request processing -----------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        """Produce the reply to one request (the HTTP layer only reads and writes bytes)."""
        if request.raw_path == CONTROL_PREFIX or request.raw_path.startswith(CONTROL_PREFIX + "/"):
            return handle_control(self, request)

        matched = match_route(request.method, request.raw_path)
        if matched is None:
            reply = responses.gateway_error(request.request_id, "APIGW.0101")
        else:
            reply = self._api_call(matched[0], matched[1], request)
        self._record(request, reply)
        return reply

    def _api_call(self, route: Route, params: dict[str, str], request: Request) -> Reply:
        try:
            credential = self._verifier.verify(
                request.method, request.raw_path, request.raw_query, request.headers, request.body
            )
        except SignatureError as error:
            logger.info("rejected %s %s: %s", request.method, request.raw_path, error)
            return responses.gateway_error(
                request.request_id, "APIGW.0301", f"Incorrect IAM authentication information: {error}"
            )

        params["project_id"] = params["project_id"].lower()
        denied = self._check_project(credential.access_key, params["project_id"], request)
        if denied is not None:
            return denied

        cluster_id = params.get("cluster_id", "").lower() or None
        upgrade_type = _PATH_UPGRADE_TYPES.get(params.get("upgrade_type", ""))
        fault = self.faults.take(route.name, cluster_id, upgrade_type)
        if fault is None:
            return self._run(route, params, request)
        return self._apply_fault(fault, route, params, request)

    def _check_project(self, access_key: str, project_id: str, request: Request) -> Reply | None:
        header = request.headers.get("x-project-id")
        if header is not None and header.strip().lower() != project_id:
            reason = f"project {project_id} in the path does not match the X-Project-Id header {header.strip()}"
        elif project_id not in self.fleet.project_ids:
            reason = f"project {project_id} is not in the emulator's catalog"
        elif self._allowed_projects.get(access_key) is not None and project_id not in self._allowed_projects[access_key]:
            reason = f"access key {access_key} may not call project {project_id}"
        else:
            return None
        logger.info("rejected %s %s: %s", request.method, request.raw_path, reason)
        message = f"{responses.GATEWAY_ERRORS['APIGW.0302'][1]}: {reason}"
        return responses.gateway_error(request.request_id, "APIGW.0302", message)

    def _run(self, route: Route, params: dict[str, str], request: Request) -> Reply:
        try:
            return route.handler(self.fleet, request, params, self._settings)
        except ApiError as error:
            logger.debug("%s on cluster %s: %s", route.name, params.get("cluster_id"), error)
            return error.reply()

    def _apply_fault(self, fault: Fault, route: Route, params: dict[str, str], request: Request) -> Reply:
        logger.debug("injecting %s fault on %s %s", fault.kind, request.method, request.raw_path)
        if fault.kind == "latency":
            time.sleep(fault.latency_ms / 1000.0)
            return self._run(route, params, request)
        if fault.kind == "malformed_json":
            return responses.truncated_json(self._run(route, params, request))
        if fault.after_route:
            self._run(route, params, request)
        return fault_reply(fault, request.request_id)

    def _record(self, request: Request, reply: Reply) -> None:
        call = Call(request.method, request.raw_path, request.query, 0 if reply.reset else reply.status)
        with self._calls_lock:
            self._calls.append(call)


def fault_reply(fault: Fault, request_id: str) -> Reply:
    """Return the reply a fault sends in place of the route's own."""
    if fault.kind == "throttle":
        return responses.throttled(request_id, fault.retry_after)
    if fault.kind == "server_error":
        return responses.html_error(fault.status or 500)
    if fault.kind == "css_error":
        return responses.css_error(fault.error_code or "CSS.0036", fault.message, fault.status)
    if fault.kind == "gateway_error":
        return responses.gateway_error(request_id, fault.error_code or "APIGW.0301", fault.message, fault.status)
    if fault.kind == "empty_body":
        return Reply(fault.status or 502)
    if fault.kind == "connection_reset":
        return Reply(0, reset=True)
    raise ValueError(f"fault kind {fault.kind!r} has no reply of its own")


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that remembers open connections, so that stop() can close idle keep-alive ones."""

    daemon_threads = True
    request_queue_size = 128
    emulator: Emulator

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self._open_lock:
            open_sockets = list(self._open)
        for sock in open_sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _RequestHandler(BaseHTTPRequestHandler):
    """Read a request, pass it to the Emulator, write the reply (or reset the connection)."""

    protocol_version = "HTTP/1.1"
    server_version = "CSS-Emulator"
    # Headers and body leave in separate writes. With Nagle's algorithm on, a keep-alive client's
    # delayed ACK would hold the body back for about 40 ms per request (measured on Linux).
    disable_nagle_algorithm = True
    # Idle keep-alive connections are closed after this many seconds.
    timeout = 120
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def version_string(self) -> str:
        return self.server_version

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Replaces the standard HTML error page for requests that never reach the emulator (a
        # malformed request line, an unsupported method such as HEAD), so that these replies also
        # carry an X-Request-Id header.
        logger.info("rejected malformed request %r: %s %s", self.requestline, code, message or "")
        self.close_connection = True
        self._send(Reply(code), uuid.uuid4().hex)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def _serve(self) -> None:
        request_id = uuid.uuid4().hex
        body = self._read_body(request_id)
        if body is None:
            return

        raw_path, _, raw_query = self.path.partition("?")
        request = Request(
            method=self.command,
            raw_path=raw_path,
            raw_query=raw_query,
            query=dict(reversed(parse_qsl(raw_query, keep_blank_values=True))),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            request_id=request_id,
        )
        try:
            reply = self.server.emulator.handle(request)
        except Exception:
            logger.exception("request %s %s failed inside the emulator", self.command, raw_path)
            reply = responses.html_error(500)

        if reply.reset:
            self._reset_connection()
        else:
            self._send(reply, request_id)

    def _read_body(self, request_id: str) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._send(Reply(411), request_id)
            return None
        length_text = self.headers.get("Content-Length", "0")
        try:
            length = int(length_text)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(Reply(413 if length > 0 else 400), request_id)
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, reply: Reply, request_id: str) -> None:
        self.send_response(reply.status, responses.reason_phrase(reply.status) or None)
        self.send_header("X-Request-Id", request_id)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if reply.body:
            self.wfile.write(reply.body)

    def _reset_connection(self) -> None:
        # SO_LINGER with a zero timeout makes close() send a TCP RST instead of a FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()


__all__ = ["Call", "Emulator", "ROUTES", "fault_reply"]
