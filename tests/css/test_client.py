"""The CSS client against the emulator over real sockets: calls, paging, faults, retries, input checks."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from handler.core.ids import InvalidValue
from handler.css import errors
from handler.css.client import CssClient, StaticCredentials
from handler.css.signer import Credentials
from handler.local.emulator.catalog import DEFAULT_ACCESS_KEY, DEFAULT_PROJECT_ID, DEFAULT_SECRET_KEY, generate_catalog
from handler.local.emulator.faults import Fault
from handler.local.emulator.server import Emulator
from handler.retry import Deadline, RetryPolicy

PROJECT = DEFAULT_PROJECT_ID
REGION = "ap-southeast-1"
LOGS_PROD = "ea244205-d641-45d9-9dcb-ab2236bcd07e"
SEARCH_ARCHIVE = "a0679251-9037-54b2-984f-9472867467f3"  # 25 same-type images
SEARCH_PROD = "02bfab90-9f44-5f39-9d58-2fe518687173"  # exactly 10 same-type images
METRICS_PROD = "5b2a4984-fcd4-5a5a-ae0e-4ccd28427a5b"  # needs a plugin upload
OS_NEWEST = "042a7c87-f31a-5aac-b15f-376b2769c27c"  # already on its newest image
OLD_LOGS = "8515be4d-214d-5629-9e9f-20448ad5124f"  # deleted
NO_CROSS_ENGINE = "395f0ca1-3853-5f1c-b786-2e62f741eddf"
UPGRADE_FLAKY = "cdffd3b2-d65d-5545-b8e3-96528dac661c"
SCOPE = {"project_id": PROJECT, "region": REGION}


def _client(emulator: Emulator, **options) -> CssClient:
    options.setdefault("retry_policy", RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05))
    return CssClient(Credentials(ak=DEFAULT_ACCESS_KEY, sk=DEFAULT_SECRET_KEY), endpoint=emulator.url, **options)


# -- calls --------------------------------------------------------------------------------------


def test_show_cluster_reads_details(css_client):
    cluster = css_client.show_cluster(**SCOPE, cluster_id=LOGS_PROD)
    assert cluster.id == LOGS_PROD
    assert cluster.name == "logs-prod"
    assert cluster.status == "200"
    assert cluster.datastore.type == "elasticsearch"
    assert cluster.current_image == "7.6.2_24.3.3_1224"


def test_list_images_cross(css_client):
    found = css_client.list_images(**SCOPE, cluster_id=LOGS_PROD, upgrade_type="cross")
    assert found.upgrade_type == "cross"
    assert sorted(image.display_name for image in found.images) == ["7.10.2_24.3.3_0102", "7.10.2_24.3.4_0109"]
    assert {image.priority for image in found.images} == {15, 16}


def test_list_images_plugin_flag(css_client):
    found = css_client.list_images(**SCOPE, cluster_id=METRICS_PROD, upgrade_type="cross")
    assert found.need_upload_upgrade_plugin is True


def test_list_images_empty(css_client):
    found = css_client.list_images(**SCOPE, cluster_id=OS_NEWEST, upgrade_type="same")
    assert found.images == []


def test_uppercase_ids_sent_lowercase(emulator, css_client):
    css_client.show_cluster(project_id=PROJECT.upper(), region=REGION, cluster_id=LOGS_PROD.upper())
    assert emulator.calls[-1].path == f"/v1.0/{PROJECT}/clusters/{LOGS_PROD}"


def test_upgrade_lifecycle(emulator, css_client):
    scope = {**SCOPE, "cluster_id": UPGRADE_FLAKY}
    target = css_client.list_images(**scope, upgrade_type="same").images[0]

    css_client.upgrade_core(**scope, target_image_id=target.id, upgrade_type="same", agency="css-upgrade-agency")
    tasks = css_client.upgrade_tasks(**scope)
    assert tasks[0].status == "RUNNING"

    for _ in range(20):
        tasks = css_client.upgrade_tasks(**scope)
        if tasks[0].status != "RUNNING":
            break
    assert tasks[0].status == "FAILED"

    css_client.retry_upgrade(**scope, task_id=tasks[0].id)
    for _ in range(20):
        tasks = css_client.upgrade_tasks(**scope)
        if tasks[0].status != "RUNNING":
            break
    assert tasks[0].status == "SUCCESS"
    assert tasks[0].execute_times == "2"


def test_retry_abort_sends_query_parameter(emulator, css_client):
    scope = {**SCOPE, "cluster_id": UPGRADE_FLAKY}
    target = css_client.list_images(**scope, upgrade_type="same").images[0]
    css_client.upgrade_core(**scope, target_image_id=target.id, upgrade_type="same", agency="css-upgrade-agency")
    while css_client.upgrade_tasks(**scope)[0].status == "RUNNING":
        pass
    task = css_client.upgrade_tasks(**scope)[0]

    css_client.retry_upgrade(**scope, task_id=task.id, abort=True)

    call = [call for call in emulator.calls if call.method == "PUT"][-1]
    assert call.query == {"retry_mode": "abort"}
    assert call.status == 200


# -- paging -------------------------------------------------------------------------------------


def test_list_images_reads_every_page_with_largest_size(emulator, css_client):
    found = css_client.list_images(**SCOPE, cluster_id=SEARCH_ARCHIVE, upgrade_type="same")
    assert len(found.images) == 25
    assert len({image.id for image in found.images}) == 25
    list_calls = [call for call in emulator.calls if call.path.endswith("/images")]
    assert len(list_calls) == 1
    assert list_calls[0].query == {"offset": "0", "limit": "1000"}


@pytest.mark.parametrize("page_size", [10, 7, 25])
def test_list_images_small_pages(emulator, page_size):
    client = _client(emulator)
    found = client.list_images(**SCOPE, cluster_id=SEARCH_ARCHIVE, upgrade_type="same", page_size=page_size)
    assert len({image.id for image in found.images}) == 25
    pages = -(-25 // page_size)
    # totalSize lets the client stop without asking for an empty page.
    assert emulator.call_count("list_images") == pages


def test_list_images_exactly_one_full_page(emulator):
    client = _client(emulator)
    found = client.list_images(**SCOPE, cluster_id=SEARCH_PROD, upgrade_type="same", page_size=10)
    assert len(found.images) == 10
    assert emulator.call_count("list_images") == 1


@pytest.mark.parametrize("paging", ["pages", "items"])
@pytest.mark.parametrize("total_size", [True, False])
@pytest.mark.parametrize(("clusters", "page_size"), [(2500, 1000), (30, 10), (9, 10), (10, 10), (0, 10)])
def test_iter_clusters_reads_each_once(paging, total_size, clusters, page_size):
    catalog = generate_catalog(clusters, seed=7)
    with Emulator(catalog, cluster_paging=paging, cluster_total_size=total_size) as emulator:
        client = _client(emulator)
        found = client.list_clusters(**SCOPE, page_size=page_size)

        ids = [cluster.id for cluster in found]
        assert len(ids) == clusters
        assert len(set(ids)) == clusters
        pages = max(1, -(-clusters // page_size))
        assert emulator.call_count("list_clusters") <= pages + 1


def test_iter_clusters_ten_thousand_item_offsets():
    catalog = generate_catalog(10_000, seed=3)
    with Emulator(catalog, cluster_paging="items") as emulator:
        client = _client(emulator)
        ids = {cluster.id for cluster in client.iter_clusters(**SCOPE)}
        assert len(ids) == 10_000
        assert emulator.call_count("list_clusters") <= 11
        offsets = [int(call.query["offset"]) for call in emulator.calls if call.path.endswith("/clusters")]
        assert max(offsets) > 1000


# -- faults -------------------------------------------------------------------------------------

TRANSIENT_FAULTS = [
    Fault(kind="throttle", retry_after=0),
    Fault(kind="server_error"),
    Fault(kind="server_error", status=503),
    Fault(kind="css_error", error_code="CSS.0036"),
    Fault(kind="css_error", error_code="CSS.6013"),
    Fault(kind="css_error", error_code="CSS.0011"),
    Fault(kind="css_error", error_code="CSS.0011", status=202),
    Fault(kind="empty_body"),
    Fault(kind="connection_reset"),
    Fault(kind="malformed_json"),
]
ROUTE_CALLS = {
    "show_cluster": lambda client: client.show_cluster(**SCOPE, cluster_id=LOGS_PROD),
    "list_images": lambda client: client.list_images(**SCOPE, cluster_id=LOGS_PROD, upgrade_type="cross"),
    "list_clusters": lambda client: client.list_clusters(**SCOPE),
    "upgrade_detail": lambda client: client.upgrade_tasks(**SCOPE, cluster_id=LOGS_PROD),
}


@pytest.mark.parametrize("route", sorted(ROUTE_CALLS))
@pytest.mark.parametrize("fault", TRANSIENT_FAULTS, ids=lambda fault: f"{fault.kind}-{fault.error_code or fault.status}")
def test_transient_fault_retried_then_succeeds(emulator, route, fault):
    emulator.inject(fault.model_copy(update={"route": route, "times": 2}))
    client = _client(emulator)

    ROUTE_CALLS[route](client)

    assert emulator.call_count(route) == 3


@pytest.mark.parametrize("route", sorted(ROUTE_CALLS))
@pytest.mark.parametrize("fault", TRANSIENT_FAULTS, ids=lambda fault: f"{fault.kind}-{fault.error_code or fault.status}")
def test_transient_fault_exhausts_attempts(emulator, route, fault):
    emulator.inject(fault.model_copy(update={"route": route}))
    client = _client(emulator)

    with pytest.raises(errors.CssTransientError) as caught:
        ROUTE_CALLS[route](client)

    assert caught.value.retryable
    assert emulator.call_count(route) == 4


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(kind="css_error", error_code="CSS.0015"), errors.NotFoundError),
        (Fault(kind="css_error", error_code="CSS.0047"), errors.NotFoundError),
        (Fault(kind="css_error", error_code="CSS.0010"), errors.AccessDeniedError),
        (Fault(kind="css_error", error_code="CSS.0001"), errors.InvalidRequestError),
        (Fault(kind="gateway_error", error_code="APIGW.0301"), errors.CredentialError),
    ],
    ids=lambda value: getattr(value, "error_code", None) or getattr(value, "__name__", ""),
)
def test_permanent_fault_not_retried(emulator, fault, expected):
    emulator.inject(fault.model_copy(update={"route": "show_cluster"}))
    client = _client(emulator)

    with pytest.raises(expected) as caught:
        client.show_cluster(**SCOPE, cluster_id=LOGS_PROD)

    assert not caught.value.retryable
    # Fixed credentials are not sent again: only a provider that can read fresh ones gets a second try.
    assert emulator.call_count("show_cluster") == 1


def test_latency_fault_hits_read_timeout(emulator):
    emulator.inject(Fault(kind="latency", route="show_cluster", latency_ms=2000))
    client = _client(emulator, timeout=(1.0, 0.2), retry_policy=RetryPolicy(max_attempts=1))

    with pytest.raises(errors.TransportError):
        client.show_cluster(**SCOPE, cluster_id=LOGS_PROD)


def test_retry_after_honoured(emulator):
    emulator.inject(Fault(kind="throttle", route="show_cluster", times=1, retry_after=1))
    waits: list[float] = []
    client = _client(emulator, sleep=waits.append)

    client.show_cluster(**SCOPE, cluster_id=LOGS_PROD)

    assert waits == [1.0]


def test_no_wait_past_deadline(emulator):
    emulator.inject(Fault(kind="throttle", route="show_cluster", retry_after=30))
    waits: list[float] = []
    client = _client(emulator, sleep=waits.append)

    with pytest.raises(errors.ThrottledError):
        client.show_cluster(**SCOPE, cluster_id=LOGS_PROD, deadline=Deadline(5.0))

    assert waits == []
    assert emulator.call_count("show_cluster") == 1


def test_expired_deadline_sends_nothing(emulator, css_client):
    with pytest.raises(errors.DeadlineExceeded) as caught:
        css_client.show_cluster(**SCOPE, cluster_id=LOGS_PROD, deadline=Deadline(0))
    assert caught.value.retryable
    assert emulator.calls == []


def test_upgrade_core_not_retried_after_server_error(emulator, css_client):
    emulator.inject(Fault(kind="server_error", route="upgrade_core", times=1, after_route=True))
    target = css_client.list_images(**SCOPE, cluster_id=UPGRADE_FLAKY, upgrade_type="same").images[0]

    with pytest.raises(errors.ServerError):
        css_client.upgrade_core(**SCOPE, cluster_id=UPGRADE_FLAKY, target_image_id=target.id, upgrade_type="same", agency="agency-1")

    assert emulator.call_count("upgrade_core") == 1


def test_upgrade_core_retried_when_throttled(emulator, css_client):
    emulator.inject(Fault(kind="throttle", route="upgrade_core", times=1, retry_after=0))
    target = css_client.list_images(**SCOPE, cluster_id=UPGRADE_FLAKY, upgrade_type="same").images[0]

    css_client.upgrade_core(**SCOPE, cluster_id=UPGRADE_FLAKY, target_image_id=target.id, upgrade_type="same", agency="agency-1")

    assert emulator.call_count("upgrade_core") == 2


def test_unsupported_type_is_invalid_request(css_client):
    with pytest.raises(errors.InvalidRequestError) as caught:
        css_client.list_images(**SCOPE, cluster_id=NO_CROSS_ENGINE, upgrade_type="cross-engine")
    assert caught.value.error_code == "CSS.5140"


def test_deleted_cluster_not_found(css_client):
    with pytest.raises(errors.NotFoundError) as caught:
        css_client.show_cluster(**SCOPE, cluster_id=OLD_LOGS)
    text = str(caught.value)
    assert OLD_LOGS in text
    assert "HTTP 403" in text
    assert "CSS.0015" in text
    assert "request ID" in text


def test_malformed_success_body_is_server_error_not_empty(emulator):
    emulator.inject(Fault(kind="malformed_json", route="list_images"))
    client = _client(emulator, retry_policy=RetryPolicy(max_attempts=1))
    with pytest.raises(errors.ServerError):
        client.list_images(**SCOPE, cluster_id=LOGS_PROD, upgrade_type="cross")


# -- credentials --------------------------------------------------------------------------------


class RotatingCredentials:
    """A provider whose first credentials are stale, like a secret rotated since it was cached."""

    def __init__(self) -> None:
        self.current = Credentials(ak=DEFAULT_ACCESS_KEY, sk="stale-secret")
        self.reads = 0

    def get(self) -> Credentials:
        self.reads += 1
        return self.current

    def invalidate(self) -> None:
        self.current = Credentials(ak=DEFAULT_ACCESS_KEY, sk=DEFAULT_SECRET_KEY)


def test_rejected_credentials_read_again_once(emulator):
    provider = RotatingCredentials()
    client = CssClient(provider, endpoint=emulator.url)

    cluster = client.show_cluster(**SCOPE, cluster_id=LOGS_PROD)

    assert cluster.id == LOGS_PROD
    assert [call.status for call in emulator.calls] == [401, 200]


def test_wrong_secret_is_credential_error_without_secret(emulator):
    client = CssClient(StaticCredentials(Credentials(ak=DEFAULT_ACCESS_KEY, sk="canary-sk-5f3a")), endpoint=emulator.url)
    with pytest.raises(errors.CredentialError) as caught:
        client.show_cluster(**SCOPE, cluster_id=LOGS_PROD)
    assert "canary-sk-5f3a" not in str(caught.value)
    assert "APIGW.0301" in str(caught.value)


# -- transport ----------------------------------------------------------------------------------


def test_connections_reused(emulator, css_client):
    for _ in range(5):
        css_client.show_cluster(**SCOPE, cluster_id=LOGS_PROD)
    pool = css_client._session.get_adapter(emulator.url).poolmanager
    keys = list(pool.pools.keys())
    assert len(keys) == 1
    assert pool.pools[keys[0]].num_connections == 1


def test_redirect_not_followed():
    with _RedirectServer() as url:
        client = CssClient(Credentials(ak="AK", sk="SK"), endpoint=url, retry_policy=RetryPolicy(max_attempts=1))
        with pytest.raises(errors.CssConfigurationError) as caught:
            client.show_cluster(**SCOPE, cluster_id=LOGS_PROD)
    assert caught.value.status == 302


def test_connection_refused_is_transport_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = CssClient(Credentials(ak="AK", sk="SK"), endpoint=f"http://127.0.0.1:{port}", retry_policy=RetryPolicy(max_attempts=2, base_delay=0.01))
    with pytest.raises(errors.TransportError):
        client.show_cluster(**SCOPE, cluster_id=LOGS_PROD)


# -- input checks: nothing reaches the network --------------------------------------------------

HOSTILE = ["../", "#", "?", "@", "%2F", "\r\n", " ", "\t", "/x", "ｅ", "е", "\u0660"]


@pytest.mark.parametrize("suffix", HOSTILE, ids=repr)
@pytest.mark.parametrize("parameter", ["project_id", "region", "cluster_id", "upgrade_type"])
def test_hostile_parameter_never_sent(parameter, suffix):
    values = {"project_id": PROJECT, "region": REGION, "cluster_id": LOGS_PROD, "upgrade_type": "same"}
    values[parameter] = values[parameter] + suffix
    with _ConnectionCounter() as counter:
        client = CssClient(Credentials(ak="AK", sk="SK"), endpoint=counter.url)
        with pytest.raises(InvalidValue) as caught:
            client.list_images(**values)
    assert caught.value.field == parameter
    assert counter.connections == 0


@pytest.mark.parametrize("suffix", HOSTILE, ids=repr)
def test_hostile_task_and_image_ids_never_sent(suffix):
    with _ConnectionCounter() as counter:
        client = CssClient(Credentials(ak="AK", sk="SK"), endpoint=counter.url)
        with pytest.raises(InvalidValue):
            client.retry_upgrade(**SCOPE, cluster_id=LOGS_PROD, task_id="task" + suffix)
        with pytest.raises(InvalidValue):
            client.upgrade_core(**SCOPE, cluster_id=LOGS_PROD, target_image_id="img" + suffix, upgrade_type="same", agency="a")
        with pytest.raises(InvalidValue):
            client.upgrade_core(**SCOPE, cluster_id=LOGS_PROD, target_image_id="img", upgrade_type="same", agency="a" + suffix)
    assert counter.connections == 0


class _ConnectionCounter:
    """A TCP listener on 127.0.0.1 that counts connections and closes them at once."""

    def __init__(self) -> None:
        self.connections = 0
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen()
        self._socket.settimeout(0.1)
        self._stop = threading.Event()
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def __enter__(self) -> "_ConnectionCounter":
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        time.sleep(0.05)
        self._stop.set()
        self._thread.join()
        self._socket.close()


class _RedirectServer:
    """An HTTP server on 127.0.0.1 that redirects every request to another host."""

    def __enter__(self) -> str:
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the standard library's name
                self.send_response(302)
                self.send_header("Location", "http://attacker.invalid/steal")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_timeouts_always_set(emulator, monkeypatch):
    seen = []
    original = requests.Session.request

    def spy(self, method, url, **kwargs):
        seen.append(kwargs.get("timeout"))
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", spy)
    client = _client(emulator)
    client.show_cluster(**SCOPE, cluster_id=LOGS_PROD)
    client.show_cluster(**SCOPE, cluster_id=LOGS_PROD, deadline=Deadline(2.0))

    assert seen[0] == (3.05, 15.0)
    connect, read = seen[1]
    assert 0 < connect <= 2.0
    assert 0 < read <= 2.0
