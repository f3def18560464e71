"""The emulator's catalog: the shipped default, validation of catalog files, and generated fleets."""

from __future__ import annotations

import copy
import json
import re

import pytest

from handler.local.emulator import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_PROJECT_ID,
    CatalogError,
    Credential,
    default_catalog,
    generate_catalog,
    load_catalog,
)

CATALOG = default_catalog()
DEFAULT_CLUSTERS = {cluster.name: cluster for cluster in CATALOG.projects[0].clusters}
IMAGE_NAME = re.compile(r"\d+(\.\d+)*_\d{2}\.\d+\.\d+_\d{4}")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

MINIMAL = {
    "credentials": [{"ak": "TESTAK", "sk": "test-secret-value"}],
    "projects": [
        {
            "id": DEFAULT_PROJECT_ID,
            "clusters": [
                {
                    "id": "11111111-2222-4333-8444-555555555555",
                    "name": "minimal",
                    "datastore": {"type": "elasticsearch", "version": "7.10.2"},
                }
            ],
        }
    ],
}


def changed(path: tuple, value: object) -> dict:
    """Return a copy of MINIMAL with the value at `path` replaced (a key of None deletes it)."""
    data = copy.deepcopy(MINIMAL)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


# -- The default catalog -------------------------------------------------------------------------


def test_default_project_and_region():
    assert CATALOG.projects[0].id == DEFAULT_PROJECT_ID
    assert CATALOG.region == "ap-southeast-1"


def test_default_credential_documented():
    assert CATALOG.credentials[0].ak == DEFAULT_ACCESS_KEY
    assert CATALOG.credentials[0].security_token is None


def test_default_has_temporary_credential():
    assert any(credential.security_token for credential in CATALOG.credentials)


@pytest.mark.parametrize(
    ("engine", "version"),
    [
        ("elasticsearch", "6.8.23"),
        ("elasticsearch", "7.6.2"),
        ("elasticsearch", "7.9.3"),
        ("elasticsearch", "7.10.2"),
        ("opensearch", "1.3.6"),
        ("opensearch", "2.11.0"),
        ("opensearch", "2.19.0"),
        ("logstash", "7.10.0"),
    ],
)
def test_default_engine_versions(engine, version):
    versions = {(cluster.datastore.type, cluster.datastore.version) for cluster in DEFAULT_CLUSTERS.values()}
    assert (engine, version) in versions


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("logs-prod", lambda cluster: cluster.id == "ea244205-d641-45d9-9dcb-ab2236bcd07e"),
        ("search-archive", lambda cluster: len(cluster.images["same"]) == 25),
        ("search-prod", lambda cluster: len(cluster.images["same"]) == 10),
        ("metrics-prod", lambda cluster: cluster.need_upload_upgrade_plugin == {"cross": True}),
        ("os-newest", lambda cluster: all(not images for images in cluster.images.values())),
        ("old-logs", lambda cluster: cluster.deleted),
        ("broken-search", lambda cluster: cluster.status == "303"),
        ("busy-snapshot", lambda cluster: cluster.actions == ("SNAPSHOTTING",)),
        ("logstash-ingest", lambda cluster: set(cluster.unsupported_types) == {"same", "cross", "cross-engine"}),
        ("no-cross-engine", lambda cluster: cluster.unsupported_types == ("cross-engine",)),
        ("upgrade-flaky", lambda cluster: cluster.upgrade.outcomes == ("FAILED", "SUCCESS")),
        ("upgrade-partial", lambda cluster: cluster.upgrade.outcomes[0] == "PARTIAL_FAILED"),
    ],
)
def test_default_cluster_purpose(name, check):
    assert check(DEFAULT_CLUSTERS[name])


def test_default_image_names_follow_pattern():
    bad = [image.display_name for image in CATALOG.images if not IMAGE_NAME.fullmatch(image.display_name)]
    assert bad == []


def test_default_image_ids_are_uuids():
    assert all(UUID.fullmatch(image.id) for image in CATALOG.images)


def test_default_image_names_start_with_version():
    assert all(image.display_name.startswith(image.datastore_version + "_") for image in CATALOG.images)


def test_default_newer_image_higher_priority():
    for version in {image.datastore_version for image in CATALOG.images}:
        line = [image for image in CATALOG.images if image.datastore_version == version]
        by_release = sorted(line, key=lambda image: [int(part) for part in re.findall(r"\d+", image.display_name.split("_", 1)[1])])
        assert [image.priority for image in by_release] == sorted(image.priority for image in line)


def test_default_current_image_not_a_target():
    for cluster in DEFAULT_CLUSTERS.values():
        targets = {image.display_name for upgrade_type in cluster.images for image in CATALOG.target_images(cluster, upgrade_type)}
        assert cluster.datastore.sub_version not in targets


def test_default_cross_targets_newer_version():
    for cluster in DEFAULT_CLUSTERS.values():
        for image in CATALOG.target_images(cluster, "cross"):
            assert image.datastore_version != cluster.datastore.version


def test_catalog_lookups():
    assert CATALOG.cluster("EA244205-D641-45D9-9DCB-AB2236BCD07E").name == "logs-prod"
    assert CATALOG.project_of("ea244205-d641-45d9-9dcb-ab2236bcd07e") == DEFAULT_PROJECT_ID
    assert CATALOG.project_of("00000000-0000-4000-8000-000000000000") is None


# -- Validation ----------------------------------------------------------------------------------


def test_minimal_catalog_defaults():
    cluster = load_catalog(MINIMAL).projects[0].clusters[0]
    assert (cluster.status, cluster.node_count, cluster.deleted) == ("200", 3, False)
    assert cluster.upgrade.outcomes == ("SUCCESS",)


def test_snake_and_camel_case_keys():
    data = changed(("projects", 0, "clusters", 0, "datastore"), {"type": "opensearch", "version": "2.19.0", "sub_version": "x"})
    data["projects"][0]["clusters"][0]["needUploadUpgradePlugin"] = {"crossEngine": True}
    cluster = load_catalog(data).projects[0].clusters[0]
    assert cluster.datastore.sub_version == "x"
    assert cluster.need_upload_upgrade_plugin == {"cross-engine": True}


def test_upper_case_ids_lowered():
    data = changed(("projects", 0, "id"), DEFAULT_PROJECT_ID.upper())
    data["projects"][0]["clusters"][0]["id"] = "AAAAAAAA-2222-4333-8444-555555555555"
    project = load_catalog(data).projects[0]
    assert project.id == DEFAULT_PROJECT_ID
    assert project.clusters[0].id == "aaaaaaaa-2222-4333-8444-555555555555"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("projects", 0, "id"), "not-a-project", "32 hexadecimal digits"),
        (("projects", 0, "clusters", 0, "id"), "cluster-1", "not a UUID"),
        (("projects", 0, "clusters", 0, "status"), "available", "status"),
        (("projects", 0, "clusters", 0, "datastore"), {"type": "solr", "version": "9"}, "datastore.type"),
        (("projects", 0, "clusters", 0, "created"), "yesterday", "2024-01-15T08:00:00"),
        (("projects", 0, "clusters", 0, "images"), {"same": ["no-such-image"]}, "unknown image"),
        (("projects", 0, "clusters", 0, "images"), {"major": []}, "images.major"),
        (("projects", 0, "clusters", 0, "upgrade"), {"outcomes": ["DONE"]}, "outcomes"),
        (("projects", 0, "clusters", 0, "upgrade"), {"outcomes": []}, "outcomes"),
        (("projects", 0, "clusters", 0, "nodeCount"), 0, "nodeCount"),
        (("projects", 0, "clusters", 0, "colour"), "red", "colour"),
        (("credentials",), [], "at least one access key"),
        (("credentials", 0, "projects"), ["ffffffffffffffffffffffffffffffff"], "unknown project"),
        (("projects",), [], "at least one project"),
    ],
)
def test_invalid_catalog_rejected(path, value, message):
    with pytest.raises(CatalogError, match=re.escape(message)):
        load_catalog(changed(path, value))


def test_duplicate_cluster_rejected():
    data = copy.deepcopy(MINIMAL)
    data["projects"][0]["clusters"].append(copy.deepcopy(data["projects"][0]["clusters"][0]))
    with pytest.raises(CatalogError, match="duplicate cluster id"):
        load_catalog(data)


def test_error_hides_secret_key():
    data = changed(("projects", 0, "id"), "bad")
    with pytest.raises(CatalogError) as caught:
        load_catalog(data)
    assert "test-secret-value" not in str(caught.value)


def test_credential_repr_hides_secrets():
    text = repr(Credential(ak="AK1", sk="secret-one", security_token="token-one"))
    assert "secret-one" not in text
    assert "token-one" not in text


def test_load_from_file(tmp_path):
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(MINIMAL))
    assert load_catalog(path).projects[0].clusters[0].name == "minimal"


def test_load_file_not_json(tmp_path):
    path = tmp_path / "catalog.json"
    path.write_text("{not json")
    with pytest.raises(CatalogError, match="not valid JSON"):
        load_catalog(path)


def test_load_missing_file(tmp_path):
    with pytest.raises(CatalogError, match="cannot read catalog file"):
        load_catalog(tmp_path / "absent.json")


def test_image_reference_by_name():
    data = copy.deepcopy(MINIMAL)
    data["images"] = [
        {
            "id": "22222222-3333-4444-8555-666666666666",
            "displayName": "7.10.2_25.1.0_0311",
            "datastoreType": "elasticsearch",
            "datastoreVersion": "7.10.2",
            "priority": 2,
        }
    ]
    data["projects"][0]["clusters"][0]["images"] = {"same": ["7.10.2_25.1.0_0311"]}
    catalog = load_catalog(data)
    cluster = catalog.projects[0].clusters[0]
    assert [image.id for image in catalog.target_images(cluster, "same")] == ["22222222-3333-4444-8555-666666666666"]


# -- Generated fleets ----------------------------------------------------------------------------


def test_generate_same_seed_same_catalog():
    assert generate_catalog(50, seed=9) == generate_catalog(50, seed=9)


def test_generate_other_seed_other_ids():
    first = [cluster.id for cluster in generate_catalog(20, seed=1).projects[0].clusters]
    second = [cluster.id for cluster in generate_catalog(20, seed=2).projects[0].clusters]
    assert first != second


def test_generate_count_and_unique_ids():
    clusters = generate_catalog(2000, seed=5).projects[0].clusters
    assert len(clusters) == 2000
    assert len({cluster.id for cluster in clusters}) == 2000


def test_generate_newest_first():
    clusters = generate_catalog(100, seed=5).projects[0].clusters
    created = [cluster.created for cluster in clusters]
    assert created == sorted(created, reverse=True)


def test_generate_variety():
    clusters = generate_catalog(2000, seed=5).projects[0].clusters
    assert not any(cluster.deleted for cluster in clusters)
    assert any(cluster.status == "303" for cluster in clusters)
    assert any(cluster.actions for cluster in clusters)
    assert any(cluster.datastore.type == "logstash" for cluster in clusters)
    assert any(cluster.need_upload_upgrade_plugin for cluster in clusters)
    assert {cluster.datastore.type for cluster in clusters} == {"elasticsearch", "opensearch", "logstash"}


def test_generate_targets_newer_than_current():
    catalog = generate_catalog(300, seed=5)
    for cluster in catalog.projects[0].clusters:
        current = cluster.datastore.sub_version
        for image in catalog.target_images(cluster, "same"):
            assert image.display_name != current
            assert image.datastore_version == cluster.datastore.version


def test_generate_zero_clusters():
    assert generate_catalog(0, seed=1).projects[0].clusters == ()


def test_generate_negative_rejected():
    with pytest.raises(ValueError, match="n_clusters"):
        generate_catalog(-1, seed=1)
