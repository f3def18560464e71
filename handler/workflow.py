"""Lambda entry point of the upgrade workflow: one action per Step Functions Task state.

Actions: `check`, `request_approval`, `start_upgrade`, `upgrade_status`, `retry_upgrade` and
`abort_upgrade`. Failures are raised as exceptions whose class names are the error names that the
state machine's `Catch` rules match (the Lambda runtime reports the class name as the error type).
By default nothing is upgraded: unless `UPGRADE_EXECUTION_ENABLED` is true, the three actions that
change a cluster fail with `ExecutionDisabled`. Lifecycle events (`upgrade.started`,
`upgrade.succeeded`, `upgrade.failed`) go through the announce-once ledger, so each attempt's outcome
is broadcast once even when Step Functions runs a task again.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from pydantic import ValidationError

from handler import runtime as runtime_module
from handler import slack_approval
from handler.aws import secrets
from handler.aws.errors import AwsConfigurationError, AwsError
from handler.check import CheckFailed, run_check
from handler.config import ConfigurationError
from handler.core import ids
from handler.core.events import Event, Trigger, build_lifecycle_event
from handler.core.message import InvalidMessage, check_reply_url, parse_fields
from handler.core.models import Cluster, UpgradeTask
from handler.core.render import MAX_BLOCKS, render_slack
from handler.css import errors as css_errors
from handler.delivery.announce import announce
from handler.delivery.slack import SlackPostError, post_json
from handler.observability import count, logger, metrics
from handler.retry import Deadline

# Time kept back from the Lambda timeout for reporting the result.
SAFETY_MARGIN_SECONDS = 5.0

RUNNING = "RUNNING"
# The lifecycle event of each status in which an upgrade task ends.
FINAL_STATUSES = {"SUCCESS": "upgrade.succeeded", "FAILED": "upgrade.failed", "PARTIAL_FAILED": "upgrade.failed"}

_MAX_APPROVER_CHARS = 200


class ExecutionDisabled(Exception):
    """UPGRADE_EXECUTION_ENABLED is not true, so the workflow may not start, retry or abort an upgrade."""


class NotApproved(Exception):
    """The action changes a cluster but its input names no approver (`approved_by`)."""


class UpgradeAlreadyRunning(Exception):
    """An upgrade task is running on the cluster, so no other may start."""


class NoUpgradeTask(Exception):
    """CSS reports no upgrade task (or not the requested one) for the cluster."""


class InvalidInput(Exception):
    """The task input lacks a field or has an invalid one: a fault of the state machine or of the execution input."""


class CssRequestRejected(Exception):
    """CSS rejected a request for good: cluster not found, access denied, or an upgrade or retry it does not allow now."""


class TemporaryFailure(Exception):
    """A CSS, AWS or Slack call still failed after the client's retries; running the task again later may succeed."""


# -- entry point ----------------------------------------------------------------------------------


@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    action = event.get("action") if isinstance(event, dict) else None
    handler = ACTIONS.get(action) if isinstance(action, str) else None
    if handler is None:
        count("WorkflowInvalidInput")
        logger.error("workflow task input has no known action", extra={"action": ids.shown(action)})
        raise InvalidInput(f"invalid action {ids.shown(action)} in the task input: expected one of {', '.join(ACTIONS)}")

    try:
        runtime = runtime_module.get()
    except ConfigurationError as error:
        count("ConfigurationFault")
        logger.error("configuration fault: the workflow task fails until it is fixed", extra={"action": action, "error": str(error)})
        raise
    deadline = Deadline.from_lambda_context(context, SAFETY_MARGIN_SECONDS)
    logger.append_keys(action=action)
    count(f"WorkflowAction.{action}")
    try:
        with _error_names():
            return handler(event, runtime, deadline)
    finally:
        logger.remove_keys(["action", "cluster_id"])


@contextlib.contextmanager
def _error_names() -> Iterator[None]:
    """Turn the clients' exceptions into the workflow's error names; the messages carry no secret."""
    try:
        yield
    except (ConfigurationError, CheckFailed, ExecutionDisabled, NotApproved, UpgradeAlreadyRunning, NoUpgradeTask,
            InvalidInput, CssRequestRejected, TemporaryFailure):
        raise
    except css_errors.CssConfigurationError as error:
        raise ConfigurationError(str(error)) from error
    except css_errors.CssTransientError as error:
        raise TemporaryFailure(str(error)) from error
    except css_errors.CssPermanentError as error:
        raise CssRequestRejected(str(error)) from error
    except AwsConfigurationError as error:
        raise ConfigurationError(str(error)) from error
    except AwsError as error:
        raise TemporaryFailure(str(error)) from error
    except ids.InvalidValue as error:
        raise InvalidInput(str(error)) from error


# -- actions --------------------------------------------------------------------------------------


def check(event: dict[str, Any], runtime: runtime_module.Runtime, deadline: Deadline) -> dict[str, Any]:
    """Check the cluster like the worker does, but never broadcast; return the event, or raise CheckFailed."""
    settings = runtime.settings
    fields = {name: value for name, value in event.items() if name != "action"}
    message, policy = parse_fields(
        fields,
        default_project_id=settings.css_project_id,
        default_region=settings.css_region,
        reply_hosts=settings.slack_reply_hosts,
        policy=settings.policy,
        default_source="workflow",
    )
    logger.append_keys(cluster_id=message.cluster_id)
    trigger = Trigger(source=message.source, requested_by=message.requested_by, correlation_id=message.correlation_id)
    result = run_check(runtime.css, message, policy, trigger=trigger, agency=settings.upgrade_agency, deadline=deadline)
    logger.info("workflow check finished", extra={"event_type": result.event.event_type, "event_id": result.event.event_id})
    return result.event.to_dict()


def request_approval(event: dict[str, Any], runtime: runtime_module.Runtime, deadline: Deadline) -> dict[str, Any]:
    """Post the event to the approval webhook with Approve and Reject buttons that carry the task token."""
    token = event.get("task_token")
    if not isinstance(token, str) or not token.strip():
        raise InvalidInput("missing task_token: the state must pass $$.Task.Token")
    try:
        checked = Event.model_validate(event.get("event"))
    except ValidationError as error:
        raise InvalidInput(f"invalid event: {_first_error(error)}") from None
    if checked.upgrade_request is None:
        raise InvalidInput(f"event {checked.event_id} ({checked.event_type}) has no upgrade_request: only an event with a target image can be approved")
    logger.append_keys(cluster_id=checked.cluster.id)

    url = approval_webhook_url(runtime)
    try:
        message = approval_message(checked, token)
    except ValueError as error:
        raise InvalidInput(str(error)) from None
    try:
        post_json(url, message, runtime.settings.slack_reply_hosts, what="approval request")
    except SlackPostError as error:
        if error.retryable:
            raise TemporaryFailure(str(error)) from None
        raise ConfigurationError(f"{error}: check the incoming webhook of SLACK_APPROVAL_WEBHOOK_URL / SLACK_APPROVAL_WEBHOOK_NAME") from None

    count("ApprovalRequested")
    logger.info("approval requested", extra={"event_id": checked.event_id, "target_image": checked.upgrade_request.target_image_id})
    return {"requested": True}


def start_upgrade(event: dict[str, Any], runtime: runtime_module.Runtime, deadline: Deadline) -> dict[str, Any]:
    """Send the approved upgrade request to UpgradeCore, find the new task, and announce `upgrade.started`."""
    _require_execution(runtime)
    approved_by = _approver(event)
    scope = _scope(event, runtime)
    request = _upgrade_request(event.get("upgrade_request"), runtime.settings.upgrade_agency)

    before = runtime.css.upgrade_tasks(**scope, deadline=deadline)
    running = next((task for task in before if task.status == RUNNING), None)
    if running is not None:
        raise UpgradeAlreadyRunning(f"upgrade task {running.id} is running on cluster {scope['cluster_id']}: a new upgrade can start only after it ends")

    try:
        runtime.css.upgrade_core(**scope, **request, deadline=deadline)
    except css_errors.CssTransientError as error:
        # UpgradeCore returns nothing but its status, so after an unclear failure only UpgradeDetail
        # shows whether the upgrade started.
        logger.warning("UpgradeCore failed; looking for a started task", extra={"error": str(error)})
        after = runtime.css.upgrade_tasks(**scope, deadline=deadline)
        task = next((item for item in after if item.status == RUNNING), None)
        if task is None:
            raise
        if _image_id(task) != request["target_image_id"]:
            raise UpgradeAlreadyRunning(f"upgrade task {task.id} to another image is running on cluster {scope['cluster_id']}") from None
    else:
        after = runtime.css.upgrade_tasks(**scope, deadline=deadline)
        task = _new_task(before, after, scope["cluster_id"])

    count("UpgradeStarted")
    logger.info("upgrade started", extra={"task_id": task.id, "task_status": task.status, "approved_by": approved_by})
    _announce_quietly(_lifecycle_event("upgrade.started", scope, task, runtime, deadline, approved_by, request["upgrade_type"]), runtime, deadline)
    return {"task_id": task.id, "status": task.status}


def upgrade_status(event: dict[str, Any], runtime: runtime_module.Runtime, deadline: Deadline) -> dict[str, Any]:
    """Read the latest (or the named) upgrade task; once it ended, announce its outcome."""
    scope = _scope(event, runtime)
    task = _find_task(runtime, scope, event.get("task_id"), deadline)
    approved_by = _optional_approver(event)
    upgrade_type = _optional_upgrade_type(event)

    final_event = FINAL_STATUSES.get(task.status)
    if final_event is not None:
        lifecycle = _lifecycle_event(final_event, scope, task, runtime, deadline, approved_by, upgrade_type)
        _announce(lifecycle, runtime, deadline)
    logger.info("upgrade status read", extra={"task_id": task.id, "task_status": task.status, "completed": len(task.completed_node_names)})
    return {
        "task_id": task.id,
        "status": task.status,
        "completed_nodes": task.completed_node_names,
        "total_nodes": task.total_node_names,
        "execute_times": _attempt(task),
    }


def retry_upgrade(event: dict[str, Any], runtime: runtime_module.Runtime, deadline: Deadline) -> dict[str, Any]:
    """Run a failed upgrade task again (RetryUpgradeTask); return its new status."""
    return _retry_or_abort(event, runtime, deadline, abort=False)


def abort_upgrade(event: dict[str, Any], runtime: runtime_module.Runtime, deadline: Deadline) -> dict[str, Any]:
    """End a failed upgrade task for good (RetryUpgradeTask with retry_mode=abort); return its new status."""
    return _retry_or_abort(event, runtime, deadline, abort=True)


ACTIONS: dict[str, Callable[[dict[str, Any], runtime_module.Runtime, Deadline], dict[str, Any]]] = {
    "check": check,
    "request_approval": request_approval,
    "start_upgrade": start_upgrade,
    "upgrade_status": upgrade_status,
    "retry_upgrade": retry_upgrade,
    "abort_upgrade": abort_upgrade,
}


# -- approval request -----------------------------------------------------------------------------


def approval_webhook_url(runtime: runtime_module.Runtime) -> str:
    """Return the approval webhook URL from SLACK_APPROVAL_WEBHOOK_URL, or from the secret SLACK_APPROVAL_WEBHOOK_NAME names.

    The secret contains the URL, or a JSON object with `url`. The URL must be https on a host of
    SLACK_REPLY_HOSTS. It is a credential, so no message ever quotes it.
    """
    url = os.environ.get("SLACK_APPROVAL_WEBHOOK_URL", "").strip()
    variable = "SLACK_APPROVAL_WEBHOOK_URL"
    if not url:
        name = os.environ.get("SLACK_APPROVAL_WEBHOOK_NAME", "").strip()
        if not name:
            raise ConfigurationError(
                "no approval webhook: set SLACK_APPROVAL_WEBHOOK_URL or SLACK_APPROVAL_WEBHOOK_NAME", variable="SLACK_APPROVAL_WEBHOOK_NAME"
            )
        variable = "SLACK_APPROVAL_WEBHOOK_NAME"
        url = _url_in_secret(secrets.get_secret_string(name, client=runtime.aws), name)

    hosts = runtime.settings.slack_reply_hosts
    try:
        return check_reply_url(url, hosts, field=variable)
    except InvalidMessage:
        raise ConfigurationError(
            f"the approval webhook URL of {variable} is not an https URL on a host of SLACK_REPLY_HOSTS ({', '.join(hosts)})",
            variable=variable,
        ) from None


def approval_message(event: Event, task_token: str) -> dict[str, Any]:
    """Return the incoming-webhook message: the event rendered for Slack, then the Approve and Reject buttons."""
    rendered = render_slack(event)
    blocks = rendered["blocks"][: MAX_BLOCKS - 2]
    context = blocks.pop() if blocks and blocks[-1].get("type") == "context" else None
    blocks.append({
        "type": "section",
        "text": {
            "type": "mrkdwn",
            "text": "*Approval needed.* Approve starts the CSS kernel upgrade of this cluster; Reject ends the workflow. "
            "Only the users in SLACK_APPROVERS can decide.",
        },
    })
    blocks.append(slack_approval.approval_actions(task_token, event.cluster.id))
    if context is not None:
        blocks.append(context)
    return {"text": "Approval needed: " + rendered["text"], "blocks": blocks}


def _url_in_secret(text: str, name: str) -> str:
    value = text.strip()
    if value.startswith("{"):
        try:
            value = json.loads(value).get("url")
        except (ValueError, AttributeError):
            value = None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"secret {name} (SLACK_APPROVAL_WEBHOOK_NAME) contains no URL: store the URL, or JSON with url", variable="SLACK_APPROVAL_WEBHOOK_NAME")
    return value.strip()


# -- upgrade tasks --------------------------------------------------------------------------------


def _retry_or_abort(event: dict[str, Any], runtime: runtime_module.Runtime, deadline: Deadline, *, abort: bool) -> dict[str, Any]:
    _require_execution(runtime)
    approved_by = _approver(event)
    scope = _scope(event, runtime)
    if event.get("task_id") is None:
        raise InvalidInput("missing task_id: name the upgrade task to retry or abort")
    task = _find_task(runtime, scope, event.get("task_id"), deadline)

    runtime.css.retry_upgrade(**scope, task_id=task.id, abort=abort, deadline=deadline)
    task = _find_task(runtime, scope, task.id, deadline)

    verb = "aborted" if abort else "retried"
    count("UpgradeAborted" if abort else "UpgradeRetried")
    logger.info(f"upgrade task {verb}", extra={"task_id": task.id, "task_status": task.status, "approved_by": approved_by})
    if not abort and task.status == RUNNING:
        lifecycle = _lifecycle_event("upgrade.started", scope, task, runtime, deadline, approved_by, _optional_upgrade_type(event))
        _announce_quietly(lifecycle, runtime, deadline)
    result: dict[str, Any] = {"task_id": task.id, "status": task.status, "execute_times": _attempt(task)}
    if abort:
        result["aborted"] = True
    return result


def _find_task(runtime: runtime_module.Runtime, scope: dict[str, str], task_id: object, deadline: Deadline) -> UpgradeTask:
    """Return the named task, or the newest when `task_id` is None; raise NoUpgradeTask when there is none."""
    tasks = runtime.css.upgrade_tasks(**scope, deadline=deadline)
    if task_id is None:
        if not tasks:
            raise NoUpgradeTask(f"cluster {scope['cluster_id']} has no upgrade task")
        return tasks[0]
    requested = ids.task_id(task_id)
    for task in tasks:
        if task.id == requested:
            return task
    raise NoUpgradeTask(f"cluster {scope['cluster_id']} has no upgrade task {requested}")


def _new_task(before: list[UpgradeTask], after: list[UpgradeTask], cluster_id: str) -> UpgradeTask:
    """Return the task UpgradeCore started: the RUNNING one, else one that was not there before.

    UpgradeCore returns no task ID, so this is how its task is found. A task that ended by the time
    UpgradeDetail was read is no longer RUNNING, hence the second rule.
    """
    running = next((task for task in after if task.status == RUNNING), None)
    if running is not None:
        return running
    known = {task.id for task in before}
    fresh = next((task for task in after if task.id not in known), None)
    if fresh is not None:
        return fresh
    raise NoUpgradeTask(f"UpgradeCore accepted the upgrade of cluster {cluster_id}, but UpgradeDetail lists no new task")


def _lifecycle_event(
    event_type: str,
    scope: dict[str, str],
    task: UpgradeTask,
    runtime: runtime_module.Runtime,
    deadline: Deadline,
    approved_by: str | None,
    upgrade_type: str | None,
) -> Event:
    cluster = _cluster_details(runtime, scope, deadline)
    if event_type == "upgrade.started" and task.status != RUNNING:
        # The task ended before UpgradeDetail was read. The event still reports that it started.
        task = task.model_copy(update={"status": RUNNING})
    return build_lifecycle_event(
        event_type=event_type,
        cluster_id=scope["cluster_id"],
        project_id=scope["project_id"],
        region=scope["region"],
        cluster=cluster,
        task=task,
        approved_by=approved_by,
        upgrade_type=upgrade_type,
        target=None,
        trigger=Trigger(source="workflow", requested_by=approved_by),
        agency=None,
        detail=_lifecycle_detail(event_type, task, approved_by),
        occurred_at=datetime.now(timezone.utc),
    )


def _lifecycle_detail(event_type: str, task: UpgradeTask, approved_by: str | None) -> str:
    image = task.image_info.display_name if task.image_info is not None else "the target image"
    attempt = _attempt(task)
    attempt_text = f" (attempt {attempt})" if attempt else ""
    if event_type == "upgrade.started":
        approver = f", approved by {approved_by}" if approved_by else ""
        return f"Upgrade task {task.id} to {image} is running{attempt_text}{approver}."
    nodes = f"{len(task.completed_node_names)} of {len(task.total_node_names)} nodes upgraded"
    if event_type == "upgrade.succeeded":
        return f"Upgrade task {task.id} to {image} succeeded{attempt_text}: {nodes}."
    reason = f": {task.fail_message}" if task.fail_message else ""
    return f"Upgrade task {task.id} to {image} ended {task.status}{attempt_text}, {nodes}{reason}"


def _cluster_details(runtime: runtime_module.Runtime, scope: dict[str, str], deadline: Deadline) -> Cluster | None:
    """Return the cluster's details for an event; None (fields shown as null) when they cannot be read."""
    try:
        return runtime.css.show_cluster(**scope, deadline=deadline)
    except css_errors.CssError as error:
        logger.warning("cluster details not read for the lifecycle event", extra={"error": str(error)})
        return None


def _announce(event: Event, runtime: runtime_module.Runtime, deadline: Deadline) -> bool:
    """Broadcast `event` unless the ledger shows it was already announced; return whether it was broadcast."""
    announced = announce(
        event,
        runtime.broadcaster,
        runtime.ledger,
        renotify_after_days=runtime.settings.policy.renotify_after_days,
        deadline=deadline,
    )
    if not announced:
        count("Outcome.suppressed")
        logger.info("lifecycle event already announced", extra={"event_id": event.event_id, "event_type": event.event_type})
        return False
    count(f"Event.{event.event_type}")
    logger.info("lifecycle event announced", extra={"event_id": event.event_id, "event_type": event.event_type})
    return True


def _announce_quietly(event: Event, runtime: runtime_module.Runtime, deadline: Deadline) -> None:
    """Announce an `upgrade.started` event. An AWS failure is logged, not raised, because the upgrade already runs.

    NOTE: an `upgrade.started` event that fails this way is lost. The task's outcome is still
    announced by `upgrade_status`, which raises TemporaryFailure so that the state retries it.
    """
    try:
        _announce(event, runtime, deadline)
    except AwsError as error:
        count("LifecyclePublishFailed")
        logger.error("upgrade.started could not be announced", extra={"event_id": event.event_id, "error": str(error)})


# -- input checks ---------------------------------------------------------------------------------


def _require_execution(runtime: runtime_module.Runtime) -> None:
    if not runtime.settings.execution_enabled:
        raise ExecutionDisabled("UPGRADE_EXECUTION_ENABLED is not true: the workflow may not start, retry or abort upgrades")


def _approver(event: dict[str, Any]) -> str:
    approver = _optional_approver(event)
    if approver is None:
        raise NotApproved("missing approved_by: an upgrade is started, retried or aborted only with an approver")
    return approver


def _optional_approver(event: dict[str, Any]) -> str | None:
    value = event.get("approved_by")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_APPROVER_CHARS or not value.isprintable():
        raise NotApproved(f"invalid approved_by {ids.shown(value)}: expected the approver's ID")
    return value.strip()


def _optional_upgrade_type(event: dict[str, Any]) -> str | None:
    value = event.get("upgrade_type")
    return None if value is None else ids.upgrade_type(value)


def _scope(event: dict[str, Any], runtime: runtime_module.Runtime) -> dict[str, str]:
    settings = runtime.settings
    project_id = event.get("project_id", settings.css_project_id)
    region = event.get("region", settings.css_region)
    if project_id is None:
        raise InvalidInput("missing project_id: set it in the input or CSS_PROJECT_ID")
    if region is None:
        raise InvalidInput("missing region: set it in the input or CSS_REGION")
    scope = {
        "project_id": ids.project_id(project_id),
        "region": ids.region(region),
        "cluster_id": ids.cluster_id(event.get("cluster_id")),
    }
    logger.append_keys(cluster_id=scope["cluster_id"])
    return scope


def _upgrade_request(value: object, default_agency: str | None) -> dict[str, Any]:
    """Validate the approved `upgrade_request`; the agency comes from it, else from CSS_UPGRADE_AGENCY."""
    if not isinstance(value, dict):
        raise InvalidInput(f"invalid upgrade_request {ids.shown(value)}: expected the upgrade_request object of the checked event")
    target = value.get("target_image_id")
    if not isinstance(target, str) or not target or len(target) > 64 or not all(c.isascii() and (c.isalnum() or c in "-_") for c in target):
        raise InvalidInput(f"invalid upgrade_request.target_image_id {ids.shown(target)}: expected an image ID from ListImages")
    backup_check = value.get("indices_backup_check", True)
    if not isinstance(backup_check, bool):
        raise InvalidInput(f"invalid upgrade_request.indices_backup_check {ids.shown(backup_check)}: expected true or false")
    agency = value.get("agency") or default_agency
    if not agency:
        raise ConfigurationError(
            "no IAM agency for the upgrade: set CSS_UPGRADE_AGENCY (the checked event's upgrade_request.agency is null)",
            variable="CSS_UPGRADE_AGENCY",
        )
    if not isinstance(agency, str) or len(agency) > 64 or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in agency):
        raise InvalidInput(f"invalid upgrade_request.agency {ids.shown(agency)}: expected an IAM agency name")
    return {
        "target_image_id": target,
        "upgrade_type": ids.upgrade_type(value.get("upgrade_type"), "upgrade_request.upgrade_type"),
        "indices_backup_check": backup_check,
        "agency": agency,
    }


def _image_id(task: UpgradeTask) -> str | None:
    return task.image_info.id if task.image_info is not None else None


def _attempt(task: UpgradeTask) -> int | None:
    text = (task.execute_times or "").strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "event"
    return f"{where}: {first.get('msg')}"
