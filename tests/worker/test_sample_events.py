"""The worker's sample event in events/ (usable with `sam local invoke -e`) runs through the real handler."""

from __future__ import annotations

import json
from pathlib import Path

from handler import worker
from handler.local.sandbox import FakeLambdaContext

SAMPLE = Path(__file__).resolve().parents[2] / "events" / "worker-sqs.json"


def test_worker_sample_event(sandbox):
    event = json.loads(SAMPLE.read_text())

    # Called directly: the sample's receipt handles are made up, so nothing can be deleted with them.
    response = worker.lambda_handler(event, FakeLambdaContext())

    assert response == {"batchItemFailures": []}
    events = sandbox.received_events()
    assert sorted(received["cluster"]["name"] for received in events) == ["logs-prod", "search-prod"]
    letters = sandbox.dead_letters()
    assert [(letter["body"], letter["error_reason"]) for letter in letters] == [('{"cluster_id": "not-a-cluster-id"}', "invalid_message")]
