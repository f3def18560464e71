"""Posting to Slack: replies to a slash command's `response_url` and approval requests.

Only hosts of `SLACK_REPLY_HOSTS` are ever contacted, redirects are never followed, and the URL is
checked again here although the message parser already checked it, so no code path can post
elsewhere. Slack's reply URLs are credentials of a kind: they never appear in logs.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

import requests

from handler.core.message import check_reply_url

logger = logging.getLogger(__name__)

_TIMEOUT = (3.05, 5.0)


class SlackPostError(Exception):
    """Slack did not accept a post. `retryable` is whether a later attempt may succeed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        self.retryable = retryable
        super().__init__(message)


_session: requests.Session | None = None


def _get_session() -> requests.Session:
    global _session
    if _session is None:
        _session = requests.Session()
        _session.trust_env = False
    return _session


def post_json(url: str, payload: dict[str, Any], reply_hosts: Iterable[str], *, what: str = "reply") -> None:
    """POST `payload` as JSON to a Slack URL on an allowed host; raise SlackPostError on failure."""
    check_reply_url(url, reply_hosts, field="slack_url")
    try:
        response = _get_session().post(url, json=payload, timeout=_TIMEOUT, allow_redirects=False)
    except requests.RequestException as error:
        raise SlackPostError(f"Slack {what} failed: {type(error).__name__}", retryable=True) from None

    if 200 <= response.status_code < 300:
        return
    retryable = response.status_code == 429 or response.status_code >= 500
    # Slack returns 404 `expired_url` once a response_url is older than 30 minutes or used 5 times.
    raise SlackPostError(f"Slack {what} failed with HTTP {response.status_code}", retryable=retryable)
