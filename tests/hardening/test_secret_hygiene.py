"""Secret hygiene: no credential, token, signature or secret URL ever shows in what the function emits.

The worker, the webhook, the workflow and the CLI run with canary values (recognizable strings) for
every secret. These are the CSS AK/SK and security token (a custom emulator catalog accepts them),
the AWS keys and session token, the Slack signing secret, an approval webhook URL with a secret
path, and a Step Functions task token. The functions run through success and failure paths,
including rejected credentials, bad Slack signatures and endpoints that echo the request back in
their error bodies.
Every log line (at DEBUG), exception text, event, dead letter, Slack post and command output is
collected and searched for the canaries, for `Signature=`, and for every Authorization header value
the function sent.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import traceback
from typing import Any, Iterator

import pytest

from handler import runtime, webhook, worker, workflow
from handler.local.asl import LambdaContext, TaskTokenServer
from handler.local.emulator.catalog import DEFAULT_PROJECT_ID, DEFAULT_REGION, load_catalog
from handler.local.emulator.faults import Fault
from handler.local.fake_slack import FakeSlack
from handler.local.sandbox import FakeLambdaContext, Sandbox

from .support import EchoServer, NetworkLog, capture_logs, iterate_strings, occurrences

CANARY_AK = "CANARYAK4D2E8F1A"
CANARY_SK = "canary-sk-7c1e52b9d0"
CANARY_TEMP_AK = "CANARYTEMPAK93B1"
CANARY_TEMP_SK = "canary-temp-sk-2f84a6"
CANARY_CSS_TOKEN = "canary-css-security-token-6a0d"
CANARY_SCOPED_AK = "CANARYSCOPEDAK55"
CANARY_SCOPED_SK = "canary-scoped-sk-b3c1"
CANARY_WRONG_SK = "canary-wrong-sk-0e9a"
CANARY_AWS_KEY = "AKIACANARY4E7F2A91"
CANARY_AWS_SECRET = "canary-aws-secret-d41f"
CANARY_AWS_TOKEN = "canary-aws-session-token-8b3e"
CANARY_SLACK_SECRET = "canary-slack-signing-secret-5c2a"
CANARY_WEBHOOK_PATH = "canary-approval-webhook-path-1f7d"
CANARY_TASK_TOKEN = "AQCcanary-task-token-" + "0123456789abcdef" * 4

CANARIES = (
    CANARY_AK, CANARY_SK, CANARY_TEMP_AK, CANARY_TEMP_SK, CANARY_CSS_TOKEN, CANARY_SCOPED_AK, CANARY_SCOPED_SK,
    CANARY_WRONG_SK, CANARY_AWS_KEY, CANARY_AWS_SECRET, CANARY_AWS_TOKEN, CANARY_SLACK_SECRET, CANARY_WEBHOOK_PATH,
    CANARY_TASK_TOKEN,
)

LOGS_PROD = "ea244205-d641-45d9-9dcb-ab2236bcd07e"
SEARCH_PROD = "02bfab90-9f44-5f39-9d58-2fe518687173"
UNKNOWN = "0b0e6a29-2f7c-4d38-9a51-7f0f5e3c2a11"
APPROVER = "U0APPROVER1"
OTHER_PROJECT = "1f0e8c7b6a5d4c3b2a1908f7e6d5c4b3"

APPROVAL_PATH = f"/services/T0LOCAL01/B0LOCAL01/{CANARY_WEBHOOK_PATH}"

_SIGNATURE = re.compile(r"Signature=([0-9a-fA-F]+)")


def canary_catalog():
    """The default catalog with the canary credentials in place of the emulator's own."""
    path = os.path.join(os.path.dirname(load_catalog.__code__.co_filename), "default_catalog.json")
    with open(path, encoding="utf-8") as catalog_file:
        data = json.load(catalog_file)
    data["credentials"] = [
        {"ak": CANARY_AK, "sk": CANARY_SK},
        {"ak": CANARY_TEMP_AK, "sk": CANARY_TEMP_SK, "securityToken": CANARY_CSS_TOKEN},
        {"ak": CANARY_SCOPED_AK, "sk": CANARY_SCOPED_SK, "projects": [OTHER_PROJECT]},
    ]
    return load_catalog(data)


class Emitted:
    """Everything the function emitted during a test, by channel, searched for secrets at the end."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, channel: str, value: Any) -> None:
        if isinstance(value, BaseException):
            self.texts.append((channel, str(value)))
            self.texts.append((channel, repr(value)))
            self.texts.append((channel, "".join(traceback.format_exception(value))))
        elif isinstance(value, (dict, list)):
            self.texts.append((channel, json.dumps(value, ensure_ascii=False)))
            self.texts.extend((channel, text) for text in iterate_strings(value))
        else:
            self.texts.append((channel, str(value)))

    def leaks(self, secrets: list[str], *, except_channels: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
        found = []
        for channel, text in self.texts:
            if channel in except_channels:
                continue
            for secret, excerpt in occurrences([text], secrets):
                found.append((channel, secret, excerpt))
        return found


def sent_authorizations(network: NetworkLog) -> list[str]:
    """Every Authorization header value the function sent, and the signature in each."""
    values = []
    for request in network.requests:
        header = request.headers.get("Authorization")
        if header:
            values.append(header)
            values.extend(_SIGNATURE.findall(header))
    return values


def assert_no_leak(emitted: Emitted, network: NetworkLog | None = None, *, token_allowed_in: tuple[str, ...] = ()) -> None:
    secrets = [canary for canary in CANARIES if canary != CANARY_TASK_TOKEN] + ["Signature="]
    if network is not None:
        secrets += sent_authorizations(network)
    assert emitted.leaks(secrets) == []
    assert emitted.leaks([CANARY_TASK_TOKEN], except_channels=token_allowed_in) == []
    assert emitted.texts


@pytest.fixture(scope="module")
def stack() -> Iterator[Sandbox]:
    """The canary-credential emulator, moto, a fake Slack and a task token server, with canary settings."""
    with pytest.MonkeyPatch.context() as patch, Sandbox(canary_catalog()) as box, \
            FakeSlack(CANARY_SLACK_SECRET) as slack, TaskTokenServer() as tokens:
        for name, value in box.environment().items():
            patch.setenv(name, value)
        variables = {
            "HUAWEICLOUD_SDK_AK": CANARY_TEMP_AK,
            "HUAWEICLOUD_SDK_SK": CANARY_TEMP_SK,
            "HUAWEICLOUD_SDK_SECURITY_TOKEN": CANARY_CSS_TOKEN,
            "AWS_ACCESS_KEY_ID": CANARY_AWS_KEY,
            "AWS_SECRET_ACCESS_KEY": CANARY_AWS_SECRET,
            "AWS_SESSION_TOKEN": CANARY_AWS_TOKEN,
            "SLACK_SIGNING_SECRET": CANARY_SLACK_SECRET,
            "SLACK_APPROVERS": APPROVER,
            "SLACK_APPROVAL_WEBHOOK_URL": slack.url + APPROVAL_PATH,
            "AWS_ENDPOINT_URL_SFN": tokens.url,
        }
        for name, value in variables.items():
            patch.setenv(name, value)
        runtime.reset()
        box.slack = slack
        box.tokens = tokens
        yield box
    runtime.reset()


@pytest.fixture
def box(stack: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    stack.emulator.reset()
    stack.received_events()
    stack.dead_letters()
    stack.network = NetworkLog().install(monkeypatch)
    stack.posts_before = len(stack.slack.posts)
    runtime.reset()
    yield stack
    runtime.reset()


def use_credentials(monkeypatch: pytest.MonkeyPatch, ak: str, sk: str, token: str | None = None) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", ak)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", sk)
    if token is None:
        monkeypatch.delenv("HUAWEICLOUD_SDK_SECURITY_TOKEN", raising=False)
    else:
        monkeypatch.setenv("HUAWEICLOUD_SDK_SECURITY_TOKEN", token)
    runtime.reset()


def deliver(box: Sandbox, bodies: list[str], emitted: Emitted, timeout_seconds: float = 60.0) -> None:
    box.send(bodies)
    delivery = box.invoke(worker.lambda_handler, box.receive_event(), timeout_seconds=timeout_seconds)
    emitted.add("response", delivery.response or {})
    if delivery.error is not None:
        emitted.add("exception", delivery.error)


def collect_output(capfd: pytest.CaptureFixture[str], emitted: Emitted) -> None:
    """Add what the process wrote to standard output (metrics) and standard error (the logger's stream)."""
    captured = capfd.readouterr()
    emitted.add("stdout", captured.out)
    emitted.add("stderr", captured.err)


def collect_deliveries(box: Sandbox, emitted: Emitted) -> None:
    for event in box.received_events():
        emitted.add("event", event)
    for letter in box.dead_letters():
        emitted.add("dead letter", letter)
    for post in box.slack.posts[box.posts_before:]:
        emitted.add(f"slack post {post.path}", post.raw.decode("utf-8", "replace"))


# -- the worker -------------------------------------------------------------------------------------


def test_worker_paths_leak_nothing(box, monkeypatch, capfd):
    emitted = Emitted()
    box.emulator.inject(Fault(kind="server_error", route="show_cluster", cluster_id=SEARCH_PROD, times=2))
    reply = json.dumps({"cluster_id": LOGS_PROD, "reply_to": {"slack_response_url": box.slack.response_url()}})

    with capture_logs() as logs:
        # Temporary credentials: announced with a Slack reply, not found, invalid, retried.
        deliver(box, [reply, UNKNOWN, "{not json", SEARCH_PROD], emitted)
        # A credential the project does not allow: access denied (the emulator names the AK in its response).
        use_credentials(monkeypatch, CANARY_SCOPED_AK, CANARY_SCOPED_SK)
        deliver(box, [LOGS_PROD], emitted)
        # A wrong secret key: CSS rejects the signature and the invocation fails.
        use_credentials(monkeypatch, CANARY_AK, CANARY_WRONG_SK)
        deliver(box, [SEARCH_PROD], emitted)

    collect_deliveries(box, emitted)
    collect_output(capfd, emitted)
    for line in logs.lines:
        emitted.add("log", line)
    assert any("access_denied" in text for _, text in emitted.texts)
    assert any('"Outcome.dead_lettered"' in text for channel, text in emitted.texts if channel == "stdout")
    assert any("APIGW.0301" in text for _, text in emitted.texts)
    assert_no_leak(emitted, box.network)


@pytest.mark.parametrize("shape", ["html", "json"])
def test_echoing_css_endpoint_leaks_nothing(box, monkeypatch, capfd, shape):
    emitted = Emitted()
    with EchoServer(shape) as echo:
        monkeypatch.setenv("CSS_ENDPOINT", echo.url)
        use_credentials(monkeypatch, CANARY_TEMP_AK, CANARY_TEMP_SK, CANARY_CSS_TOKEN)
        with capture_logs() as logs:
            deliver(box, [LOGS_PROD], emitted, timeout_seconds=10.0)
        assert echo.requests >= 1

    collect_deliveries(box, emitted)
    collect_output(capfd, emitted)
    for line in logs.lines:
        emitted.add("log", line)
    assert_no_leak(emitted, box.network)


@pytest.mark.parametrize("shape", ["html", "json"])
def test_echoing_aws_endpoint_leaks_nothing(box, monkeypatch, capfd, shape):
    emitted = Emitted()
    with EchoServer(shape) as echo:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", echo.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", echo.url)
        runtime.reset()
        with capture_logs() as logs:
            deliver(box, [LOGS_PROD], emitted, timeout_seconds=10.0)
        assert echo.requests >= 1

    collect_deliveries(box, emitted)
    collect_output(capfd, emitted)
    for line in logs.lines:
        emitted.add("log", line)
    assert_no_leak(emitted, box.network)


# -- the webhook and the workflow ---------------------------------------------------------------------


def call_webhook(event: dict[str, Any], emitted: Emitted) -> dict[str, Any]:
    response = webhook.lambda_handler(event, LambdaContext(10))
    emitted.add("webhook response", response)
    return response


def run_workflow(action: str, emitted: Emitted, **fields: Any) -> dict[str, Any] | None:
    try:
        result = workflow.lambda_handler({"action": action, **fields}, LambdaContext(30))
    except Exception as error:  # noqa: BLE001 - every raised error is searched for secrets
        emitted.add("workflow error", error)
        return None
    emitted.add("workflow result", result)
    return result


def test_webhook_and_workflow_leak_nothing(box, monkeypatch, capfd):
    emitted = Emitted()
    slack = box.slack
    stale = FakeSlack("another-secret")

    with capture_logs() as logs:
        call_webhook(slack.slash_command(f"check {LOGS_PROD}", user_id=APPROVER), emitted)
        call_webhook(stale.slash_command(f"check {LOGS_PROD}", user_id=APPROVER, response_url=slack.response_url()), emitted)
        call_webhook(slack.slash_command(f"check {LOGS_PROD}", user_id=APPROVER, timestamp=1), emitted)

        checked = run_workflow("check", emitted, cluster_id=LOGS_PROD)
        run_workflow("check", emitted, cluster_id=UNKNOWN)
        box.tokens.issue(CANARY_TASK_TOKEN)
        run_workflow("request_approval", emitted, task_token=CANARY_TASK_TOKEN, event=checked)
        run_workflow("request_approval", emitted, task_token=CANARY_TASK_TOKEN, event={"event_id": "x"})
        slack.answer_next(500)
        run_workflow("request_approval", emitted, task_token=CANARY_TASK_TOKEN, event=checked)
        slack.answer_next(404)
        run_workflow("request_approval", emitted, task_token=CANARY_TASK_TOKEN, event=checked)

        approval = slack.posts_to(APPROVAL_PATH)[0]
        call_webhook(slack.click(approval, approve=True, user_id="U0OUTSIDER1"), emitted)
        call_webhook(slack.click(approval, approve=True, user_id=APPROVER), emitted)
        call_webhook(slack.click(approval, approve=False, user_id=APPROVER), emitted)

    assert box.tokens.close(CANARY_TASK_TOKEN).output == {"approved_by": APPROVER}
    collect_deliveries(box, emitted)
    collect_output(capfd, emitted)
    for message in box.read_queue(box.work_queue_url):
        emitted.add("work message", message["Body"])
    for line in logs.lines:
        emitted.add("log", line)

    # The task token travels in the approval request's buttons, by design, and nowhere else.
    approval_path = f"slack post {approval.path}"
    assert CANARY_TASK_TOKEN in approval.raw.decode()
    assert_no_leak(emitted, box.network, token_allowed_in=(approval_path,))


# -- the CLI ------------------------------------------------------------------------------------------


def run_cli(box: Sandbox, *arguments: str, **variables: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("PYTEST", "POWERTOOLS"))}
    env["POWERTOOLS_LOG_LEVEL"] = "DEBUG"
    env.update(variables)
    return subprocess.run(
        [sys.executable, "-c", "import sys; from handler.cli import main; sys.exit(main())", *arguments],
        env=env, capture_output=True, text=True, timeout=120,
    )


def test_cli_leaks_nothing(box):
    emitted = Emitted()
    check = ["check", "--cluster-id", LOGS_PROD, "--project-id", DEFAULT_PROJECT_ID, "--region", DEFAULT_REGION]

    with EchoServer("json") as echo_json, EchoServer("html") as echo_html:
        runs = [
            run_cli(box, *check, "--json", "--publish"),
            run_cli(box, *check),
            run_cli(box, "check", "--cluster-id", UNKNOWN, "--json"),
            run_cli(box, *check, HUAWEICLOUD_SDK_SK=CANARY_WRONG_SK),
            run_cli(box, *check, HUAWEICLOUD_SDK_AK=CANARY_SCOPED_AK, HUAWEICLOUD_SDK_SK=CANARY_SCOPED_SK, HUAWEICLOUD_SDK_SECURITY_TOKEN=""),
            run_cli(box, *check, "--endpoint", echo_json.url),
            run_cli(box, *check, "--endpoint", echo_html.url),
            run_cli(box, *check, "--json", "--publish", AWS_ENDPOINT_URL_SNS=echo_html.url, DEDUPE_TABLE=""),
        ]

    assert [result.returncode for result in runs] == [0, 0, 3, 3, 3, 3, 3, 3]
    for result in runs:
        emitted.add("cli stdout", result.stdout)
        emitted.add("cli stderr", result.stderr)
    collect_deliveries(box, emitted)
    assert_no_leak(emitted)
