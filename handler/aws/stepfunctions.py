"""Step Functions callbacks: report a waiting task's success or failure, or that it is still alive.

A task token lets its holder finish a workflow step, so it is treated as a secret: it never appears
in a log line, an error message or a repr, also when the service quotes it back in an error.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from handler.aws.client import AwsClient, get_client
from handler.aws.endpoints import STEP_FUNCTIONS
from handler.aws.errors import REDACTED
from handler.retry import Deadline

# SendTaskFailure limits: `error` up to 256 characters, `cause` up to 32768.
MAX_ERROR_LENGTH = 256
MAX_CAUSE_LENGTH = 32768

_RESOURCE = f"task token {REDACTED}"


def send_task_success(
    token: str,
    output: Mapping[str, Any],
    deadline: Deadline | None = None,
    *,
    client: AwsClient | None = None,
) -> None:
    """Complete the waiting task with `output`, JSON-encoded, as its result."""
    payload = {"taskToken": _checked(token), "output": json.dumps(dict(output), separators=(",", ":"))}
    _call(client, "SendTaskSuccess", token, payload, deadline)


def send_task_failure(
    token: str,
    error: str,
    cause: str,
    deadline: Deadline | None = None,
    *,
    client: AwsClient | None = None,
) -> None:
    """Fail the waiting task with an error name (for the state's `Catch`) and a cause, cut to the service's limits."""
    payload = {
        "taskToken": _checked(token),
        "error": error[:MAX_ERROR_LENGTH],
        "cause": cause[:MAX_CAUSE_LENGTH],
    }
    _call(client, "SendTaskFailure", token, payload, deadline)


def send_task_heartbeat(
    token: str, deadline: Deadline | None = None, *, client: AwsClient | None = None
) -> None:
    """Tell Step Functions the task is still running, which restarts its heartbeat timeout."""
    _call(client, "SendTaskHeartbeat", token, {"taskToken": _checked(token)}, deadline)


def _checked(token: str) -> str:
    if not isinstance(token, str) or not token.strip():
        raise ValueError("invalid task token: expected a non-empty string")
    return token


def _call(
    client: AwsClient | None, operation: str, token: str, payload: Mapping[str, Any], deadline: Deadline | None
) -> None:
    client = client or get_client()
    client.call_json(
        STEP_FUNCTIONS,
        operation,
        payload,
        resource=_RESOURCE,
        deadline=deadline,
        redact=(token,),
    )
