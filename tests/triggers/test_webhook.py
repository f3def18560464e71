"""The Slack webhook: signatures, the check command into a moto queue, approval clicks, and the reply path through the worker."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from urllib.parse import parse_qs, urlencode

import pytest

from handler import slack_approval, webhook, worker
from handler.local.asl import LambdaContext
from handler.local.emulator import DEFAULT_PROJECT_ID, DEFAULT_REGION
from handler.local.fake_slack import Post
from handler.observability import SERVICE

from . import load_event, queue_bodies
from .conftest import APPROVER

LOGS_PROD = "ea244205-d641-45d9-9dcb-ab2236bcd07e"
EU_PROJECT = "1f0e8c7b6a5d4c3b2a1908f7e6d5c4b3"
REQUESTER = "U0REQUESTER"
OUTSIDER = "U0OUTSIDER1"


@pytest.fixture
def slack_env(sandbox, slack, tokens, env):
    """The webhook's variables: the fake Slack's signing secret, one approver, replies to 127.0.0.1, Step Functions at the token server."""
    env(
        SLACK_SIGNING_SECRET=slack.signing_secret,
        SLACK_APPROVERS=f"{APPROVER},U0APPROVER2",
        SLACK_REPLY_HOSTS="127.0.0.1",
        AWS_ENDPOINT_URL_SFN=tokens.url,
    )
    return sandbox


def call(event):
    return webhook.lambda_handler(event, LambdaContext(10))


def reply_text(response) -> str:
    return json.loads(response["body"])["text"]


def enqueued(sandbox) -> list[dict]:
    return queue_bodies(sandbox.boto("sqs"), sandbox.work_queue_url)


def approval_post(token: str, cluster_id: str = LOGS_PROD) -> Post:
    """An approval request as the workflow posts it, recorded as if the fake Slack had received it."""
    message = {
        "text": "Approval needed: CSS upgrade ready",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "CSS upgrade ready"}},
            slack_approval.approval_actions(token, cluster_id),
        ],
    }
    return Post(path="/services/approval", headers={}, raw=json.dumps(message).encode())


# -- signatures -------------------------------------------------------------------------------------


@pytest.mark.parametrize("base64_body", [True, False], ids=["base64", "plain"])
def test_signed_command_accepted(slack_env, slack, base64_body):
    response = call(slack.slash_command(f"check {LOGS_PROD}", user_id=REQUESTER, base64_body=base64_body))

    assert response["statusCode"] == 200
    assert [body["cluster_id"] for body in enqueued(slack_env)] == [LOGS_PROD]


def sign_with_other_secret(event, slack):
    other = type(slack)("another-signing-secret")
    return other.resign(event)


def drop_header(name):
    def change(event, slack):
        return {**event, "headers": {key: value for key, value in event["headers"].items() if key != name}}
    return change


def resign_at(offset):
    def change(event, slack):
        return slack.resign(event, timestamp=int(event["headers"]["x-slack-request-timestamp"]) + offset)
    return change


def tamper_body(event, slack):
    body = base64.b64decode(event["body"]).replace(b"check", b"check ", 1)
    return {**event, "body": base64.b64encode(body).decode()}


@pytest.mark.parametrize(
    "change",
    [sign_with_other_secret, drop_header("x-slack-signature"), drop_header("x-slack-request-timestamp"),
     resign_at(-301), resign_at(301), tamper_body],
    ids=["wrong-secret", "no-signature", "no-timestamp", "stale-past", "stale-future", "body-changed"],
)
def test_unsigned_command_rejected(slack_env, slack, change):
    event = change(slack.slash_command(f"check {LOGS_PROD}", user_id=REQUESTER), slack)

    response = call(event)

    assert response["statusCode"] == 401
    assert enqueued(slack_env) == []


def test_unsigned_click_changes_nothing(slack_env, slack, tokens):
    token = tokens.issue()
    event = sign_with_other_secret(slack.click(approval_post(token), approve=True, user_id=APPROVER), slack)

    response = call(event)

    assert response["statusCode"] == 401
    assert tokens.calls == []
    assert slack.posts == []


def test_invalid_base64_body_rejected(slack_env, slack):
    event = slack.slash_command(f"check {LOGS_PROD}", user_id=REQUESTER)
    event["body"] = "%%%not base64%%%"

    assert call(event)["statusCode"] == 400
    assert enqueued(slack_env) == []


def test_no_signing_secret_answers_503(slack_env, slack, env):
    env(SLACK_SIGNING_SECRET=None)

    response = call(slack.slash_command(f"check {LOGS_PROD}", user_id=REQUESTER))

    assert response["statusCode"] == 503
    assert enqueued(slack_env) == []


@pytest.mark.parametrize(
    "secret_string",
    [lambda secret: secret, lambda secret: json.dumps({"signing_secret": secret, "note": "rotated yearly"})],
    ids=["plain", "json"],
)
def test_signing_secret_from_secrets_manager(slack_env, slack, env, secret_string):
    # moto's servers in one process share their state, so every secret gets a name of its own.
    name = f"slack-signing-{uuid.uuid4().hex}"
    slack_env.boto("secretsmanager").create_secret(Name=name, SecretString=secret_string(slack.signing_secret))
    env(SLACK_SIGNING_SECRET=None, SLACK_SIGNING_SECRET_NAME=name)

    response = call(slack.slash_command(f"check {LOGS_PROD}", user_id=REQUESTER))

    assert response["statusCode"] == 200
    assert len(enqueued(slack_env)) == 1


@pytest.mark.parametrize(
    "secret_string",
    [json.dumps({"secret": "x"}), "   ", None],
    ids=["json-without-field", "blank", "missing-secret"],
)
def test_unusable_signing_secret_answers_503(slack_env, slack, env, secret_string):
    name = f"slack-signing-{uuid.uuid4().hex}"
    if secret_string is not None:
        slack_env.boto("secretsmanager").create_secret(Name=name, SecretString=secret_string)
    env(SLACK_SIGNING_SECRET=None, SLACK_SIGNING_SECRET_NAME=name)

    response = call(slack.slash_command(f"check {LOGS_PROD}", user_id=REQUESTER))

    assert response["statusCode"] == 503
    assert enqueued(slack_env) == []


# -- the check command ------------------------------------------------------------------------------


def test_check_enqueues_work_message(slack_env, slack):
    reply_url = slack.response_url()
    event = slack.slash_command(f"check {LOGS_PROD.upper()}", user_id=REQUESTER, response_url=reply_url, trigger_id="1796529600.12345.abcdef")

    response = call(event)

    assert response["statusCode"] == 200
    assert json.loads(response["body"])["response_type"] == "ephemeral"
    assert "The result will be posted here" in reply_text(response)
    assert enqueued(slack_env) == [{
        "cluster_id": LOGS_PROD,
        "project_id": DEFAULT_PROJECT_ID,
        "region": DEFAULT_REGION,
        "source": "webhook",
        "requested_by": f"slack:{REQUESTER}",
        "correlation_id": "1796529600.12345.abcdef",
        "reply_to": {"slack_response_url": reply_url},
    }]


@pytest.mark.parametrize(
    "text, fields",
    [
        (f"check {LOGS_PROD} same", {"upgrade_types": ["same"]}),
        (f"check {LOGS_PROD} cross same", {"upgrade_types": ["cross", "same"]}),
        (f"check same {LOGS_PROD}", {"upgrade_types": ["same"]}),
        (f"CHECK {LOGS_PROD} --project {EU_PROJECT}", {"project_id": EU_PROJECT}),
        (f"check {LOGS_PROD} --project={EU_PROJECT} --region=eu-de", {"project_id": EU_PROJECT, "region": "eu-de"}),
        (f"check {LOGS_PROD} \u2014region eu-de", {"region": "eu-de"}),
        (f"  check   {LOGS_PROD}   cross  ", {"upgrade_types": ["cross"]}),
    ],
    ids=["one-type", "two-types", "type-first", "project", "equals-form", "em-dash", "spaces"],
)
def test_check_options(slack_env, slack, text, fields):
    response = call(slack.slash_command(text, user_id=REQUESTER))

    (body,) = enqueued(slack_env)
    assert response["statusCode"] == 200
    for name, value in fields.items():
        assert body[name] == value


@pytest.mark.parametrize(
    "text, error",
    [
        ("", None),
        ("help", None),
        ("HELP me", None),
        ("status", "unknown command 'status'"),
        ("check", "missing cluster ID"),
        ("check ea244205", "invalid cluster ID 'ea244205'"),
        (f"check {LOGS_PROD} {LOGS_PROD}", "unexpected argument"),
        (f"check {LOGS_PROD} sideways", "unexpected argument 'sideways'"),
        (f"check {LOGS_PROD} same same", "upgrade type same is given twice"),
        (f"check {LOGS_PROD} --project", "--project needs a value"),
        (f"check {LOGS_PROD} --project 1234", "invalid --project '1234'"),
        (f"check {LOGS_PROD} --region Mars", "invalid --region 'Mars'"),
        (f"check {LOGS_PROD} --region eu-de --region eu-de", "--region is given twice"),
        (f"check {LOGS_PROD} --force", "unknown option '--force'"),
        (f"check {LOGS_PROD} cross-engine", "cross-engine"),
        ("check <!channel>", "invalid cluster ID '&lt;!channel&gt;'"),
    ],
    ids=["empty", "help", "help-words", "unknown", "no-id", "short-id", "two-ids", "unknown-word", "repeated-type",
         "option-without-value", "invalid-project", "invalid-region", "repeated-option", "unknown-option",
         "type-not-in-policy", "mention-escaped"],
)
def test_usage_reply_enqueues_nothing(slack_env, slack, text, error):
    response = call(slack.slash_command(text, user_id=REQUESTER, command="/css-upgrade"))

    text_reply = reply_text(response)
    assert response["statusCode"] == 200
    assert "*Usage:* `/css-upgrade check <cluster-id>" in text_reply
    if error is None:
        assert "did not work" not in text_reply
    else:
        assert error in text_reply
    assert "<!channel>" not in text_reply
    assert enqueued(slack_env) == []


def test_missing_project_default_gets_usage(slack_env, slack, env):
    env(CSS_PROJECT_ID=None)

    response = call(slack.slash_command(f"check {LOGS_PROD}", user_id=REQUESTER))

    assert "missing project: add --project P" in reply_text(response)
    assert enqueued(slack_env) == []


def test_policy_allowing_cross_engine_accepts_it(slack_env, slack, env):
    env(UPGRADE_POLICY=json.dumps({"upgrade_types": ["same", "cross", "cross-engine"], "allow_cross_engine": True}))

    call(slack.slash_command(f"check {LOGS_PROD} cross-engine", user_id=REQUESTER))

    assert [body["upgrade_types"] for body in enqueued(slack_env)] == [["cross-engine"]]


def test_invalid_policy_answers_503(slack_env, slack, env):
    env(UPGRADE_POLICY='{"upgrade_types": ["sideways"]}')

    response = call(slack.slash_command(f"check {LOGS_PROD} same", user_id=REQUESTER))

    assert response["statusCode"] == 503
    assert enqueued(slack_env) == []


@pytest.mark.parametrize(
    "reply_hosts, response_url, replied",
    [
        ("127.0.0.1", "fake-slack", True),
        ("127.0.0.1", "https://hooks.slack.com/commands/T0/1/abc", False),
        (None, "https://hooks.slack.com/commands/T0/1/abc", True),
        (None, "http://hooks.slack.com/commands/T0/1/abc", False),
        (None, "https://hooks.slack.com.example.net/commands/T0/1/abc", False),
        (None, "https://user@hooks.slack.com/commands/T0/1/abc", False),
        ("hooks.slack.com,127.0.0.1", "fake-slack", True),
        (None, "", False),
    ],
    ids=["loopback-allowed", "host-not-listed", "default-host", "plain-http", "look-alike-host", "user-info",
         "second-host", "no-url"],
)
def test_reply_to_only_for_allowed_hosts(slack_env, slack, env, reply_hosts, response_url, replied):
    env(SLACK_REPLY_HOSTS=reply_hosts)
    url = slack.response_url() if response_url == "fake-slack" else response_url

    response = call(slack.slash_command(f"check {LOGS_PROD}", user_id=REQUESTER, response_url=url))

    (body,) = enqueued(slack_env)
    assert response["statusCode"] == 200
    if replied:
        assert body["reply_to"] == {"slack_response_url": url}
    else:
        assert "reply_to" not in body
        assert "not on an allowed host" in reply_text(response)


def test_odd_trigger_id_gets_fresh_correlation_id(slack_env, slack):
    call(slack.slash_command(f"check {LOGS_PROD}", user_id=REQUESTER, trigger_id="a b/c"))

    (body,) = enqueued(slack_env)
    assert len(body["correlation_id"]) == 32
    assert body["correlation_id"] != "a b/c"


def test_fifo_queue_deduplicates_on_trigger(slack_env, slack, env):
    sqs = slack_env.boto("sqs")
    queue_url = sqs.create_queue(QueueName=f"webhook-work-{uuid.uuid4().hex[:8]}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    env(WORK_QUEUE_URL=queue_url)
    event = slack.slash_command(f"check {LOGS_PROD}", user_id=REQUESTER, trigger_id="1796529600.777.feed")

    call(event)
    call(slack.resign(event))

    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"])["Messages"]
    assert len(messages) == 1
    assert messages[0]["Attributes"]["MessageGroupId"] == LOGS_PROD
    assert messages[0]["Attributes"]["MessageDeduplicationId"] == "1796529600.777.feed"


def test_queue_failure_tells_user(slack_env, slack, env):
    env(WORK_QUEUE_URL=slack_env.work_queue_url.rsplit("/", 1)[0] + "/no-such-queue")

    response = call(slack.slash_command(f"check {LOGS_PROD}", user_id=REQUESTER))

    assert response["statusCode"] == 200
    assert "could not be queued" in reply_text(response)


def test_no_queue_answers_503(slack_env, slack, env):
    env(WORK_QUEUE_URL=None)

    response = call(slack.slash_command(f"check {LOGS_PROD}", user_id=REQUESTER))

    assert response["statusCode"] == 503


def test_invalid_approvers_answer_503(slack_env, slack, env):
    env(SLACK_APPROVERS="U0APPROVER1,not an id")

    response = call(slack.slash_command("help", user_id=REQUESTER))

    assert response["statusCode"] == 503


def test_ssl_check_answered_empty(slack_env, slack):
    response = call(slack.signed_event("/slack/commands", b"ssl_check=1&token=deprecated"))

    assert response["statusCode"] == 200
    assert response["body"] == ""
    assert enqueued(slack_env) == []


def test_unknown_path_is_404(slack_env, slack):
    event = slack.signed_event("/slack/events", b"type=url_verification")

    assert call(event)["statusCode"] == 404


def test_sample_slash_command_event(slack_env, slack, env):
    env(SLACK_REPLY_HOSTS=None)
    event = slack.resign(load_event("webhook-slash-command.json"))
    form = {name: values[0] for name, values in parse_qs(base64.b64decode(event["body"]).decode()).items()}

    response = call(event)

    (body,) = enqueued(slack_env)
    assert response["statusCode"] == 200
    assert body["cluster_id"] == LOGS_PROD
    assert body["upgrade_types"] == ["same", "cross"]
    assert body["region"] == "ap-southeast-1"
    assert body["requested_by"] == "slack:U024BE7LH"
    assert body["correlation_id"] == form["trigger_id"]
    assert body["reply_to"] == {"slack_response_url": form["response_url"]}


# -- approval clicks --------------------------------------------------------------------------------


def test_approver_click_approves(slack_env, slack, tokens):
    token = tokens.issue()
    reply_url = slack.response_url()

    response = call(slack.click(approval_post(token), approve=True, user_id=APPROVER, response_url=reply_url))

    (update,) = slack.posts_to(reply_url)
    assert response["statusCode"] == 200
    assert [call["operation"] for call in tokens.calls] == ["SendTaskSuccess"]
    assert tokens.answers[token].output == {"approved_by": APPROVER}
    assert update.body["replace_original"] is True
    assert f"Approved by <@{APPROVER}>" in update.body["blocks"][-1]["text"]["text"]
    assert all(block["type"] != "actions" for block in update.body["blocks"])
    assert token not in update.raw.decode()


def test_approver_click_rejects(slack_env, slack, tokens):
    token = tokens.issue()
    reply_url = slack.response_url()

    call(slack.click(approval_post(token), approve=False, user_id=APPROVER, response_url=reply_url))

    (update,) = slack.posts_to(reply_url)
    answer = tokens.answers[token]
    assert answer.operation == "SendTaskFailure"
    assert answer.error == "Rejected"
    assert APPROVER in answer.cause
    assert LOGS_PROD in answer.cause
    assert f"Rejected by <@{APPROVER}>" in update.body["text"]


@pytest.mark.parametrize("approve", [True, False], ids=["approve", "reject"])
def test_outsider_click_refused(slack_env, slack, tokens, approve):
    token = tokens.issue()
    reply_url = slack.response_url()

    response = call(slack.click(approval_post(token), approve=approve, user_id=OUTSIDER, response_url=reply_url))

    (refusal,) = slack.posts_to(reply_url)
    assert response["statusCode"] == 200
    assert tokens.calls == []
    assert refusal.body["response_type"] == "ephemeral"
    assert refusal.body["replace_original"] is False
    assert "not allowed to approve" in refusal.body["text"]


def test_click_without_approvers_refused(slack_env, slack, tokens, env):
    env(SLACK_APPROVERS=None)
    token = tokens.issue()

    call(slack.click(approval_post(token), approve=True, user_id=APPROVER))

    assert tokens.calls == []


def test_second_click_finds_request_closed(slack_env, slack, tokens):
    token = tokens.issue()
    post = approval_post(token)
    call(slack.click(post, approve=True, user_id=APPROVER))
    reply_url = slack.response_url()

    call(slack.click(post, approve=False, user_id="U0APPROVER2", response_url=reply_url))

    (reply,) = slack.posts_to(reply_url)
    assert tokens.answers[token].operation == "SendTaskSuccess"
    assert "approval request is closed" in reply.body["text"]


def test_click_with_foreign_button_value_is_400(slack_env, slack, tokens):
    message = approval_post(tokens.issue()).body
    for element in message["blocks"][1]["elements"]:
        element["value"] = "not-json"
    forged = Post("/services/approval", {}, json.dumps(message).encode())

    response = call(slack.click(forged, approve=True, user_id=APPROVER))

    assert response["statusCode"] == 400
    assert tokens.calls == []


def test_other_interactions_ignored(slack_env, slack, tokens):
    body = urlencode({"payload": json.dumps({"type": "view_submission", "user": {"id": APPROVER}})}).encode()

    response = call(slack.signed_event("/slack/actions", body))

    assert response["statusCode"] == 200
    assert tokens.calls == []


def test_token_never_logged(slack_env, slack, tokens, caplog):
    caplog.set_level(logging.DEBUG)
    token = tokens.issue()
    post = approval_post(token)

    call(slack.click(post, approve=True, user_id=OUTSIDER))
    call(slack.click(post, approve=True, user_id=APPROVER))
    call(slack.click(post, approve=False, user_id=APPROVER))

    logged = [json.dumps(record.__dict__, default=str) for record in caplog.records]
    assert any(record.name == SERVICE for record in caplog.records)
    assert all(token not in line for line in logged)
    assert all(token[:40] not in line for line in logged)


def test_sample_approve_event(slack_env, slack, tokens, env):
    event = load_event("webhook-action-approve.json")
    payload = json.loads(parse_qs(base64.b64decode(event["body"]).decode())["payload"][0])
    sample_token = json.loads(payload["actions"][0]["value"])["task_token"]
    tokens.issue(sample_token)
    env(SLACK_APPROVERS="U024BE7LH")

    response = call(slack.resign(event))

    assert response["statusCode"] == 200
    assert tokens.answers[sample_token].output == {"approved_by": "U024BE7LH"}


# -- the result, end to end ---------------------------------------------------------------------------


def test_worker_posts_result_to_response_url(slack_env, slack):
    reply_url = slack.response_url()
    call(slack.slash_command(f"check {LOGS_PROD}", user_id=REQUESTER, response_url=reply_url))

    delivery = slack_env.invoke(worker.lambda_handler, slack_env.receive_event())

    (reply,) = slack.posts_to(reply_url)
    assert delivery.response == {"batchItemFailures": []}
    assert reply.body["response_type"] == "in_channel"
    assert reply.body["blocks"][0]["text"]["text"].startswith("CSS upgrade ready")
    assert "7.10.2_24.3.4_0109" in reply.body["text"]
    assert LOGS_PROD in json.dumps(reply.body["blocks"])


# -- cold start -------------------------------------------------------------------------------------


def test_webhook_import_stays_light():
    from handler.local.webhook_coldstart import measure

    result = measure(runs=1)

    assert result["heavy_modules_loaded"] == []
    assert result["statuses"] == [200]
