"""The Approve and Reject buttons of an upgrade approval request in Slack, shared by the workflow and the webhook.

The workflow posts them; the webhook reads them back from Slack's `block_actions` payload. A button's
`value` carries the Step Functions task token and the cluster ID as JSON. The token lets whoever
holds it finish the workflow step, so it appears only in the button values and in the Step Functions
call: after a decision the message is replaced by a copy without the buttons. This module stays
free of pydantic and of the AWS and CSS clients, because the webhook imports it on its cold-start path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from handler.core import ids

APPROVE_ACTION_ID = "approve_upgrade"
REJECT_ACTION_ID = "reject_upgrade"
ACTIONS_BLOCK_ID = "upgrade_approval"

# Slack limits a button's value to 2000 characters. NOTE: Step Functions allows task tokens of up to
# 2048 characters, so a token near that length cannot fit; `button_value` then raises, and the
# workflow's request_approval fails with InvalidInput instead of posting buttons that cannot work.
MAX_BUTTON_VALUE_CHARS = 2000

# The error name Step Functions receives when an approver clicks Reject.
REJECTED_ERROR = "Rejected"


class InvalidButtonValue(ValueError):
    """A button value that is not one this project wrote. The message never quotes the value."""


@dataclass(frozen=True)
class ButtonValue:
    """The content of an approval button: the task token (never shown) and the cluster ID."""

    task_token: str = field(repr=False)
    cluster_id: str


def button_value(task_token: str, cluster_id: str) -> str:
    """Encode a button's value; raise ValueError when the token does not fit Slack's 2000-character limit."""
    if not isinstance(task_token, str) or not task_token.strip():
        raise ValueError("invalid task_token: expected a non-empty string")
    value = json.dumps({"task_token": task_token, "cluster_id": ids.cluster_id(cluster_id)}, separators=(",", ":"))
    if len(value) > MAX_BUTTON_VALUE_CHARS:
        raise ValueError(
            f"invalid task_token: {len(task_token)} characters do not fit a Slack button value "
            f"(at most {MAX_BUTTON_VALUE_CHARS} characters with the cluster ID)"
        )
    return value


def parse_button_value(value: object) -> ButtonValue:
    """Decode a button's value; raise InvalidButtonValue when it is not one `button_value` made."""
    if not isinstance(value, str) or len(value) > MAX_BUTTON_VALUE_CHARS:
        raise InvalidButtonValue("the button value is not an approval button's value")
    try:
        data = json.loads(value)
    except (ValueError, RecursionError):
        # json raises RecursionError, not ValueError, for arrays or objects nested too deep.
        raise InvalidButtonValue("the button value is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidButtonValue("the button value is not a JSON object")
    token = data.get("task_token")
    if not isinstance(token, str) or not token.strip():
        raise InvalidButtonValue("the button value has no task token")
    try:
        cluster_id = ids.cluster_id(data.get("cluster_id"), "cluster_id")
    except ids.InvalidValue as error:
        raise InvalidButtonValue(f"the button value has an invalid cluster ID: {error}") from None
    return ButtonValue(task_token=token, cluster_id=cluster_id)


def approval_actions(task_token: str, cluster_id: str) -> dict[str, Any]:
    """Return the Block Kit `actions` block with the Approve (confirmed in a dialog) and Reject buttons."""
    value = button_value(task_token, cluster_id)
    return {
        "type": "actions",
        "block_id": ACTIONS_BLOCK_ID,
        "elements": [
            {
                "type": "button",
                "action_id": APPROVE_ACTION_ID,
                "text": {"type": "plain_text", "text": "Approve upgrade"},
                "style": "primary",
                "value": value,
                "confirm": {
                    "title": {"type": "plain_text", "text": "Start the upgrade?"},
                    "text": {"type": "plain_text", "text": f"CSS will upgrade cluster {cluster_id} node by node."},
                    "confirm": {"type": "plain_text", "text": "Approve"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                },
            },
            {
                "type": "button",
                "action_id": REJECT_ACTION_ID,
                "text": {"type": "plain_text", "text": "Reject"},
                "style": "danger",
                "value": value,
            },
        ],
    }


def decided_message(original: object, *, approved: bool, user_id: str) -> dict[str, Any]:
    """Return the approval message without its buttons, plus a line saying who decided what.

    `original` is the `message` of Slack's payload. Only its `text` and `blocks` are kept, and every
    `actions` block is dropped, so the task token leaves the channel with the buttons.
    """
    message = original if isinstance(original, dict) else {}
    kept = message.get("blocks")
    blocks = [block for block in (kept if isinstance(kept, list) else []) if isinstance(block, dict) and block.get("type") != "actions"]
    if approved:
        line = f"Approved by <@{user_id}>. The workflow starts the upgrade."
    else:
        line = f"Rejected by <@{user_id}>. Nothing is upgraded."
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*{line}*"}})
    text = message.get("text") if isinstance(message.get("text"), str) else "CSS upgrade approval"
    return {"replace_original": True, "text": f"{text}: {line}", "blocks": blocks}
