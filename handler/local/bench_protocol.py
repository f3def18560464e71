"""The protocol between `handler.local.bench` and the processes it measures: a JSON configuration file in, one result line out.

Every measured process (the worker, the floor and the SDK path) imports this module before its clock
starts counting imports, so it uses the standard library only and costs each of them the same.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import uuid
from typing import Any

CONFIG_VARIABLE = "BENCH_CONFIG_FILE"
RESULT_PREFIX = "BENCH_RESULT "

# The region and account of the SQS event records; the handlers read neither.
EVENT_REGION = "us-east-1"
EVENT_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:scout-bench-work"


def read_config() -> dict[str, Any]:
    """Read the configuration the parent wrote for this process (a file, since bodies can exceed an environment variable's size limit)."""
    with open(os.environ[CONFIG_VARIABLE], encoding="utf-8") as file:
        return json.load(file)


def emit(result: dict[str, Any]) -> None:
    """Write the result as one marked line on standard output, where Powertools also writes its metrics."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def parse_result(stdout: str) -> dict[str, Any] | None:
    """Return the result a measured process emitted, or None when it emitted none."""
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    return None


def peak_rss_kb() -> int:
    """Return the peak resident set size of this process in KiB: `VmHWM` of /proc/self/status where it exists.

    `ru_maxrss` is the fallback only, because Linux carries the high-water mark of the image a
    process replaced over `exec`. A child of the benchmark process (moto, boto3 and the fleet
    loaded, over 100 MB) would report at least that much, whatever it used itself.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def sqs_event(bodies: list[str]) -> dict[str, Any]:
    """Build the SQS event Lambda would deliver for these bodies, one record each, from a standard queue."""
    records = []
    for body in bodies:
        message_id = str(uuid.uuid4())
        records.append(
            {
                "messageId": message_id,
                "receiptHandle": f"bench-{message_id}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(int(time.time() * 1000)),
                    "SenderId": "AIDABENCHSENDER",
                    "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": EVENT_QUEUE_ARN,
                "awsRegion": EVENT_REGION,
            }
        )
    return {"Records": records}


class LambdaContext:
    """The parts of a Lambda context the handlers read, with a remaining time that counts down."""

    function_name = "css-upgrade-scout-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:css-upgrade-scout-bench"

    def __init__(self, timeout_seconds: float = 900.0) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._ends_at = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._ends_at - time.monotonic()) * 1000))


def batches(items: list[Any], size: int) -> list[list[Any]]:
    """Split `items` into consecutive lists of at most `size`."""
    return [items[start : start + size] for start in range(0, len(items), size)]
