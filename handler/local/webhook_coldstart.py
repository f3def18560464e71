"""Measure the Slack webhook's cold start: `python -m handler.local.webhook_coldstart [--runs N]`.

Each sample is a fresh interpreter that times `import handler.webhook`, the first request (a signed
`help` command, no network), and the policy import that only a command naming upgrade types pays.
It prints the medians and which heavy modules the import loaded (none of them should be).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

HEAVY_MODULES = ("boto3", "pydantic", "yaml", "handler.runtime", "handler.css.client", "handler.core.events")

_SAMPLE = r"""
import json, os, sys, time
os.environ.update({"SLACK_SIGNING_SECRET": "cold-start-secret", "POWERTOOLS_METRICS_DISABLED": "true",
                   "POWERTOOLS_LOG_LEVEL": "WARNING", "CSS_PROJECT_ID": "6204a5bd270343b5885144cf9c8c158d",
                   "CSS_REGION": "ap-southeast-1"})
started = time.perf_counter()
import handler.webhook as webhook
imported = time.perf_counter()
loaded = {name: name in sys.modules for name in HEAVY}

from handler.local.fake_slack import FakeSlack
event = FakeSlack("cold-start-secret").slash_command("help", response_url="https://hooks.slack.com/commands/T0/1/x")
before_call = time.perf_counter()
response = webhook.lambda_handler(event, None)
after_call = time.perf_counter()
webhook.check_types_allowed(("same",))
after_policy = time.perf_counter()
print(json.dumps({"import_ms": (imported - started) * 1000, "first_request_ms": (after_call - before_call) * 1000,
                  "policy_ms": (after_policy - after_call) * 1000, "status": response["statusCode"], "loaded": loaded}))
"""


def measure(runs: int) -> dict[str, object]:
    """Run `runs` fresh interpreters and return the medians (milliseconds) and the heavy modules seen."""
    samples = []
    for _ in range(runs):
        code = f"HEAVY = {HEAVY_MODULES!r}\n" + _SAMPLE
        completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        samples.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    return {
        "runs": runs,
        "import_ms": round(statistics.median(sample["import_ms"] for sample in samples), 1),
        "first_request_ms": round(statistics.median(sample["first_request_ms"] for sample in samples), 1),
        "policy_ms": round(statistics.median(sample["policy_ms"] for sample in samples), 1),
        "statuses": sorted({sample["status"] for sample in samples}),
        "heavy_modules_loaded": sorted({name for sample in samples for name, seen in sample["loaded"].items() if seen}),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count() or 1} CPUs",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters to time (default 7)")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.runs), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
