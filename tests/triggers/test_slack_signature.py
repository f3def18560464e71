"""Slack v0 request signatures: Slack's published example, and every way a request is rejected."""

from __future__ import annotations

import pytest

from handler import slack_signature
from handler.slack_signature import SignatureRejected

# Slack's published example ("Verifying requests from Slack"): secret, timestamp, body, signature.
EXAMPLE_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
EXAMPLE_TIMESTAMP = "1531420618"
EXAMPLE_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
EXAMPLE_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
EXAMPLE_NOW = float(EXAMPLE_TIMESTAMP)


def test_signature_matches_slack_example():
    assert slack_signature.signature(EXAMPLE_SECRET, EXAMPLE_TIMESTAMP, EXAMPLE_BODY) == EXAMPLE_SIGNATURE


def test_base_string_joins_version_timestamp_body():
    assert slack_signature.base_string("1531420618", b"a=1") == b"v0:1531420618:a=1"


def test_verify_accepts_slack_example():
    slack_signature.verify(EXAMPLE_SECRET, EXAMPLE_TIMESTAMP, EXAMPLE_SIGNATURE, EXAMPLE_BODY, now=EXAMPLE_NOW)


@pytest.mark.parametrize("skew", [-300, -1, 0, 1, 300])
def test_verify_accepts_within_five_minutes(skew):
    slack_signature.verify(EXAMPLE_SECRET, EXAMPLE_TIMESTAMP, EXAMPLE_SIGNATURE, EXAMPLE_BODY, now=EXAMPLE_NOW + skew)


@pytest.mark.parametrize(
    "timestamp, signature, body, now, reason",
    [
        (None, EXAMPLE_SIGNATURE, EXAMPLE_BODY, EXAMPLE_NOW, "missing"),
        ("", EXAMPLE_SIGNATURE, EXAMPLE_BODY, EXAMPLE_NOW, "missing"),
        (EXAMPLE_TIMESTAMP, None, EXAMPLE_BODY, EXAMPLE_NOW, "missing"),
        (EXAMPLE_TIMESTAMP, "", EXAMPLE_BODY, EXAMPLE_NOW, "missing"),
        ("15314206l8", EXAMPLE_SIGNATURE, EXAMPLE_BODY, EXAMPLE_NOW, "malformed"),
        ("-1531420618", EXAMPLE_SIGNATURE, EXAMPLE_BODY, EXAMPLE_NOW, "malformed"),
        ("\u0661531420618", EXAMPLE_SIGNATURE, EXAMPLE_BODY, EXAMPLE_NOW, "malformed"),
        ("153142061800000", EXAMPLE_SIGNATURE, EXAMPLE_BODY, EXAMPLE_NOW, "malformed"),
        (EXAMPLE_TIMESTAMP, EXAMPLE_SIGNATURE, EXAMPLE_BODY, EXAMPLE_NOW + 301, "stale"),
        (EXAMPLE_TIMESTAMP, EXAMPLE_SIGNATURE, EXAMPLE_BODY, EXAMPLE_NOW - 301, "stale"),
        (EXAMPLE_TIMESTAMP, EXAMPLE_SIGNATURE, EXAMPLE_BODY + b"&x=1", EXAMPLE_NOW, "mismatch"),
        (EXAMPLE_TIMESTAMP, EXAMPLE_SIGNATURE.replace("v0=a", "v0=b"), EXAMPLE_BODY, EXAMPLE_NOW, "mismatch"),
        (EXAMPLE_TIMESTAMP, EXAMPLE_SIGNATURE.replace("v0=", "v1="), EXAMPLE_BODY, EXAMPLE_NOW, "mismatch"),
        (EXAMPLE_TIMESTAMP, EXAMPLE_SIGNATURE.upper(), EXAMPLE_BODY, EXAMPLE_NOW, "mismatch"),
        (EXAMPLE_TIMESTAMP, EXAMPLE_SIGNATURE[:-1] + "\u00e9", EXAMPLE_BODY, EXAMPLE_NOW, "mismatch"),
        ("1531420619", EXAMPLE_SIGNATURE, EXAMPLE_BODY, EXAMPLE_NOW, "mismatch"),
    ],
    ids=[
        "no-timestamp", "empty-timestamp", "no-signature", "empty-signature", "timestamp-letter",
        "timestamp-negative", "timestamp-arabic-digit", "timestamp-too-long", "stale-past", "stale-future",
        "body-changed", "digest-changed", "version-changed", "upper-case", "non-ascii", "timestamp-changed",
    ],
)
def test_verify_rejects(timestamp, signature, body, now, reason):
    with pytest.raises(SignatureRejected) as raised:
        slack_signature.verify(EXAMPLE_SECRET, timestamp, signature, body, now=now)

    assert raised.value.reason == reason


def test_verify_rejects_other_secret():
    with pytest.raises(SignatureRejected) as raised:
        slack_signature.verify("another-secret", EXAMPLE_TIMESTAMP, EXAMPLE_SIGNATURE, EXAMPLE_BODY, now=EXAMPLE_NOW)

    assert raised.value.reason == "mismatch"


def test_rejection_message_hides_secret_and_signature():
    with pytest.raises(SignatureRejected) as raised:
        slack_signature.verify(EXAMPLE_SECRET, EXAMPLE_TIMESTAMP, EXAMPLE_SIGNATURE, b"other", now=EXAMPLE_NOW)

    assert EXAMPLE_SECRET not in str(raised.value)
    assert EXAMPLE_SIGNATURE[3:] not in str(raised.value)
