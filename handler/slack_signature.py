"""Slack request signing, version v0: verify that a webhook request comes from Slack and is fresh.

Written by hand because Slack's SDK would be a dependency for about twenty lines. Slack signs the raw
request body: signature = "v0=" + hex(HMAC-SHA256(signing secret, "v0:" + timestamp + ":" + body)),
sent in `X-Slack-Signature` with the Unix time in `X-Slack-Request-Timestamp`. A request whose
timestamp is more than five minutes from now, in either direction, is rejected as a possible replay.
"""

from __future__ import annotations

import hashlib
import hmac
import time

VERSION = "v0"
TIMESTAMP_HEADER = "x-slack-request-timestamp"
SIGNATURE_HEADER = "x-slack-signature"

# Largest allowed distance between the request's timestamp and now, in seconds, either direction.
MAX_CLOCK_SKEW_SECONDS = 300

# A Unix timestamp in seconds has at most 10 digits until the year 2286.
_MAX_TIMESTAMP_DIGITS = 10


class SignatureRejected(Exception):
    """The request is not proven to come from Slack. `reason` is a short code: missing, malformed, stale or mismatch.

    The message never contains the signature, the secret or the body.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def base_string(timestamp: str, body: bytes) -> bytes:
    """Return the string to sign: `v0:{timestamp}:{body}` over the raw body bytes."""
    return f"{VERSION}:{timestamp}:".encode("ascii") + body


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Return the `X-Slack-Signature` value Slack sends for `body` at `timestamp`."""
    digest = hmac.new(secret.encode("utf-8"), base_string(timestamp, body), hashlib.sha256).hexdigest()
    return f"{VERSION}={digest}"


def verify(secret: str, timestamp: str | None, sent_signature: str | None, body: bytes, now: float | None = None) -> None:
    """Raise SignatureRejected unless `sent_signature` is Slack's signature of `body` at a fresh `timestamp`.

    `body` must be the raw bytes as received (base64-decoded when the transport encoded them), never
    a re-encoding of the parsed form.
    """
    if not timestamp or not sent_signature:
        missing = "X-Slack-Request-Timestamp" if not timestamp else "X-Slack-Signature"
        raise SignatureRejected("missing", f"missing {missing} header")

    timestamp = timestamp.strip()
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > _MAX_TIMESTAMP_DIGITS:
        raise SignatureRejected("malformed", "invalid X-Slack-Request-Timestamp: expected Unix time in seconds")

    now = time.time() if now is None else now
    skew = abs(now - int(timestamp))
    if skew > MAX_CLOCK_SKEW_SECONDS:
        raise SignatureRejected(
            "stale",
            f"X-Slack-Request-Timestamp is {int(skew)} s from now: at most {MAX_CLOCK_SKEW_SECONDS} s is accepted",
        )

    expected = signature(secret, timestamp, body)
    # compare_digest takes the same time wherever the strings differ. It accepts only ASCII text,
    # so a non-ASCII header is rejected before the comparison.
    if not sent_signature.isascii() or not hmac.compare_digest(expected, sent_signature.strip()):
        raise SignatureRejected("mismatch", "X-Slack-Signature does not match the request")
