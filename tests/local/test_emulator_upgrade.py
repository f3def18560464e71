"""The emulator's upgrade chain over real sockets: UpgradeCore, UpgradeDetail and RetryUpgradeTask."""

from __future__ import annotations

import json

import pytest
import requests

from handler.local.emulator import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_PROJECT_ID,
    DEFAULT_SECRET_KEY,
    Emulator,
    default_catalog,
    load_catalog,
)
from handler.local.emulator.auth import EmulatorAuth

CATALOG = default_catalog()
CLUSTERS = {cluster.name: cluster.id for project in CATALOG.projects for cluster in project.clusters}
IMAGES = {image.display_name: image.id for image in CATALOG.images}
TASK_KEYS = {
    "id",
    "startTime",
    "endTime",
    "status",
    "agencyName",
    "imageInfo",
    "totalNodes",
    "completedNodes",
    "currentNodeName",
    "executeTimes",
    "failMessage",
}


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


def cluster_url(emulator: Emulator, name_or_id: str) -> str:
    cluster_id = CLUSTERS.get(name_or_id, name_or_id)
    return f"{emulator.url}/v1.0/{DEFAULT_PROJECT_ID}/clusters/{cluster_id}"


def upgrade_body(image: str, upgrade_type: str = "same", **changes) -> dict:
    body = {
        "target_image_id": IMAGES.get(image, image),
        "upgrade_type": upgrade_type,
        "indices_backup_check": True,
        "agency": "css-upgrade-agency",
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


def start(session, emulator, name: str, body: dict | bytes, inst_type: str = "all") -> requests.Response:
    url = f"{cluster_url(emulator, name)}/inst-type/{inst_type}/image/upgrade"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return session.post(url, data=data, headers={"Content-Type": "application/json"})


def details(session, emulator, name: str, **query) -> requests.Response:
    return session.get(f"{cluster_url(emulator, name)}/upgrade/detail", params=query)


def latest_task(session, emulator, name: str) -> dict:
    return details(session, emulator, name).json()["detailList"][0]


def retry(session, emulator, name: str, task_id: str, **query) -> requests.Response:
    return session.put(f"{cluster_url(emulator, name)}/upgrade/{task_id}/retry", params=query)


def cluster(session, emulator, name: str) -> dict:
    return session.get(cluster_url(emulator, name)).json()


def assert_css_error(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status
    body = response.json()
    assert body["errCode"] == code
    assert body["externalMessage"].startswith(f"{code} : ")
    return body


# -- UpgradeCore ---------------------------------------------------------------------------------


def test_upgrade_returns_empty_200(session, emulator):
    response = start(session, emulator, "logs-prod", upgrade_body("7.10.2_24.3.4_0109", "cross"))
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["X-Request-Id"]


def test_upgrade_creates_running_task(session, emulator):
    start(session, emulator, "logs-prod", upgrade_body("7.10.2_24.3.4_0109", "cross"))
    task = latest_task(session, emulator, "logs-prod")
    assert TASK_KEYS <= set(task)
    assert task["status"] == "RUNNING"
    assert task["endTime"] == ""
    assert task["executeTimes"] == "1"
    assert task["agencyName"] == "css-upgrade-agency"
    assert task["imageInfo"]["id"] == "439b5d30-5968-45df-b088-d030a858522d"
    assert len(task["totalNodes"].split(",")) == 3


def test_upgrade_marks_cluster_busy(session, emulator):
    start(session, emulator, "logs-prod", upgrade_body("7.10.2_24.3.4_0109", "cross"))
    body = cluster(session, emulator, "logs-prod")
    assert body["actions"] == ["UPGRADING"]
    assert "UPGRADING" in body["actionProgress"]


def test_upgrade_conflicts_while_running(session, emulator):
    start(session, emulator, "logs-prod", upgrade_body("7.10.2_24.3.4_0109", "cross"))
    second = start(session, emulator, "logs-prod", upgrade_body("7.10.2_24.3.3_0102", "cross"))
    assert_css_error(second, 409, "CSS.0011")


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"target_image_id": None}, "CSS.0006", "target_image_id"),
        ({"target_image_id": ""}, "CSS.0006", "target_image_id"),
        ({"target_image_id": 7}, "CSS.0001", "target_image_id"),
        ({"upgrade_type": None}, "CSS.0006", "upgrade_type"),
        ({"upgrade_type": "major"}, "CSS.0001", "upgrade_type"),
        ({"indices_backup_check": None}, "CSS.0006", "indices_backup_check"),
        ({"indices_backup_check": "yes"}, "CSS.0001", "indices_backup_check"),
        ({"agency": None}, "CSS.5130", "agency"),
        ({"agency": ""}, "CSS.5130", "agency"),
        ({"agency": "bad agency"}, "CSS.5130", "agency"),
        ({"agency": 3}, "CSS.5130", "agency"),
        ({"batch_size": 0}, "CSS.0001", "batch_size"),
        ({"cluster_load_check": "no"}, "CSS.0001", "cluster_load_check"),
        ({"target_image_id": "00000000-0000-4000-8000-000000000000"}, "CSS.0001", "target_image_id"),
    ],
)
def test_upgrade_invalid_body_rejected(session, emulator, changes, code, field):
    response = start(session, emulator, "upgrade-flaky", upgrade_body("7.10.2_25.1.0_0311", **changes))
    body = assert_css_error(response, 400, code)
    assert field in body["externalMessage"] or code == "CSS.0006"
    assert latest_tasks_count(session, emulator, "upgrade-flaky") == 0


def latest_tasks_count(session, emulator, name: str) -> int:
    return details(session, emulator, name).json()["totalSize"]


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b"null"])
def test_upgrade_body_not_object_rejected(session, emulator, raw):
    assert_css_error(start(session, emulator, "upgrade-flaky", raw), 400, "CSS.0001")


def test_upgrade_image_of_other_type_rejected(session, emulator):
    response = start(session, emulator, "logs-prod", upgrade_body("7.10.2_24.3.4_0109", "same"))
    assert_css_error(response, 400, "CSS.0001")


def test_upgrade_legacy_cross_engine_spelling(session, emulator):
    response = start(session, emulator, "search-prod", upgrade_body("1.3.6_24.3.4_0109", "crossEngine"))
    assert response.status_code == 200


def test_upgrade_inst_type_must_be_all(session, emulator):
    response = start(session, emulator, "upgrade-flaky", upgrade_body("7.10.2_25.1.0_0311"), inst_type="ess")
    assert_css_error(response, 400, "CSS.0001")


@pytest.mark.parametrize(
    ("name", "image", "upgrade_type", "status", "code"),
    [
        ("old-logs", "7.10.2_24.3.4_0109", "cross", 400, "CSS.0047"),
        ("00000000-0000-4000-8000-000000000000", "7.10.2_24.3.4_0109", "cross", 400, "CSS.0047"),
        ("broken-search", "7.10.2_25.1.0_0311", "same", 400, "CSS.0078"),
        ("busy-snapshot", "7.9.3_24.3.4_0109", "same", 400, "CSS.6013"),
        ("metrics-prod", "7.10.2_24.3.4_0109", "cross", 400, "CSS.5140"),
        ("no-cross-engine", "7.10.2_25.1.0_0311", "cross-engine", 400, "CSS.5140"),
        ("logstash-ingest", "7.10.2_25.1.0_0311", "same", 400, "CSS.5140"),
    ],
)
def test_upgrade_refused_for_cluster_state(session, emulator, name, image, upgrade_type, status, code):
    assert_css_error(start(session, emulator, name, upgrade_body(image, upgrade_type)), status, code)


# -- UpgradeDetail -------------------------------------------------------------------------------


def test_details_empty_without_tasks(session, emulator):
    assert details(session, emulator, "logs-prod").json() == {"totalSize": 0, "detailList": []}


def test_details_deleted_cluster_forbidden(session, emulator):
    assert_css_error(details(session, emulator, "old-logs"), 403, "CSS.0015")


def test_details_az_migration_mode_empty(session, emulator):
    start(session, emulator, "logs-prod", upgrade_body("7.10.2_24.3.4_0109", "cross"))
    body = details(session, emulator, "logs-prod", action_mode="AZ_MIGRATION").json()
    assert body == {"totalSize": 0, "detailList": []}


@pytest.mark.parametrize("query", [{"action_mode": "REBOOTING"}, {"offset": "0"}, {"limit": "1001"}])
def test_details_invalid_query_rejected(session, emulator, query):
    assert_css_error(details(session, emulator, "logs-prod", **query), 400, "CSS.0001")


def test_details_progress_while_running(session, emulator):
    start(session, emulator, "logs-prod", upgrade_body("7.10.2_24.3.4_0109", "cross"))
    task = latest_task(session, emulator, "logs-prod")
    assert task["status"] == "RUNNING"
    assert task["completedNodes"] == "logs-prod-ess-esn-1-1"
    assert task["currentNodeName"] == "logs-prod-ess-esn-2-1"


def test_only_detail_polls_advance_task(session, emulator):
    start(session, emulator, "logs-prod", upgrade_body("7.10.2_24.3.4_0109", "cross"))
    for _ in range(5):
        cluster(session, emulator, "logs-prod")
    assert latest_task(session, emulator, "logs-prod")["status"] == "RUNNING"


# -- Life cycle ----------------------------------------------------------------------------------


def test_success_moves_cluster_to_target(session, emulator):
    start(session, emulator, "logs-prod", upgrade_body("7.10.2_24.3.4_0109", "cross"))
    statuses = [latest_task(session, emulator, "logs-prod")["status"] for _ in range(2)]
    body = cluster(session, emulator, "logs-prod")
    assert statuses == ["RUNNING", "SUCCESS"]
    assert body["datastore"]["version"] == "7.10.2"
    assert body["datastore"]["subVersion"] == "7.10.2_24.3.4_0109"
    assert body["actions"] == []


def test_success_task_fields(session, emulator):
    start(session, emulator, "logs-prod", upgrade_body("7.10.2_24.3.4_0109", "cross"))
    details(session, emulator, "logs-prod")
    task = latest_task(session, emulator, "logs-prod")
    assert task["endTime"] != ""
    assert task["completedNodes"] == task["totalNodes"]
    assert task["currentNodeName"] == ""
    assert task["failMessage"] == ""


def test_success_recomputes_target_images(session, emulator):
    start(session, emulator, "upgrade-flaky", upgrade_body("7.10.2_25.1.0_0311"))
    url = f"{cluster_url(emulator, 'upgrade-flaky')}/target/same/images"
    for _ in range(2):
        details(session, emulator, "upgrade-flaky")
    retry(session, emulator, "upgrade-flaky", latest_task(session, emulator, "upgrade-flaky")["id"])
    for _ in range(2):
        details(session, emulator, "upgrade-flaky")
    names = [image["displayName"] for image in session.get(url).json()["imageInfoList"]]
    assert names == ["7.10.2_25.1.1_0422"]


def test_cross_engine_success_changes_engine(session, emulator):
    start(session, emulator, "search-prod", upgrade_body("1.3.6_24.3.4_0109", "cross-engine"))
    for _ in range(2):
        details(session, emulator, "search-prod")
    listed = session.get(
        f"{emulator.url}/v1.0/{DEFAULT_PROJECT_ID}/clusters", params={"datastoreType": "opensearch", "limit": 100}
    ).json()
    assert cluster(session, emulator, "search-prod")["datastore"]["type"] == "opensearch"
    assert "search-prod" in [item["name"] for item in listed["clusters"]]


def test_lifecycle_failed_retry_success(session, emulator):
    assert start(session, emulator, "upgrade-flaky", upgrade_body("7.10.2_25.1.0_0311")).status_code == 200

    running = latest_task(session, emulator, "upgrade-flaky")
    failed = latest_task(session, emulator, "upgrade-flaky")
    assert running["status"] == "RUNNING"
    assert failed["status"] == "FAILED"
    assert failed["failMessage"].startswith("Failed to upgrade node")
    assert failed["endTime"] != ""
    assert cluster(session, emulator, "upgrade-flaky")["datastore"]["subVersion"] == "7.10.2_24.3.4_0109"
    assert cluster(session, emulator, "upgrade-flaky")["actions"] == []

    response = retry(session, emulator, "upgrade-flaky", failed["id"])
    assert response.status_code == 200
    assert response.content == b""

    retried = latest_task(session, emulator, "upgrade-flaky")
    succeeded = latest_task(session, emulator, "upgrade-flaky")
    assert retried["id"] == failed["id"]
    assert retried["status"] == "RUNNING"
    assert retried["executeTimes"] == "2"
    assert retried["endTime"] == ""
    assert succeeded["status"] == "SUCCESS"
    assert cluster(session, emulator, "upgrade-flaky")["datastore"]["subVersion"] == "7.10.2_25.1.0_0311"


def test_retry_marks_cluster_busy(session, emulator):
    start(session, emulator, "upgrade-flaky", upgrade_body("7.10.2_25.1.0_0311"))
    details(session, emulator, "upgrade-flaky")
    task = latest_task(session, emulator, "upgrade-flaky")
    retry(session, emulator, "upgrade-flaky", task["id"])
    assert cluster(session, emulator, "upgrade-flaky")["actions"] == ["UPGRADING"]


def test_partial_failure_then_retry(session, emulator):
    start(session, emulator, "upgrade-partial", upgrade_body("1.3.6_24.3.4_0109"))
    statuses = [latest_task(session, emulator, "upgrade-partial")["status"] for _ in range(3)]
    partial = latest_task(session, emulator, "upgrade-partial")
    assert statuses == ["RUNNING", "RUNNING", "PARTIAL_FAILED"]
    assert len(partial["completedNodes"].split(",")) == 4
    assert partial["currentNodeName"] == "upgrade-partial-ess-esn-5-1"

    retry(session, emulator, "upgrade-partial", partial["id"])
    for _ in range(3):
        final = latest_task(session, emulator, "upgrade-partial")
    assert final["status"] == "SUCCESS"
    assert final["completedNodes"] == final["totalNodes"]


def test_retry_running_task_rejected(session, emulator):
    start(session, emulator, "logs-prod", upgrade_body("7.10.2_24.3.4_0109", "cross"))
    task = latest_task(session, emulator, "logs-prod")
    assert_css_error(retry(session, emulator, "logs-prod", task["id"]), 400, "CSS.5140")


def test_retry_successful_task_rejected(session, emulator):
    start(session, emulator, "logs-prod", upgrade_body("7.10.2_24.3.4_0109", "cross"))
    details(session, emulator, "logs-prod")
    task = latest_task(session, emulator, "logs-prod")
    assert task["status"] == "SUCCESS"
    assert_css_error(retry(session, emulator, "logs-prod", task["id"]), 400, "CSS.5140")


def test_retry_unknown_task_rejected(session, emulator):
    assert_css_error(retry(session, emulator, "logs-prod", "no-such-task"), 400, "CSS.0001")


def test_retry_deleted_cluster_rejected(session, emulator):
    assert_css_error(retry(session, emulator, "old-logs", "no-such-task"), 400, "CSS.0047")


def test_retry_mode_unknown_value_rejected(session, emulator):
    assert_css_error(retry(session, emulator, "logs-prod", "any", retry_mode="force"), 400, "CSS.0001")


def failed_task(session, emulator) -> dict:
    start(session, emulator, "upgrade-flaky", upgrade_body("7.10.2_25.1.0_0311"))
    details(session, emulator, "upgrade-flaky")
    task = latest_task(session, emulator, "upgrade-flaky")
    assert task["status"] == "FAILED"
    return task


def test_abort_closes_failed_task(session, emulator):
    task = failed_task(session, emulator)
    response = retry(session, emulator, "upgrade-flaky", task["id"], retry_mode="abort")
    aborted = latest_task(session, emulator, "upgrade-flaky")
    assert response.status_code == 200
    assert aborted["status"] == "FAILED"
    assert aborted["failMessage"] == "The upgrade task was terminated by the user."


def test_abort_then_retry_rejected(session, emulator):
    task = failed_task(session, emulator)
    retry(session, emulator, "upgrade-flaky", task["id"], retry_mode="abort")
    assert_css_error(retry(session, emulator, "upgrade-flaky", task["id"]), 400, "CSS.5140")


def test_abort_then_new_upgrade_allowed(session, emulator):
    task = failed_task(session, emulator)
    retry(session, emulator, "upgrade-flaky", task["id"], retry_mode="abort")
    response = start(session, emulator, "upgrade-flaky", upgrade_body("7.10.2_25.1.1_0422"))
    body = details(session, emulator, "upgrade-flaky").json()
    assert response.status_code == 200
    assert body["totalSize"] == 2
    assert body["detailList"][0]["imageInfo"]["displayName"] == "7.10.2_25.1.1_0422"


def test_abort_running_task_rejected(session, emulator):
    start(session, emulator, "logs-prod", upgrade_body("7.10.2_24.3.4_0109", "cross"))
    task = latest_task(session, emulator, "logs-prod")
    assert_css_error(retry(session, emulator, "logs-prod", task["id"], retry_mode="abort"), 400, "CSS.5140")


def test_retry_body_is_ignored(session, emulator):
    task = failed_task(session, emulator)
    url = f"{cluster_url(emulator, 'upgrade-flaky')}/upgrade/{task['id']}/retry"
    session.put(url, data=b'{"retry_mode": "abort"}', headers={"Content-Type": "application/json"})
    assert latest_task(session, emulator, "upgrade-flaky")["status"] == "RUNNING"


def test_details_paging_newest_first(session, emulator):
    task = failed_task(session, emulator)
    retry(session, emulator, "upgrade-flaky", task["id"], retry_mode="abort")
    start(session, emulator, "upgrade-flaky", upgrade_body("7.10.2_25.1.1_0422"))
    first = details(session, emulator, "upgrade-flaky", offset=1, limit=1).json()
    second = details(session, emulator, "upgrade-flaky", offset=2, limit=1).json()
    assert first["totalSize"] == 2
    assert first["detailList"][0]["imageInfo"]["displayName"] == "7.10.2_25.1.1_0422"
    assert second["detailList"][0]["id"] == task["id"]


def test_reset_forgets_tasks(session, emulator):
    start(session, emulator, "logs-prod", upgrade_body("7.10.2_24.3.4_0109", "cross"))
    details(session, emulator, "logs-prod")
    emulator.reset()
    assert details(session, emulator, "logs-prod").json()["totalSize"] == 0
    assert cluster(session, emulator, "logs-prod")["datastore"]["subVersion"] == "7.6.2_24.3.3_1224"


def test_cluster_state_snapshot(session, emulator):
    start(session, emulator, "logs-prod", upgrade_body("7.10.2_24.3.4_0109", "cross"))
    state = emulator.cluster_state(CLUSTERS["logs-prod"])
    assert state["tasks"][0]["status"] == "RUNNING"
    assert state["attempts"] == 1
    assert [image["priority"] for image in state["images"]["cross"]] == [15, 16]


# -- Cross-version termination rule --------------------------------------------------------------

CROSS_CLUSTER = "9a3c1d2e-4b5f-4a6b-8c7d-0e1f2a3b4c5d"
CROSS_IMAGE = "2c0f6b7e-1d3a-4e5b-9f8c-7a6b5c4d3e2f"


@pytest.fixture(scope="module")
def cross_emulator():
    catalog = load_catalog(
        {
            "credentials": [{"ak": DEFAULT_ACCESS_KEY, "sk": DEFAULT_SECRET_KEY}],
            "projects": [
                {
                    "id": DEFAULT_PROJECT_ID,
                    "clusters": [
                        {
                            "id": CROSS_CLUSTER,
                            "name": "cross-partial",
                            "datastore": {"type": "elasticsearch", "version": "7.9.3", "subVersion": "7.9.3_24.3.4_0109"},
                            "images": {
                                "cross": [
                                    {
                                        "id": CROSS_IMAGE,
                                        "displayName": "7.10.2_24.3.4_0109",
                                        "datastoreType": "elasticsearch",
                                        "datastoreVersion": "7.10.2",
                                        "priority": 3,
                                    }
                                ]
                            },
                            "upgrade": {"polls_before_end": 0, "outcomes": ["PARTIAL_FAILED"]},
                        }
                    ],
                }
            ],
        }
    )
    with Emulator(catalog) as running:
        yield running


def test_abort_cross_upgrade_after_node_upgraded_rejected(session, cross_emulator):
    cross_emulator.reset()
    start(session, cross_emulator, CROSS_CLUSTER, upgrade_body(CROSS_IMAGE, "cross"))
    task = latest_task(session, cross_emulator, CROSS_CLUSTER)
    assert task["status"] == "PARTIAL_FAILED"
    response = retry(session, cross_emulator, CROSS_CLUSTER, task["id"], retry_mode="abort")
    assert_css_error(response, 400, "CSS.5140")


def test_outcome_list_last_entry_repeats(session, cross_emulator):
    cross_emulator.reset()
    start(session, cross_emulator, CROSS_CLUSTER, upgrade_body(CROSS_IMAGE, "cross"))
    task = latest_task(session, cross_emulator, CROSS_CLUSTER)
    retry(session, cross_emulator, CROSS_CLUSTER, task["id"])
    again = latest_task(session, cross_emulator, CROSS_CLUSTER)
    assert again["status"] == "PARTIAL_FAILED"
    assert again["executeTimes"] == "2"
