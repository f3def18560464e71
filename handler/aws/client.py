"""A small AWS client over `requests`: credentials and region from the environment, endpoints, SigV4
signing, the JSON and query wire protocols, error parsing and retries.

It is written by hand because the Lambda function must stay boto3-free, for cold start and memory.
Importing boto3 and building one SQS client took about 190 ms and 32 MB of resident memory on the
development machine (Python 3.11, 2 vCPU). That comes on top of `requests`, which the function
loads anyway for the CSS API, and the function needs only a dozen operations of six services.
`requests-aws4auth` does the SigV4 signing, and this module builds the requests and reads the
responses. One `AwsClient` per process (see `get_client`) keeps one `requests.Session`, so
connections are reused across invocations.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
import time
import xml.etree.ElementTree as ElementTree
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter
from requests_aws4auth import AWS4Auth

from handler import __version__
from handler.aws.endpoints import Service, resolve_endpoint, validate_region
from handler.aws.errors import REDACTED, AwsConfigurationError, AwsError, AwsTransientError, error_from_response, redact_text
from handler.retry import NO_DEADLINE, Deadline, RetryPolicy, call_with_retries

logger = logging.getLogger(__name__)

ACCESS_KEY_VARIABLE = "AWS_ACCESS_KEY_ID"
SECRET_KEY_VARIABLE = "AWS_SECRET_ACCESS_KEY"
SESSION_TOKEN_VARIABLE = "AWS_SESSION_TOKEN"
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")

# (connect, read) seconds. The connect timeout sits just above a multiple of 3 s, the TCP
# retransmission window, as the requests documentation suggests.
DEFAULT_TIMEOUT = (3.05, 10.0)

# Four attempts with full-jitter backoff from 0.2 s, capped at 5 s per wait. A caller's deadline
# cuts this shorter.
DEFAULT_RETRY_POLICY = RetryPolicy(max_attempts=4, base_delay=0.2, max_delay=5.0)

# Enough pooled connections per host for the worker's concurrent records (MAX_CONCURRENCY, default 10).
_POOL_SIZE = 20

# A timeout shorter than this is not worth sending a request for.
_MIN_TIMEOUT = 0.05

_USER_AGENT = f"css-upgrade-scout/{__version__} python-requests/{requests.__version__}"

_SIGNATURE = re.compile(r"Signature=([0-9a-fA-F]+)")


@dataclass(frozen=True)
class Credentials:
    """AWS credentials as Lambda provides them. No field ever appears in a repr."""

    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


class AwsClient:
    """Signed calls to AWS's JSON-protocol and query-protocol services over one `requests.Session`.

    The environment is read at each call, so credentials that the runtime replaces are picked up.

    Parameters
    ----------
    environ:
        Where settings are read from; `os.environ` (live) when None, else a copy of the mapping.
    session:
        The `requests.Session` to use; a new one with a pooled adapter when None.
    timeout:
        (connect, read) timeouts in seconds, always applied and shortened to a caller's deadline.
    retry_policy, sleep, rng:
        Retry settings for throttling, 5xx and transport errors; `sleep` and `rng` exist for tests.
    """

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._environ: Mapping[str, str] = os.environ if environ is None else dict(environ)
        self._session = session or _new_session()
        self.timeout = timeout
        self.retry_policy = retry_policy
        self._sleep = sleep
        self._rng = rng

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], **options: Any) -> "AwsClient":
        """Build a client that reads its settings from `environ` instead of the process environment."""
        return cls(environ, **options)

    def __repr__(self) -> str:
        region = _first_set(self._environ, REGION_VARIABLES)
        return f"AwsClient(region={region!r}, timeout={self.timeout!r})"

    @property
    def environ(self) -> Mapping[str, str]:
        return self._environ

    @property
    def region(self) -> str:
        """The configured region, from `AWS_REGION` or else `AWS_DEFAULT_REGION`."""
        for variable in REGION_VARIABLES:
            value = self._environ.get(variable, "").strip()
            if value:
                return validate_region(value, variable)
        raise AwsConfigurationError(
            "AWS_REGION is not set (nor AWS_DEFAULT_REGION): set it to the region of the queues, topics and tables",
            variable="AWS_REGION",
        )

    def credentials(self) -> Credentials:
        """Read the credentials from the environment, raising `AwsConfigurationError` naming what is missing."""
        access_key_id = self._required_credential(ACCESS_KEY_VARIABLE)
        secret_access_key = self._required_credential(SECRET_KEY_VARIABLE)
        session_token = self._environ.get(SESSION_TOKEN_VARIABLE, "") or None
        if session_token is not None:
            _check_header_safe(session_token, SESSION_TOKEN_VARIABLE)
        return Credentials(access_key_id, secret_access_key, session_token)

    def endpoint(self, service: Service, region: str | None = None) -> str:
        """Return the endpoint URL of `service` in `region` (the configured region when None)."""
        return resolve_endpoint(service, region or self.region, self._environ)

    def call_json(
        self,
        service: Service,
        operation: str,
        payload: Mapping[str, Any],
        *,
        region: str | None = None,
        endpoint: str | None = None,
        resource: str | None = None,
        deadline: Deadline | None = None,
        redact: Iterable[str] = (),
        extra_read_timeout: float = 0.0,
    ) -> dict[str, Any]:
        """Call a JSON-protocol operation and return the decoded response document.

        `region` is the signing region (and selects the standard endpoint); `endpoint` replaces the
        resolved endpoint, for callers that resolved it themselves (SQS queue URLs). `resource`
        names what the call is about in errors, and the strings in `redact` never appear in them.
        """
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        headers = {
            "Content-Type": f"application/x-amz-json-{service.json_version}",
            "X-Amz-Target": f"{service.target_prefix}.{operation}",
        }
        return self._send(
            service,
            operation,
            body,
            headers,
            region=region,
            endpoint=endpoint,
            resource=resource,
            deadline=deadline,
            redact=tuple(redact),
            extra_read_timeout=extra_read_timeout,
            parse=_parse_json_body,
        )

    def call_query(
        self,
        service: Service,
        action: str,
        params: Mapping[str, str],
        *,
        region: str | None = None,
        endpoint: str | None = None,
        resource: str | None = None,
        deadline: Deadline | None = None,
        redact: Iterable[str] = (),
    ) -> ElementTree.Element:
        """Call a query-protocol operation (form POST) and return the root element of the XML response."""
        form = {"Action": action, "Version": service.api_version, **params}
        body = urlencode(form).encode("ascii")
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        return self._send(
            service,
            action,
            body,
            headers,
            region=region,
            endpoint=endpoint,
            resource=resource,
            deadline=deadline,
            redact=tuple(redact),
            extra_read_timeout=0.0,
            parse=_parse_xml_body,
        )

    def wait_before_retry(self, round_number: int, deadline: Deadline | None = None) -> bool:
        """Wait the backoff before retry round `round_number` (1 for the first) of failed batch entries.

        Returns False, without waiting, when the wait would end past the deadline.
        """
        delay = self.retry_policy.backoff(round_number, self._rng)
        if not (deadline or NO_DEADLINE).allows_wait(delay):
            return False
        self._sleep(delay)
        return True

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def _send(
        self,
        service: Service,
        operation: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        region: str | None,
        endpoint: str | None,
        resource: str | None,
        deadline: Deadline | None,
        redact: tuple[str, ...],
        extra_read_timeout: float,
        parse: Callable[[requests.Response, Mapping[str, Any]], Any],
    ) -> Any:
        """Sign and send one request, retrying transient failures, and return the parsed response."""
        deadline = deadline or NO_DEADLINE
        signing_region = region or self.region
        credentials = self.credentials()
        url = (endpoint or resolve_endpoint(service, signing_region, self._environ)) + "/"
        context = {"service": service.name, "operation": operation, "resource": resource}

        def attempt() -> Any:
            if deadline.expired():
                raise AwsTransientError("the caller's deadline passed before the request was sent", **context)
            auth = AWS4Auth(
                credentials.access_key_id,
                credentials.secret_access_key,
                signing_region,
                service.signing_name,
                session_token=credentials.session_token,
            )
            timeout = self._timeout_within(deadline, extra_read_timeout)
            # The requests exception is not chained: it carries the signed request, session token included.
            try:
                # Never follow a redirect: requests would resend the session token (X-Amz-Security-Token)
                # to whatever host the Location header names.
                response = self._session.post(url, data=body, headers=headers, auth=auth, timeout=timeout, allow_redirects=False)
            except requests.Timeout as error:
                raise AwsTransientError(f"timed out: {_describe_transport_error(error)}", **context) from None
            except requests.RequestException as error:
                raise AwsTransientError(f"request failed: {_describe_transport_error(error)}", **context) from None

            if 300 <= response.status_code < 400:
                raise AwsConfigurationError(
                    f"the endpoint returned HTTP {response.status_code}, a redirect, which is never followed; "
                    "check AWS_ENDPOINT_URL and the queue, topic and table settings",
                    status=response.status_code,
                    **context,
                )
            if response.status_code >= 300:
                raise error_from_response(
                    response.status_code,
                    _redacted(response.content, _request_secrets(credentials, response.request)),
                    response.headers,
                    service=service.name,
                    operation=operation,
                    resource=resource,
                    redact=redact,
                )
            _check_crc32(response, context)
            return parse(response, context)

        def log_retry(error: Exception, number: int, delay: float) -> None:
            logger.warning(
                "retrying %s %s after a transient error (attempt %d, next in %.2f s): %s",
                service.name,
                operation,
                number,
                delay,
                redact_text(str(error), redact),
            )

        return call_with_retries(
            attempt,
            policy=self.retry_policy,
            deadline=deadline,
            is_retryable=lambda error: isinstance(error, AwsError) and error.retryable,
            retry_after=lambda error: getattr(error, "retry_after", None),
            on_retry=log_retry,
            sleep=self._sleep,
            rng=self._rng,
        )

    def _required_credential(self, variable: str) -> str:
        value = self._environ.get(variable, "")
        if not value.strip():
            raise AwsConfigurationError(
                f"{variable} is not set: the function needs AWS credentials (Lambda sets them from its role)",
                variable=variable,
            )
        _check_header_safe(value, variable)
        return value

    def _timeout_within(self, deadline: Deadline, extra_read_timeout: float) -> tuple[float, float]:
        """Return (connect, read) timeouts, each cut to the time left before the deadline."""
        connect, read = self.timeout
        read += extra_read_timeout
        remaining = deadline.remaining()
        if remaining is None:
            return connect, read
        ceiling = max(_MIN_TIMEOUT, remaining)
        return min(connect, ceiling), min(read, ceiling)


_default_client: AwsClient | None = None
_default_client_lock = threading.Lock()


def get_client() -> AwsClient:
    """Return the process-wide client, building it on first use; it is reused across invocations."""
    global _default_client
    if _default_client is None:
        with _default_client_lock:
            if _default_client is None:
                _default_client = AwsClient()
    return _default_client


def find_text(root: ElementTree.Element, name: str) -> str | None:
    """Return the text of the first element called `name` below `root`, ignoring XML namespaces."""
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == name:
            return element.text
    return None


def _new_session() -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=_POOL_SIZE, pool_maxsize=_POOL_SIZE)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = _USER_AGENT
    # trust_env stays on, so HTTPS_PROXY and REQUESTS_CA_BUNDLE apply as they do for the AWS SDKs.
    return session


def _parse_json_body(response: requests.Response, context: Mapping[str, Any]) -> dict[str, Any]:
    if not response.content.strip():
        return {}
    try:
        document = response.json()
    except ValueError:
        raise AwsTransientError(
            f"HTTP {response.status_code} response is not JSON", status=response.status_code, **context
        ) from None
    if not isinstance(document, dict):
        raise AwsTransientError(
            f"HTTP {response.status_code} response is not a JSON object", status=response.status_code, **context
        )
    return document


def _parse_xml_body(response: requests.Response, context: Mapping[str, Any]) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(response.content)
    except ElementTree.ParseError:
        raise AwsTransientError(
            f"HTTP {response.status_code} response is not XML", status=response.status_code, **context
        ) from None


def _check_crc32(response: requests.Response, context: Mapping[str, Any]) -> None:
    """Compare DynamoDB's `x-amz-crc32` header with the body, as the AWS SDKs do.

    Only an uncompressed body can be checked: `requests` has already decoded a compressed one.
    """
    expected = response.headers.get("x-amz-crc32")
    if expected is None or response.headers.get("Content-Encoding"):
        return
    actual = zlib.crc32(response.content) & 0xFFFFFFFF
    if not expected.isdigit() or int(expected) != actual:
        raise AwsTransientError(
            "response body does not match its x-amz-crc32 checksum", status=response.status_code, **context
        )


def _request_secrets(credentials: Credentials, request: requests.PreparedRequest | None) -> tuple[str, ...]:
    """Return the credentials and the Authorization header sent: what an error body must not carry into a message.

    A proxy or endpoint may quote the request back in an error body, and error messages end up in
    logs. Longest first, because the header contains the access key ID and the signature.
    """
    secrets = [credentials.access_key_id, credentials.secret_access_key, credentials.session_token or ""]
    authorization = request.headers.get("Authorization") if request is not None else None
    if authorization:
        secrets.append(authorization)
        secrets.extend(_SIGNATURE.findall(authorization))
    return tuple(sorted((secret for secret in secrets if secret), key=len, reverse=True))


def _redacted(body: bytes, secrets: Iterable[str]) -> bytes:
    """Replace each secret in a response body before it is parsed, so that no length cut can split one."""
    for secret in secrets:
        body = body.replace(secret.encode("utf-8"), REDACTED.encode("ascii"))
    return body


def _check_header_safe(value: str, variable: str) -> None:
    """Reject values that cannot travel in an HTTP header, naming the variable but never the value."""
    if value != value.strip() or not value.isascii() or not value.isprintable():
        raise AwsConfigurationError(
            f"{variable} contains whitespace or characters that are not printable ASCII", variable=variable
        )


def _first_set(environ: Mapping[str, str], variables: Iterable[str]) -> str | None:
    for variable in variables:
        value = environ.get(variable, "").strip()
        if value:
            return value
    return None


def _describe_transport_error(error: requests.RequestException) -> str:
    text = " ".join(str(error).split())
    if len(text) > 300:
        text = text[:300] + "..."
    return f"{type(error).__name__}: {text}"
