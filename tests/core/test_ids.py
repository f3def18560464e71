"""Identifier validation: nothing that could change a URL gets through."""

import pytest

from handler.core import ids

CLUSTER = "ea244205-d641-45d9-9dcb-ab2236bcd07e"
PROJECT = "6204a5bd270343b5885144cf9c8c158d"

HOSTILE = ["../", "#", "?", "@", "%2F", "\r\n", " ", "\t", "/", "\\", "\x00", "；"]


def test_cluster_id_lowercased():
    assert ids.cluster_id(CLUSTER.upper()) == CLUSTER


def test_project_id_lowercased():
    assert ids.project_id(PROJECT.upper()) == PROJECT


@pytest.mark.parametrize("suffix", HOSTILE)
def test_cluster_id_rejects_injection(suffix):
    with pytest.raises(ids.InvalidValue) as caught:
        ids.cluster_id(CLUSTER + suffix)
    assert caught.value.field == "cluster_id"


@pytest.mark.parametrize("suffix", HOSTILE)
def test_project_id_rejects_injection(suffix):
    with pytest.raises(ids.InvalidValue):
        ids.project_id(PROJECT[:-1] + suffix)


@pytest.mark.parametrize(
    "value",
    [
        "ea244205-d641-45d9-9dcb-ab2236bcd07\uff45",  # fullwidth e
        "ea244205-d641-45d9-9dcb-ab2236bcd07\u0435",  # Cyrillic e
        "ea244205-d641-45d9-9dcb-ab2236bcd0\u0667e",  # Arabic-Indic digit
        "ea244205d64145d99dcbab2236bcd07e",
        "",
        None,
        12,
        ["ea244205-d641-45d9-9dcb-ab2236bcd07e"],
    ],
)
def test_cluster_id_rejects_lookalikes_and_types(value):
    with pytest.raises(ids.InvalidValue):
        ids.cluster_id(value)


@pytest.mark.parametrize("value", ["ap-southeast-1", "eu-de", "cn-north-4", "la-south-2", "eu-west-101"])
def test_region_valid(value):
    assert ids.region(value) == value


@pytest.mark.parametrize("value", ["ap-southeast-1.", "ap_southeast_1", "ap-southeast-1\n", "x", "ap-southeast-1/x", "ap-southeast-1@x"])
def test_region_invalid(value):
    with pytest.raises(ids.InvalidValue):
        ids.region(value)


@pytest.mark.parametrize(("value", "expected"), [("same", "same"), ("cross", "cross"), ("cross-engine", "cross-engine"), ("crossEngine", "cross-engine")])
def test_upgrade_type_spellings(value, expected):
    assert ids.upgrade_type(value) == expected


@pytest.mark.parametrize("value", ["SAME", "cross_engine", "same ", "../same", "", None])
def test_upgrade_type_invalid(value):
    with pytest.raises(ids.InvalidValue):
        ids.upgrade_type(value)


def test_error_shows_long_values_cut():
    with pytest.raises(ids.InvalidValue) as caught:
        ids.cluster_id("x" * 10000)
    assert len(str(caught.value)) < 300
