"""`css-upgrade-scout demo`: the main job end to end on local stand-ins, with nothing to set up.

It starts the CSS emulator and a moto server on 127.0.0.1, creates the work queue with its
dead-letter queue, the topic and a subscriber queue, sends one work message per bundled cluster (plus
a malformed one and one for a deleted cluster), hands them to the worker as Lambda would, and prints
what each cluster got and what the subscriber received. It runs under the bundled demo policy and
says where that policy changed the outcome compared with the built-in default.
"""

from __future__ import annotations

import json
import os
import sys
from importlib import resources
from typing import Any

from handler.local.emulator.catalog import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, default_catalog
from handler.local.emulator.faults import Fault
from handler.local.sandbox import Sandbox

DEMO_POLICY = "demo_policy.json"
THROTTLED_ONCE = "a4a1bdf6-41a9-58d1-9159-3d8df47655b0"  # os-logs: its first ListImages call is throttled
CONSERVATIVE = "ea244205-d641-45d9-9dcb-ab2236bcd07e"  # logs-prod: also checked under the conservative profile
DELETED_CLUSTER = "8515be4d-214d-5629-9e9f-20448ad5124f"


def main() -> int:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    policy_text = resources.files("handler.local").joinpath(DEMO_POLICY).read_text()
    catalog = default_catalog()

    print("css-upgrade-scout demo: CSS emulator and moto on 127.0.0.1, no cloud account needed.\n")
    with Sandbox(catalog, extra_env={"UPGRADE_POLICY": policy_text}) as sandbox:
        sandbox.apply_environment()
        from handler import runtime, worker

        runtime.reset()
        sandbox.emulator.inject(Fault(kind="throttle", route="list_images", cluster_id=THROTTLED_ONCE, times=1, retry_after=1))

        bodies = _work_messages(catalog)
        sandbox.send(bodies)
        print(f"Sent {len(bodies)} work messages to {sandbox.work_queue_url}")
        print(f"Policy: {json.dumps(json.loads(policy_text), separators=(', ', ': '))}\n")

        deliveries = sandbox.drain(worker.lambda_handler)
        invocations = len(deliveries)
        redelivered = sum(len(delivery.failed) for delivery in deliveries)
        events = sandbox.received_events()
        letters = sandbox.dead_letters()
        default_targets = _default_policy_targets(sandbox, events)
        runtime.reset()

    print(f"Worker invocations: {invocations}; records reported for redelivery: {redelivered}\n")
    _print_decisions(events, default_targets)
    _print_dead_letters(letters)
    print("\nEvery event above was published to SNS and read back from a subscribed SQS queue.")
    return 0


def _work_messages(catalog) -> list[str]:
    bodies = []
    for project in catalog.projects:
        for cluster in project.clusters:
            if cluster.id == DELETED_CLUSTER:
                continue
            bodies.append(json.dumps({"cluster_id": cluster.id, "project_id": project.id, "correlation_id": f"demo-{cluster.name}"}))
    bodies.append(json.dumps({"cluster_id": CONSERVATIVE, "policy_profile": "conservative", "correlation_id": "demo-conservative"}))
    bodies.append(DELETED_CLUSTER)
    bodies.append('{"cluster_id": "not-a-cluster"}')
    return bodies


def _default_policy_targets(sandbox: Sandbox, events: list[dict[str, Any]]) -> dict[str, str]:
    """Return what the built-in default policy chooses for each cluster, to show what the demo policy changed."""
    from handler.check import CheckFailed, run_check
    from handler.core.events import Trigger
    from handler.core.message import WorkMessage
    from handler.core.policy import Policy
    from handler.css.client import CssClient
    from handler.css.signer import Credentials

    client = CssClient(Credentials(ak=DEFAULT_ACCESS_KEY, sk=DEFAULT_SECRET_KEY), endpoint=sandbox.emulator.url)
    targets = {}
    for event in events:
        cluster = event["cluster"]
        if event["event_type"] == "check.failed" or event["trigger"]["correlation_id"] == "demo-conservative":
            continue
        message = WorkMessage(cluster_id=cluster["id"], project_id=cluster["project_id"], region=cluster["region"])
        try:
            result = run_check(client, message, Policy(), trigger=Trigger(source="cli"), agency=None)
        except CheckFailed:
            continue
        targets[cluster["id"]] = _target_text(result.event.to_dict())
    return targets


def _target_text(event: dict[str, Any]) -> str:
    if event["target_image"]:
        return f"{event['target_image']['display_name']} ({event['upgrade_type']})"
    return f"none: {event['reason']}"


def _print_decisions(events: list[dict[str, Any]], default_targets: dict[str, str]) -> None:
    rows = []
    changed = []
    for event in sorted(events, key=lambda item: (item["cluster"]["name"] or "", item["trigger"]["correlation_id"] or "")):
        cluster = event["cluster"]
        name = cluster["name"] or cluster["id"]
        if event["trigger"]["correlation_id"] == "demo-conservative":
            name += " (profile conservative)"
        engine = f"{cluster['datastore_type'] or '?'} {cluster['datastore_version'] or ''}".strip()
        outcome = event["event_type"] + (f" ({event['reason']})" if event["reason"] else "")
        target = _target_text(event) if event["target_image"] else "-"
        rows.append((name, engine, cluster["current_image"] or "-", outcome, target))

        default = default_targets.get(cluster["id"])
        if default is not None and event["trigger"]["correlation_id"] != "demo-conservative" and default != _target_text(event):
            changed.append((name, default, _target_text(event), event["detail"]))

    headers = ("cluster", "engine", "current image", "event", "target image")
    widths = [max(len(str(row[i])) for row in rows + [headers]) for i in range(len(headers))]
    line = "  ".join(f"{{:<{width}}}" for width in widths)
    print(f"Events received by the subscriber ({len(events)}):\n")
    print(line.format(*headers))
    print(line.format(*("-" * width for width in widths)))
    for row in rows:
        print(line.format(*row))

    if changed:
        print("\nWhere the demo policy changed the outcome (built-in default -> demo policy):")
        for name, default, chosen, detail in changed:
            print(f"  {name}: {default} -> {chosen}")
            print(f"    why: {detail}")


def _print_dead_letters(letters: list[dict[str, Any]]) -> None:
    print(f"\nDead-letter queue ({len(letters)}):")
    for letter in letters:
        print(f"  {letter.get('error_reason')}: {letter['body'][:60]}")
        print(f"    {letter.get('error_detail')}")


if __name__ == "__main__":
    sys.exit(main())
