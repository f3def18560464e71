"""`css-upgrade-scout workflow-demo`: one approved run of the upgrade workflow, entirely on 127.0.0.1.

It runs the real state machine definition (infra/statemachine/upgrade.asl.json) with the local ASL
interpreter, and the workflow function stands in for every Lambda task. The CSS emulator, a moto
server (SNS topic with a subscriber queue, announce-once table) and a fake Slack play the services.
The approval request lands in the fake Slack, and an approver's click goes through the real webhook
function, which completes the task token with a signed HTTP call. The chosen cluster fails its first
upgrade attempt in the emulator's catalog, so the run also shows the retry.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

DEMO_CLUSTER = "cdffd3b2-d65d-5545-b8e3-96528dac661c"  # "upgrade-flaky": first attempt FAILED, retry SUCCESS
APPROVER = "U0APPROVER1"
DEFINITION = Path(__file__).resolve().parents[2] / "infra" / "statemachine" / "upgrade.asl.json"


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    # The moto server's access log would bury the demo's own lines.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if not DEFINITION.is_file():
        print(f"css-upgrade-scout: the state machine definition {DEFINITION} is missing: run the demo from a source checkout", file=sys.stderr)
        return 2

    from handler import runtime
    from handler.local.asl import StateMachine, TaskTokenServer, load_definition
    from handler.local.fake_slack import FakeSlack
    from handler.local.sandbox import Sandbox

    with Sandbox() as sandbox, FakeSlack() as slack, TaskTokenServer() as tokens:
        sandbox.apply_environment(
            {
                "UPGRADE_EXECUTION_ENABLED": "true",
                "SLACK_SIGNING_SECRET": slack.signing_secret,
                "SLACK_APPROVERS": APPROVER,
                "SLACK_APPROVAL_WEBHOOK_URL": slack.approval_webhook_url,
                "SLACK_REPLY_HOSTS": "127.0.0.1",
                "AWS_ENDPOINT_URL_SFN": tokens.url,
            }
        )
        runtime.reset()
        try:
            return _run(sandbox, slack, tokens, StateMachine, load_definition)
        finally:
            runtime.reset()


def _run(sandbox, slack, tokens, StateMachine, load_definition) -> int:
    from handler import webhook, workflow
    from handler.local.asl import LambdaContext

    _say(f"CSS emulator {sandbox.emulator.url}, moto {sandbox.moto_url}, fake Slack {slack.url}")
    _say(f"Upgrade workflow for cluster {DEMO_CLUSTER} (upgrade-flaky), approver {APPROVER}")

    def approve(state: str, payload: Any) -> None:
        request = slack.approval_requests()[-1]
        _say(f"[{state}] Slack approval request posted: {request.body['text'][:100]}")
        answer = webhook.lambda_handler(slack.click(request, approve=True, user_id=APPROVER), LambdaContext(10))
        _say(f"[{state}] {APPROVER} clicked Approve; the webhook answered HTTP {answer['statusCode']}")

    definition = load_definition(str(DEFINITION), {"WorkflowFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:workflow"})
    machine = StateMachine(definition, workflow.lambda_handler, tokens=tokens, on_wait=approve)
    execution = machine.run({"cluster_id": DEMO_CLUSTER, "requested_by": "workflow-demo"})

    _say("States: " + " -> ".join(execution.states))
    for step in execution.history:
        if step.error:
            _say(f"  {step.state}: {step.error}")
    for event in sandbox.received_events():
        task = event.get("task") or {}
        _say(f"Event {event['event_type']}: task {task.get('id')} {task.get('status')} attempt {task.get('execute_times')}, approved by {task.get('approved_by')}")
    calls = sandbox.emulator.calls
    _say(f"CSS calls: {sum(call.method == 'POST' for call in calls)} UpgradeCore, {sum(call.method == 'PUT' for call in calls)} RetryUpgradeTask, "
         f"{sum(call.path.endswith('/upgrade/detail') for call in calls)} UpgradeDetail")
    _say(f"Execution {execution.status}" + (f": {execution.error}" if execution.error else ""))
    print(json.dumps({"status": execution.status, "states": execution.states, "error": execution.error}, indent=2))
    return 0 if execution.status == "SUCCEEDED" else 1


def _say(text: str) -> None:
    print(text, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
