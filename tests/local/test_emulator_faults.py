"""Fault injection in the emulator: every fault kind over real sockets, `times`, matching and random failures."""

from __future__ import annotations

import json
import time

import pytest
import requests
from pydantic import ValidationError

from handler.css import errors
from handler.local.emulator import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_PROJECT_ID,
    DEFAULT_SECRET_KEY,
    Emulator,
    Fault,
    default_catalog,
)
from handler.local.emulator.auth import EmulatorAuth

CATALOG = default_catalog()
CLUSTERS = {cluster.name: cluster.id for project in CATALOG.projects for cluster in project.clusters}
LOGS_PROD = CLUSTERS["logs-prod"]
OS_LOGS = CLUSTERS["os-logs"]


@pytest.fixture(scope="module")
def emulator():
    with Emulator(CATALOG) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_state(emulator):
    emulator.reset()


@pytest.fixture(scope="module")
def session():
    with requests.Session() as signed:
        signed.auth = EmulatorAuth(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, DEFAULT_PROJECT_ID)
        yield signed


def images(session, emulator, cluster_id: str = LOGS_PROD, upgrade_type: str = "cross") -> requests.Response:
    return session.get(f"{emulator.url}/v1.0/{DEFAULT_PROJECT_ID}/clusters/{cluster_id}/target/{upgrade_type}/images")


def show(session, emulator, cluster_id: str = LOGS_PROD) -> requests.Response:
    return session.get(f"{emulator.url}/v1.0/{DEFAULT_PROJECT_ID}/clusters/{cluster_id}")


def classified(response: requests.Response) -> errors.CssError | None:
    return errors.classify(response.status_code, response.content, response.headers)


# -- Each kind -----------------------------------------------------------------------------------


def test_latency_delays_then_answers(session, emulator):
    emulator.inject(Fault(kind="latency", latency_ms=300, times=1))
    began = time.monotonic()
    response = images(session, emulator)
    assert time.monotonic() - began >= 0.3
    assert response.status_code == 200


def test_throttle_reply(session, emulator):
    emulator.inject(Fault(kind="throttle", retry_after=7))
    response = images(session, emulator)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.json()["error_code"] == "APIGW.0308"
    assert response.json()["request_id"] == response.headers["X-Request-Id"]


def test_throttle_classified(session, emulator):
    emulator.inject(Fault(kind="throttle", retry_after=7))
    error = classified(images(session, emulator))
    assert isinstance(error, errors.ThrottledError)
    assert error.retry_after == 7


def test_server_error_html_page(session, emulator):
    emulator.inject(Fault(kind="server_error", status=503))
    response = images(session, emulator)
    assert response.status_code == 503
    assert response.headers["Content-Type"].startswith("text/html")
    assert "HTTP Status 503" in response.text
    assert isinstance(classified(response), errors.ServerError)


@pytest.mark.parametrize(
    ("fault", "status", "code", "error_class"),
    [
        ({}, 400, "CSS.0036", errors.ServerError),
        ({"error_code": "CSS.0036"}, 400, "CSS.0036", errors.ServerError),
        ({"error_code": "CSS.6013"}, 400, "CSS.6013", errors.BusyError),
        ({"error_code": "CSS.0011"}, 409, "CSS.0011", errors.BusyError),
        ({"error_code": "CSS.0011", "status": 202}, 202, "CSS.0011", errors.BusyError),
        ({"error_code": "CSS.0015"}, 403, "CSS.0015", errors.NotFoundError),
        ({"error_code": "CSS.0010"}, 403, "CSS.0010", errors.AccessDeniedError),
        ({"error_code": "CSS.0001"}, 400, "CSS.0001", errors.InvalidRequestError),
        ({"error_code": "CSS.0047"}, 400, "CSS.0047", errors.NotFoundError),
    ],
)
def test_css_error_reply(session, emulator, fault, status, code, error_class):
    emulator.inject(Fault(kind="css_error", **fault))
    response = images(session, emulator)
    assert response.status_code == status
    assert response.json()["errCode"] == code
    assert response.json()["externalMessage"].startswith(f"{code} : ")
    assert isinstance(classified(response), error_class)


def test_css_error_custom_message(session, emulator):
    emulator.inject(Fault(kind="css_error", error_code="CSS.0036", message="Database timeout."))
    assert images(session, emulator).json()["externalMessage"] == "CSS.0036 : Database timeout."


def test_gateway_error_reply(session, emulator):
    emulator.inject(Fault(kind="gateway_error"))
    response = images(session, emulator)
    assert response.status_code == 401
    assert response.json()["error_code"] == "APIGW.0301"
    assert isinstance(classified(response), errors.CredentialError)


def test_empty_body_reply(session, emulator):
    emulator.inject(Fault(kind="empty_body", status=502))
    response = images(session, emulator)
    assert response.status_code == 502
    assert response.content == b""
    assert response.headers["Content-Length"] == "0"


def test_connection_reset(session, emulator):
    emulator.inject(Fault(kind="connection_reset", times=1))
    with pytest.raises(requests.ConnectionError):
        images(session, emulator)
    assert emulator.calls[-1].status == 0


def test_connection_reset_then_recovers(session, emulator):
    emulator.inject(Fault(kind="connection_reset", times=1))
    with pytest.raises(requests.ConnectionError):
        images(session, emulator)
    assert images(session, emulator).status_code == 200


def test_malformed_json(session, emulator):
    emulator.inject(Fault(kind="malformed_json", times=1))
    broken = images(session, emulator)
    whole = images(session, emulator)
    assert broken.status_code == 200
    with pytest.raises(ValueError):
        json.loads(broken.content)
    assert whole.content.startswith(broken.content)


def test_malformed_json_on_empty_reply(session, emulator):
    emulator.inject(Fault(kind="malformed_json", route="upgrade_core"))
    url = f"{emulator.url}/v1.0/{DEFAULT_PROJECT_ID}/clusters/{LOGS_PROD}/inst-type/all/image/upgrade"
    body = {
        "target_image_id": "439b5d30-5968-45df-b088-d030a858522d",
        "upgrade_type": "cross",
        "indices_backup_check": True,
        "agency": "css-upgrade-agency",
    }
    response = session.post(url, json=body)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        json.loads(response.content)


# -- times, matching, order ----------------------------------------------------------------------


def test_times_fails_first_calls_only(session, emulator):
    emulator.inject(Fault(kind="css_error", error_code="CSS.0036", times=2))
    statuses = [images(session, emulator).status_code for _ in range(4)]
    assert statuses == [400, 400, 200, 200]


def test_times_used_up_fault_disarmed(session, emulator):
    emulator.inject(Fault(kind="throttle", times=1))
    images(session, emulator)
    assert emulator.faults.armed() == []


def test_unlimited_fault_stays(session, emulator):
    emulator.inject(Fault(kind="throttle"))
    statuses = {images(session, emulator).status_code for _ in range(5)}
    assert statuses == {429}
    assert emulator.faults.armed()[0]["remaining"] is None


def test_fault_matches_cluster_only(session, emulator):
    emulator.inject(Fault(kind="throttle", cluster_id=OS_LOGS.upper()))
    assert images(session, emulator, OS_LOGS, "same").status_code == 429
    assert images(session, emulator, LOGS_PROD).status_code == 200


def test_fault_matches_route_only(session, emulator):
    emulator.inject(Fault(kind="throttle", route="show_cluster"))
    assert show(session, emulator).status_code == 429
    assert images(session, emulator).status_code == 200


def test_fault_matches_upgrade_type(session, emulator):
    emulator.inject(Fault(kind="throttle", route="list_images", upgrade_type="crossEngine"))
    assert images(session, emulator, upgrade_type="cross-engine").status_code == 429
    assert images(session, emulator, upgrade_type="cross").status_code == 200


def test_cluster_fault_skips_cluster_list(session, emulator):
    emulator.inject(Fault(kind="throttle", cluster_id=LOGS_PROD))
    response = session.get(f"{emulator.url}/v1.0/{DEFAULT_PROJECT_ID}/clusters")
    assert response.status_code == 200


def test_first_matching_fault_wins(session, emulator):
    emulator.inject(Fault(kind="css_error", error_code="CSS.6013", times=1))
    emulator.inject(Fault(kind="throttle", times=1))
    statuses = [images(session, emulator).status_code for _ in range(3)]
    assert statuses == [400, 429, 200]


def test_clear_faults(session, emulator):
    emulator.inject(Fault(kind="throttle"))
    emulator.clear_faults()
    assert images(session, emulator).status_code == 200


def test_unsigned_request_does_not_use_fault(session, emulator):
    emulator.inject(Fault(kind="throttle", times=1))
    unsigned = requests.get(f"{emulator.url}/v1.0/{DEFAULT_PROJECT_ID}/clusters/{LOGS_PROD}")
    assert unsigned.status_code == 401
    assert show(session, emulator).status_code == 429


def test_inject_accepts_json_object(session, emulator):
    emulator.inject({"kind": "css_error", "error_code": "CSS.6013", "route": "list_images"})
    assert images(session, emulator).json()["errCode"] == "CSS.6013"


# -- Effects of the route ------------------------------------------------------------------------

UPGRADE_BODY = {
    "target_image_id": "439b5d30-5968-45df-b088-d030a858522d",
    "upgrade_type": "cross",
    "indices_backup_check": True,
    "agency": "css-upgrade-agency",
}


def post_upgrade(session, emulator) -> requests.Response:
    url = f"{emulator.url}/v1.0/{DEFAULT_PROJECT_ID}/clusters/{LOGS_PROD}/inst-type/all/image/upgrade"
    return session.post(url, json=UPGRADE_BODY)


def test_reset_before_route_starts_nothing(session, emulator):
    emulator.inject(Fault(kind="connection_reset", route="upgrade_core", times=1))
    with pytest.raises(requests.ConnectionError):
        post_upgrade(session, emulator)
    assert emulator.cluster_state(LOGS_PROD)["tasks"] == []


def test_reset_after_route_starts_task(session, emulator):
    emulator.inject(Fault(kind="connection_reset", route="upgrade_core", times=1, after_route=True))
    with pytest.raises(requests.ConnectionError):
        post_upgrade(session, emulator)
    assert emulator.cluster_state(LOGS_PROD)["tasks"][0]["status"] == "RUNNING"
    assert post_upgrade(session, emulator).status_code == 409


# -- Random failures -----------------------------------------------------------------------------


def statuses_with_rate(session, emulator, rate: float, seed: int, count: int = 40, **options) -> list[int]:
    emulator.reset()
    emulator.set_failure_rate(rate, seed, **options)
    result = []
    for _ in range(count):
        try:
            result.append(images(session, emulator).status_code)
        except requests.ConnectionError:
            result.append(0)
    return result


def test_failure_rate_same_seed_same_failures(session, emulator):
    first = statuses_with_rate(session, emulator, 0.5, seed=11)
    second = statuses_with_rate(session, emulator, 0.5, seed=11)
    assert first == second
    assert 200 in first
    assert set(first) - {200}


def test_failure_rate_zero_never_fails(session, emulator):
    assert set(statuses_with_rate(session, emulator, 0.0, seed=3)) == {200}


def test_failure_rate_one_always_fails(session, emulator):
    assert 200 not in statuses_with_rate(session, emulator, 1.0, seed=3)


def test_failure_rate_kinds(session, emulator):
    statuses = statuses_with_rate(session, emulator, 1.0, seed=3, count=10, kinds=["throttle"])
    assert set(statuses) == {429}


def test_failure_rate_fault_templates(session, emulator):
    template = Fault(kind="css_error", error_code="CSS.0011", status=202)
    statuses = statuses_with_rate(session, emulator, 1.0, seed=3, count=5, kinds=[template])
    assert set(statuses) == {202}


def test_failure_rate_routes(session, emulator):
    emulator.set_failure_rate(1.0, 5, kinds=["throttle"], routes=["show_cluster"])
    assert images(session, emulator).status_code == 200
    assert show(session, emulator).status_code == 429


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"rate": 1.5, "seed": 1}, "invalid failure rate"),
        ({"rate": 0.1, "seed": 1, "kinds": []}, "at least one kind"),
        ({"rate": 0.1, "seed": 1, "routes": ["list_everything"]}, "invalid routes"),
    ],
)
def test_failure_rate_invalid(emulator, arguments, message):
    with pytest.raises(ValueError, match=message):
        emulator.set_failure_rate(**arguments)


# -- Fault validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "explode"},
        {"kind": "latency"},
        {"kind": "server_error", "status": 404},
        {"kind": "css_error", "error_code": "APIGW.0301"},
        {"kind": "gateway_error", "error_code": "CSS.0001"},
        {"kind": "throttle", "times": 0},
        {"kind": "throttle", "route": "list_everything"},
        {"kind": "throttle", "colour": "red"},
        {"kind": "empty_body", "status": 700},
    ],
)
def test_fault_invalid_definition(data):
    with pytest.raises(ValidationError):
        Fault.model_validate(data)


def test_fault_from_json_defaults():
    fault = Fault.model_validate_json('{"kind": "css_error", "error_code": "CSS.0011"}')
    assert (fault.status, fault.times, fault.route) == (409, None, None)


@pytest.mark.parametrize(
    ("kind", "status"),
    [("throttle", 429), ("server_error", 500), ("empty_body", 502), ("gateway_error", 401), ("css_error", 400)],
)
def test_fault_default_status(kind, status):
    assert Fault(kind=kind).status == status
