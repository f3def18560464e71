"""Hostile work messages and Slack requests: each is rejected with an error naming the field.

Work messages go through the parser (hundreds of generated cases). Mixed with a good record in one
SQS batch, they also go through the real worker. The batch still announces the good record, every
hostile record is dead-lettered as `invalid_message` with the field in `error_detail`, and no hostile
record makes a CSS call, an AWS call besides its dead-letter send, or a retry. Slack requests go through
the real webhook, signed with the app's secret over the hostile body so that the parser is reached,
and with broken signatures. Every request the function sends is recorded as it leaves.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections import Counter
from typing import Any, Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handler import runtime, slack_signature, webhook, worker
from handler.core import message as message_module
from handler.core.message import InvalidMessage, parse_body
from handler.core.policy import Policy
from handler.local.asl import LambdaContext, TaskTokenServer
from handler.local.fake_slack import FakeSlack, function_url_event
from handler.local.sandbox import FakeLambdaContext, Sandbox

from .hostile import (
    CONTROL_CHARACTERS,
    GOOD_CLUSTER,
    GOOD_PROJECT,
    GOOD_REGION,
    HOSTILE_URLS,
    HOSTILE_VALUES,
    INJECTIONS,
    LOOKALIKES,
    PARSER_HOSTILE_MESSAGES,
    SQS_HOSTILE_MESSAGES,
    HostileMessage,
    corrupted,
)
from .support import Listener, LookupGuard, NetworkLog

APPROVER = "U0APPROVER1"
REQUESTER = "U0REQUESTER"

# Enough generated cases that each test gets at least 200 hostile inputs.
PARSER_EXAMPLES = 400
BATCH_EXAMPLES = 32
SLACK_TEXT_EXAMPLES = 120
SLACK_FIELD_EXAMPLES = 40

def rejection(body: str) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as raised:
        parse_body(body, default_project_id=GOOD_PROJECT, default_region=GOOD_REGION, reply_hosts=("127.0.0.1",), policy=Policy())
    return raised.value


# -- the parser -------------------------------------------------------------------------------------


@settings(max_examples=PARSER_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(message=PARSER_HOSTILE_MESSAGES)
def test_parser_names_hostile_field(message: HostileMessage):
    error = rejection(message.body)

    assert error.field == message.field
    assert str(error).startswith(f"invalid {message.field} ")
    # A huge hostile value is cut in the message, so one record cannot flood a log line.
    assert len(str(error)) < 400


def test_hostile_values_for_every_field():
    # A field the parser learns must get hostile values here too.
    assert set(HOSTILE_VALUES) | {"reply_to"} == set(message_module._FIELDS)
    assert all(any(character not in "0123456789abcdef-" for character in injection) for injection in INJECTIONS)
    assert all(not value.isascii() for value in LOOKALIKES.values())


# -- the worker -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack() -> Iterator[Sandbox]:
    """The emulator and moto with the function's environment, the webhook's variables, and a request log."""
    with pytest.MonkeyPatch.context() as patch, Sandbox(dedupe=False) as box, FakeSlack() as slack:
        for name, value in box.environment().items():
            patch.setenv(name, value)
        patch.setenv("SLACK_SIGNING_SECRET", slack.signing_secret)
        patch.setenv("SLACK_APPROVERS", APPROVER)
        runtime.reset()
        box.slack = slack
        box.network = NetworkLog().install(patch)
        box.lookups = LookupGuard().install(patch)
        yield box
    runtime.reset()


def sqs_event(box: Sandbox, bodies: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Shape bodies as the SQS event Lambda delivers; return it with the message IDs."""
    message_ids = [str(uuid.uuid4()) for _ in bodies]
    arn = f"arn:aws:sqs:us-east-1:123456789012:{box.work_queue_url.rsplit('/', 1)[1]}"
    records = [
        {
            "messageId": message_id,
            "receiptHandle": f"handle-{message_id}",
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": arn,
            "awsRegion": "us-east-1",
        }
        for message_id, body in zip(message_ids, bodies)
    ]
    return {"Records": records}, message_ids


def operation(request) -> str:
    target = request.headers.get("X-Amz-Target")
    if target:
        return target
    form = parse_qs(request.body.decode("utf-8", "replace"))
    return form.get("Action", ["?"])[0]


@settings(max_examples=BATCH_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(hostile=st.lists(SQS_HOSTILE_MESSAGES, min_size=7, max_size=9), position=st.integers(min_value=0, max_value=9))
def test_hostile_batch_announces_good_record(stack, hostile, position):
    stack.emulator.reset_calls()
    stack.network.clear()
    bodies = [message.body for message in hostile]
    good_index = min(position, len(bodies))
    bodies.insert(good_index, GOOD_CLUSTER)
    event, message_ids = sqs_event(stack, bodies)

    response = worker.lambda_handler(event, FakeLambdaContext(60.0))

    events = stack.received_events()
    letters = stack.dead_letters()
    assert response == {"batchItemFailures": []}
    assert [(item["cluster"]["id"], item["event_type"]) for item in events] == [(GOOD_CLUSTER, "upgrade.ready")]
    assert events[0]["trigger"]["message_id"] == message_ids[good_index]

    assert sorted(letter["body"] for letter in letters) == sorted(message.body for message in hostile)
    assert {letter["error_reason"] for letter in letters} == {"invalid_message"}
    fields_of = {message.body: message.field for message in hostile}
    for letter in letters:
        assert letter["error_detail"].startswith(f"invalid {fields_of[letter['body']]} ")

    # Only the good record reaches CSS, with one request per call and no retry.
    css_paths = sorted(call.path for call in stack.emulator.calls)
    assert css_paths == sorted(
        [f"/v1.0/{GOOD_PROJECT}/clusters/{GOOD_CLUSTER}"]
        + [f"/v1.0/{GOOD_PROJECT}/clusters/{GOOD_CLUSTER}/target/{kind}/images" for kind in ("same", "cross")]
    )

    # AWS gets one publish for the good record and one dead-letter send per hostile record.
    requests = stack.network.requests
    emulator_netloc = urlsplit(stack.emulator.url).netloc
    moto_netloc = urlsplit(stack.moto_url).netloc
    assert {urlsplit(request.url).netloc for request in requests} <= {emulator_netloc, moto_netloc}
    aws_operations = Counter(operation(request) for request in requests if urlsplit(request.url).netloc == moto_netloc)
    assert aws_operations == Counter({"Publish": 1, "AmazonSQS.SendMessage": len(hostile)})
    assert stack.lookups.refused == []


# -- Slack requests ---------------------------------------------------------------------------------


def call_webhook(event: dict[str, Any]) -> dict[str, Any]:
    return webhook.lambda_handler(event, LambdaContext(10))


def reply_text(response: dict[str, Any]) -> str:
    body = response.get("body") or ""
    try:
        return json.loads(body)["text"]
    except (ValueError, KeyError, TypeError):
        return body


def enqueued(box: Sandbox) -> list[str]:
    return [message["Body"] for message in box.read_queue(box.work_queue_url)]


def assert_only_queue_traffic(box: Sandbox) -> None:
    """The webhook's only requests are SQS sends to moto, and no name outside loopback was resolved."""
    moto_netloc = urlsplit(box.moto_url).netloc
    for request in box.network.requests:
        assert urlsplit(request.url).netloc == moto_netloc
        assert operation(request) == "AmazonSQS.SendMessage"
    assert box.lookups.refused == []


@pytest.fixture
def slack_box(stack: Sandbox) -> Sandbox:
    stack.network.clear()
    enqueued(stack)
    return stack


# Words each hostile command text may be rejected with: the field, option or argument at fault.
COMMAND_WORDS = ("cluster ID", "--project", "--region", "unknown option", "unknown command", "unexpected argument",
                 "missing cluster ID", "upgrade type", "needs a value", "given twice")


@st.composite
def hostile_command_texts(draw: st.DrawFn) -> str:
    """A `check` command text with one hostile argument."""
    cluster = draw(st.one_of(corrupted(GOOD_CLUSTER), st.just(GOOD_CLUSTER)))
    project = draw(st.one_of(st.none(), corrupted(GOOD_PROJECT)))
    region = draw(st.one_of(st.none(), corrupted(GOOD_REGION), st.just("AP-SOUTHEAST-1")))
    extra = draw(st.sampled_from(["", "--evil", "--project", "sideways", "same same", GOOD_CLUSTER, "--region=", "<!channel>", "\u2014project x"]))
    words = [draw(st.sampled_from(["check", "CHECK", "check"])), cluster]
    if project is not None:
        words += ["--project", project]
    if region is not None:
        words.append(f"--region={region}")
    words.append(extra)
    text = " ".join(words)
    if cluster == GOOD_CLUSTER and project is None and region is None and extra in ("",):
        text += " --unknown"
    return text


@settings(max_examples=SLACK_TEXT_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=st.one_of(hostile_command_texts(), st.sampled_from(["deploy", "check", "check " + "x" * 10_000, "\u0441heck " + GOOD_CLUSTER, "help me please now"])))
def test_hostile_command_text_rejected(slack_box, text):
    slack_box.network.clear()
    response = call_webhook(slack_box.slack.slash_command(text, user_id=REQUESTER))

    if text.split() and text.split()[0].lower() == "help":
        assert response["statusCode"] == 200
        return
    reply = reply_text(response)
    assert response["statusCode"] == 200
    assert reply.startswith("Sorry, that did not work: ")
    assert any(word in reply for word in COMMAND_WORDS), reply
    assert "<!channel>" not in reply
    assert len(reply) < 2000
    assert enqueued(slack_box) == []
    assert slack_box.network.requests == []


@settings(max_examples=SLACK_FIELD_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(user_id=st.one_of(corrupted("U024BE7LH"), st.sampled_from(["", "U0" + "A" * 40, "U0\u200bX"])))
def test_hostile_user_id_rejected(slack_box, user_id):
    slack_box.network.clear()
    response = call_webhook(slack_box.slack.slash_command(f"check {GOOD_CLUSTER}", user_id=user_id))

    assert response["statusCode"] == 400
    assert "Slack user ID" in response["body"]
    assert enqueued(slack_box) == []
    assert slack_box.network.requests == []


@settings(max_examples=SLACK_FIELD_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(url=st.sampled_from(HOSTILE_URLS))
def test_hostile_response_url_not_kept(slack_box, url):
    slack_box.network.clear()
    response = call_webhook(slack_box.slack.slash_command(f"check {GOOD_CLUSTER}", user_id=REQUESTER, response_url=url))

    assert response["statusCode"] == 200
    assert "not on an allowed host" in reply_text(response)
    (body,) = enqueued(slack_box)
    message = json.loads(body)
    assert "reply_to" not in message
    assert message["cluster_id"] == GOOD_CLUSTER
    assert_only_queue_traffic(slack_box)


def resigned(slack: FakeSlack, event: dict[str, Any], **headers: str | None) -> dict[str, Any]:
    changed = dict(event["headers"])
    for name, value in headers.items():
        key = name.replace("_", "-")
        if value is None:
            changed.pop(key, None)
        else:
            changed[key] = value
    return {**event, "headers": changed}


def signature_cases(slack: FakeSlack) -> list[tuple[str, dict[str, Any]]]:
    """Requests whose signature or timestamp is missing, wrong, stale or malformed."""
    now = int(time.time())
    good = slack.slash_command(f"check {GOOD_CLUSTER}", user_id=REQUESTER)
    stamp = good["headers"][slack_signature.TIMESTAMP_HEADER]
    sent = good["headers"][slack_signature.SIGNATURE_HEADER]
    body = base64.b64decode(good["body"])
    other = slack_signature.signature("another-secret", stamp, body)
    flipped = sent[:-1] + ("0" if sent[-1] != "0" else "1")

    cases = [
        ("no signature", resigned(slack, good, x_slack_signature=None)),
        ("no timestamp", resigned(slack, good, x_slack_request_timestamp=None)),
        ("other secret", resigned(slack, good, x_slack_signature=other)),
        ("flipped digit", resigned(slack, good, x_slack_signature=flipped)),
        ("v1 scheme", resigned(slack, good, x_slack_signature="v1=" + sent[3:])),
        ("bare digest", resigned(slack, good, x_slack_signature=sent[3:])),
        ("empty signature", resigned(slack, good, x_slack_signature="")),
        ("non-ASCII signature", resigned(slack, good, x_slack_signature=sent[:-1] + "\u00e9")),
        ("huge signature", resigned(slack, good, x_slack_signature="v0=" + "a" * 100_000)),
        ("signature with CRLF", resigned(slack, good, x_slack_signature=sent + "\r\nX-Injected: 1")),
        ("upper-case digest", resigned(slack, good, x_slack_signature="v0=" + sent[3:].upper())),
        ("stale timestamp", slack.slash_command(f"check {GOOD_CLUSTER}", user_id=REQUESTER, timestamp=now - 301)),
        ("future timestamp", slack.slash_command(f"check {GOOD_CLUSTER}", user_id=REQUESTER, timestamp=now + 301)),
        ("letters in timestamp", resigned(slack, good, x_slack_request_timestamp=stamp + "a")),
        ("negative timestamp", resigned(slack, good, x_slack_request_timestamp="-" + stamp)),
        ("huge timestamp", resigned(slack, good, x_slack_request_timestamp="9" * 40)),
        ("fullwidth timestamp", resigned(slack, good, x_slack_request_timestamp="".join(LOOKALIKES[digit] for digit in stamp))),
        ("timestamp of another request", resigned(slack, good, x_slack_request_timestamp=str(int(stamp) - 1))),
    ]

    tampered = dict(good)
    tampered["body"] = base64.b64encode(body.replace(GOOD_CLUSTER.encode(), GOOD_CLUSTER.upper().encode())).decode()
    cases.append(("body changed after signing", tampered))
    replaced_user = dict(good)
    replaced_user["body"] = base64.b64encode(body.replace(REQUESTER.encode(), APPROVER.encode())).decode()
    cases.append(("user changed after signing", replaced_user))

    for path in ("/slack/commands", "/slack/actions"):
        cases.append((f"unsigned {path}", function_url_event(path, body, {"content-type": "application/x-www-form-urlencoded"})))
    return cases


def test_bad_signatures_rejected(slack_box):
    cases = signature_cases(slack_box.slack)

    for name, event in cases:
        response = call_webhook(event)
        assert response["statusCode"] == 401, name
        assert "signature" in response["body"], name

    assert enqueued(slack_box) == []
    assert slack_box.network.requests == []


def signed(slack: FakeSlack, path: str, body: bytes) -> dict[str, Any]:
    return slack.signed_event(path, body)


def form(**fields: str) -> bytes:
    base = {"team_id": "T0LOCAL01", "channel_id": "C0LOCAL01", "user_id": REQUESTER, "command": "/css",
            "text": f"check {GOOD_CLUSTER}", "response_url": "", "trigger_id": "1.2.abc"}
    base.update(fields)
    return urlencode(base).encode()


def action_payload(**changes: Any) -> bytes:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": APPROVER},
        "response_url": "http://127.0.0.2/never",
        "message": {"text": "Approval needed", "blocks": []},
        "actions": [{"action_id": "approve_upgrade", "value": json.dumps({"task_token": "token", "cluster_id": GOOD_CLUSTER})}],
    }
    payload.update(changes)
    return urlencode({"payload": json.dumps(payload)}).encode()


def body_cases(slack: FakeSlack) -> list[tuple[str, dict[str, Any], int, str]]:
    """Signed requests whose body is hostile: (name, event, expected status, word the response contains)."""
    deep = "[" * 5000 + "]" * 5000
    return [
        ("invalid UTF-8", signed(slack, "/slack/commands", b"text=check+\xff\xfe&user_id=U0REQUESTER"), 400, "form"),
        ("101 fields", signed(slack, "/slack/commands", "&".join(f"f{index}=x" for index in range(101)).encode()), 400, "form"),
        ("no user ID", signed(slack, "/slack/commands", form(user_id="")), 400, "user ID"),
        ("repeated user ID", signed(slack, "/slack/commands", form() + b"&user_id=U0APPROVER1"), 200, "Checking cluster"),
        ("command with CRLF", signed(slack, "/slack/commands", form(command="/css\r\nX: 1")), 200, "Checking cluster"),
        ("payload not JSON", signed(slack, "/slack/actions", b"payload=%7Bnot+json"), 400, "payload"),
        ("payload a list", signed(slack, "/slack/actions", urlencode({"payload": "[1, 2]"}).encode()), 400, "payload"),
        ("payload nested deeply", signed(slack, "/slack/actions", urlencode({"payload": deep}).encode()), 400, "payload"),
        ("no payload", signed(slack, "/slack/actions", b"text=hello"), 400, "payload"),
        ("other interaction", signed(slack, "/slack/actions", action_payload(type="view_submission")), 200, ""),
        ("actions a number", signed(slack, "/slack/actions", action_payload(actions=5)), 200, ""),
        ("actions a string", signed(slack, "/slack/actions", action_payload(actions="approve_upgrade")), 200, ""),
        ("actions of strings", signed(slack, "/slack/actions", action_payload(actions=["approve_upgrade"])), 200, ""),
        ("button value not JSON", signed(slack, "/slack/actions", action_payload(actions=[{"action_id": "approve_upgrade", "value": "{x"}])), 400, "button"),
        ("button value nested deeply", signed(slack, "/slack/actions", action_payload(actions=[{"action_id": "approve_upgrade", "value": "[" * 990 + "]" * 990}])), 400, "button"),
        ("button without token", signed(slack, "/slack/actions", action_payload(actions=[{"action_id": "approve_upgrade", "value": json.dumps({"cluster_id": GOOD_CLUSTER})}])), 400, "button"),
        ("button with hostile cluster", signed(slack, "/slack/actions", action_payload(actions=[{"action_id": "approve_upgrade", "value": json.dumps({"task_token": "t", "cluster_id": GOOD_CLUSTER + "/../x"})}])), 400, "button"),
        ("clicking user hostile", signed(slack, "/slack/actions", action_payload(user={"id": "U0\r\nX"})), 400, "user ID"),
        ("clicking user missing", signed(slack, "/slack/actions", action_payload(user="U0APPROVER1")), 400, "user ID"),
    ]


def test_hostile_bodies_answered(slack_box):
    for name, event, status, word in body_cases(slack_box.slack):
        response = call_webhook(event)
        assert response["statusCode"] == status, name
        assert word in reply_text(response), name
    assert all(json.loads(body)["cluster_id"] == GOOD_CLUSTER for body in enqueued(slack_box))
    assert_only_queue_traffic(slack_box)


@pytest.mark.parametrize(
    "message",
    [{"text": "Approval needed", "blocks": 5}, {"text": 5, "blocks": [5, "x", None]}, "not an object", {"blocks": {"type": "actions"}}],
    ids=["blocks-a-number", "text-a-number", "message-a-string", "blocks-an-object"],
)
def test_approval_with_hostile_message(slack_box, monkeypatch, message):
    with TaskTokenServer() as tokens:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", tokens.url)
        token = tokens.issue()
        value = json.dumps({"task_token": token, "cluster_id": GOOD_CLUSTER})
        response_url = slack_box.slack.response_url()
        body = action_payload(message=message, response_url=response_url, actions=[{"action_id": "approve_upgrade", "value": value}])

        response = call_webhook(signed(slack_box.slack, "/slack/actions", body))

        assert response["statusCode"] == 200
        assert tokens.close(token).output == {"approved_by": APPROVER}
        (reply,) = slack_box.slack.posts_to(response_url)
        assert "Approved by" in reply.body["text"]
        assert token not in reply.raw.decode()


def test_enqueued_messages_parse(slack_box):
    call_webhook(slack_box.slack.slash_command(f"check {GOOD_CLUSTER.upper()} same --project {GOOD_PROJECT.upper()} --region {GOOD_REGION}",
                                               user_id=REQUESTER, response_url="http://127.0.0.1:9/commands/x"))

    (body,) = enqueued(slack_box)
    message, _ = parse_body(body, default_project_id=None, default_region=None, reply_hosts=("127.0.0.1",), policy=Policy())
    assert (message.cluster_id, message.project_id, message.region) == (GOOD_CLUSTER, GOOD_PROJECT, GOOD_REGION)
    assert message.reply_url == "http://127.0.0.1:9/commands/x"


def test_control_characters_cover_c0_and_c1():
    assert len(CONTROL_CHARACTERS) == 32 + 33
    assert all(not character.isprintable() for character in CONTROL_CHARACTERS)


def test_evil_listener_untouched_by_webhook(slack_box):
    with Listener() as evil:
        for url in (f"http://{evil.netloc}/x", f"http://127.0.0.1@{evil.netloc}/x", f"https://hooks.slack.com@{evil.netloc}/x"):
            call_webhook(slack_box.slack.slash_command(f"check {GOOD_CLUSTER}", user_id=REQUESTER, response_url=url))
            call_webhook(signed(slack_box.slack, "/slack/actions", action_payload(response_url=url, user={"id": REQUESTER})))
        assert evil.connections == 0
    enqueued(slack_box)
