"""CSS endpoint resolution and the rules that keep signed requests on safe URLs."""

import pytest

from handler.core.ids import InvalidValue
from handler.css.endpoints import EndpointError, default_endpoint, resolve_endpoint


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("ap-southeast-1", "https://css.ap-southeast-1.myhuaweicloud.com"),
        ("cn-north-4", "https://css.cn-north-4.myhuaweicloud.com"),
        ("cn-north-1", "https://es.cn-north-1.myhuaweicloud.com"),
        ("cn-east-2", "https://es.cn-east-2.myhuaweicloud.com"),
        ("eu-west-101", "https://css.eu-west-101.myhuaweicloud.com"),
    ],
)
def test_default_endpoint(region, expected):
    assert default_endpoint(region) == expected
    assert resolve_endpoint(region) == expected


def test_override_with_region_placeholder():
    assert resolve_endpoint("eu-de", "https://css.{region}.otc.t-systems.com") == "https://css.eu-de.otc.t-systems.com"


def test_override_loopback_http_allowed():
    assert resolve_endpoint("ap-southeast-1", "http://127.0.0.1:8080/") == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    "override",
    [
        "http://css.example.com",  # clear text to a remote host
        "ftp://127.0.0.1",
        "https://user:pw@css.example.com",
        "https://css.example.com/v1.0",
        "https://css.example.com?x=1",
        "not a url",
    ],
)
def test_override_rejected(override):
    with pytest.raises(EndpointError):
        resolve_endpoint("ap-southeast-1", override)


@pytest.mark.parametrize("region", ["ap-southeast-1/../x", "AP-SOUTHEAST-1", "ap-southeast-1\n", "evil.com#", "аp-southeast-1"])
def test_invalid_region_rejected(region):
    with pytest.raises(InvalidValue):
        resolve_endpoint(region)
