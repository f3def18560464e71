"""The emulator's control API under /_emulator/ and the command-line entry run as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from handler.local.emulator import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_PROJECT_ID,
    DEFAULT_SECRET_KEY,
    Emulator,
    default_catalog,
)
from handler.local.emulator.auth import EmulatorAuth

CATALOG = default_catalog()
CLUSTERS = {cluster.name: cluster.id for project in CATALOG.projects for cluster in project.clusters}
LOGS_PROD = CLUSTERS["logs-prod"]
REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def emulator():
    with Emulator(CATALOG) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_state(emulator):
    emulator.reset()
    emulator.cluster_paging = "pages"
    emulator.cluster_total_size = True


@pytest.fixture(scope="module")
def session():
    with requests.Session() as signed:
        signed.auth = EmulatorAuth(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, DEFAULT_PROJECT_ID)
        yield signed


def control(emulator: Emulator, path: str) -> str:
    return f"{emulator.url}/_emulator/{path}"


def images(session, base_url: str, cluster_id: str = LOGS_PROD) -> requests.Response:
    return session.get(f"{base_url}/v1.0/{DEFAULT_PROJECT_ID}/clusters/{cluster_id}/target/cross/images")


# -- Control API ---------------------------------------------------------------------------------


def test_health(emulator):
    response = requests.get(control(emulator, "health"))
    assert response.json() == {"status": "ok", "url": emulator.url}


def test_post_fault_applies(session, emulator):
    response = requests.post(control(emulator, "faults"), json={"kind": "throttle", "route": "list_images", "times": 1})
    assert response.status_code == 201
    assert response.json()["faults"][0]["remaining"] == 1
    assert images(session, emulator.url).status_code == 429
    assert images(session, emulator.url).status_code == 200


def test_post_fault_list(session, emulator):
    faults = [{"kind": "css_error", "error_code": "CSS.6013", "times": 1}, {"kind": "throttle", "times": 1}]
    requests.post(control(emulator, "faults"), json=faults)
    statuses = [images(session, emulator.url).status_code for _ in range(3)]
    assert statuses == [400, 429, 200]


def test_get_faults(emulator):
    requests.post(control(emulator, "faults"), json={"kind": "latency", "latency_ms": 5})
    armed = requests.get(control(emulator, "faults")).json()["faults"]
    assert [(fault["kind"], fault["latency_ms"]) for fault in armed] == [("latency", 5)]


def test_delete_faults(session, emulator):
    requests.post(control(emulator, "faults"), json={"kind": "throttle"})
    assert requests.delete(control(emulator, "faults")).status_code == 204
    assert images(session, emulator.url).status_code == 200


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"kind": "explode"}', b'[{"kind": "throttle"}, {"kind": "latency"}]'],
)
def test_post_invalid_fault_rejected(emulator, body):
    response = requests.post(control(emulator, "faults"), data=body)
    assert response.status_code == 400
    assert response.json()["error"]
    assert emulator.faults.armed() == []


def test_failure_rate(session, emulator):
    body = {"rate": 1.0, "seed": 4, "kinds": ["throttle"], "routes": ["list_images"]}
    assert requests.post(control(emulator, "failure-rate"), json=body).status_code == 204
    assert images(session, emulator.url).status_code == 429


def test_failure_rate_with_fault_template(session, emulator):
    body = {"rate": 1.0, "seed": 4, "kinds": [{"kind": "css_error", "error_code": "CSS.0011"}]}
    requests.post(control(emulator, "failure-rate"), json=body)
    assert images(session, emulator.url).status_code == 409


@pytest.mark.parametrize(
    "body",
    [{"rate": 2, "seed": 1}, {"rate": "x", "seed": 1}, {"rate": 0.5}, {"rate": 0.5, "seed": 1, "kinds": ["explode"]}, []],
)
def test_failure_rate_invalid(emulator, body):
    response = requests.post(control(emulator, "failure-rate"), json=body)
    assert response.status_code == 400
    assert response.json()["error"]


def test_calls_listed_with_route(session, emulator):
    images(session, emulator.url)
    session.get(f"{emulator.url}/v1.0/{DEFAULT_PROJECT_ID}/clusters", params={"limit": 2})
    body = requests.get(control(emulator, "calls")).json()
    assert body["count"] == 2
    assert [call["route"] for call in body["calls"]] == ["list_images", "list_clusters"]
    assert body["calls"][1]["query"] == {"limit": "2"}
    assert body["calls"][1]["status"] == 200


def test_calls_filtered_by_route(session, emulator):
    images(session, emulator.url)
    session.get(f"{emulator.url}/v1.0/{DEFAULT_PROJECT_ID}/clusters")
    body = requests.get(control(emulator, "calls"), params={"route": "list_clusters"}).json()
    assert body["count"] == 1


def test_control_requests_not_recorded(emulator):
    requests.get(control(emulator, "health"))
    requests.get(control(emulator, "calls"))
    assert emulator.calls == []


def test_delete_calls(session, emulator):
    images(session, emulator.url)
    assert requests.delete(control(emulator, "calls")).status_code == 204
    assert emulator.calls == []


def test_reset(session, emulator):
    url = f"{emulator.url}/v1.0/{DEFAULT_PROJECT_ID}/clusters/{LOGS_PROD}/inst-type/all/image/upgrade"
    body = {
        "target_image_id": "439b5d30-5968-45df-b088-d030a858522d",
        "upgrade_type": "cross",
        "indices_backup_check": True,
        "agency": "css-upgrade-agency",
    }
    session.post(url, json=body)
    requests.post(control(emulator, "faults"), json={"kind": "throttle"})
    assert requests.post(control(emulator, "reset")).status_code == 204
    assert emulator.cluster_state(LOGS_PROD)["tasks"] == []
    assert emulator.faults.armed() == []
    assert emulator.calls == []


def test_settings_change_paging(session, emulator):
    response = requests.post(control(emulator, "settings"), json={"cluster_paging": "items", "cluster_total_size": False})
    listed = session.get(f"{emulator.url}/v1.0/{DEFAULT_PROJECT_ID}/clusters").json()
    assert response.json() == {"cluster_paging": "items", "cluster_total_size": False}
    assert emulator.cluster_paging == "items"
    assert "totalSize" not in listed


@pytest.mark.parametrize("body", [{"cluster_paging": "rows"}, {"cluster_total_size": "no"}, {"colour": 1}, [1]])
def test_settings_invalid(emulator, body):
    response = requests.post(control(emulator, "settings"), json=body)
    assert response.status_code == 400
    assert emulator.cluster_paging == "pages"


def test_cluster_state(emulator):
    body = requests.get(control(emulator, f"clusters/{LOGS_PROD}")).json()
    assert body["cluster"]["name"] == "logs-prod"
    assert body["deleted"] is False
    assert body["tasks"] == []


def test_cluster_state_unknown(emulator):
    response = requests.get(control(emulator, "clusters/00000000-0000-4000-8000-000000000000"))
    assert response.status_code == 404


def test_catalog_leaves_out_secrets(emulator):
    response = requests.get(control(emulator, "catalog"))
    assert response.status_code == 200
    assert "emulator-secret-key-do-not-use" not in response.text
    assert "emulator-security-token-do-not-use" not in response.text
    assert DEFAULT_ACCESS_KEY in response.text


def test_unknown_control_request(emulator):
    response = requests.get(control(emulator, "teleport"))
    assert response.status_code == 404
    assert "unknown control request" in response.json()["error"]


def test_control_needs_no_signature_and_ignores_faults(emulator):
    emulator.inject({"kind": "connection_reset"})
    assert requests.get(control(emulator, "health")).status_code == 200


# -- Life cycle of the Python object -------------------------------------------------------------


def test_url_before_start_raises():
    with pytest.raises(RuntimeError, match="not running"):
        Emulator(CATALOG).url


def test_stop_releases_port():
    emulator = Emulator(CATALOG).start()
    url = emulator.url
    with requests.Session() as keep_alive:
        assert keep_alive.get(f"{url}/_emulator/health").status_code == 200
        emulator.stop()
        with pytest.raises(requests.ConnectionError):
            keep_alive.get(f"{url}/_emulator/health")


def test_invalid_paging_reading():
    with pytest.raises(ValueError, match="cluster_paging"):
        Emulator(CATALOG, cluster_paging="rows")


# -- Command line --------------------------------------------------------------------------------


def run_main(*arguments: str) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    return subprocess.Popen(
        [sys.executable, "-m", "handler.local.emulator", "--port", "0", *arguments],
        cwd=REPOSITORY,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()


def test_main_prints_url_first_and_serves(session):
    process = run_main()
    try:
        first_line = process.stdout.readline().strip()
        assert first_line.startswith("http://127.0.0.1:")
        response = images(session, first_line)
        assert response.status_code == 200
        assert response.json()["totalSize"] == 2
    finally:
        status = stop(process)
    assert status == 0


def test_main_catalog_file(tmp_path, session):
    catalog = json.loads((REPOSITORY / "handler/local/emulator/default_catalog.json").read_text())
    catalog["projects"] = [catalog["projects"][0]]
    catalog["credentials"] = [catalog["credentials"][0]]
    catalog["projects"][0]["clusters"] = [catalog["projects"][0]["clusters"][0]]
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))
    process = run_main("--catalog", str(path), "--cluster-paging", "items", "--no-cluster-total-size")
    try:
        url = process.stdout.readline().strip()
        listed = session.get(f"{url}/v1.0/{DEFAULT_PROJECT_ID}/clusters").json()
        settings = requests.get(f"{url}/_emulator/settings").json()
    finally:
        stop(process)
    assert [cluster["name"] for cluster in listed["clusters"]] == ["logs-prod"]
    assert settings == {"cluster_paging": "items", "cluster_total_size": False}


def test_main_generated_fleet(session):
    process = run_main("--generate", "25", "--seed", "3")
    try:
        url = process.stdout.readline().strip()
        listed = session.get(f"{url}/v1.0/{DEFAULT_PROJECT_ID}/clusters", params={"limit": 1}).json()
    finally:
        stop(process)
    assert listed["totalSize"] == 25


def test_main_invalid_catalog_exits_2(tmp_path):
    path = tmp_path / "catalog.json"
    path.write_text('{"credentials": [], "projects": []}')
    process = run_main("--catalog", str(path))
    output, errors_text = process.communicate(timeout=30)
    assert process.returncode == 2
    assert output == ""
    assert "invalid catalog" in errors_text


def test_main_missing_catalog_exits_2(tmp_path):
    process = run_main("--catalog", str(tmp_path / "absent.json"))
    _, errors_text = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "cannot read catalog file" in errors_text
