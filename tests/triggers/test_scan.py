"""The scheduled scan against the CSS emulator's fleet, enqueuing into a moto queue (through a counting proxy)."""

from __future__ import annotations

import json
import logging
import math
import uuid

import pytest

from handler import runtime, scan
from handler.aws.sqs import MAX_BATCH_ROUNDS
from handler.config import ConfigurationError
from handler.core.models import Cluster
from handler.local.asl import LambdaContext
from handler.local.emulator import DEFAULT_PROJECT_ID, DEFAULT_REGION, Fault, generate_catalog
from handler.local.sandbox import Sandbox
from handler.observability import SERVICE

from . import AwsProxy, load_event, queue_bodies

EU_PROJECT = "1f0e8c7b6a5d4c3b2a1908f7e6d5c4b3"
UNKNOWN_PROJECT = "0123456789abcdef0123456789abcdef"
BOTH_PROJECTS = json.dumps([
    {"project_id": DEFAULT_PROJECT_ID, "region": DEFAULT_REGION},
    {"project_id": EU_PROJECT, "region": DEFAULT_REGION},
])

LOGSTASH = "610b571c-1d0f-53fb-af05-f367e528b606"
BROKEN = "91a0a411-aab7-5e56-b92b-fe201054c23d"
BUSY = "d198abca-2d81-5b12-bd0e-17517cb43246"
DELETED = "8515be4d-214d-5629-9e9f-20448ad5124f"
LOGS_PROD = "ea244205-d641-45d9-9dcb-ab2236bcd07e"
EU_LOGS = "2014b9a5-d42e-5230-a525-8602d8aea8b1"


def run_scan(event=None):
    return scan.lambda_handler(event if event is not None else load_event("scan-schedule.json"), LambdaContext(300))


def expected_skip_reason(spec) -> str | None:
    """The skip reason of a catalog entry, derived from the catalog rather than from the code under test."""
    if spec.datastore.type not in ("elasticsearch", "opensearch"):
        return "unsupported_engine"
    if spec.status != "200":
        return "cluster_not_available"
    if spec.actions:
        return "operation_in_progress"
    return None


# -- skip rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "details, reason",
    [
        ({"status": "200", "datastore": {"type": "elasticsearch"}}, None),
        ({"status": "200", "datastore": {"type": "OpenSearch"}}, None),
        ({"status": "200", "datastore": {"type": "logstash"}}, "unsupported_engine"),
        ({"status": "200", "datastore": {}}, "unsupported_engine"),
        ({"status": "303", "datastore": {"type": "elasticsearch"}}, "cluster_not_available"),
        ({"status": "100", "datastore": {"type": "opensearch"}}, "cluster_not_available"),
        ({"status": None, "datastore": {"type": "opensearch"}}, "cluster_not_available"),
        ({"status": "200", "actions": ["SNAPSHOTTING"], "datastore": {"type": "elasticsearch"}}, "operation_in_progress"),
        ({"status": "303", "actions": ["REBOOTING"], "datastore": {"type": "logstash"}}, "unsupported_engine"),
        ({"id": "not-a-uuid", "status": "200", "datastore": {"type": "elasticsearch"}}, "invalid_cluster_id"),
    ],
    ids=["elasticsearch", "opensearch-any-case", "logstash", "no-engine", "failed", "creating", "no-status", "busy",
         "engine-first", "invalid-id"],
)
def test_skip_reason(details, reason):
    cluster = Cluster.model_validate({"id": LOGS_PROD, **details})

    assert scan.skip_reason(cluster) == reason


# -- the Lambda function ----------------------------------------------------------------------------


def test_scan_enqueues_available_clusters(sandbox, env):
    env(SCAN_TARGETS=BOTH_PROJECTS)

    summary = run_scan()

    bodies = queue_bodies(sandbox.boto("sqs"), sandbox.work_queue_url)
    enqueued = {body["cluster_id"] for body in bodies}
    assert summary["status"] == "completed"
    assert summary["clusters_found"] == 15
    assert summary["checks_enqueued"] == 12
    assert summary["failed_to_enqueue"] == 0
    assert len(bodies) == 12
    assert LOGS_PROD in enqueued
    assert EU_LOGS in enqueued
    assert enqueued.isdisjoint({LOGSTASH, BROKEN, BUSY, DELETED})


def test_scan_work_message_shape(sandbox, env):
    env(SCAN_TARGETS=BOTH_PROJECTS)

    run_scan()

    bodies = {body["cluster_id"]: body for body in queue_bodies(sandbox.boto("sqs"), sandbox.work_queue_url)}
    assert bodies[LOGS_PROD] == {
        "cluster_id": LOGS_PROD,
        "project_id": DEFAULT_PROJECT_ID,
        "region": DEFAULT_REGION,
        "source": "schedule",
        "correlation_id": load_event("scan-schedule.json")["execution_id"],
    }
    assert bodies[EU_LOGS]["project_id"] == EU_PROJECT


def test_scan_reports_skip_reasons(sandbox, env):
    env(SCAN_TARGETS=BOTH_PROJECTS)

    summary = run_scan()

    by_reason = summary["targets"][0]["skipped"]["by_reason"]
    assert summary["skipped"] == {"count": 3, "by_reason": {"cluster_not_available": 1, "operation_in_progress": 1, "unsupported_engine": 1}}
    assert by_reason["unsupported_engine"] == {"count": 1, "cluster_ids": [LOGSTASH]}
    assert by_reason["cluster_not_available"] == {"count": 1, "cluster_ids": [BROKEN]}
    assert by_reason["operation_in_progress"] == {"count": 1, "cluster_ids": [BUSY]}
    assert summary["targets"][1]["skipped"] == {"count": 0, "by_reason": {}}


def test_scan_logs_each_skipped_cluster(sandbox, env, caplog):
    env(SCAN_TARGETS=BOTH_PROJECTS)
    caplog.set_level(logging.INFO, logger=SERVICE)

    run_scan()

    skipped = {record.cluster_id: record.reason for record in caplog.records if record.getMessage() == "cluster skipped"}
    assert skipped == {LOGSTASH: "unsupported_engine", BROKEN: "cluster_not_available", BUSY: "operation_in_progress"}


def test_scan_without_targets_does_nothing(sandbox, caplog):
    caplog.set_level(logging.INFO, logger=SERVICE)

    summary = run_scan()

    bodies = queue_bodies(sandbox.boto("sqs"), sandbox.work_queue_url)
    assert summary["status"] == "nothing_to_scan"
    assert "SCAN_TARGETS is not set" in summary["message"]
    assert summary["clusters_found"] == 0
    assert bodies == []
    assert sandbox.emulator.call_count("list_clusters") == 0
    assert "nothing to scan: SCAN_TARGETS is not set" in caplog.messages


def test_scan_fifo_queue_groups_by_cluster(sandbox, env):
    sqs = sandbox.boto("sqs")
    queue_url = sqs.create_queue(QueueName=f"scan-work-{uuid.uuid4().hex[:8]}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    env(SCAN_TARGETS=BOTH_PROJECTS, WORK_QUEUE_URL=queue_url)

    summary = run_scan()

    messages = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]).get("Messages"):
        messages += batch
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    assert summary["checks_enqueued"] == 12
    assert len(messages) == 12
    assert all(message["Attributes"]["MessageGroupId"] == json.loads(message["Body"])["cluster_id"] for message in messages)


@pytest.mark.parametrize("paging", ["pages", "items"])
def test_scan_large_fleet_batches_by_ten(paging, monkeypatch):
    catalog = generate_catalog(2050, seed=20261204)
    expected = {spec.id: expected_skip_reason(spec) for spec in catalog.projects[0].clusters}
    eligible = {cluster_id for cluster_id, reason in expected.items() if reason is None}
    skipped_counts: dict[str, int] = {}
    for reason in expected.values():
        if reason is not None:
            skipped_counts[reason] = skipped_counts.get(reason, 0) + 1

    with Sandbox(catalog) as box, AwsProxy(box.moto_url, drain=box.boto("sqs")) as proxy:
        box.emulator.cluster_paging = paging
        for name, value in box.environment().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", proxy.url)
        monkeypatch.setenv("SCAN_TARGETS", json.dumps([{"project_id": DEFAULT_PROJECT_ID, "region": DEFAULT_REGION}]))
        runtime.reset()

        summary = run_scan()
        depth = box.queue_depth(box.work_queue_url)
        list_calls = box.emulator.call_count("list_clusters")

    enqueued = [body["cluster_id"] for body in proxy.drained]
    assert summary["clusters_found"] == 2050
    assert summary["checks_enqueued"] == len(eligible)
    assert summary["skipped"]["by_reason"] == dict(sorted(skipped_counts.items()))
    assert summary["failed_to_enqueue"] == 0
    assert sorted(enqueued) == sorted(eligible)
    assert depth == 0
    assert proxy.operations["SendMessageBatch"] == math.ceil(len(eligible) / 10)
    assert proxy.operations["SendMessage"] == 0
    assert list_calls <= math.ceil(2050 / 1000) + 1


def test_scan_reports_entries_that_keep_failing(sandbox, env):
    with AwsProxy(sandbox.moto_url) as proxy:
        proxy.fail_entries = {LOGS_PROD, EU_LOGS}
        env(SCAN_TARGETS=BOTH_PROJECTS, AWS_ENDPOINT_URL_SQS=proxy.url)

        summary = run_scan()

        bodies = queue_bodies(sandbox.boto("sqs"), sandbox.work_queue_url)
    # Target one has 11 clusters to enqueue (2 calls), target two has 1 (1 call); each failing
    # entry is sent again in every further round.
    first_round = math.ceil(11 / 10) + 1
    assert summary["status"] == "completed_with_errors"
    assert summary["failed_to_enqueue"] == 2
    assert summary["targets"][0]["failed_cluster_ids"] == [LOGS_PROD]
    assert summary["targets"][1]["failed_cluster_ids"] == [EU_LOGS]
    assert summary["checks_enqueued"] == 10
    assert len(bodies) == 10
    assert proxy.operations["SendMessageBatch"] == first_round + 2 * (MAX_BATCH_ROUNDS - 1)


@pytest.mark.parametrize(
    "fault",
    [None, Fault(kind="server_error", route="list_clusters", times=4)],
    ids=["access-denied", "server-errors"],
)
def test_scan_target_failure_spares_others(sandbox, env, fault):
    targets = [{"project_id": UNKNOWN_PROJECT if fault is None else DEFAULT_PROJECT_ID, "region": DEFAULT_REGION},
               {"project_id": EU_PROJECT, "region": DEFAULT_REGION}]
    if fault is not None:
        sandbox.emulator.inject(fault)
    env(SCAN_TARGETS=json.dumps(targets))

    summary = run_scan()

    bodies = queue_bodies(sandbox.boto("sqs"), sandbox.work_queue_url)
    assert summary["status"] == "completed_with_errors"
    assert summary["targets_with_errors"] == 1
    assert summary["targets"][0]["error"]
    assert summary["targets"][0]["checks_enqueued"] == 0
    assert summary["targets"][1]["error"] is None
    assert [body["cluster_id"] for body in bodies] == [EU_LOGS]


def test_scan_rejected_credentials_raise(sandbox, env):
    env(SCAN_TARGETS=BOTH_PROJECTS, HUAWEICLOUD_SDK_SK="not-the-emulator-secret")

    with pytest.raises(ConfigurationError):
        run_scan()

    assert queue_bodies(sandbox.boto("sqs"), sandbox.work_queue_url) == []


def test_scan_without_queue_raises(sandbox, env):
    env(SCAN_TARGETS=BOTH_PROJECTS, WORK_QUEUE_URL=None)

    with pytest.raises(ConfigurationError) as raised:
        run_scan()

    assert "WORK_QUEUE_URL" in str(raised.value)
    assert sandbox.emulator.call_count("list_clusters") == 0


def test_scan_missing_queue_raises(sandbox, env):
    missing = sandbox.work_queue_url.rsplit("/", 1)[0] + "/no-such-queue"
    env(SCAN_TARGETS=BOTH_PROJECTS, WORK_QUEUE_URL=missing)

    with pytest.raises(ConfigurationError):
        run_scan()


def test_scan_invalid_targets_raise(sandbox, env):
    env(SCAN_TARGETS='[{"project_id": "nope", "region": "ap-southeast-1"}]')

    with pytest.raises(ConfigurationError) as raised:
        run_scan()

    assert "SCAN_TARGETS[0].project_id" in str(raised.value)


@pytest.mark.parametrize(
    "event, expected",
    [
        ({"execution_id": "c3a1e0b2-5f4d-4e8a-9b6c-7d2e1f0a9b8c"}, "c3a1e0b2-5f4d-4e8a-9b6c-7d2e1f0a9b8c"),
        ({"execution_id": "<aws.scheduler.execution-id>"}, None),
        ({"execution_id": 7}, None),
        ({}, None),
        (None, None),
    ],
    ids=["scheduler-id", "unsubstituted", "number", "absent", "no-event"],
)
def test_scan_id_from_event(event, expected):
    scan_id = scan.scan_id_from(event)

    if expected is None:
        assert scan_id.startswith("scan-")
        assert len(scan_id) == 21
    else:
        assert scan_id == expected
