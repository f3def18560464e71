"""SQS calls end to end against moto (in-process and server), and batch resending against canned answers."""

from __future__ import annotations

import json

import pytest

from handler.aws import sqs
from handler.aws.errors import AwsConfigurationError
from handler.aws.sqs import BatchEntry
from handler.retry import RetryPolicy

from . import MODES, CannedResponse, CannedServer, client_for, moto_backend, running_moto_server


@pytest.fixture(scope="module")
def moto_server():
    with running_moto_server() as url:
        yield url


@pytest.fixture(params=MODES)
def aws(request):
    with moto_backend(request.param, lambda: request.getfixturevalue("moto_server")) as backend:
        yield backend


@pytest.fixture
def canned():
    with CannedServer() as server:
        yield server


def test_send_message_with_attributes(aws):
    queue_url = aws.boto("sqs").create_queue(QueueName="work")["QueueUrl"]

    message_id = sqs.send_message(queue_url, "héllo ✓", {"error_reason": "invalid_message"}, client=aws.client)

    received = aws.boto("sqs").receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])["Messages"]
    assert received[0]["MessageId"] == message_id
    assert received[0]["Body"] == "héllo ✓"
    assert received[0]["MessageAttributes"] == {"error_reason": {"StringValue": "invalid_message", "DataType": "String"}}


def test_send_message_fifo_group_and_dedup(aws):
    queue_url = aws.boto("sqs").create_queue(QueueName="work.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]

    first = sqs.send_message(queue_url, "one", group_id="cluster-a", dedup_id="d-1", client=aws.client)
    sqs.send_message(queue_url, "one again", group_id="cluster-a", dedup_id="d-1", client=aws.client)

    received = aws.boto("sqs").receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert [message["MessageId"] for message in received] == [first]
    assert received[0]["Attributes"]["MessageGroupId"] == "cluster-a"


def test_send_message_batch_more_than_ten(aws):
    queue_url = aws.boto("sqs").create_queue(QueueName="work")["QueueUrl"]
    entries = [BatchEntry(f"m{number}", f"body {number}", {"n": str(number)}) for number in range(23)]

    failed = sqs.send_message_batch(queue_url, entries, client=aws.client)

    attributes = aws.boto("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert failed == []
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "23"


def test_send_message_batch_rejected_chunk_reported(aws):
    queue_url = aws.boto("sqs").create_queue(QueueName="work.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    entries = [BatchEntry(f"e{number}", f"body {number}", group_id="g", dedup_id=f"d-{number}") for number in range(11)]
    entries.append(BatchEntry("no-group", "no group", dedup_id="d-x"))

    failed = sqs.send_message_batch(queue_url, entries, client=aws.client)

    attributes = sqs.get_queue_attributes(queue_url, ["ApproximateNumberOfMessages"], client=aws.client)
    # SQS rejects the whole second call (a FIFO message without a group ID); the first call's ten arrive.
    assert failed == ["e10", "no-group"]
    assert attributes["ApproximateNumberOfMessages"] == "10"


def test_receive_and_delete_message(aws):
    queue_url = aws.boto("sqs").create_queue(QueueName="work")["QueueUrl"]
    aws.boto("sqs").send_message(QueueUrl=queue_url, MessageBody="hello", MessageAttributes={
        "source": {"DataType": "String", "StringValue": "scan"}
    })

    messages = sqs.receive_message(queue_url, max_messages=10, client=aws.client)
    sqs.delete_message(queue_url, messages[0]["ReceiptHandle"], client=aws.client)

    attributes = sqs.get_queue_attributes(queue_url, client=aws.client)
    assert [message["Body"] for message in messages] == ["hello"]
    assert messages[0]["MessageAttributes"]["source"]["StringValue"] == "scan"
    assert messages[0]["Attributes"]["ApproximateReceiveCount"] == "1"
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_delete_message_batch(aws):
    queue_url = aws.boto("sqs").create_queue(QueueName="work")["QueueUrl"]
    for number in range(12):
        aws.boto("sqs").send_message(QueueUrl=queue_url, MessageBody=f"m{number}")
    handles = {}
    for _ in range(3):
        for message in sqs.receive_message(queue_url, max_messages=10, client=aws.client):
            handles[f"h{len(handles)}"] = message["ReceiptHandle"]

    failed = sqs.delete_message_batch(queue_url, handles, client=aws.client)

    attributes = sqs.get_queue_attributes(queue_url, client=aws.client)
    assert len(handles) == 12
    assert failed == []
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_get_queue_attributes_selected(aws):
    queue_url = aws.boto("sqs").create_queue(QueueName="work", Attributes={"VisibilityTimeout": "180"})["QueueUrl"]

    attributes = sqs.get_queue_attributes(queue_url, ["VisibilityTimeout"], client=aws.client)

    assert attributes == {"VisibilityTimeout": "180"}


def test_send_message_missing_queue(aws):
    queue_url = aws.boto("sqs").create_queue(QueueName="work")["QueueUrl"].replace("work", "gone")

    with pytest.raises(AwsConfigurationError) as caught:
        sqs.send_message(queue_url, "hello", client=aws.client)

    assert queue_url in str(caught.value)


def test_queue_url_other_region(aws):
    boto = aws.boto("sqs", region="eu-west-1")
    boto.create_queue(QueueName="work")
    # The AWS form of the URL: in server mode the request still goes to the configured endpoint,
    # signed for the URL's region, which is where moto looks the queue up.
    queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/work"

    sqs.send_message(queue_url, "hello", client=aws.client)

    local_url = boto.get_queue_url(QueueName="work")["QueueUrl"]
    assert boto.receive_message(QueueUrl=local_url)["Messages"][0]["Body"] == "hello"


def test_foreign_queue_host_sends_nothing(canned):
    client = client_for(canned)
    client_without_override = type(client).from_environ(
        {name: value for name, value in client.environ.items() if name != "AWS_ENDPOINT_URL"}
    )

    with pytest.raises(AwsConfigurationError, match="not on an AWS SQS host"):
        sqs.send_message(f"{canned.url}/123456789012/work", "hello", client=client_without_override)

    assert canned.requests == []


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"AWS.reserved": "x"}, "reserved"),
        ({"bad name": "x"}, "invalid message attribute name"),
        ({".leading": "x"}, "invalid message attribute name"),
        ({"a..b": "x"}, "invalid message attribute name"),
        ({"empty": ""}, "non-empty string"),
        ({"number": 5}, "non-empty string"),
        ({f"a{number}": "x" for number in range(11)}, "too many"),
    ],
)
def test_send_message_invalid_attributes(canned, attributes, message):
    with pytest.raises(ValueError, match=message):
        sqs.send_message("https://sqs.us-east-1.amazonaws.com/123456789012/work", "x", attributes, client=client_for(canned))
    assert canned.requests == []


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (["a", "a"], "duplicate"),
        (["a b"], "invalid batch entry ID"),
        (["x" * 81], "invalid batch entry ID"),
    ],
)
def test_send_message_batch_invalid_ids(canned, ids, message):
    entries = [BatchEntry(entry_id, "x") for entry_id in ids]
    with pytest.raises(ValueError, match=message):
        sqs.send_message_batch("https://sqs.us-east-1.amazonaws.com/123456789012/work", entries, client=client_for(canned))


def batch_response(successful: list[str], failed: list[tuple[str, bool]]) -> CannedResponse:
    body = {
        "Successful": [{"Id": entry_id, "MessageId": f"mid-{entry_id}", "MD5OfMessageBody": "x"} for entry_id in successful],
        "Failed": [
            {"Id": entry_id, "SenderFault": sender_fault, "Code": "InternalError" if not sender_fault else "InvalidParameterValue", "Message": "m"}
            for entry_id, sender_fault in failed
        ],
    }
    return CannedResponse(200, json.dumps(body))


QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/work"


def test_batch_resends_service_faults(canned):
    canned.enqueue(
        batch_response(["a"], [("b", False), ("c", True)]),
        batch_response(["b"], []),
    )
    entries = [BatchEntry(entry_id, entry_id) for entry_id in ("a", "b", "c")]

    failed = sqs.send_message_batch(QUEUE_URL, entries, client=client_for(canned))

    resent = [entry["Id"] for entry in canned.requests[1].json()["Entries"]]
    assert failed == ["c"]
    assert resent == ["b"]
    assert len(canned.requests) == 2


def test_batch_resending_bounded(canned):
    canned.default = batch_response([], [("a", False)])

    failed = sqs.send_message_batch(QUEUE_URL, [BatchEntry("a", "x")], client=client_for(canned))

    assert failed == ["a"]
    assert len(canned.requests) == sqs.MAX_BATCH_ROUNDS


def test_batch_unmentioned_entry_resent(canned):
    canned.enqueue(batch_response(["a"], []), batch_response(["b"], []))

    failed = sqs.send_message_batch(QUEUE_URL, [BatchEntry("a", "x"), BatchEntry("b", "y")], client=client_for(canned))

    assert failed == []
    assert [entry["Id"] for entry in canned.requests[1].json()["Entries"]] == ["b"]


def test_batch_permanent_call_error_fails_chunk(canned):
    canned.enqueue(CannedResponse(400, '{"__type": "BatchRequestTooLong", "message": "too long"}'))
    canned.default = batch_response([f"e{number}" for number in range(10, 12)], [])
    entries = [BatchEntry(f"e{number}", "x") for number in range(12)]

    failed = sqs.send_message_batch(QUEUE_URL, entries, client=client_for(canned))

    assert failed == [f"e{number}" for number in range(10)]
    assert len(canned.requests) == 2


def test_batch_configuration_error_raised(canned):
    canned.default = CannedResponse(400, '{"__type": "AccessDenied", "message": "denied"}')

    with pytest.raises(AwsConfigurationError):
        sqs.send_message_batch(QUEUE_URL, [BatchEntry("a", "x")], client=client_for(canned))


def test_batch_split_by_size(canned):
    canned.default = CannedResponse(200, '{"Successful": []}')
    entries = [BatchEntry(f"e{number}", "x" * 100_000) for number in range(3)]
    canned.enqueue(batch_response(["e0", "e1"], []), batch_response(["e2"], []))

    failed = sqs.send_message_batch(QUEUE_URL, entries, client=client_for(canned))

    sizes = [len(request.json()["Entries"]) for request in canned.requests]
    assert failed == []
    assert sizes == [2, 1]


def test_receive_message_long_poll_extends_read_timeout(canned):
    # The answer comes after 0.8 s: past the 0.2 s read timeout, within it plus the 2 s wait.
    canned.default = CannedResponse(200, '{"Messages": []}', delay=0.8)
    client = client_for(canned, timeout=(3.05, 0.2), retry_policy=RetryPolicy(max_attempts=1))

    messages = sqs.receive_message(QUEUE_URL, wait_seconds=2, client=client)

    assert messages == []
    assert canned.requests[0].json()["WaitTimeSeconds"] == 2


@pytest.mark.parametrize(("max_messages", "wait_seconds"), [(0, 0), (11, 0), (1, 21), (1, -1)])
def test_receive_message_invalid_arguments(max_messages, wait_seconds):
    with pytest.raises(ValueError):
        sqs.receive_message(QUEUE_URL, max_messages=max_messages, wait_seconds=wait_seconds)
