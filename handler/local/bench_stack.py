"""The local services the benchmarks run against, and the fresh processes they measure.

The CSS emulator runs in its own process, so its CPU time never counts for the measured one. moto
runs as a server thread of the benchmark's own process, which measures nothing itself. Both listen
on 127.0.0.1 on ports the system picks. Each measured process is a fresh interpreter
started with `python -m MODULE MODE`, the function's environment and a JSON configuration file.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer

from handler.local.bench_protocol import CONFIG_VARIABLE, parse_result
from handler.local.emulator.catalog import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_PROJECT_ID,
    DEFAULT_REGION,
    DEFAULT_SECRET_KEY,
    Catalog,
    ClusterSpec,
    Datastore,
    Image,
    Project,
    generate_catalog,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# moto accepts any credentials; these only have to look like AWS's.
AWS_REGION = "us-east-1"
AWS_ACCESS_KEY_ID = "AKIALOCALBENCH000001"
AWS_SECRET_ACCESS_KEY = "local-bench-secret-not-a-real-key"

# A second project contains the one cluster with many target images, so that the fleet the scan
# lists keeps exactly the generated number of clusters.
WIDE_PROJECT_ID = "5e1f0c2b7a9d4e3c8b6a0f1e2d3c4b5a"
WIDE_CLUSTER_ID = "3f6c2a1e-8b4d-4c7a-9e5f-0d1b2c3a4e5f"
IMAGES_PER_TYPE = 25

# Variables of the benchmark's own environment that must not reach a measured process.
_FUNCTION_VARIABLE_PREFIXES = ("AWS_", "CSS_", "HUAWEICLOUD_", "NOTIFY_", "DEDUPE_", "WORK_QUEUE_", "DEAD_LETTER_", "SCAN_", "SLACK_", "POWERTOOLS_", "UPGRADE_", "MAX_CONCURRENCY")

_IMAGE_NAMESPACE = uuid.UUID("9d7c4e1a-2b3f-4a5e-8c6d-1f0e2a3b4c5d")

logging.getLogger("werkzeug").setLevel(logging.ERROR)


class BenchError(Exception):
    """A service or a measured process failed; the message names it and shows the end of its error output."""


def wide_project() -> Project:
    """Return a project with one Elasticsearch 7.6.2 cluster offered IMAGES_PER_TYPE images of each of `same` and `cross`."""
    images: dict[str, tuple[Image, ...]] = {}
    for upgrade_type, version, base_priority in (("same", "7.6.2", 100), ("cross", "7.10.2", 200)):
        names = [f"{version}_25.{number // 10 + 1}.{number % 10}_0601" for number in range(IMAGES_PER_TYPE)]
        images[upgrade_type] = tuple(
            Image(
                id=str(uuid.uuid5(_IMAGE_NAMESPACE, name)),
                display_name=name,
                image_desc=f"Benchmark image {name}.",
                datastore_type="elasticsearch",
                datastore_version=version,
                priority=base_priority + number,
            )
            for number, name in enumerate(names)
        )
    cluster = ClusterSpec(
        id=WIDE_CLUSTER_ID,
        name="bench-many-images",
        datastore=Datastore(type="elasticsearch", version="7.6.2", sub_version="7.6.2_24.3.0_0827"),
        images=images,
        unsupported_types=("cross-engine",),
    )
    return Project(id=WIDE_PROJECT_ID, clusters=(cluster,))


def bench_catalog(n_clusters: int, seed: int) -> Catalog:
    """Return the generated fleet of `n_clusters` in the default project, plus the wide project."""
    fleet = generate_catalog(n_clusters, seed)
    return Catalog(region=fleet.region, credentials=fleet.credentials, images=fleet.images, projects=(*fleet.projects, wide_project()))


class EmulatorProcess:
    """The CSS emulator as a child process (`python -m handler.local.emulator`), configured over its control API."""

    def __init__(self, catalog: Catalog, workdir: Path) -> None:
        self._catalog_path = workdir / "catalog.json"
        self._catalog_path.write_text(json.dumps(catalog.model_dump(mode="json", by_alias=True, exclude_defaults=True)), encoding="utf-8")
        self._log_path = workdir / "emulator.log"
        self._process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> "EmulatorProcess":
        command = [sys.executable, "-m", "handler.local.emulator", "--catalog", str(self._catalog_path), "--log-level", "WARNING"]
        with self._log_path.open("w") as log:
            self._process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
        first_line: list[str] = []
        reader = threading.Thread(target=lambda: first_line.append(self._process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not first_line or not first_line[0].startswith("http://127.0.0.1:"):
            self.stop()
            raise BenchError(f"the CSS emulator did not start within {timeout:.0f} s:\n{_tail(self._log_path)}")
        self.url = first_line[0].strip()
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def control(self, method: str, path: str, payload: Any = None) -> Any:
        response = requests.request(method, f"{self.url}/_emulator/{path}", json=payload, timeout=60)
        if response.status_code >= 300:
            raise BenchError(f"emulator control request {method} {path} failed: HTTP {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    def calls(self, route: str | None = None) -> list[dict[str, Any]]:
        """Return the recorded API calls, oldest first, each with `method`, `path`, `query`, `status` and `route`."""
        return self.control("GET", "calls" + (f"?route={route}" if route else ""))["calls"]

    def call_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for call in self.calls():
            counts[call["route"]] = counts.get(call["route"], 0) + 1
        return counts

    def reset_calls(self) -> None:
        self.control("DELETE", "calls")

    def inject(self, fault: dict[str, Any]) -> None:
        self.control("POST", "faults", fault)

    def clear_faults(self) -> None:
        self.control("DELETE", "faults")

    def set_cluster_paging(self, paging: str) -> None:
        self.control("POST", "settings", {"cluster_paging": paging})


class LocalAws:
    """A moto server on 127.0.0.1 and the topics and queues the benchmarks publish and enqueue to."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.url = ""

    def start(self) -> "LocalAws":
        # moto's documented switch: allow more than one PurgeQueue per minute (see QueuePurger).
        os.environ["MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR"] = "false"
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=AWS_REGION,
            endpoint_url=self.url,
            aws_access_key_id=AWS_ACCESS_KEY_ID,
            aws_secret_access_key=AWS_SECRET_ACCESS_KEY,
        )

    def create_queue(self, name: str) -> str:
        return self.client("sqs").create_queue(QueueName=f"{name}-{uuid.uuid4().hex[:8]}")["QueueUrl"]

    def delete_queue(self, queue_url: str) -> None:
        self.client("sqs").delete_queue(QueueUrl=queue_url)

    def create_topic(self, name: str, *, subscribed: bool) -> tuple[str, str | None]:
        """Create a topic; with `subscribed`, also a queue that receives its messages raw. Return (topic ARN, queue URL)."""
        sns, sqs = self.client("sns"), self.client("sqs")
        topic_arn = sns.create_topic(Name=f"{name}-{uuid.uuid4().hex[:8]}")["TopicArn"]
        if not subscribed:
            return topic_arn, None
        queue_url = self.create_queue(f"{name}-subscriber")
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
        return topic_arn, queue_url

    def queue_depth(self, queue_url: str) -> int:
        attributes = self.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])

    def drain(self, queue_url: str) -> list[str]:
        """Receive and delete every message on a queue; return their bodies."""
        sqs = self.client("sqs")
        bodies = []
        while True:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(message["Body"])
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


class QueuePurger:
    """Purges a queue every few milliseconds in a background thread while a producer sends to it.

    moto (5.2) reads every queue attribute, including the approximate counts, for each message it
    accepts or receives, so each call costs time in proportion to the queue's depth. A batch of 10
    took about 300 ms at a depth of 1,500 messages, and receiving is as slow.
    Purging is constant-time in moto and keeps the depth near zero. The messages' arrival is
    proven by the `Successful` entries of the SendMessageBatch responses, which the scan's process
    counts.
    """

    def __init__(self, aws: LocalAws, queue_url: str, interval: float = 0.05) -> None:
        self._sqs = aws.client("sqs")
        self._queue_url = queue_url
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-purger", daemon=True)
        self.purges = 0
        self.error: Exception | None = None

    def __enter__(self) -> "QueuePurger":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        try:
            while not self._stopping.wait(self._interval):
                self._sqs.purge_queue(QueueUrl=self._queue_url)
                self.purges += 1
        except Exception as error:  # noqa: BLE001 - reported by the caller
            self.error = error


def function_environment(emulator: EmulatorProcess, aws: LocalAws, topic_arn: str, **extra: str) -> dict[str, str]:
    """Return the environment of a measured process: this one's, minus function settings, plus the function's variables."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(_FUNCTION_VARIABLE_PREFIXES)}
    # Every variant must run from cached byte code: the warm-up runs write it where it is missing.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        {
            "CSS_ENDPOINT": emulator.url,
            "CSS_PROJECT_ID": DEFAULT_PROJECT_ID,
            "CSS_REGION": DEFAULT_REGION,
            "HUAWEICLOUD_SDK_AK": DEFAULT_ACCESS_KEY,
            "HUAWEICLOUD_SDK_SK": DEFAULT_SECRET_KEY,
            "CSS_UPGRADE_AGENCY": "css-upgrade-agency",
            "NOTIFY_TOPIC_ARN": topic_arn,
            "AWS_ENDPOINT_URL": aws.url,
            "AWS_ACCESS_KEY_ID": AWS_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": AWS_SECRET_ACCESS_KEY,
            "AWS_REGION": AWS_REGION,
            "AWS_DEFAULT_REGION": AWS_REGION,
        }
    )
    env.update(extra)
    return env


@dataclass(frozen=True)
class ChildRun:
    """The result a measured process reported, the parent's monotonic clock at its start, and its wall time."""

    result: dict[str, Any]
    started_at: float
    seconds: float


def run_child(module: str, mode: str, config: dict[str, Any], env: dict[str, str], workdir: Path, timeout: float) -> ChildRun:
    """Run `python -m module mode` in a fresh interpreter and return its result; raise BenchError when it fails."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=workdir, delete=False) as file:
        json.dump(config, file)
        config_path = file.name
    log_path = Path(config_path).with_suffix(".log")
    command = [sys.executable, "-m", module, mode]

    with log_path.open("w") as log:
        started_at = time.monotonic()
        try:
            completed = subprocess.run(
                command,
                cwd=PROJECT_ROOT,
                env={**env, CONFIG_VARIABLE: config_path},
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BenchError(f"{module} {mode} did not finish within {timeout:.0f} s:\n{_tail(log_path)}") from None
        seconds = time.monotonic() - started_at

    result = parse_result(completed.stdout)
    if completed.returncode != 0 or result is None:
        raise BenchError(f"{module} {mode} failed with exit status {completed.returncode}:\n{_tail(log_path)}")
    os.unlink(config_path)
    os.unlink(log_path)
    return ChildRun(result=result, started_at=started_at, seconds=seconds)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"
