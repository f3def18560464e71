"""AwsClient: configuration from the environment, SigV4 signing on the wire, timeouts, and no boto3."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from handler.aws import client as client_module
from handler.aws import sqs, stepfunctions
from handler.aws.client import AwsClient, get_client
from handler.aws.endpoints import SQS, STEP_FUNCTIONS
from handler.aws.errors import AwsConfigurationError, AwsTransientError
from handler.retry import Deadline, RetryPolicy

from . import (
    ACCESS_KEY_ID,
    ENVIRONMENT,
    REGION,
    SECRET_ACCESS_KEY,
    SESSION_TOKEN,
    CannedResponse,
    CannedServer,
    RecordedRequest,
    client_for,
    json_error,
    moto_backend,
    running_moto_server,
)

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def moto_server():
    with running_moto_server() as url:
        yield url


@pytest.fixture
def canned():
    with CannedServer() as server:
        yield server


def without(*names: str) -> dict[str, str]:
    return {name: value for name, value in ENVIRONMENT.items() if name not in names}


# (environment, variable named in the error)
MISSING_SETTINGS = [
    (without("AWS_ACCESS_KEY_ID"), "AWS_ACCESS_KEY_ID"),
    (without("AWS_SECRET_ACCESS_KEY"), "AWS_SECRET_ACCESS_KEY"),
    ({**ENVIRONMENT, "AWS_ACCESS_KEY_ID": "  "}, "AWS_ACCESS_KEY_ID"),
    (without("AWS_REGION"), "AWS_REGION"),
    ({**without("AWS_REGION"), "AWS_DEFAULT_REGION": ""}, "AWS_REGION"),
]


@pytest.mark.parametrize(("environ", "variable"), MISSING_SETTINGS)
def test_call_missing_setting_names_variable(canned, environ, variable):
    client = AwsClient.from_environ({**environ, "AWS_ENDPOINT_URL": canned.url})

    with pytest.raises(AwsConfigurationError) as caught:
        client.call_json(STEP_FUNCTIONS, "SendTaskHeartbeat", {"taskToken": "t"})

    assert caught.value.variable == variable
    assert variable in str(caught.value)
    assert canned.requests == []


def test_region_falls_back_to_default_region():
    client = AwsClient.from_environ({**without("AWS_REGION"), "AWS_DEFAULT_REGION": "eu-west-1"})
    assert client.region == "eu-west-1"
    assert client.endpoint(SQS) == "https://sqs.eu-west-1.amazonaws.com"


def test_region_prefers_aws_region():
    client = AwsClient.from_environ({**ENVIRONMENT, "AWS_DEFAULT_REGION": "eu-west-1"})
    assert client.region == REGION


def test_region_invalid_names_variable_and_value():
    client = AwsClient.from_environ({**ENVIRONMENT, "AWS_REGION": "moon-base"})
    with pytest.raises(AwsConfigurationError) as caught:
        client.region
    assert caught.value.variable == "AWS_REGION"
    assert "moon-base" in str(caught.value)


@pytest.mark.parametrize(
    "variable", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]
)
def test_credentials_unsafe_value_hidden(variable):
    client = AwsClient.from_environ({**ENVIRONMENT, variable: "abc\r\nX-Injected: yes"})
    with pytest.raises(AwsConfigurationError) as caught:
        client.credentials()
    assert caught.value.variable == variable
    assert "Injected" not in str(caught.value)


def test_credentials_session_token_optional():
    client = AwsClient.from_environ(without("AWS_SESSION_TOKEN"))
    assert client.credentials().session_token is None


def test_repr_hides_secrets():
    client = AwsClient.from_environ(ENVIRONMENT)
    shown = repr(client) + repr(client.credentials())
    for secret in (ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN):
        assert secret not in shown


def test_from_environ_copies_mapping():
    environ = dict(ENVIRONMENT)
    client = AwsClient.from_environ(environ)
    environ["AWS_REGION"] = "eu-west-1"
    assert client.region == REGION


def test_get_client_reused(monkeypatch):
    monkeypatch.setattr(client_module, "_default_client", None)
    first = get_client()
    assert get_client() is first


def test_get_client_reads_process_environment(monkeypatch):
    monkeypatch.setattr(client_module, "_default_client", None)
    monkeypatch.setenv("AWS_REGION", "ap-southeast-1")
    assert get_client().region == "ap-southeast-1"


def header(request: RecordedRequest, name: str) -> str | None:
    for key, value in request.headers.items():
        if key.lower() == name.lower():
            return value
    return None


def sigv4_signature(request: RecordedRequest, secret_key: str) -> str:
    """Recompute a request's SigV4 signature independently, from its recorded bytes and headers."""
    authorization = header(request, "Authorization")
    fields = dict(part.strip().split("=", 1) for part in authorization.split(" ", 1)[1].split(","))
    _, date, region, service, _ = fields["Credential"].split("/")
    signed_headers = fields["SignedHeaders"].split(";")

    canonical_headers = "".join(f"{name}:{' '.join(header(request, name).split())}\n" for name in signed_headers)
    canonical_request = "\n".join(
        [
            request.method,
            request.path,
            "",
            canonical_headers,
            ";".join(signed_headers),
            hashlib.sha256(request.body).hexdigest(),
        ]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", header(request, "X-Amz-Date"), scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )

    key = f"AWS4{secret_key}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def test_json_call_wire_format(canned):
    client = client_for(canned)

    client.call_json(SQS, "GetQueueAttributes", {"QueueUrl": "q", "AttributeNames": ["All"]})

    request = canned.requests[0]
    assert request.path == "/"
    assert header(request, "Content-Type") == "application/x-amz-json-1.0"
    assert header(request, "X-Amz-Target") == "AmazonSQS.GetQueueAttributes"
    assert request.json() == {"QueueUrl": "q", "AttributeNames": ["All"]}


def test_json_call_signature(canned):
    client = client_for(canned)

    client.call_json(STEP_FUNCTIONS, "SendTaskHeartbeat", {"taskToken": "t"}, region="eu-west-1")

    request = canned.requests[0]
    authorization = header(request, "Authorization")
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/")
    assert "/eu-west-1/states/aws4_request" in authorization
    assert header(request, "X-Amz-Security-Token") == SESSION_TOKEN
    signed = authorization.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
    assert {"host", "x-amz-date", "x-amz-target", "content-type", "x-amz-security-token"} <= set(signed)
    assert authorization.rsplit("Signature=", 1)[1] == sigv4_signature(request, SECRET_ACCESS_KEY)


def test_json_call_signature_rejects_wrong_secret(canned):
    client = client_for(canned)
    client.call_json(STEP_FUNCTIONS, "SendTaskHeartbeat", {"taskToken": "t"})
    authorization = header(canned.requests[0], "Authorization")
    assert authorization.rsplit("Signature=", 1)[1] != sigv4_signature(canned.requests[0], "another-secret")


def test_query_call_wire_format(canned):
    canned.default = CannedResponse(200, "<PublishResponse><PublishResult><MessageId>m-1</MessageId></PublishResult></PublishResponse>", {"Content-Type": "text/xml"})
    client = client_for(canned)

    from handler.aws import sns

    message_id = sns.publish("arn:aws:sns:us-east-1:123456789012:t", "hello", client=client)

    request = canned.requests[0]
    assert message_id == "m-1"
    assert header(request, "Content-Type").startswith("application/x-www-form-urlencoded")
    assert b"Action=Publish" in request.body
    assert b"Version=2010-03-31" in request.body
    assert "/us-east-1/sns/aws4_request" in header(request, "Authorization")
    assert header(request, "Authorization").rsplit("Signature=", 1)[1] == sigv4_signature(request, SECRET_ACCESS_KEY)


def test_read_timeout_transient(canned):
    release = threading.Event()
    canned.default = CannedResponse(hold=release)
    client = client_for(canned, timeout=(3.05, 0.2), retry_policy=RetryPolicy(max_attempts=2, base_delay=0.001))

    try:
        with pytest.raises(AwsTransientError, match="timed out"):
            client.call_json(STEP_FUNCTIONS, "SendTaskHeartbeat", {"taskToken": "t"})
    finally:
        release.set()

    assert len(canned.requests) == 2


def test_timeout_cut_to_deadline(canned):
    release = threading.Event()
    canned.default = CannedResponse(hold=release)
    client = client_for(canned, timeout=(3.05, 60.0), retry_policy=RetryPolicy(max_attempts=1))
    started = time.monotonic()

    try:
        with pytest.raises(AwsTransientError, match="timed out"):
            client.call_json(STEP_FUNCTIONS, "SendTaskHeartbeat", {"taskToken": "t"}, deadline=Deadline(0.3))
    finally:
        release.set()

    # Without the cut the read timeout would be 60 s.
    assert time.monotonic() - started < 30


def test_deadline_passed_sends_nothing(canned):
    client = client_for(canned)
    with pytest.raises(AwsTransientError, match="deadline"):
        client.call_json(STEP_FUNCTIONS, "SendTaskHeartbeat", {"taskToken": "t"}, deadline=Deadline(0))
    assert canned.requests == []


def test_connection_refused_transient():
    with CannedServer() as server:
        url = server.url
    client = AwsClient.from_environ(
        {**ENVIRONMENT, "AWS_ENDPOINT_URL": url}, retry_policy=RetryPolicy(max_attempts=2, base_delay=0.001)
    )
    with pytest.raises(AwsTransientError, match="request failed: ConnectionError") as caught:
        client.call_json(STEP_FUNCTIONS, "SendTaskHeartbeat", {"taskToken": "t"})

    # The requests exception carries the signed request, so it is not chained.
    assert caught.value.__cause__ is None


def test_errors_and_logs_hide_credentials(canned, caplog):
    canned.enqueue(json_error(500, "InternalFailure", "boom"))
    canned.default = json_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match")
    client = client_for(canned)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(AwsConfigurationError) as caught:
        client.call_json(STEP_FUNCTIONS, "SendTaskHeartbeat", {"taskToken": "t"})

    shown = str(caught.value) + repr(caught.value) + caplog.text
    assert "retrying" in caplog.text
    for secret in (ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN):
        assert secret not in shown


def test_pooled_connection_reused(canned):
    client = client_for(canned)
    for _ in range(3):
        client.call_json(STEP_FUNCTIONS, "SendTaskHeartbeat", {"taskToken": "t"})
    ports = {request.client_port for request in canned.requests}
    assert len(canned.requests) == 3
    assert len(ports) == 1


NO_BOTO_SCRIPT = """
import json, sys
from handler.aws import dynamodb, eventbridge, secrets, sns, sqs, stepfunctions

queue_url, topic_arn = sys.argv[1], sys.argv[2]
sqs.send_message(queue_url, "hello")
sqs.receive_message(queue_url)
sns.publish(topic_arn, "hello", subject="s")
eventbridge.put_events([eventbridge.EventEntry("css-upgrade-scout", "upgrade.ready", {"a": 1})], "bus")
dynamodb.put_item("dedupe", {"id": "x"})
dynamodb.get_item("dedupe", {"id": "x"})
secrets.get_secret_string("css")
stepfunctions.send_task_heartbeat("token")
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in ("boto3", "botocore"))))
"""


def test_calls_never_import_boto3(moto_server):
    with moto_backend("server", lambda: moto_server) as backend:
        queue_url = backend.boto("sqs").create_queue(QueueName="work")["QueueUrl"]
        topic_arn = backend.boto("sns").create_topic(Name="upgrades")["TopicArn"]
        backend.boto("events").create_event_bus(Name="bus")
        backend.boto("dynamodb").create_table(
            TableName="dedupe",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        backend.boto("secretsmanager").create_secret(Name="css", SecretString="value")
        environ = {**ENVIRONMENT, "AWS_ENDPOINT_URL": moto_server, "PATH": "/usr/bin:/bin"}

        completed = subprocess.run(
            [sys.executable, "-c", NO_BOTO_SCRIPT, queue_url, topic_arn],
            cwd=REPOSITORY,
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert completed.returncode == 0, completed.stderr
    imported = json.loads(completed.stdout.strip().splitlines()[-1])
    assert "boto3" not in imported
    assert "botocore.client" not in imported
    assert "botocore.session" not in imported
    assert imported == []


def test_sqs_send_via_default_client(monkeypatch, moto_server):
    """The module-level default client reads the process environment, as in Lambda."""
    with moto_backend("server", lambda: moto_server) as backend:
        queue_url = backend.boto("sqs").create_queue(QueueName="work")["QueueUrl"]
        for name, value in {**ENVIRONMENT, "AWS_ENDPOINT_URL": moto_server}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(client_module, "_default_client", None)

        message_id = sqs.send_message(queue_url, "hello")

        received = backend.boto("sqs").receive_message(QueueUrl=queue_url)["Messages"]
        assert received[0]["MessageId"] == message_id


def test_stepfunctions_uses_signing_name_states(canned):
    stepfunctions.send_task_heartbeat("token-1", client=client_for(canned))
    assert "/states/aws4_request" in header(canned.requests[0], "Authorization")
    assert header(canned.requests[0], "X-Amz-Target") == "AWSStepFunctions.SendTaskHeartbeat"
