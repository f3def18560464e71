"""The emulator's read routes over real sockets: ListImages, ShowClusterDetail, ListClustersDetails."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from handler.local.emulator import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_PROJECT_ID,
    DEFAULT_SECRET_KEY,
    Emulator,
    default_catalog,
    generate_catalog,
)
from handler.local.emulator.auth import EmulatorAuth

CATALOG = default_catalog()
CLUSTERS = {cluster.name: cluster.id for project in CATALOG.projects for cluster in project.clusters}
SECOND_PROJECT = "1f0e8c7b6a5d4c3b2a1908f7e6d5c4b3"
SCOPED_AK = "EMULATORSCOPEDAK000000"
SCOPED_SK = "emulator-scoped-secret-do-not-use"
IMAGE_KEYS = {"id", "displayName", "imageDesc", "datastoreType", "datastoreVersion", "priority"}


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


def api(emulator: Emulator, path: str, project_id: str = DEFAULT_PROJECT_ID) -> str:
    return f"{emulator.url}/v1.0/{project_id}{path}"


def images(session, emulator, name: str, upgrade_type: str, **query) -> requests.Response:
    return session.get(api(emulator, f"/clusters/{CLUSTERS[name]}/target/{upgrade_type}/images"), params=query)


def assert_css_error(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status
    body = response.json()
    assert body["errCode"] == code
    assert body["externalMessage"].startswith(f"{code} : ")
    return body


# -- ListImages ----------------------------------------------------------------------------------


def test_images_default_page_is_ten(session, emulator):
    body = images(session, emulator, "search-archive", "same").json()
    assert len(body["imageInfoList"]) == 10
    assert body["totalSize"] == 25


def test_images_pages_by_zero_based_offset(session, emulator):
    names = []
    for offset in (0, 10, 20):
        page = images(session, emulator, "search-archive", "same", offset=offset, limit=10).json()
        names.extend(image["displayName"] for image in page["imageInfoList"])
    assert len(names) == 25
    assert len(set(names)) == 25


def test_images_offset_counts_items(session, emulator):
    first = images(session, emulator, "search-archive", "same", offset=0, limit=5).json()["imageInfoList"]
    shifted = images(session, emulator, "search-archive", "same", offset=3, limit=5).json()["imageInfoList"]
    assert shifted[0] == first[3]


def test_images_offset_past_end_is_empty(session, emulator):
    body = images(session, emulator, "search-archive", "same", offset=1000).json()
    assert body["imageInfoList"] == []
    assert body["totalSize"] == 25


def test_images_large_limit_returns_all(session, emulator):
    body = images(session, emulator, "search-archive", "same", limit=1000).json()
    assert len(body["imageInfoList"]) == 25


def test_images_body_shape(session, emulator):
    body = images(session, emulator, "logs-prod", "cross").json()
    assert set(body) == {"needUploadUpgradePlugin", "imageInfoList", "totalSize"}
    assert body["needUploadUpgradePlugin"] is False
    assert all(set(image) == IMAGE_KEYS for image in body["imageInfoList"])


def test_images_contract_example(session, emulator):
    body = images(session, emulator, "logs-prod", "cross").json()
    by_name = {image["displayName"]: image for image in body["imageInfoList"]}
    assert by_name["7.10.2_24.3.4_0109"]["id"] == "439b5d30-5968-45df-b088-d030a858522d"
    assert by_name["7.10.2_24.3.4_0109"]["priority"] == 16
    assert by_name["7.10.2_24.3.3_0102"]["priority"] == 15


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"offset": "-1"}, "offset"),
        ({"offset": "1001"}, "offset"),
        ({"offset": "abc"}, "offset"),
        ({"offset": ""}, "offset"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "1.5"}, "limit"),
    ],
)
def test_images_invalid_paging_rejected(session, emulator, query, parameter):
    body = assert_css_error(images(session, emulator, "logs-prod", "cross", **query), 400, "CSS.0001")
    assert parameter in body["externalMessage"]


@pytest.mark.parametrize("spelling", ["cross-engine", "crossEngine"])
def test_images_cross_engine_spellings(session, emulator, spelling):
    body = images(session, emulator, "search-prod", spelling).json()
    assert [image["datastoreType"] for image in body["imageInfoList"]] == ["opensearch"]


def test_images_unknown_type_rejected(session, emulator):
    assert_css_error(images(session, emulator, "logs-prod", "major"), 400, "CSS.0001")


def test_images_unsupported_type_rejected(session, emulator):
    assert_css_error(images(session, emulator, "no-cross-engine", "cross-engine"), 400, "CSS.5140")


@pytest.mark.parametrize("upgrade_type", ["same", "cross", "cross-engine"])
def test_images_logstash_unsupported(session, emulator, upgrade_type):
    assert_css_error(images(session, emulator, "logstash-ingest", upgrade_type), 400, "CSS.5140")


def test_images_plugin_upload_flag(session, emulator):
    assert images(session, emulator, "metrics-prod", "cross").json()["needUploadUpgradePlugin"] is True


@pytest.mark.parametrize("upgrade_type", ["same", "cross", "cross-engine"])
def test_images_newest_cluster_empty(session, emulator, upgrade_type):
    body = images(session, emulator, "os-newest", upgrade_type).json()
    assert body == {"needUploadUpgradePlugin": False, "imageInfoList": [], "totalSize": 0}


def test_images_deleted_cluster_forbidden(session, emulator):
    assert_css_error(images(session, emulator, "old-logs", "cross"), 403, "CSS.0015")


def test_images_unknown_cluster_forbidden(session, emulator):
    url = api(emulator, "/clusters/00000000-0000-4000-8000-000000000000/target/same/images")
    assert_css_error(session.get(url), 403, "CSS.0015")


def test_images_cluster_id_case_insensitive(session, emulator):
    url = api(emulator, f"/clusters/{CLUSTERS['logs-prod'].upper()}/target/cross/images")
    assert session.get(url).json()["totalSize"] == 2


# -- ShowClusterDetail ---------------------------------------------------------------------------


def show(session, emulator, name: str) -> requests.Response:
    return session.get(api(emulator, f"/clusters/{CLUSTERS[name]}"))


def test_show_cluster_fields(session, emulator):
    body = show(session, emulator, "logs-prod").json()
    assert body["id"] == CLUSTERS["logs-prod"]
    assert body["name"] == "logs-prod"
    assert body["status"] == "200"
    assert body["actions"] == []
    assert body["datastore"] == {
        "type": "elasticsearch",
        "version": "7.6.2",
        "subVersion": "7.6.2_24.3.3_1224",
        "isEosCluster": False,
    }
    assert len(body["instances"]) == 3


def test_show_cluster_unavailable(session, emulator):
    body = show(session, emulator, "broken-search").json()
    assert body["status"] == "303"
    assert body["failedReason"]["errorCode"] == "CSS.6000"


def test_show_cluster_busy(session, emulator):
    assert show(session, emulator, "busy-snapshot").json()["actions"] == ["SNAPSHOTTING"]


def test_show_cluster_deleted_forbidden(session, emulator):
    assert_css_error(show(session, emulator, "old-logs"), 403, "CSS.0015")


def test_show_cluster_trailing_slash(session, emulator):
    url = api(emulator, f"/clusters/{CLUSTERS['logs-prod']}/")
    assert session.get(url).json()["name"] == "logs-prod"


# -- ListClustersDetails -------------------------------------------------------------------------

LISTED = sorted(
    (cluster for cluster in CATALOG.projects[0].clusters if not cluster.deleted),
    key=lambda cluster: (cluster.created, cluster.id),
    reverse=True,
)


def cluster_names(response: requests.Response) -> list[str]:
    return [cluster["name"] for cluster in response.json()["clusters"]]


def test_clusters_default_page_is_ten(session, emulator):
    response = session.get(api(emulator, "/clusters"))
    assert len(response.json()["clusters"]) == 10
    assert response.json()["totalSize"] == len(LISTED)


def test_clusters_newest_first(session, emulator):
    response = session.get(api(emulator, "/clusters"), params={"limit": 1000})
    assert cluster_names(response) == [cluster.name for cluster in LISTED]


def test_clusters_leave_out_deleted(session, emulator):
    response = session.get(api(emulator, "/clusters"), params={"limit": 1000})
    assert "old-logs" not in cluster_names(response)


def test_clusters_pages_reading(session, emulator):
    response = session.get(api(emulator, "/clusters"), params={"offset": 2, "limit": 4})
    assert cluster_names(response) == [cluster.name for cluster in LISTED[4:8]]


def test_clusters_items_reading(session, emulator):
    emulator.cluster_paging = "items"
    response = session.get(api(emulator, "/clusters"), params={"offset": 2, "limit": 4})
    assert cluster_names(response) == [cluster.name for cluster in LISTED[1:5]]


def test_clusters_pages_offset_capped(session, emulator):
    assert_css_error(session.get(api(emulator, "/clusters"), params={"offset": 1001}), 400, "CSS.0001")


def test_clusters_items_offset_not_capped(session, emulator):
    emulator.cluster_paging = "items"
    response = session.get(api(emulator, "/clusters"), params={"offset": 5000})
    assert response.status_code == 200
    assert response.json()["clusters"] == []


@pytest.mark.parametrize("query", [{"offset": "0"}, {"limit": "0"}, {"limit": "1001"}, {"offset": "x"}])
def test_clusters_invalid_paging_rejected(session, emulator, query):
    assert_css_error(session.get(api(emulator, "/clusters"), params=query), 400, "CSS.0001")


@pytest.mark.parametrize(
    ("datastore_type", "expected"),
    [("elasticsearch", 9), ("opensearch", 4), ("logstash", 1)],
)
def test_clusters_datastore_type_filter(session, emulator, datastore_type, expected):
    response = session.get(api(emulator, "/clusters"), params={"datastoreType": datastore_type, "limit": 100})
    assert response.json()["totalSize"] == expected
    assert {cluster["datastore"]["type"] for cluster in response.json()["clusters"]} == {datastore_type}


def test_clusters_unknown_datastore_type_rejected(session, emulator):
    response = session.get(api(emulator, "/clusters"), params={"datastoreType": "solr"})
    assert_css_error(response, 400, "CSS.0001")


def test_clusters_total_size_omitted(session, emulator):
    emulator.cluster_total_size = False
    body = session.get(api(emulator, "/clusters")).json()
    assert "totalSize" not in body
    assert len(body["clusters"]) == 10


def test_clusters_second_project(emulator):
    auth = EmulatorAuth(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, SECOND_PROJECT)
    response = requests.get(api(emulator, "/clusters", SECOND_PROJECT), auth=auth)
    assert cluster_names(response) == ["eu-logs"]


# -- Fleets of 10,000 clusters -------------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet_emulator():
    with Emulator(generate_catalog(10_000, seed=7), cluster_paging="items") as running:
        yield running


def test_fleet_items_reading_past_offset_1000(session, fleet_emulator):
    seen = []
    offset = 1
    while True:
        response = session.get(api(fleet_emulator, "/clusters"), params={"offset": offset, "limit": 1000})
        assert response.status_code == 200
        page = response.json()["clusters"]
        if not page:
            break
        seen.extend(cluster["id"] for cluster in page)
        offset += len(page)
    assert len(seen) == 10_000
    assert len(set(seen)) == 10_000


def test_fleet_total_size(session, fleet_emulator):
    response = session.get(api(fleet_emulator, "/clusters"), params={"limit": 1})
    assert response.json()["totalSize"] == 10_000


def test_fleet_pages_reading(session, fleet_emulator):
    fleet_emulator.cluster_paging = "pages"
    try:
        last = session.get(api(fleet_emulator, "/clusters"), params={"offset": 10, "limit": 1000}).json()
        beyond = session.get(api(fleet_emulator, "/clusters"), params={"offset": 11, "limit": 1000}).json()
    finally:
        fleet_emulator.cluster_paging = "items"
    assert len(last["clusters"]) == 1000
    assert beyond["clusters"] == []


# -- Gateway checks ------------------------------------------------------------------------------


def test_project_header_mismatch_forbidden(session, emulator):
    auth = EmulatorAuth(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, SECOND_PROJECT)
    response = requests.get(api(emulator, f"/clusters/{CLUSTERS['logs-prod']}"), auth=auth)
    assert response.status_code == 403
    assert response.json()["error_code"] == "APIGW.0302"
    assert "does not match" in response.json()["error_msg"]


def test_unknown_project_forbidden(emulator):
    other = "ffffffffffffffffffffffffffffffff"
    response = requests.get(api(emulator, "/clusters", other), auth=EmulatorAuth(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, other))
    assert response.status_code == 403
    assert response.json()["error_code"] == "APIGW.0302"


def test_project_without_header_uses_path(emulator):
    response = requests.get(api(emulator, "/clusters"), auth=EmulatorAuth(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY))
    assert response.status_code == 200


def test_scoped_key_limited_to_its_project(emulator):
    refused = requests.get(api(emulator, "/clusters"), auth=EmulatorAuth(SCOPED_AK, SCOPED_SK, DEFAULT_PROJECT_ID))
    allowed = requests.get(api(emulator, "/clusters", SECOND_PROJECT), auth=EmulatorAuth(SCOPED_AK, SCOPED_SK, SECOND_PROJECT))
    assert refused.status_code == 403
    assert allowed.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2.0/x/clusters"),
        ("GET", f"/v1.0/{DEFAULT_PROJECT_ID}/flavors"),
        ("DELETE", f"/v1.0/{DEFAULT_PROJECT_ID}/clusters/ea244205-d641-45d9-9dcb-ab2236bcd07e"),
        ("POST", f"/v1.0/{DEFAULT_PROJECT_ID}/clusters/ea244205-d641-45d9-9dcb-ab2236bcd07e/target/same/images"),
    ],
)
def test_unknown_route_not_found(session, emulator, method, path):
    response = session.request(method, emulator.url + path)
    assert response.status_code == 404
    assert response.json()["error_code"] == "APIGW.0101"
    assert response.json()["request_id"] == response.headers["X-Request-Id"]


def test_every_reply_has_request_id(session, emulator):
    responses = [
        images(session, emulator, "logs-prod", "cross"),
        images(session, emulator, "old-logs", "cross"),
        requests.get(api(emulator, "/clusters")),
        session.get(emulator.url + "/nowhere"),
        requests.get(emulator.url + "/_emulator/health"),
        requests.head(api(emulator, "/clusters")),
    ]
    request_ids = [response.headers.get("X-Request-Id") for response in responses]
    assert all(request_id and len(request_id) == 32 for request_id in request_ids)
    assert len(set(request_ids)) == len(responses)


def test_unsupported_method_not_implemented(emulator):
    response = requests.head(api(emulator, "/clusters"))
    assert response.status_code == 501
    assert response.headers["X-Request-Id"]


def test_concurrent_requests(emulator):
    def fetch(index: int) -> int:
        auth = EmulatorAuth(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, DEFAULT_PROJECT_ID)
        with requests.Session() as own_session:
            own_session.auth = auth
            statuses = [images(own_session, emulator, "search-archive", "same", offset=index).status_code for _ in range(25)]
        return statuses.count(200)

    with ThreadPoolExecutor(max_workers=8) as pool:
        successes = list(pool.map(fetch, range(8)))
    assert successes == [25] * 8
    assert emulator.call_count("list_images") == 200


def test_calls_recorded_per_route(session, emulator):
    images(session, emulator, "logs-prod", "cross")
    images(session, emulator, "logs-prod", "same")
    show(session, emulator, "logs-prod")
    assert emulator.call_count("list_images") == 2
    assert emulator.call_count("show_cluster", CLUSTERS["logs-prod"]) == 1
    assert emulator.calls[0].query == {}
    assert emulator.calls[0].status == 200


def test_calls_record_query(session, emulator):
    images(session, emulator, "search-archive", "same", offset=10, limit=5)
    assert emulator.calls[-1].query == {"offset": "10", "limit": "5"}


# -- Official SDK ---------------------------------------------------------------------------------


def test_sdk_core_signer_accepted(emulator):
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.sdk_request import SdkRequest
    from huaweicloudsdkcore.signer.signer import Signer

    host = emulator.url.removeprefix("http://")
    path = f"/v1.0/{DEFAULT_PROJECT_ID}/clusters/{CLUSTERS['search-archive']}/target/same/images"
    request = SdkRequest(
        method="GET",
        schema="http",
        host=host,
        resource_path=path,
        query_params=[("offset", "10"), ("limit", "5")],
        header_params={"Content-Type": "application/json", "X-Project-Id": DEFAULT_PROJECT_ID},
        body="",
    )
    Signer(BasicCredentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, DEFAULT_PROJECT_ID)).sign(request)
    response = requests.get(f"http://{host}{request.uri}", headers=request.header_params)
    assert response.status_code == 200
    assert len(response.json()["imageInfoList"]) == 5


def test_sdk_client_calls(emulator):
    css = pytest.importorskip("huaweicloudsdkcss.v1")
    from huaweicloudsdkcore.auth.credentials import BasicCredentials

    credentials = BasicCredentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, DEFAULT_PROJECT_ID)
    client = css.CssClient.new_builder().with_credentials(credentials).with_endpoints([emulator.url]).build()
    listed = client.list_images(css.ListImagesRequest(cluster_id=CLUSTERS["logs-prod"], upgrade_type="cross"))
    detail = client.show_cluster_detail(css.ShowClusterDetailRequest(cluster_id=CLUSTERS["logs-prod"]))
    assert listed.total_size == 2
    assert detail.datastore.sub_version == "7.6.2_24.3.3_1224"


def test_sdk_client_temporary_credentials(emulator):
    css = pytest.importorskip("huaweicloudsdkcss.v1")
    from huaweicloudsdkcore.auth.credentials import BasicCredentials

    credentials = BasicCredentials(
        "EMULATORTEMPAK00000000", "emulator-temporary-secret-do-not-use", DEFAULT_PROJECT_ID
    ).with_security_token("emulator-security-token-do-not-use")
    client = css.CssClient.new_builder().with_credentials(credentials).with_endpoints([emulator.url]).build()
    listed = client.list_clusters_details(css.ListClustersDetailsRequest(offset="1", limit="3"))
    assert len(listed.clusters) == 3
