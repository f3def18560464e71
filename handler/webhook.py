"""Lambda entry point of the Slack app, behind a function URL: the `check` slash command and the approval buttons.

Every request's Slack signature is verified over the raw body before anything else happens; a
missing, wrong or stale signature gets 401. `POST /slack/commands` validates a `check` command,
enqueues a work message for the worker and returns an ephemeral acknowledgement to Slack at once.
`POST /slack/actions` takes an Approve or Reject click from a user in `SLACK_APPROVERS` and answers
the waiting Step Functions task. Slack gives the function 3 s to answer, so this module imports only
what these two paths need: never boto3, pydantic or the CSS client (the policy is loaded only when a
command names upgrade types).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import uuid
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response, content_types

from handler import slack_approval, slack_signature
from handler.aws import secrets, sqs, stepfunctions
from handler.aws.errors import AwsError, AwsPermanentError
from handler.core import ids
from handler.core.message import InvalidMessage, check_reply_url
from handler.delivery.slack import SlackPostError, post_json
from handler.observability import count, logger, metrics
from handler.retry import Deadline

# Slack shows an error when the response takes longer than 3 s, so each AWS call gets at most this long.
AWS_CALL_SECONDS = 2.0

DEFAULT_REPLY_HOSTS = ("hooks.slack.com",)
DEFAULT_COMMAND = "/css"

_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}", re.ASCII)
_SLACK_USER_ID = re.compile(r"[A-Za-z0-9]{1,32}", re.ASCII)
_COMMAND_NAME = re.compile(r"/[a-z0-9_-]{1,32}", re.ASCII)
_HOST_LABEL = re.compile(r"[a-z0-9-]{1,63}", re.ASCII)
# Slack's clients turn a typed "--" into a dash character; both are read as "--".
_DASHES = ("\u2014", "\u2013")

# Debug mode is off whatever POWERTOOLS_DEV or POWERTOOLS_EVENT_HANDLER_DEBUG say, because it prints
# whole requests, and an approval click carries the task token.
app = LambdaFunctionUrlResolver(debug=False)


class HttpError(Exception):
    """Ends a request with `status` and a short text; the text never contains a secret."""

    def __init__(self, status: int, text: str) -> None:
        self.status = status
        self.text = text
        super().__init__(text)


class UsageError(ValueError):
    """A slash command that cannot be run as typed. The message states what is wrong."""


@dataclass(frozen=True)
class WebhookSettings:
    """The variables the webhook reads, validated like the other functions' settings."""

    work_queue_url: str | None
    default_project_id: str | None
    default_region: str | None
    reply_hosts: tuple[str, ...]
    approvers: frozenset[str]


@dataclass(frozen=True)
class CheckCommand:
    """A parsed `check <cluster-id> [types ...] [--project P] [--region R]` command."""

    cluster_id: str
    project_id: str
    region: str
    upgrade_types: tuple[str, ...] = ()


# -- entry point ------------------------------------------------------------------------------------


@app.exception_handler(HttpError)
def _http_error(error: HttpError) -> Response:
    return Response(status_code=error.status, content_type=content_types.TEXT_PLAIN, body=error.text)


@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        return app.resolve(event, context)
    finally:
        logger.remove_keys(["cluster_id", "user_id", "correlation_id"])


@app.post("/slack/commands")
def slash_command() -> Response:
    """Run `check` or `help`. Every response is an ephemeral message to the user who typed the command."""
    count("SlackCommandReceived")
    form = _parse_form(_verified_body())
    if form.get("ssl_check") == "1":
        # Slack's periodic check of the command URL's certificate carries no command.
        return Response(status_code=200, content_type=content_types.TEXT_PLAIN, body="")
    settings = _settings()
    command_name = _command_name(form.get("command"))
    user_id = _user_id(form.get("user_id"))
    logger.append_keys(user_id=user_id)

    try:
        command = parse_command(form.get("text", ""), settings.default_project_id, settings.default_region)
        if command is not None and command.upgrade_types:
            check_types_allowed(command.upgrade_types)
    except UsageError as error:
        count("SlackCommandRejected")
        logger.info("slash command rejected", extra={"error": str(error)})
        return _ephemeral(usage(command_name, error=str(error)))
    if command is None:
        return _ephemeral(usage(command_name))

    logger.append_keys(cluster_id=command.cluster_id)
    if not settings.work_queue_url:
        logger.error("WORK_QUEUE_URL is not set: slash commands cannot be queued")
        raise HttpError(503, "The check queue is not configured.")

    reply_url = _allowed_reply_url(form.get("response_url"), settings.reply_hosts)
    correlation_id = _correlation_id(form.get("trigger_id"))
    logger.append_keys(correlation_id=correlation_id)
    body = work_message(command, user_id, correlation_id, reply_url)
    try:
        _enqueue(settings.work_queue_url, body, command.cluster_id, correlation_id)
    except AwsError as error:
        count("SlackCommandEnqueueFailed")
        logger.error("check could not be enqueued", extra={"error": str(error)})
        return _ephemeral(f"The check of cluster `{command.cluster_id}` could not be queued. Try again in a minute.")

    count("SlackCommandQueued")
    logger.info("check enqueued from Slack", extra={"upgrade_types": list(command.upgrade_types), "reply": reply_url is not None})
    return _ephemeral(_acknowledgement(command, reply_url is not None))


@app.post("/slack/actions")
def block_action() -> Response:
    """Record an Approve or Reject click on an approval request, if the user may approve."""
    count("SlackActionReceived")
    form = _parse_form(_verified_body())
    settings = _settings()
    payload = _interaction_payload(form)
    if payload.get("type") != "block_actions":
        logger.info("interaction ignored", extra={"interaction_type": str(payload.get("type"))[:40]})
        return Response(status_code=200, content_type=content_types.TEXT_PLAIN, body="")

    actions = payload.get("actions")
    action = next(
        (item for item in (actions if isinstance(actions, list) else []) if isinstance(item, dict)
         and item.get("action_id") in (slack_approval.APPROVE_ACTION_ID, slack_approval.REJECT_ACTION_ID)),
        None,
    )
    if action is None:
        logger.info("block action ignored: not an approval button")
        return Response(status_code=200, content_type=content_types.TEXT_PLAIN, body="")

    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    user_id = _user_id(user.get("id"))
    approved = action["action_id"] == slack_approval.APPROVE_ACTION_ID
    try:
        button = slack_approval.parse_button_value(action.get("value"))
    except slack_approval.InvalidButtonValue as error:
        logger.warning("approval click with an invalid button value", extra={"user_id": user_id, "error": str(error)})
        raise HttpError(400, "The button is not an approval button.") from None
    logger.append_keys(user_id=user_id, cluster_id=button.cluster_id)
    response_url = payload.get("response_url")

    if user_id not in settings.approvers:
        count("ApprovalRefused")
        logger.warning("approval click rejected: the user is not in SLACK_APPROVERS", extra={"approved": approved})
        _reply(response_url, settings, {
            "response_type": "ephemeral",
            "replace_original": False,
            "text": f"You are not allowed to approve or reject upgrades, so nothing changed for cluster `{button.cluster_id}`.",
        })
        return Response(status_code=200, content_type=content_types.TEXT_PLAIN, body="")

    try:
        _answer_task(button, approved, user_id)
    except AwsPermanentError as error:
        logger.warning("approval request already closed", extra={"approved": approved, "error": str(error)})
        _reply(response_url, settings, {
            "response_type": "ephemeral",
            "replace_original": False,
            "text": "This approval request is closed: it was already answered, or it timed out.",
        })
        return Response(status_code=200, content_type=content_types.TEXT_PLAIN, body="")
    except AwsError as error:
        count("ApprovalNotRecorded")
        logger.error("approval decision could not be sent to Step Functions", extra={"approved": approved, "error": str(error)})
        _reply(response_url, settings, {
            "response_type": "ephemeral",
            "replace_original": False,
            "text": "Your decision could not be recorded. Try again in a minute.",
        })
        return Response(status_code=200, content_type=content_types.TEXT_PLAIN, body="")

    count("UpgradeApproved" if approved else "UpgradeRejected")
    logger.info("approval decision recorded", extra={"approved": approved})
    _reply(response_url, settings, slack_approval.decided_message(payload.get("message"), approved=approved, user_id=user_id))
    return Response(status_code=200, content_type=content_types.TEXT_PLAIN, body="")


# -- slash commands -------------------------------------------------------------------------------


def parse_command(text: object, default_project_id: str | None, default_region: str | None) -> CheckCommand | None:
    """Parse the command text; return None for `help` (or no text), raise UsageError when it is wrong."""
    if not isinstance(text, str):
        raise UsageError("the command text is missing")
    words = [_normal_dashes(word) for word in text.split()]
    if not words or words[0].lower() == "help":
        return None
    if words[0].lower() != "check":
        raise UsageError(f"unknown command {ids.shown(words[0])}")

    cluster_id: str | None = None
    types: list[str] = []
    options: dict[str, str] = {}
    rest = iter(words[1:])
    for word in rest:
        name, has_value, value = word.partition("=")
        if name in ("--project", "--region"):
            if not has_value:
                value = next(rest, "")
            if not value or value.startswith("--"):
                raise UsageError(f"{name} needs a value")
            if name in options:
                raise UsageError(f"{name} is given twice")
            options[name] = value
        elif word.startswith("--"):
            raise UsageError(f"unknown option {ids.shown(word)}")
        elif _is_upgrade_type(word):
            upgrade_type = ids.upgrade_type(word)
            if upgrade_type in types:
                raise UsageError(f"upgrade type {upgrade_type} is given twice")
            types.append(upgrade_type)
        elif cluster_id is None:
            cluster_id = word
        else:
            raise UsageError(f"unexpected argument {ids.shown(word)}")

    if cluster_id is None:
        raise UsageError("missing cluster ID")
    project_id = options.get("--project", default_project_id)
    region = options.get("--region", default_region)
    if project_id is None:
        raise UsageError("missing project: add --project P (32 hexadecimal digits)")
    if region is None:
        raise UsageError("missing region: add --region R (such as ap-southeast-1)")
    try:
        return CheckCommand(
            cluster_id=ids.cluster_id(cluster_id, "cluster ID"),
            project_id=ids.project_id(project_id, "--project"),
            region=ids.region(region, "--region"),
            upgrade_types=tuple(types),
        )
    except ids.InvalidValue as error:
        raise UsageError(str(error)) from None


def check_types_allowed(upgrade_types: tuple[str, ...]) -> None:
    """Raise UsageError when the selection policy does not allow the requested upgrade types.

    The worker would reject such a message; checking here lets the user see why at once. The
    policy module (pydantic, PyYAML) is imported only on this path.
    """
    from handler.core.policy import PolicyError, load_policy

    source = os.environ.get("UPGRADE_POLICY")
    try:
        policy = load_policy(source.strip() if source and source.strip() else None)
    except PolicyError as error:
        logger.error("UPGRADE_POLICY is invalid", extra={"error": str(error)})
        raise HttpError(503, "The selection policy of this deployment is invalid.") from None
    try:
        policy.effective(None, list(upgrade_types))
    except ids.InvalidValue as error:
        raise UsageError(str(error)) from None


def usage(command_name: str, *, error: str | None = None) -> str:
    """Return the help text, after the error when there is one (mrkdwn, user values escaped)."""
    lines = []
    if error:
        lines.append(f"Sorry, that did not work: {_escape(error)}.")
    lines += [
        f"*Usage:* `{command_name} check <cluster-id> [same|cross|cross-engine ...] [--project P] [--region R]`",
        "Checks which image the cluster can be upgraded to and posts the result here. Upgrade types narrow "
        "the policy's list; project and region default to the deployment's.",
        f"`{command_name} help` shows this text.",
    ]
    return "\n".join(lines)


def work_message(command: CheckCommand, user_id: str, correlation_id: str, reply_url: str | None) -> dict[str, Any]:
    """Return the work message of a `check` command (section "work message" of the README)."""
    message: dict[str, Any] = {
        "cluster_id": command.cluster_id,
        "project_id": command.project_id,
        "region": command.region,
        "source": "webhook",
        "requested_by": f"slack:{user_id}",
        "correlation_id": correlation_id,
    }
    if command.upgrade_types:
        message["upgrade_types"] = list(command.upgrade_types)
    if reply_url is not None:
        message["reply_to"] = {"slack_response_url": reply_url}
    return message


def _enqueue(queue_url: str, body: dict[str, Any], cluster_id: str, correlation_id: str) -> None:
    fifo = queue_url.endswith(".fifo")
    sqs.send_message(
        queue_url,
        json.dumps(body, separators=(",", ":")),
        # On a FIFO queue the trigger ID deduplicates a command Slack delivered twice.
        group_id=cluster_id if fifo else None,
        dedup_id=correlation_id if fifo else None,
        deadline=Deadline(AWS_CALL_SECONDS),
    )


def _acknowledgement(command: CheckCommand, will_reply: bool) -> str:
    types = ", ".join(command.upgrade_types) if command.upgrade_types else "the policy's upgrade types"
    text = f"Checking cluster `{command.cluster_id}` ({types}) in project `{command.project_id}`, {command.region}."
    if will_reply:
        return text + " The result will be posted here."
    return text + " The result goes to the usual notification channels: this Slack reply URL is not on an allowed host."


def _allowed_reply_url(url: object, reply_hosts: tuple[str, ...]) -> str | None:
    if url is None or url == "":
        return None
    try:
        return check_reply_url(url, reply_hosts, field="response_url")
    except InvalidMessage:
        # Slack's response URLs are credentials of a kind, so the URL itself is not logged.
        logger.warning("response_url is not on a host of SLACK_REPLY_HOSTS; the result will not be posted to Slack")
        return None


def _correlation_id(trigger_id: object) -> str:
    if isinstance(trigger_id, str) and _CORRELATION_ID.fullmatch(trigger_id):
        return trigger_id
    return uuid.uuid4().hex


def _is_upgrade_type(word: str) -> bool:
    try:
        ids.upgrade_type(word)
    except ids.InvalidValue:
        return False
    return True


def _normal_dashes(word: str) -> str:
    for dash in _DASHES:
        if word.startswith(dash):
            return "--" + word[len(dash):].lstrip("-")
    return word


def _command_name(value: object) -> str:
    return value if isinstance(value, str) and _COMMAND_NAME.fullmatch(value) else DEFAULT_COMMAND


# -- approvals ------------------------------------------------------------------------------------


def _interaction_payload(form: Mapping[str, str]) -> dict[str, Any]:
    try:
        payload = json.loads(form.get("payload", ""))
    except (ValueError, RecursionError):
        # json raises RecursionError, not ValueError, for arrays or objects nested too deep.
        payload = None
    if not isinstance(payload, dict):
        raise HttpError(400, "The request has no interaction payload.")
    return payload


def _answer_task(button: slack_approval.ButtonValue, approved: bool, user_id: str) -> None:
    deadline = Deadline(AWS_CALL_SECONDS)
    if approved:
        stepfunctions.send_task_success(button.task_token, {"approved_by": user_id}, deadline)
    else:
        stepfunctions.send_task_failure(
            button.task_token,
            error=slack_approval.REJECTED_ERROR,
            cause=f"The upgrade of cluster {button.cluster_id} was rejected in Slack by {user_id}.",
            deadline=deadline,
        )


def _reply(url: object, settings: WebhookSettings, message: dict[str, Any]) -> None:
    """Post to the action's response_url. A failure is only logged, because the decision is already recorded."""
    if not isinstance(url, str) or not url:
        logger.warning("interaction has no response_url; no reply posted")
        return
    try:
        post_json(url, message, settings.reply_hosts, what="interaction reply")
    except InvalidMessage:
        logger.warning("response_url is not on a host of SLACK_REPLY_HOSTS; no reply posted")
    except SlackPostError as error:
        logger.warning("Slack reply failed", extra={"error": str(error)})


# -- request checks -------------------------------------------------------------------------------


def _verified_body() -> bytes:
    """Return the raw body once its Slack signature is verified; raise HttpError 401 or 503 otherwise."""
    event = app.current_event
    body = raw_body(event.raw_event)
    secret = _signing_secret()
    headers = event.headers
    try:
        slack_signature.verify(secret, headers.get(slack_signature.TIMESTAMP_HEADER), headers.get(slack_signature.SIGNATURE_HEADER), body)
    except slack_signature.SignatureRejected as error:
        count("SlackSignatureRejected")
        logger.warning("request rejected: Slack signature not valid", extra={"reason": error.reason, "error": str(error), "path": event.path})
        raise HttpError(401, "The request signature is missing, wrong or too old.") from None
    return body


def raw_body(event: Mapping[str, Any]) -> bytes:
    """Return the request body exactly as sent: base64-decoded when the function URL encoded it."""
    body = event.get("body") or ""
    if not isinstance(body, str):
        raise HttpError(400, "The request body is not text.")
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise HttpError(400, "The request body is not valid base64.") from None
    return body.encode("utf-8")


def _parse_form(body: bytes) -> dict[str, str]:
    """Decode an `application/x-www-form-urlencoded` body; a repeated field keeps its first value."""
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise HttpError(400, "The request body is not a form.") from None
    return {name: values[0] for name, values in fields.items()}


def _signing_secret() -> str:
    """Return the signing secret from SLACK_SIGNING_SECRET, or from the secret SLACK_SIGNING_SECRET_NAME names (cached)."""
    direct = os.environ.get("SLACK_SIGNING_SECRET", "").strip()
    if direct:
        return direct
    name = os.environ.get("SLACK_SIGNING_SECRET_NAME", "").strip()
    if not name:
        logger.error("neither SLACK_SIGNING_SECRET nor SLACK_SIGNING_SECRET_NAME is set: every Slack request gets 503")
        raise HttpError(503, "Slack requests are not configured.")
    try:
        text = secrets.get_secret_string(name)
    except (AwsError, ValueError) as error:
        logger.error("the Slack signing secret could not be read", extra={"secret": name, "error": str(error)})
        raise HttpError(503, "Slack requests are not configured.") from None
    return signing_secret_from(text, name)


def signing_secret_from(text: str, name: str) -> str:
    """Return the signing secret in a secret's string: the string itself, or the `signing_secret` of a JSON object."""
    value: object = text.strip()
    if isinstance(value, str) and value.startswith("{"):
        try:
            value = json.loads(value).get("signing_secret")
        except (ValueError, AttributeError):
            value = None
    if not isinstance(value, str) or not value.strip():
        logger.error("the Slack signing secret is empty or its JSON has no signing_secret", extra={"secret": name})
        raise HttpError(503, "Slack requests are not configured.")
    return value.strip()


def _settings(env: Mapping[str, str] | None = None) -> WebhookSettings:
    """Read the webhook's variables; an invalid value is a configuration fault (503 and an error log)."""
    env = os.environ if env is None else env
    try:
        return WebhookSettings(
            work_queue_url=_text(env, "WORK_QUEUE_URL"),
            default_project_id=_optional(env, "CSS_PROJECT_ID", ids.project_id),
            default_region=_optional(env, "CSS_REGION", ids.region),
            reply_hosts=_reply_hosts(_text(env, "SLACK_REPLY_HOSTS")),
            approvers=_approvers(_text(env, "SLACK_APPROVERS")),
        )
    except ValueError as error:
        logger.error("invalid webhook configuration", extra={"error": str(error)})
        raise HttpError(503, "The Slack app of this deployment is misconfigured.") from None


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _optional(env: Mapping[str, str], name: str, check) -> str | None:
    value = _text(env, name)
    return None if value is None else check(value, name)


def _reply_hosts(value: str | None) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_REPLY_HOSTS
    hosts = tuple(item.strip().lower() for item in value.split(",") if item.strip())
    for host in hosts:
        if not all(_HOST_LABEL.fullmatch(label) for label in host.split(".")):
            raise ValueError(f"invalid SLACK_REPLY_HOSTS entry {ids.shown(host)}: expected a host name such as hooks.slack.com")
    if not hosts:
        raise ValueError("invalid SLACK_REPLY_HOSTS: expected at least one host name")
    return hosts


def _approvers(value: str | None) -> frozenset[str]:
    if value is None:
        return frozenset()
    approvers = frozenset(item.strip() for item in value.split(",") if item.strip())
    for user in approvers:
        if not _SLACK_USER_ID.fullmatch(user):
            raise ValueError(f"invalid SLACK_APPROVERS entry {ids.shown(user)}: expected Slack user IDs such as U024BE7LH")
    return approvers


def _user_id(value: object) -> str:
    if not isinstance(value, str) or not _SLACK_USER_ID.fullmatch(value):
        raise HttpError(400, "The request has no valid Slack user ID.")
    return value


def _ephemeral(text: str) -> Response:
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"response_type": "ephemeral", "text": text}),
    )


def _escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
