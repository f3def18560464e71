"""Endpoint resolution for AWS calls: the services' wire protocols, endpoint overrides, partitions and ARNs.

Endpoints follow the AWS SDKs' order: `AWS_ENDPOINT_URL_<SERVICE>`, then `AWS_ENDPOINT_URL`, then the
partition's standard endpoint for the region (both overrides are ignored when
`AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is `true`). Only the region, never the host, is taken from a
queue URL or an ARN, so no message value can send a signed request to another host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlsplit

from handler.aws.errors import AwsConfigurationError


@dataclass(frozen=True)
class Service:
    """Endpoint, signing and wire-protocol settings of one AWS service.

    Attributes:
        name: the short name used in logs and errors.
        env_suffix: the `AWS_ENDPOINT_URL_<SUFFIX>` name the AWS SDKs use for it.
        endpoint_prefix: the first label of its standard host name.
        signing_name: the service name in the SigV4 credential scope.
        protocol: `json` (POST of a JSON document, operation in `X-Amz-Target`) or `query`
            (form POST with `Action` and `Version`, XML response).
        target_prefix: the `X-Amz-Target` prefix of the JSON protocol.
        json_version: `1.0` or `1.1`, the JSON protocol's content type version.
        api_version: the query protocol's `Version` value.
    """

    name: str
    env_suffix: str
    endpoint_prefix: str
    signing_name: str
    protocol: str
    target_prefix: str = ""
    json_version: str = ""
    api_version: str = ""


SQS = Service("sqs", "SQS", "sqs", "sqs", "json", target_prefix="AmazonSQS", json_version="1.0")
SNS = Service("sns", "SNS", "sns", "sns", "query", api_version="2010-03-31")
EVENTBRIDGE = Service("events", "EVENTBRIDGE", "events", "events", "json", target_prefix="AWSEvents", json_version="1.1")
DYNAMODB = Service(
    "dynamodb", "DYNAMODB", "dynamodb", "dynamodb", "json", target_prefix="DynamoDB_20120810", json_version="1.0"
)
SECRETS_MANAGER = Service(
    "secretsmanager",
    "SECRETS_MANAGER",
    "secretsmanager",
    "secretsmanager",
    "json",
    target_prefix="secretsmanager",
    json_version="1.1",
)
STEP_FUNCTIONS = Service("states", "SFN", "states", "states", "json", target_prefix="AWSStepFunctions", json_version="1.0")

SERVICES: Mapping[str, Service] = {
    service.name: service for service in (SQS, SNS, EVENTBRIDGE, DYNAMODB, SECRETS_MANAGER, STEP_FUNCTIONS)
}

ENDPOINT_URL_VARIABLE = "AWS_ENDPOINT_URL"
IGNORE_ENDPOINT_URLS_VARIABLE = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"

# AWS region names: two letters, one or more words, a number (`us-east-1`, `us-gov-west-1`, `cn-north-1`).
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}", re.ASCII)

# Partition name, region prefix that selects it, DNS suffix of its standard endpoints.
_PARTITIONS = (
    ("aws-cn", "cn-", "amazonaws.com.cn"),
    ("aws-us-gov", "us-gov-", "amazonaws.com"),
)
_DEFAULT_PARTITION = ("aws", "", "amazonaws.com")

# ISO and European sovereign partitions use other DNS suffixes; this client does not know them.
_UNSUPPORTED_REGION_PREFIXES = ("us-iso-", "us-isob-", "us-isof-", "eu-isoe-", "eusc-")

# SQS queue hosts: `sqs.<region>.amazonaws.com[.cn]` and the legacy `<region>.queue.amazonaws.com[.cn]`
# and `queue.amazonaws.com` (us-east-1).
_SQS_HOST = re.compile(r"sqs\.(?P<region>[a-z0-9-]+)\.(?P<suffix>amazonaws\.com(\.cn)?)", re.ASCII)
_SQS_LEGACY_HOST = re.compile(r"(?P<region>[a-z0-9-]+)\.queue\.(?P<suffix>amazonaws\.com(\.cn)?)", re.ASCII)
_SQS_QUEUE_PATH = re.compile(r"/[0-9]{12}/[A-Za-z0-9_-]{1,80}(\.fifo)?", re.ASCII)

_ARN = re.compile(
    r"arn:(?P<partition>aws|aws-cn|aws-us-gov):(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):"
    r"(?P<account>[0-9]{12})?:(?P<resource>.+)",
    re.ASCII | re.DOTALL,
)


@dataclass(frozen=True)
class Arn:
    """The parts of an Amazon Resource Name."""

    partition: str
    service: str
    region: str
    account: str
    resource: str


def validate_region(region: str, variable: str = "AWS_REGION") -> str:
    """Return `region` when it has the form of an AWS region, else raise `AwsConfigurationError`."""
    if not _REGION.fullmatch(region):
        raise AwsConfigurationError(
            f"{variable} {region[:40]!r} is not an AWS region name (expected a name like us-east-1)",
            variable=variable,
        )
    return region


def partition_of(region: str) -> tuple[str, str]:
    """Return (partition name, DNS suffix) of a region's standard endpoints."""
    if region.startswith(_UNSUPPORTED_REGION_PREFIXES):
        raise AwsConfigurationError(
            f"region {region} is in a partition whose endpoints this client does not know; "
            f"set {ENDPOINT_URL_VARIABLE} to the service endpoints"
        )
    for name, prefix, suffix in _PARTITIONS:
        if region.startswith(prefix):
            return name, suffix
    return _DEFAULT_PARTITION[0], _DEFAULT_PARTITION[2]


def standard_endpoint(service: Service, region: str) -> str:
    """Return the partition's standard HTTPS endpoint of `service` in `region`."""
    _, suffix = partition_of(validate_region(region, "region"))
    return f"https://{service.endpoint_prefix}.{region}.{suffix}"


def endpoint_override(service: Service, environ: Mapping[str, str]) -> str | None:
    """Return the configured endpoint URL for `service`, or None when the standard one applies."""
    if environ.get(IGNORE_ENDPOINT_URLS_VARIABLE, "").strip().lower() == "true":
        return None

    for variable in (f"{ENDPOINT_URL_VARIABLE}_{service.env_suffix}", ENDPOINT_URL_VARIABLE):
        value = environ.get(variable, "").strip()
        if value:
            return _validated_endpoint(value, variable)
    return None


def resolve_endpoint(service: Service, region: str, environ: Mapping[str, str]) -> str:
    """Return the endpoint URL for a call to `service` in `region`: the override, else the standard one."""
    return endpoint_override(service, environ) or standard_endpoint(service, region)


def parse_arn(value: str, *, expected_service: str, field: str) -> Arn:
    """Split an ARN into its parts, checking it names a resource of `expected_service`.

    `field` names the setting or argument the ARN came from, for the error message.
    """
    match = _ARN.fullmatch(value)
    if match is None:
        raise AwsConfigurationError(f"{field} {value[:120]!r} is not a valid ARN", resource=value[:120])

    arn = Arn(**match.groupdict(default=""))
    if arn.service != expected_service:
        raise AwsConfigurationError(
            f"{field} {value!r} names a {arn.service} resource, expected a {expected_service} resource",
            resource=value,
        )
    if arn.region:
        validate_region(arn.region, field)
        partition, _ = partition_of(arn.region)
        if partition != arn.partition:
            raise AwsConfigurationError(
                f"{field} {value!r} is in partition {arn.partition}, but region {arn.region} is in {partition}",
                resource=value,
            )
    return arn


def region_of_identifier(value: str, *, expected_service: str, field: str) -> str | None:
    """Return the region of an ARN, or None for a plain name (a table or bus name, a secret name)."""
    if not value.startswith("arn:"):
        return None
    return parse_arn(value, expected_service=expected_service, field=field).region or None


def region_of_queue_url(queue_url: str) -> str | None:
    """Return the region of an AWS SQS queue URL, or None when the URL's host is not an AWS SQS host.

    A URL on an AWS SQS host must be well formed (`https`, `/<account>/<queue name>`), else
    `AwsConfigurationError` is raised.
    """
    parts = urlsplit(queue_url)
    host = (parts.hostname or "").lower()
    region = _sqs_host_region(host)
    if region is None:
        return None

    if parts.scheme != "https" or parts.username or parts.password or parts.port not in (None, 443):
        raise AwsConfigurationError(f"queue URL {queue_url!r} must be a plain https URL", resource=queue_url)
    if not _SQS_QUEUE_PATH.fullmatch(parts.path) or parts.query or parts.fragment:
        raise AwsConfigurationError(
            f"queue URL {queue_url!r} must have the form https://{host}/<account id>/<queue name>",
            resource=queue_url,
        )
    return region


def queue_endpoint(queue_url: str, client_region: str | None, environ: Mapping[str, str]) -> tuple[str, str | None]:
    """Return (endpoint URL, signing region) for a call about `queue_url`.

    A configured endpoint wins. Without one, the queue URL must be on an AWS SQS host, and the
    request goes to the standard endpoint of that host's region: the host itself is never used.
    The signing region is the queue's region when the URL shows it, else `client_region`.
    """
    queue_region = region_of_queue_url(queue_url)
    override = endpoint_override(SQS, environ)
    if override is not None:
        return override, queue_region or client_region

    if queue_region is None:
        raise AwsConfigurationError(
            f"queue URL {queue_url[:200]!r} is not on an AWS SQS host (sqs.<region>.amazonaws.com); "
            f"set {ENDPOINT_URL_VARIABLE}_SQS or {ENDPOINT_URL_VARIABLE} to use another endpoint",
            service=SQS.name,
            resource=queue_url[:200],
        )
    return standard_endpoint(SQS, queue_region), queue_region


def _sqs_host_region(host: str) -> str | None:
    if host == "queue.amazonaws.com":
        return "us-east-1"

    match = _SQS_HOST.fullmatch(host) or _SQS_LEGACY_HOST.fullmatch(host)
    if match is None:
        return None
    region = match.group("region")
    if not _REGION.fullmatch(region):
        return None
    _, suffix = partition_of(region)
    if suffix != match.group("suffix"):
        return None
    return region


def _validated_endpoint(value: str, variable: str) -> str:
    parts = urlsplit(value)
    if parts.username or parts.password:
        raise AwsConfigurationError(f"{variable} must not contain a user name or password", variable=variable)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AwsConfigurationError(
            f"{variable} {value[:200]!r} is not an http or https URL with a host", variable=variable
        )
    if parts.query or parts.fragment:
        raise AwsConfigurationError(f"{variable} {value[:200]!r} must not have a query or fragment", variable=variable)
    return value.rstrip("/")
