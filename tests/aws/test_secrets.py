"""Secrets Manager reads end to end against moto, and the in-process cache."""

from __future__ import annotations

import pytest

from handler.aws import secrets
from handler.aws.errors import AwsConfigurationError
from handler.aws.secrets import SecretCache

from . import MODES, OTHER_REGION, moto_backend, running_moto_server

CREDENTIALS_JSON = '{"ak": "AKEXAMPLE", "sk": "SKEXAMPLE-do-not-show"}'


@pytest.fixture(scope="module")
def moto_server():
    with running_moto_server() as url:
        yield url


@pytest.fixture(params=MODES)
def aws(request):
    with moto_backend(request.param, lambda: request.getfixturevalue("moto_server")) as backend:
        yield backend


def test_get_secret_string(aws):
    aws.boto("secretsmanager").create_secret(Name="slack/signing", SecretString="s3cr3t")

    assert secrets.get_secret_string("slack/signing", client=aws.client) == "s3cr3t"


def test_get_secret_json(aws):
    aws.boto("secretsmanager").create_secret(Name="css/credentials", SecretString=CREDENTIALS_JSON)

    value = secrets.get_secret_json("css/credentials", client=aws.client)

    assert value == {"ak": "AKEXAMPLE", "sk": "SKEXAMPLE-do-not-show"}


def test_get_secret_by_arn_other_region(aws):
    arn = aws.boto("secretsmanager", OTHER_REGION).create_secret(Name="css/credentials", SecretString="far")["ARN"]

    assert OTHER_REGION in arn
    assert secrets.get_secret_string(arn, client=aws.client) == "far"


def test_cache_serves_until_invalidated(aws):
    boto = aws.boto("secretsmanager")
    boto.create_secret(Name="rotating", SecretString="first")
    assert secrets.get_secret_string("rotating", client=aws.client) == "first"
    boto.put_secret_value(SecretId="rotating", SecretString="second")

    cached = secrets.get_secret_string("rotating", client=aws.client)
    secrets.invalidate("rotating", client=aws.client)
    fresh = secrets.get_secret_string("rotating", client=aws.client)

    assert cached == "first"
    assert fresh == "second"


def test_cache_max_age_zero_refetches(aws):
    boto = aws.boto("secretsmanager")
    boto.create_secret(Name="rotating", SecretString="first")
    secrets.get_secret_string("rotating", client=aws.client)
    boto.put_secret_value(SecretId="rotating", SecretString="second")

    assert secrets.get_secret_string("rotating", max_age=0, client=aws.client) == "second"


def test_cache_per_client(aws):
    aws.boto("secretsmanager").create_secret(Name="shared", SecretString="value")
    secrets.get_secret_string("shared", client=aws.client)

    assert secrets.cache_for(aws.client).get("shared", 300) == "value"
    assert secrets.cache_for(type(aws.client).from_environ(aws.client.environ)).get("shared", 300) is None


def test_missing_secret_configuration(aws):
    with pytest.raises(AwsConfigurationError) as caught:
        secrets.get_secret_string("missing", client=aws.client)
    assert caught.value.code == "ResourceNotFoundException"
    assert "secret missing" in str(caught.value)


def test_binary_secret_rejected(aws):
    aws.boto("secretsmanager").create_secret(Name="binary", SecretBinary=b"\x00\x01")

    with pytest.raises(AwsConfigurationError, match="no string value"):
        secrets.get_secret_string("binary", client=aws.client)


@pytest.mark.parametrize("text", ["not json SKEXAMPLE-do-not-show", '["SKEXAMPLE-do-not-show"]'])
def test_secret_json_not_object_hides_value(aws, text):
    aws.boto("secretsmanager").create_secret(Name="plain", SecretString=text)

    with pytest.raises(AwsConfigurationError) as caught:
        secrets.get_secret_json("plain", client=aws.client)

    assert "not a JSON object" in str(caught.value)
    assert "SKEXAMPLE" not in str(caught.value)


def test_invalid_secret_id():
    with pytest.raises(ValueError, match="secret ID"):
        secrets.get_secret_string("")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_secret_cache_expiry():
    clock = FakeClock()
    cache = SecretCache(clock=clock)
    cache.put("id", "value")

    clock.now += 299.9
    fresh = cache.get("id", 300)
    clock.now += 0.1
    expired = cache.get("id", 300)

    assert fresh == "value"
    assert expired is None


def test_secret_cache_repr_hides_values():
    cache = SecretCache()
    cache.put("id", "hunter2")
    assert "hunter2" not in repr(cache)
    assert "hunter2" not in repr(cache._entries)
