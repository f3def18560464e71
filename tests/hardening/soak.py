"""The soak harness: many work messages through moto SQS, the real worker and moto SNS, with faults.

The CSS emulator and two moto servers (SQS and SNS in one, DynamoDB in the other) run as child
processes on 127.0.0.1, so that on a machine with two cores they do not share one interpreter lock
with the worker. This process plays Lambda's SQS event source mapping with several concurrent
pollers. Each poller receives a batch of up to 10 records, invokes `handler.worker.lambda_handler`,
deletes the records that succeeded and gives the failed ones back to the queue after 1 s. A batch is
held for its whole invocation, as a visibility timeout longer than the function timeout does.

Outcomes are observed by wrapping `handler.worker.process_message`: each delivery of each SQS
message is recorded with its outcome or the exception that sends it back. The wrapper changes
nothing about what the worker does. The accounting then reconciles these outcomes with what
arrived on the subscriber queue and on the dead-letter queue.

moto walks every message of a queue on each send and receive, so the producer keeps the backlog
short and a consumer empties the subscriber and dead-letter queues as events arrive.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

import boto3
import requests

from handler import worker
from handler.local.emulator.catalog import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_PROJECT_ID,
    DEFAULT_REGION,
    DEFAULT_SECRET_KEY,
    Catalog,
    generate_catalog,
)
from handler.local.sandbox import AWS_ACCESS_KEY_ID, AWS_REGION, AWS_SECRET_ACCESS_KEY, FakeLambdaContext, sqs_record

# Runs a moto server on a free port of 127.0.0.1, prints its URL, and stops when standard input closes.
# It handles one request at a time. moto (5.2) checks a DynamoDB condition and writes the item in two
# steps without a lock, so two concurrent conditional writes can both succeed, where DynamoDB applies
# each atomically. Its SQS receive likewise marks messages received without a lock. Serving one
# request at a time restores the services' atomicity, and moto is bound by one interpreter lock anyway.
_MOTO_SERVER = """
import logging, sys, threading
logging.getLogger("werkzeug").setLevel(logging.ERROR)
from werkzeug.serving import make_server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
backend = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()
def app(environ, start_response):
    with lock:
        return list(backend(environ, start_response))
server = make_server("127.0.0.1", 0, app, True, request_handler=MotoRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
host, port = server.server_address[:2]
print(f"http://{host}:{port}", flush=True)
sys.stdin.read()
server.shutdown()
"""

# Transient faults only: every message can eventually be processed. Throttling keeps the emulator's
# default `Retry-After: 1`.
SOAK_FAULT_KINDS: list[Any] = [
    "throttle",
    {"kind": "server_error", "status": 500},
    {"kind": "server_error", "status": 503},
    {"kind": "css_error", "error_code": "CSS.0036"},
    {"kind": "css_error", "error_code": "CSS.6013"},
    {"kind": "css_error", "error_code": "CSS.0011", "status": 202},
    "connection_reset",
    "empty_body",
    "malformed_json",
]

# Outcomes of one delivery as the wrapper records them: the worker's Outcome values, or the name of
# the exception that reports the record for redelivery.
ANNOUNCED = "announced"
SUPPRESSED = "suppressed"
DEAD_LETTERED = "dead_lettered"
TERMINAL = (ANNOUNCED, SUPPRESSED, DEAD_LETTERED)
REDELIVER = "Redeliver"

# What a planned message is expected to become.
KNOWN = "known cluster"
UNKNOWN = "unknown cluster"
INVALID = "invalid message"


class ChildServer:
    """A server in a child process whose first line of output is its URL; stopped on exit."""

    def __init__(self, argv: list[str]) -> None:
        self._process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        line = self._process.stdout.readline().strip() if self._process.stdout else ""
        if not line.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"child server {argv[:3]} did not report its URL (got {line!r})")
        self.url = line

    @property
    def pid(self) -> int:
        return self._process.pid

    def cpu_seconds(self) -> float | None:
        """User plus system CPU time of the child so far, where /proc shows it."""
        try:
            with open(f"/proc/{self._process.pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self._process.poll() is None:
            if self._process.stdin:
                self._process.stdin.close()
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)


class SoakStack:
    """The emulator serving a generated fleet, moto for SQS, SNS and DynamoDB, and the stack's resources."""

    def __init__(self, n_clusters: int, seed: int, *, max_receive_count: int = 1000) -> None:
        self.n_clusters = n_clusters
        self.seed = seed
        self.max_receive_count = max_receive_count
        self._children: list[ChildServer] = []

    def __enter__(self) -> "SoakStack":
        try:
            self.emulator = self._child([sys.executable, "-m", "handler.local.emulator", "--generate", str(self.n_clusters),
                                         "--seed", str(self.seed), "--log-level", "WARNING"])
            self.moto = self._child([sys.executable, "-c", _MOTO_SERVER])
            self.moto_dynamodb = self._child([sys.executable, "-c", _MOTO_SERVER])
            self._create_resources()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        for child in reversed(self._children):
            child.stop()
        self._children = []

    def _child(self, argv: list[str]) -> ChildServer:
        child = ChildServer(argv)
        self._children.append(child)
        return child

    def boto(self, service: str) -> Any:
        endpoint = self.moto_dynamodb.url if service == "dynamodb" else self.moto.url
        return boto3.client(
            service,
            region_name=AWS_REGION,
            endpoint_url=endpoint,
            aws_access_key_id=AWS_ACCESS_KEY_ID,
            aws_secret_access_key=AWS_SECRET_ACCESS_KEY,
        )

    def _create_resources(self) -> None:
        sqs, sns, dynamodb = self.boto("sqs"), self.boto("sns"), self.boto("dynamodb")
        suffix = uuid.uuid4().hex[:8]

        self.dead_letter_queue_url = sqs.create_queue(QueueName=f"soak-dlq-{suffix}")["QueueUrl"]
        dlq_arn = _queue_arn(sqs, self.dead_letter_queue_url)
        self.work_queue_url = sqs.create_queue(
            QueueName=f"soak-work-{suffix}",
            Attributes={
                "VisibilityTimeout": "1",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(self.max_receive_count)}),
            },
        )["QueueUrl"]
        self.work_queue_arn = _queue_arn(sqs, self.work_queue_url)

        self.topic_arn = sns.create_topic(Name=f"soak-events-{suffix}")["TopicArn"]
        self.subscriber_queue_url = sqs.create_queue(QueueName=f"soak-subscriber-{suffix}")["QueueUrl"]
        sns.subscribe(
            TopicArn=self.topic_arn,
            Protocol="sqs",
            Endpoint=_queue_arn(sqs, self.subscriber_queue_url),
            Attributes={"RawMessageDelivery": "true"},
        )

        self.table_name = f"soak-announced-{suffix}"
        dynamodb.create_table(
            TableName=self.table_name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

    def environment(self, max_concurrency: int) -> dict[str, str]:
        """The variables the worker reads, aimed at this stack."""
        return {
            "CSS_ENDPOINT": self.emulator.url,
            "CSS_PROJECT_ID": DEFAULT_PROJECT_ID,
            "CSS_REGION": DEFAULT_REGION,
            "HUAWEICLOUD_SDK_AK": DEFAULT_ACCESS_KEY,
            "HUAWEICLOUD_SDK_SK": DEFAULT_SECRET_KEY,
            "CSS_UPGRADE_AGENCY": "css-upgrade-agency",
            "NOTIFY_TOPIC_ARN": self.topic_arn,
            "DEDUPE_TABLE": self.table_name,
            "DEAD_LETTER_QUEUE_URL": self.dead_letter_queue_url,
            "WORK_QUEUE_URL": self.work_queue_url,
            "MAX_CONCURRENCY": str(max_concurrency),
            "AWS_ENDPOINT_URL": self.moto.url,
            "AWS_ENDPOINT_URL_DYNAMODB": self.moto_dynamodb.url,
            "AWS_ACCESS_KEY_ID": AWS_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": AWS_SECRET_ACCESS_KEY,
            "AWS_REGION": AWS_REGION,
        }

    def set_failure_rate(self, rate: float, seed: int, kinds: list[Any]) -> None:
        """Make the emulator fail a fraction `rate` of CSS calls (its control API, as it runs in a child process)."""
        response = requests.post(f"{self.emulator.url}/_emulator/failure-rate", json={"rate": rate, "seed": seed, "kinds": kinds}, timeout=10)
        response.raise_for_status()

    def css_calls(self) -> int:
        response = requests.get(f"{self.emulator.url}/_emulator/calls", timeout=60)
        response.raise_for_status()
        return int(response.json()["count"])

    def queue_depth(self, queue_url: str) -> int:
        attributes = self.boto("sqs").get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _queue_arn(sqs: Any, queue_url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


# -- the messages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """One message to send: its body, what it is, and the cluster it names (lower case) when valid."""

    body: str
    kind: str
    cluster_id: str | None = None


def plan_messages(catalog: Catalog, count: int, seed: int) -> list[Planned]:
    """Plan `count` messages: mostly known clusters, some unknown ones, some invalid, some sent twice.

    Known clusters are drawn with repetition, so many are checked more than once and their later
    checks are suppressed. About 5 % of the messages are sent twice in a row with the same body.
    """
    rng = random.Random(seed)
    clusters = [cluster.id for project in catalog.projects for cluster in project.clusters]
    unknown = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(10)]
    known_ids = set(clusters)
    unknown = [cluster for cluster in unknown if cluster not in known_ids]

    planned: list[Planned] = []
    while len(planned) < count:
        roll = rng.random()
        if roll < 0.03:
            message = Planned(_invalid_body(rng, rng.choice(clusters)), INVALID)
        elif roll < 0.05:
            cluster = rng.choice(unknown)
            message = Planned(_valid_body(rng, cluster, len(planned)), UNKNOWN, cluster)
        else:
            cluster = rng.choice(clusters)
            message = Planned(_valid_body(rng, cluster, len(planned)), KNOWN, cluster)
        planned.append(message)
        if rng.random() < 0.05 and len(planned) < count:
            planned.append(message)
    return planned


def _valid_body(rng: random.Random, cluster_id: str, index: int) -> str:
    form = rng.randrange(4)
    if form == 0:
        return cluster_id
    if form == 1:
        return cluster_id.upper()
    if form == 2:
        return json.dumps({"cluster_id": cluster_id, "project_id": DEFAULT_PROJECT_ID, "region": DEFAULT_REGION})
    return json.dumps({"clusterId": cluster_id, "correlationId": f"soak-{index}", "upgradeTypes": ["same", "cross"]})


def _invalid_body(rng: random.Random, cluster_id: str) -> str:
    forms = (
        "{not json",
        "not-a-cluster-id",
        json.dumps({"cluster_id": 42}),
        json.dumps({"cluster_id": cluster_id, "clusterId": cluster_id}),
        json.dumps({"cluster_id": cluster_id, "upgrade_types": ["sideways"]}),
        json.dumps({"cluster_id": cluster_id, "reply_to": {"slack_response_url": "https://hooks.slack.com.evil.invalid/x"}}),
        json.dumps({"cluster_id": cluster_id.replace("-", "\u2010", 1)}, ensure_ascii=False),
        json.dumps({"cluster_id": cluster_id, "project_id": "../" + DEFAULT_PROJECT_ID}),
    )
    return rng.choice(forms)


# -- observing the worker -------------------------------------------------------------------------


class DeliveryLog:
    """The outcome of every delivery of every SQS message, as the wrapped `process_message` returned or raised it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.deliveries: dict[str, list[str]] = defaultdict(list)

    def wrap(self, process_message: Callable[..., Any]) -> Callable[..., Any]:
        log = self

        def recording(record: Any, runtime: Any, deadline: Any) -> Any:
            try:
                outcome = process_message(record, runtime, deadline)
            except Exception as error:
                log.add(record.message_id, type(error).__name__)
                raise
            log.add(record.message_id, outcome.value)
            return outcome

        return recording

    def add(self, message_id: str, outcome: str) -> None:
        with self._lock:
            self.deliveries[message_id].append(outcome)

    def finished(self) -> int:
        with self._lock:
            return sum(1 for outcomes in self.deliveries.values() if outcomes and outcomes[-1] in TERMINAL)

    def snapshot(self) -> dict[str, list[str]]:
        with self._lock:
            return {message_id: list(outcomes) for message_id, outcomes in self.deliveries.items()}


@dataclass
class Run:
    """What happened during a soak run, for the accounting."""

    sent: dict[str, Planned] = field(default_factory=dict)  # SQS message ID -> planned message
    events: list[dict[str, Any]] = field(default_factory=list)
    letters: list[dict[str, Any]] = field(default_factory=list)
    invocations: int = 0
    invocation_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timed_out: bool = False


def run_soak(
    stack: SoakStack,
    planned: list[Planned],
    deliveries: DeliveryLog,
    *,
    pollers: int = 4,
    backlog: int = 80,
    time_limit: float = 900.0,
) -> Run:
    """Send `planned`, let `pollers` concurrent invocations work the queue, and collect what arrived."""
    run = Run()
    lock = threading.Lock()
    stop = threading.Event()
    started = time.monotonic()

    def produce() -> None:
        sqs = stack.boto("sqs")
        position = 0
        while position < len(planned) and not stop.is_set():
            if len(run.sent) - deliveries.finished() >= backlog:
                time.sleep(0.02)
                continue
            chunk = planned[position : position + 10]
            response = sqs.send_message_batch(
                QueueUrl=stack.work_queue_url,
                Entries=[{"Id": str(index), "MessageBody": message.body} for index, message in enumerate(chunk)],
            )
            if response.get("Failed"):
                raise RuntimeError(f"sending to the work queue failed: {response['Failed']}")
            with lock:
                for entry in response["Successful"]:
                    run.sent[entry["MessageId"]] = chunk[int(entry["Id"])]
            position += len(chunk)

    def poll() -> None:
        sqs = stack.boto("sqs")
        while not stop.is_set():
            # Short polling: a long poll would hold the moto server, which serves one request at a time.
            messages = sqs.receive_message(
                QueueUrl=stack.work_queue_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=300,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if messages:
                _invoke(sqs, messages)
            else:
                time.sleep(0.05)

    def _invoke(sqs: Any, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [sqs_record(message, stack.work_queue_arn) for message in messages]}
        try:
            response = worker.lambda_handler(event, FakeLambdaContext(60.0))
            failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        except Exception as error:  # noqa: BLE001 - a failed invocation leaves every record on the queue
            with lock:
                run.invocation_errors.append(f"{type(error).__name__}: {error}")
            failed = {message["MessageId"] for message in messages}
        with lock:
            run.invocations += 1

        done = [message for message in messages if message["MessageId"] not in failed]
        again = [message for message in messages if message["MessageId"] in failed]
        if done:
            sqs.delete_message_batch(
                QueueUrl=stack.work_queue_url,
                Entries=[{"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]} for index, message in enumerate(done)],
            )
        if again:
            sqs.change_message_visibility_batch(
                QueueUrl=stack.work_queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 1}
                    for index, message in enumerate(again)
                ],
            )

    def consume(final: threading.Event) -> None:
        sqs = stack.boto("sqs")
        idle = 0
        while idle < 2 or not final.is_set():
            received = _drain_once(sqs, stack.subscriber_queue_url, run.events, parse_event)
            received += _drain_once(sqs, stack.dead_letter_queue_url, run.letters, parse_letter)
            idle = 0 if received else idle + 1
            if not received and not final.is_set():
                time.sleep(0.1)

    final = threading.Event()
    threads = [threading.Thread(target=produce, name="soak-producer", daemon=True)]
    threads += [threading.Thread(target=poll, name=f"soak-poller-{number}", daemon=True) for number in range(pollers)]
    consumer = threading.Thread(target=consume, args=(final,), name="soak-consumer", daemon=True)
    for thread in threads + [consumer]:
        thread.start()

    while True:
        time.sleep(0.2)
        if len(run.sent) == len(planned) and deliveries.finished() >= len(planned) and stack.queue_depth(stack.work_queue_url) == 0:
            break
        if time.monotonic() - started > time_limit:
            run.timed_out = True
            break

    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    final.set()
    consumer.join(timeout=120)
    run.seconds = time.monotonic() - started
    return run


def _drain_once(sqs: Any, queue_url: str, into: list[dict[str, Any]], parse: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
    messages = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    ).get("Messages", [])
    if not messages:
        return 0
    into.extend(parse(message) for message in messages)
    sqs.delete_message_batch(
        QueueUrl=queue_url,
        Entries=[{"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]} for index, message in enumerate(messages)],
    )
    return len(messages)


def parse_event(message: dict[str, Any]) -> dict[str, Any]:
    return json.loads(message["Body"])


def parse_letter(message: dict[str, Any]) -> dict[str, Any]:
    attributes = {name: value.get("StringValue") for name, value in message.get("MessageAttributes", {}).items()}
    return {"body": message["Body"], **attributes}


# -- the accounting -------------------------------------------------------------------------------


@dataclass
class Accounting:
    """The numbers a soak run must reconcile, and the discrepancies found (empty when it does)."""

    sent: int
    unique: int
    clusters: int
    announced: int
    suppressed: int
    dead_lettered: int
    redeliveries: int
    broadcasts: int
    duplicates: int
    redrive_moved: int
    invocations: int
    seconds: float
    problems: list[str]

    def lines(self) -> list[str]:
        return [
            f"sent={self.sent} unique={self.unique} clusters={self.clusters} announced={self.announced} suppressed={self.suppressed} "
            f"dead-lettered={self.dead_lettered} redeliveries={self.redeliveries} broadcasts={self.broadcasts} "
            f"duplicates={self.duplicates} redrive-moved={self.redrive_moved}",
            f"invocations={self.invocations} seconds={self.seconds:.1f}",
        ]


def reconcile(planned: list[Planned], run: Run, deliveries: DeliveryLog, remaining_in_queue: int) -> Accounting:
    """Reconcile every message's outcome with the planned messages, the broadcasts and the dead letters."""
    problems: list[str] = []
    outcomes = deliveries.snapshot()

    final: dict[str, str] = {}
    redeliveries = 0
    for message_id in run.sent:
        history = outcomes.get(message_id, [])
        terminal = [outcome for outcome in history if outcome in TERMINAL]
        if len(terminal) != 1 or history[-1] not in TERMINAL:
            problems.append(f"message {message_id} has outcomes {history}: expected redeliveries, then exactly one final outcome")
            continue
        others = [outcome for outcome in history[:-1] if outcome != REDELIVER]
        if others:
            problems.append(f"message {message_id} was sent back by {others}, not only by Redeliver")
        redeliveries += len(history) - 1
        final[message_id] = history[-1]
    strangers = set(outcomes) - set(run.sent)
    if strangers:
        problems.append(f"{len(strangers)} processed message IDs were never sent")

    counts = Counter(final.values())
    known = [message for message in run.sent.values() if message.kind == KNOWN]
    unknown = [message for message in run.sent.values() if message.kind == UNKNOWN]
    invalid = [message for message in run.sent.values() if message.kind == INVALID]
    distinct_known = {message.cluster_id for message in known}
    distinct_unknown = {message.cluster_id for message in unknown}

    _expect(problems, "messages sent", len(run.sent), len(planned))
    _expect(problems, "announced", counts[ANNOUNCED], len(distinct_known))
    _expect(problems, "suppressed", counts[SUPPRESSED], len(known) - len(distinct_known))
    _expect(problems, "dead-lettered", counts[DEAD_LETTERED], len(unknown) + len(invalid))
    for message_id, outcome in final.items():
        expected = DEAD_LETTERED if run.sent[message_id].kind != KNOWN else outcome
        if outcome != expected:
            problems.append(f"message {message_id} ({run.sent[message_id].kind}) ended {outcome}")

    event_ids = Counter(event["event_id"] for event in run.events)
    duplicates = sum(times - 1 for times in event_ids.values() if times > 1)
    checks = [event for event in run.events if event["event_type"] != "check.failed"]
    failures = [event for event in run.events if event["event_type"] == "check.failed"]
    _expect(problems, "events of announced checks", len(checks), counts[ANNOUNCED])
    _expect(problems, "clusters with a check event", sorted({event["cluster"]["id"] for event in checks}), sorted(distinct_known))
    _expect(problems, "check.failed events", sorted(event["cluster"]["id"] for event in failures), sorted(distinct_unknown))
    for event in checks:
        message_id = event["trigger"]["message_id"]
        if final.get(message_id) != ANNOUNCED:
            problems.append(f"event {event['event_id']} names message {message_id}, whose outcome is {final.get(message_id)}")

    redrive_moved = [letter for letter in run.letters if "error_reason" not in letter]
    letters = sorted((letter["body"], letter.get("error_reason")) for letter in run.letters if "error_reason" in letter)
    expected_letters = sorted(
        [(message.body, "invalid_message") for message in invalid] + [(message.body, "cluster_not_found") for message in unknown]
    )
    _expect(problems, "dead letters (body, error_reason)", letters, expected_letters)
    _expect(problems, "messages moved by SQS redrive", len(redrive_moved), 0)
    _expect(problems, "messages left on the work queue", remaining_in_queue, 0)
    _expect(problems, "failed invocations", run.invocation_errors, [])
    if run.timed_out:
        problems.append("the run did not finish within its time limit")

    return Accounting(
        sent=len(run.sent),
        unique=len({message.body for message in run.sent.values()}),
        clusters=len(distinct_known),
        announced=counts[ANNOUNCED],
        suppressed=counts[SUPPRESSED],
        dead_lettered=counts[DEAD_LETTERED],
        redeliveries=redeliveries,
        broadcasts=len(run.events),
        duplicates=duplicates,
        redrive_moved=len(redrive_moved),
        invocations=run.invocations,
        seconds=run.seconds,
        problems=problems,
    )


def _expect(problems: list[str], what: str, actual: Any, expected: Any) -> None:
    if actual != expected:
        shown_actual, shown_expected = _short(actual), _short(expected)
        problems.append(f"{what}: got {shown_actual}, expected {shown_expected}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 300 else text[:300] + f"... ({len(value) if hasattr(value, '__len__') else '?'} items)"


def soak_catalog(n_clusters: int, seed: int) -> Catalog:
    """The catalog the emulator child serves for `--generate n_clusters --seed seed`."""
    return generate_catalog(n_clusters, seed)
