"""SNS publishing end to end against moto: attributes, filter policies, subjects, FIFO topics, regions."""

from __future__ import annotations

import json

import pytest

from handler.aws import sns
from handler.aws.errors import AwsConfigurationError

from . import MODES, OTHER_REGION, CannedServer, client_for, moto_backend, running_moto_server

EVENT_ATTRIBUTES = {
    "event_type": "upgrade.ready",
    "cluster_id": "ea244205-d641-45d9-9dcb-ab2236bcd07e",
    "project_id": "6204a5bd270343b5885144cf9c8c158d",
    "region": "ap-southeast-1",
    "schema_version": "1",
    "upgrade_type": "cross",
    "datastore_type": "elasticsearch",
}


@pytest.fixture(scope="module")
def moto_server():
    with running_moto_server() as url:
        yield url


@pytest.fixture(params=MODES)
def aws(request):
    with moto_backend(request.param, lambda: request.getfixturevalue("moto_server")) as backend:
        yield backend


def subscribed_queue(backend, topic_arn, name, *, raw=True, filter_policy=None, region="us-east-1"):
    """Create a queue subscribed to the topic and return its URL."""
    sqs = backend.boto("sqs", region)
    attributes = {"FifoQueue": "true"} if name.endswith(".fifo") else {}
    queue_url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    subscription = {"RawMessageDelivery": "true" if raw else "false"}
    if filter_policy is not None:
        subscription["FilterPolicy"] = json.dumps(filter_policy)
    backend.boto("sns", region).subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes=subscription)
    return queue_url


def received(backend, queue_url, region="us-east-1"):
    response = backend.boto("sqs", region).receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return response.get("Messages", [])


def test_publish_attributes_reach_raw_subscriber(aws):
    topic_arn = aws.boto("sns").create_topic(Name="upgrades")["TopicArn"]
    queue_url = subscribed_queue(aws, topic_arn, "listener")

    message_id = sns.publish(topic_arn, '{"event_type": "upgrade.ready"}', attributes=EVENT_ATTRIBUTES, client=aws.client)

    messages = received(aws, queue_url)
    attributes = {name: value["StringValue"] for name, value in messages[0]["MessageAttributes"].items()}
    assert message_id
    assert messages[0]["Body"] == '{"event_type": "upgrade.ready"}'
    assert attributes == EVENT_ATTRIBUTES


def test_publish_filter_policy_on_event_type(aws):
    topic_arn = aws.boto("sns").create_topic(Name="upgrades")["TopicArn"]
    ready_only = subscribed_queue(aws, topic_arn, "ready-only", filter_policy={"event_type": ["upgrade.ready"]})
    everything = subscribed_queue(aws, topic_arn, "everything")

    sns.publish(topic_arn, "ready ✓", attributes=EVENT_ATTRIBUTES, client=aws.client)
    sns.publish(topic_arn, "none", attributes={**EVENT_ATTRIBUTES, "event_type": "upgrade.none"}, client=aws.client)

    assert [message["Body"] for message in received(aws, ready_only)] == ["ready ✓"]
    assert sorted(message["Body"] for message in received(aws, everything)) == ["none", "ready ✓"]


def test_publish_subject_cleaned_in_envelope(aws):
    topic_arn = aws.boto("sns").create_topic(Name="upgrades")["TopicArn"]
    queue_url = subscribed_queue(aws, topic_arn, "envelopes", raw=False)

    sns.publish(topic_arn, "body", subject="Upgrade ready:\ncafé  cluster", client=aws.client)

    envelope = json.loads(received(aws, queue_url)[0]["Body"])
    assert envelope["Subject"] == "Upgrade ready: cafe cluster"
    assert envelope["Message"] == "body"


def test_publish_fifo_topic(aws):
    topic_arn = aws.boto("sns").create_topic(Name="upgrades.fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    queue_url = subscribed_queue(aws, topic_arn, "listener.fifo")

    sns.publish(topic_arn, "first", group_id="cluster-a", dedup_id="event-1", client=aws.client)
    sns.publish(topic_arn, "second", group_id="cluster-a", dedup_id="event-2", client=aws.client)

    assert [message["Body"] for message in received(aws, queue_url)] == ["first", "second"]


def test_publish_topic_in_other_region(aws):
    topic_arn = aws.boto("sns", OTHER_REGION).create_topic(Name="upgrades")["TopicArn"]
    queue_url = subscribed_queue(aws, topic_arn, "listener", region=OTHER_REGION)

    sns.publish(topic_arn, "over there", client=aws.client)

    assert OTHER_REGION in topic_arn
    assert [message["Body"] for message in received(aws, queue_url, OTHER_REGION)] == ["over there"]


def test_publish_missing_topic(aws):
    topic_arn = "arn:aws:sns:us-east-1:123456789012:missing"

    with pytest.raises(AwsConfigurationError) as caught:
        sns.publish(topic_arn, "hello", client=aws.client)

    assert caught.value.code == "NotFound"
    assert topic_arn in str(caught.value)


@pytest.mark.parametrize(
    "topic_arn",
    ["upgrades", "arn:aws:sqs:us-east-1:123456789012:upgrades", "arn:aws:sns::123456789012:upgrades"],
)
def test_publish_invalid_topic_arn_sends_nothing(topic_arn):
    with CannedServer() as canned:
        with pytest.raises(AwsConfigurationError):
            sns.publish(topic_arn, "hello", client=client_for(canned))
        assert canned.requests == []


def test_publish_empty_message_rejected():
    with pytest.raises(ValueError, match="non-empty"):
        sns.publish("arn:aws:sns:us-east-1:123456789012:t", "")


# (subject, cleaned subject)
SUBJECT_CASES = [
    (None, None),
    ("", None),
    ("   \n\t ", None),
    ("Upgrade ready", "Upgrade ready"),
    ("line one\nline two\r\nthree", "line one line two three"),
    ("tab\there", "tab here"),
    ("Über café naïve", "Uber cafe naive"),
    ("集群 upgrade ✓", "upgrade"),
    ("\x00\x07bell", "bell"),
    ("x" * 100, "x" * 100),
    ("x" * 101, "x" * 97 + "..."),
    ("word " * 30, ("word " * 20).strip()[:97].rstrip() + "..."),
]


@pytest.mark.parametrize(("subject", "expected"), SUBJECT_CASES)
def test_clean_subject_table(subject, expected):
    assert sns.clean_subject(subject) == expected


@pytest.mark.parametrize("subject", ["a\nb", "ü" * 300, "\u2028x\u2029", "x" * 1000])
def test_clean_subject_limits(subject):
    cleaned = sns.clean_subject(subject)
    assert cleaned.isascii()
    assert cleaned.isprintable()
    assert len(cleaned) <= sns.MAX_SUBJECT_LENGTH
