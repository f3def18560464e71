"""Request forgery: no message value sends a request anywhere but CSS, AWS (moto) or an allowed Slack host.

A listener on another loopback address stands for the attacker's host. Hostile reply URLs and IDs go
through the real worker, and servers on 127.0.0.1 respond with redirects to the listener in place of
the CSS endpoint, the Slack reply URL, the approval webhook and each AWS endpoint. The listener must
never be contacted, every request must go to a configured endpoint, and no host name outside
loopback may even be looked up. Static checks show that TLS verification is never turned off and
that plain http is accepted only for loopback endpoints.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest

from handler import runtime, webhook, worker, workflow
from handler.config import ConfigurationError, load_settings
from handler.core.message import InvalidMessage, check_reply_url
from handler.local.asl import LambdaContext
from handler.local.emulator.catalog import DEFAULT_PROJECT_ID, DEFAULT_REGION
from handler.local.fake_slack import FakeSlack
from handler.local.sandbox import Sandbox

from .support import Listener, LookupGuard, NetworkLog, RedirectServer

ROOT = Path(__file__).resolve().parents[2]
LOGS_PROD = "ea244205-d641-45d9-9dcb-ab2236bcd07e"


def hostile_reply_urls(evil: Listener) -> list[str]:
    """Reply URLs that lead to the listener, or try to, by common tricks of URL parsing."""
    host, port, netloc = evil.host, evil.port, evil.netloc
    packed = sum(int(part) << (8 * (3 - index)) for index, part in enumerate(host.split(".")))
    ideographic_dots = host.replace(".", "\u3002")
    fullwidth_dots = host.replace(".", "\uff0e")
    return [
        f"http://{netloc}/commands/x",
        f"https://{netloc}/commands/x",
        f"http://127.0.0.1@{netloc}/x",
        f"http://127.0.0.1:{port}@{netloc}/x",
        f"https://hooks.slack.com@{netloc}/x",
        f"http://127.0.0.1%40{netloc}/x",
        f"http://127.0.0.1\\@{netloc}/x",
        f"http://{netloc}\\@127.0.0.1/x",
        f"http://{netloc}#@127.0.0.1/x",
        f"http://{netloc}?@127.0.0.1/x",
        f"http://127.0.0.1.evil.invalid:{port}/x",
        f"http://{packed}:{port}/x",
        f"http://{hex(packed)}:{port}/x",
        f"http://[::ffff:{host}]:{port}/x",
        f"http://[::1]:{port}/x",
        f"http://{ideographic_dots}:{port}/x",
        f"http://{fullwidth_dots}:{port}/x",
        f"http:\\\\{netloc}\\x",
        f"http:/{netloc}/x",
        f"//{netloc}/x",
        f"file://{netloc}/etc/passwd",
        f"gopher://{netloc}/_POST",
        f"ftp://{netloc}/x",
        f"http://127.0.0.1/x\r\nHost: {netloc}",
        f" http://{netloc}/x",
        f"http://{netloc}:99999/x",
    ]


@pytest.fixture
def box(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """The sandbox without the announce-once table, a fake Slack, and logs of requests and name lookups."""
    with Sandbox(dedupe=False) as sandbox, FakeSlack() as slack:
        for name, value in sandbox.environment().items():
            monkeypatch.setenv(name, value)
        runtime.reset()
        sandbox.slack = slack
        sandbox.network = NetworkLog().install(monkeypatch)
        sandbox.lookups = LookupGuard().install(monkeypatch)
        yield sandbox
    runtime.reset()


def netlocs(box: Sandbox) -> set[str]:
    return {urlsplit(request.url).netloc for request in box.network.requests}


def allowed_netlocs(box: Sandbox) -> set[str]:
    return {urlsplit(box.emulator.url).netloc, urlsplit(box.moto_url).netloc, urlsplit(box.slack.url).netloc}


# -- hostile values through the worker --------------------------------------------------------------


def test_hostile_reply_urls_never_contacted(box):
    with Listener() as evil:
        urls = hostile_reply_urls(evil)
        bodies = [json.dumps({"cluster_id": LOGS_PROD, "reply_to": {"slack_response_url": url}}) for url in urls]
        for start in range(0, len(bodies), 10):
            box.send(bodies[start : start + 10])
            delivery = box.invoke(worker.lambda_handler, box.receive_event())
            assert delivery.response == {"batchItemFailures": []}

        letters = box.dead_letters()
        assert evil.connections == 0

    assert sorted(letter["body"] for letter in letters) == sorted(bodies)
    assert {letter["error_reason"] for letter in letters} == {"invalid_message"}
    assert all(letter["error_detail"].startswith("invalid reply_to.slack_response_url ") for letter in letters)
    assert box.emulator.calls == []
    assert netlocs(box) <= allowed_netlocs(box)
    assert box.lookups.refused == []


@pytest.mark.parametrize("trick", ["#@", "?@", "/@"])
def test_confusable_reply_url_goes_to_its_host(box, trick):
    with Listener() as evil:
        url = f"{box.slack.url}/commands/x{trick}{evil.netloc}/"
        box.send([json.dumps({"cluster_id": LOGS_PROD, "reply_to": {"slack_response_url": url}})])

        delivery = box.invoke(worker.lambda_handler, box.receive_event())

        assert evil.connections == 0
    assert delivery.response == {"batchItemFailures": []}
    assert len(box.slack.posts) == 1
    assert netlocs(box) <= allowed_netlocs(box)


@pytest.mark.parametrize(
    "suffix",
    ["@{netloc}", "/../../{netloc}", "%2F..%2F{netloc}", "#@{netloc}", "?host={netloc}", "\r\nHost: {netloc}", "/{netloc}"],
)
def test_hostile_ids_never_reach_network(box, suffix):
    with Listener() as evil:
        value = suffix.format(netloc=evil.netloc)
        bodies = [
            json.dumps({"cluster_id": LOGS_PROD + value}),
            json.dumps({"cluster_id": LOGS_PROD, "project_id": DEFAULT_PROJECT_ID + value}),
            json.dumps({"cluster_id": LOGS_PROD, "region": DEFAULT_REGION + value}),
            LOGS_PROD + value,
        ]
        box.send(bodies)
        delivery = box.invoke(worker.lambda_handler, box.receive_event())
        assert evil.connections == 0

    assert delivery.response == {"batchItemFailures": []}
    assert len(box.dead_letters()) == len(bodies)
    assert box.emulator.calls == []
    assert box.network.carrying(evil.netloc) == [request for request in box.network.requests if "SendMessage" in request.text]
    assert all(urlsplit(request.url).path in ("", "/") for request in box.network.requests)
    assert box.lookups.refused == []


# -- redirects ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_css_redirect_not_followed(box, monkeypatch, status):
    with Listener() as evil, RedirectServer(status, f"http://{evil.netloc}/v1.0/steal") as redirect:
        monkeypatch.setenv("CSS_ENDPOINT", redirect.url)
        runtime.reset()
        box.send([LOGS_PROD])

        delivery = box.invoke(worker.lambda_handler, box.receive_event())

        assert evil.connections == 0
        assert len(redirect.requests) == 1
    assert type(delivery.error).__name__ == "ConfigurationFault"
    assert "redirect" in str(delivery.error)


@pytest.mark.parametrize("status", [302, 307])
def test_slack_reply_redirect_not_followed(box, status):
    with Listener() as evil, RedirectServer(status, f"http://{evil.netloc}/commands/steal") as redirect:
        body = json.dumps({"cluster_id": LOGS_PROD, "reply_to": {"slack_response_url": f"{redirect.url}/commands/T0/1"}})
        box.send([body])

        delivery = box.invoke(worker.lambda_handler, box.receive_event())

        assert evil.connections == 0
        assert len(redirect.requests) == 1
    assert delivery.response == {"batchItemFailures": []}
    assert [event["cluster"]["id"] for event in box.received_events()] == [LOGS_PROD]


@pytest.mark.parametrize(
    ("variable", "body"),
    [
        ("AWS_ENDPOINT_URL_SNS", LOGS_PROD),
        ("AWS_ENDPOINT_URL_SQS", "{not json"),
        ("AWS_ENDPOINT_URL", LOGS_PROD),
    ],
    ids=["sns-publish", "sqs-dead-letter", "all-services"],
)
@pytest.mark.parametrize("status", [302, 307])
def test_aws_redirect_not_followed(box, monkeypatch, variable, body, status):
    with Listener() as evil, RedirectServer(status, f"http://{evil.netloc}/") as redirect:
        box.send([body])
        event = box.receive_event()
        monkeypatch.setenv(variable, redirect.url)
        runtime.reset()

        delivery = box.invoke(worker.lambda_handler, event)

        assert evil.connections == 0
        assert len(redirect.requests) >= 1
    assert type(delivery.error).__name__ == "ConfigurationFault"
    assert "redirect" in str(delivery.error)
    assert delivery.deleted == []


@pytest.mark.parametrize("status", [302, 307])
def test_webhook_enqueue_redirect_not_followed(box, monkeypatch, status):
    monkeypatch.setenv("SLACK_SIGNING_SECRET", box.slack.signing_secret)
    with Listener() as evil, RedirectServer(status, f"http://{evil.netloc}/") as redirect:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", redirect.url)

        response = webhook.lambda_handler(box.slack.slash_command(f"check {LOGS_PROD}", user_id="U0REQUESTER"), LambdaContext(10))

        assert evil.connections == 0
        assert len(redirect.requests) >= 1
    assert response["statusCode"] == 200
    assert "could not be queued" in json.loads(response["body"])["text"]


@pytest.mark.parametrize("status", [302, 307])
def test_approval_webhook_redirect_not_followed(box, monkeypatch, status):
    with Listener() as evil, RedirectServer(status, f"http://{evil.netloc}/services/steal") as redirect:
        monkeypatch.setenv("SLACK_APPROVAL_WEBHOOK_URL", f"{redirect.url}/services/T0/B0/secret")
        checked = workflow.lambda_handler({"action": "check", "cluster_id": LOGS_PROD}, LambdaContext(30))

        with pytest.raises(ConfigurationError):
            workflow.lambda_handler({"action": "request_approval", "task_token": "AQC-token", "event": checked}, LambdaContext(30))

        assert evil.connections == 0
        assert len(redirect.requests) == 1


# -- TLS and plain http -------------------------------------------------------------------------------


def function_sources() -> list[Path]:
    """The Lambda function's own modules: handler/ without the local-only tools."""
    return sorted(path for path in (ROOT / "handler").rglob("*.py") if "local" not in path.relative_to(ROOT / "handler").parts)


def test_function_sources_found():
    names = {path.relative_to(ROOT).as_posix() for path in function_sources()}
    assert {"handler/css/client.py", "handler/aws/client.py", "handler/delivery/slack.py"} <= names
    assert not any(name.startswith("handler/local/") for name in names)


@pytest.mark.parametrize("path", function_sources(), ids=lambda path: path.relative_to(ROOT).as_posix())
def test_tls_verification_never_disabled(path):
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))

    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "verify":
            assert not (isinstance(node.value, ast.Constant) and node.value.value is False), f"{path}:{node.value.lineno}"
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and target.attr in ("verify", "check_hostname"):
                    assert not (isinstance(node.value, ast.Constant) and node.value.value is False), f"{path}:{node.lineno}"
    for needle in ("verify=False", "verify = False", "CERT_NONE", "disable_warnings", "_create_unverified_context"):
        assert needle not in source


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://css.ap-southeast-1.myhuaweicloud.com",
        "http://10.0.0.1",
        "http://192.168.1.10:8080",
        "http://0.0.0.0",
        "http://127.0.0.1.evil.invalid",
        "http://2130706433",
        "http://[::ffff:7f00:1]",
        "http://css.{region}.example.invalid",
        "ftp://127.0.0.1",
        "https://user:secret@css.ap-southeast-1.myhuaweicloud.com",
        "https://css.ap-southeast-1.myhuaweicloud.com/v1.0/other",
        "https://css.ap-southeast-1.myhuaweicloud.com?x=1",
    ],
)
def test_css_endpoint_needs_tls_off_loopback(endpoint):
    with pytest.raises(ConfigurationError) as raised:
        load_settings({"CSS_ENDPOINT": endpoint, "CSS_REGION": "ap-southeast-1"})
    assert "CSS_ENDPOINT" in str(raised.value)


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:8443", "http://localhost:9000", "https://css.ap-southeast-1.myhuaweicloud.com"])
def test_css_endpoint_allowed(endpoint):
    assert load_settings({"CSS_ENDPOINT": endpoint, "CSS_REGION": "ap-southeast-1"}).css_endpoint == endpoint


@pytest.mark.parametrize(
    ("url", "hosts"),
    [
        ("http://hooks.slack.com/commands/x", ("hooks.slack.com",)),
        ("http://localhost/commands/x", ("localhost",)),
        ("http://[::1]/commands/x", ("::1",)),
        ("http://10.0.0.1/commands/x", ("10.0.0.1",)),
        ("ws://127.0.0.1/commands/x", ("127.0.0.1",)),
    ],
)
def test_slack_http_only_on_127_0_0_1(url, hosts):
    with pytest.raises(InvalidMessage):
        check_reply_url(url, hosts)


def test_slack_https_and_local_http_allowed():
    assert check_reply_url("https://hooks.slack.com/commands/T0/1/abc", ("hooks.slack.com",))
    assert check_reply_url("http://127.0.0.1:8080/commands/x", ("127.0.0.1",))
