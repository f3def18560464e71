"""Endpoint resolution: overrides, partitions, ARN regions and SQS queue URLs."""

from __future__ import annotations

import pytest

from handler.aws.endpoints import (
    DYNAMODB,
    EVENTBRIDGE,
    SECRETS_MANAGER,
    SERVICES,
    SNS,
    SQS,
    STEP_FUNCTIONS,
    parse_arn,
    queue_endpoint,
    region_of_identifier,
    region_of_queue_url,
    resolve_endpoint,
)
from handler.aws.errors import AwsConfigurationError

# (service, region, environment, expected endpoint)
ENDPOINT_CASES = [
    (SQS, "us-east-1", {}, "https://sqs.us-east-1.amazonaws.com"),
    (SNS, "eu-west-1", {}, "https://sns.eu-west-1.amazonaws.com"),
    (EVENTBRIDGE, "ap-southeast-1", {}, "https://events.ap-southeast-1.amazonaws.com"),
    (DYNAMODB, "us-east-2", {}, "https://dynamodb.us-east-2.amazonaws.com"),
    (SECRETS_MANAGER, "eu-central-1", {}, "https://secretsmanager.eu-central-1.amazonaws.com"),
    (STEP_FUNCTIONS, "sa-east-1", {}, "https://states.sa-east-1.amazonaws.com"),
    # aws-cn: regions cn-*, DNS suffix amazonaws.com.cn.
    (SQS, "cn-north-1", {}, "https://sqs.cn-north-1.amazonaws.com.cn"),
    (STEP_FUNCTIONS, "cn-northwest-1", {}, "https://states.cn-northwest-1.amazonaws.com.cn"),
    # aws-us-gov: regions us-gov-*, DNS suffix amazonaws.com.
    (SNS, "us-gov-west-1", {}, "https://sns.us-gov-west-1.amazonaws.com"),
    (DYNAMODB, "us-gov-east-1", {}, "https://dynamodb.us-gov-east-1.amazonaws.com"),
    # The global override applies to every service.
    (SQS, "us-east-1", {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}, "http://127.0.0.1:4566"),
    (SNS, "cn-north-1", {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566/"}, "http://127.0.0.1:4566"),
    # A per-service override wins over the global one, and applies to its service only.
    (
        SECRETS_MANAGER,
        "us-east-1",
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:2"},
        "http://127.0.0.1:2",
    ),
    (SQS, "us-east-1", {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:2"}, "http://127.0.0.1:2"),
    (SNS, "us-east-1", {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:2"}, "http://127.0.0.1:1"),
    (EVENTBRIDGE, "us-east-1", {"AWS_ENDPOINT_URL_EVENTBRIDGE": "http://127.0.0.1:3"}, "http://127.0.0.1:3"),
    (DYNAMODB, "us-east-1", {"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:4"}, "http://127.0.0.1:4"),
    (STEP_FUNCTIONS, "us-east-1", {"AWS_ENDPOINT_URL_SFN": "http://127.0.0.1:5"}, "http://127.0.0.1:5"),
    (SNS, "us-east-1", {"AWS_ENDPOINT_URL_SNS": "http://127.0.0.1:6"}, "http://127.0.0.1:6"),
    (STEP_FUNCTIONS, "us-east-1", {"AWS_ENDPOINT_URL_STEP_FUNCTIONS": "http://127.0.0.1:5"}, "https://states.us-east-1.amazonaws.com"),
    # An empty override counts as unset.
    (SQS, "us-east-1", {"AWS_ENDPOINT_URL_SQS": "  ", "AWS_ENDPOINT_URL": ""}, "https://sqs.us-east-1.amazonaws.com"),
    # The SDKs' switch that ignores configured endpoints.
    (
        SQS,
        "us-east-1",
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"},
        "https://sqs.us-east-1.amazonaws.com",
    ),
]


@pytest.mark.parametrize(("service", "region", "environ", "expected"), ENDPOINT_CASES)
def test_resolve_endpoint_table(service, region, environ, expected):
    assert resolve_endpoint(service, region, environ) == expected


def test_services_signing_names():
    signing_names = {name: service.signing_name for name, service in SERVICES.items()}
    assert signing_names == {
        "sqs": "sqs",
        "sns": "sns",
        "events": "events",
        "dynamodb": "dynamodb",
        "secretsmanager": "secretsmanager",
        "states": "states",
    }


def test_services_wire_protocols():
    protocols = {
        name: (service.protocol, service.target_prefix, service.json_version) for name, service in SERVICES.items()
    }
    assert protocols == {
        "sqs": ("json", "AmazonSQS", "1.0"),
        "sns": ("query", "", ""),
        "events": ("json", "AWSEvents", "1.1"),
        "dynamodb": ("json", "DynamoDB_20120810", "1.0"),
        "secretsmanager": ("json", "secretsmanager", "1.1"),
        "states": ("json", "AWSStepFunctions", "1.0"),
    }


@pytest.mark.parametrize(
    ("value", "variable"),
    [
        ("ftp://127.0.0.1:21", "AWS_ENDPOINT_URL"),
        ("127.0.0.1:4566", "AWS_ENDPOINT_URL"),
        ("http://", "AWS_ENDPOINT_URL"),
        ("http://user:pass@127.0.0.1:4566", "AWS_ENDPOINT_URL"),
        ("http://127.0.0.1:4566/?x=1", "AWS_ENDPOINT_URL_SQS"),
    ],
)
def test_resolve_endpoint_invalid_override(value, variable):
    with pytest.raises(AwsConfigurationError) as caught:
        resolve_endpoint(SQS, "us-east-1", {variable: value})
    assert caught.value.variable == variable
    assert variable in str(caught.value)


def test_resolve_endpoint_hides_override_password():
    with pytest.raises(AwsConfigurationError) as caught:
        resolve_endpoint(SQS, "us-east-1", {"AWS_ENDPOINT_URL": "http://user:hunter2@127.0.0.1:4566"})
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("region", ["us-iso-east-1", "us-isob-east-1", "eu-isoe-west-1"])
def test_resolve_endpoint_unknown_partition(region):
    with pytest.raises(AwsConfigurationError, match="AWS_ENDPOINT_URL"):
        resolve_endpoint(SQS, region, {})


@pytest.mark.parametrize("region", ["", "US-EAST-1", "us-east", "useast1", "us-east-1.evil.com", "us-east-1/x"])
def test_resolve_endpoint_invalid_region(region):
    with pytest.raises(AwsConfigurationError, match="not an AWS region"):
        resolve_endpoint(SQS, region, {})


# (ARN, expected service, expected region)
ARN_REGION_CASES = [
    ("arn:aws:sns:us-west-2:123456789012:upgrades", "sns", "us-west-2"),
    ("arn:aws-cn:sns:cn-north-1:123456789012:upgrades", "sns", "cn-north-1"),
    ("arn:aws-us-gov:sns:us-gov-west-1:123456789012:upgrades", "sns", "us-gov-west-1"),
    ("arn:aws:events:eu-west-1:123456789012:event-bus/upgrades", "events", "eu-west-1"),
    ("arn:aws:secretsmanager:ap-southeast-1:123456789012:secret:css-ak-sk-AbCdEf", "secretsmanager", "ap-southeast-1"),
    ("arn:aws:dynamodb:us-east-2:123456789012:table/dedupe", "dynamodb", "us-east-2"),
]


@pytest.mark.parametrize(("arn", "service", "region"), ARN_REGION_CASES)
def test_region_of_identifier_arn(arn, service, region):
    assert region_of_identifier(arn, expected_service=service, field="test") == region


@pytest.mark.parametrize("name", ["upgrades", "dedupe-table", "css/credentials"])
def test_region_of_identifier_plain_name(name):
    assert region_of_identifier(name, expected_service="events", field="test") is None


def test_arn_region_selects_endpoint():
    arn = parse_arn("arn:aws:sns:eu-west-1:123456789012:upgrades", expected_service="sns", field="topic ARN")
    assert resolve_endpoint(SNS, arn.region, {}) == "https://sns.eu-west-1.amazonaws.com"


@pytest.mark.parametrize(
    ("arn", "message"),
    [
        ("arn:aws:sqs:us-east-1:123456789012:queue", "expected a sns resource"),
        ("arn:aws-cn:sns:us-east-1:123456789012:topic", "partition aws-cn"),
        ("arn:aws:sns:cn-north-1:123456789012:topic", "partition aws"),
        ("arn:aws:sns:Us-East-1:123456789012:topic", "not a valid ARN"),
        ("arn:aws:sns:us-east-1:12345:topic", "not a valid ARN"),
        ("topic", "not a valid ARN"),
        ("arn:other:sns:us-east-1:123456789012:topic", "not a valid ARN"),
    ],
)
def test_parse_arn_rejects(arn, message):
    with pytest.raises(AwsConfigurationError, match=message):
        parse_arn(arn, expected_service="sns", field="topic ARN")


# (queue URL, expected region)
QUEUE_URL_REGIONS = [
    ("https://sqs.us-east-1.amazonaws.com/123456789012/work", "us-east-1"),
    ("https://sqs.eu-west-1.amazonaws.com/123456789012/work.fifo", "eu-west-1"),
    ("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/work", "cn-north-1"),
    ("https://sqs.us-gov-west-1.amazonaws.com/123456789012/work", "us-gov-west-1"),
    ("https://ap-southeast-1.queue.amazonaws.com/123456789012/work", "ap-southeast-1"),
    ("https://queue.amazonaws.com/123456789012/work", "us-east-1"),
    ("HTTPS://SQS.US-EAST-1.AMAZONAWS.COM/123456789012/work", "us-east-1"),
    # Hosts that only look like AWS are not AWS hosts.
    ("https://sqs.us-east-1.amazonaws.com.evil.example/123456789012/work", None),
    ("https://evil.example/sqs.us-east-1.amazonaws.com/123456789012/work", None),
    ("https://sqs.cn-north-1.amazonaws.com/123456789012/work", None),
    ("http://127.0.0.1:4566/123456789012/work", None),
]


@pytest.mark.parametrize(("queue_url", "region"), QUEUE_URL_REGIONS)
def test_region_of_queue_url_table(queue_url, region):
    assert region_of_queue_url(queue_url) == region


@pytest.mark.parametrize(
    "queue_url",
    [
        "http://sqs.us-east-1.amazonaws.com/123456789012/work",
        "https://sqs.us-east-1.amazonaws.com:8443/123456789012/work",
        "https://user@sqs.us-east-1.amazonaws.com/123456789012/work",
        "https://sqs.us-east-1.amazonaws.com/work",
        "https://sqs.us-east-1.amazonaws.com/123456789012/work/extra",
        "https://sqs.us-east-1.amazonaws.com/123456789012/work?Action=DeleteQueue",
    ],
)
def test_region_of_queue_url_malformed_aws_url(queue_url):
    with pytest.raises(AwsConfigurationError, match="queue URL"):
        region_of_queue_url(queue_url)


def test_queue_endpoint_standard_for_aws_host():
    endpoint, region = queue_endpoint("https://eu-west-1.queue.amazonaws.com/123456789012/work", "us-east-1", {})
    assert endpoint == "https://sqs.eu-west-1.amazonaws.com"
    assert region == "eu-west-1"


def test_queue_endpoint_override_wins():
    environ = {"AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:4566"}
    endpoint, region = queue_endpoint("https://sqs.eu-west-1.amazonaws.com/123456789012/work", "us-east-1", environ)
    assert endpoint == "http://127.0.0.1:4566"
    assert region == "eu-west-1"


def test_queue_endpoint_override_local_url():
    environ = {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}
    endpoint, region = queue_endpoint("http://127.0.0.1:4566/123456789012/work", "us-east-1", environ)
    assert endpoint == "http://127.0.0.1:4566"
    assert region == "us-east-1"


@pytest.mark.parametrize(
    "queue_url",
    [
        "http://127.0.0.1:4566/123456789012/work",
        "https://evil.example/123456789012/work",
        "https://sqs.us-east-1.amazonaws.com.evil.example/123456789012/work",
    ],
)
def test_queue_endpoint_foreign_host_rejected(queue_url):
    with pytest.raises(AwsConfigurationError) as caught:
        queue_endpoint(queue_url, "us-east-1", {})
    assert "not on an AWS SQS host" in str(caught.value)
    assert queue_url in str(caught.value)
