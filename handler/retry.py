"""Retries with exponential backoff and full jitter, bounded by attempts and by a deadline.

Shared by the CSS client and the AWS client. A deadline is a point on the monotonic clock (usually
the Lambda's remaining time minus a safety margin): no wait ever ends past it, so a retry loop can
never run the function into its timeout.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. Delays are in seconds."""

    max_attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 5.0

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Return the full-jitter delay before retry number `attempt` (1 for the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return (rng or random).uniform(0.0, ceiling)


class Deadline:
    """A point in time (monotonic clock) after which no new attempt starts and no wait ends."""

    def __init__(self, seconds_from_now: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._at = None if seconds_from_now is None else clock() + seconds_from_now

    @classmethod
    def from_lambda_context(cls, context: object, margin_seconds: float = 5.0) -> "Deadline":
        """Build the deadline from a Lambda context's remaining time, minus a margin for the reply."""
        get_remaining = getattr(context, "get_remaining_time_in_millis", None)
        if get_remaining is None:
            return cls(None)
        return cls(max(0.0, get_remaining() / 1000.0 - margin_seconds))

    def remaining(self) -> float | None:
        """Seconds left, never negative; None when there is no deadline."""
        if self._at is None:
            return None
        return max(0.0, self._at - self._clock())

    def expired(self) -> bool:
        remaining = self.remaining()
        return remaining is not None and remaining <= 0.0

    def allows_wait(self, seconds: float) -> bool:
        """Return whether a wait of `seconds` still ends before the deadline."""
        remaining = self.remaining()
        return remaining is None or seconds < remaining


NO_DEADLINE = Deadline(None)


def call_with_retries(
    attempt: Callable[[], T],
    *,
    policy: RetryPolicy,
    deadline: Deadline,
    is_retryable: Callable[[Exception], bool],
    retry_after: Callable[[Exception], float | None] = lambda error: None,
    on_retry: Callable[[Exception, int, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Run `attempt` until it succeeds, fails for good, runs out of attempts, or the deadline nears.

    A server's `Retry-After` replaces the jittered delay when it is longer. When the next wait
    would end past the deadline, the last error is raised at once instead of waiting.
    """
    number = 1
    while True:
        try:
            return attempt()
        except Exception as error:  # noqa: BLE001 - the predicate decides; others are re-raised
            if not is_retryable(error) or number >= policy.max_attempts:
                raise
            delay = policy.backoff(number, rng)
            asked = retry_after(error)
            if asked is not None and asked > delay:
                delay = asked
            if not deadline.allows_wait(delay):
                raise
            if on_retry is not None:
                on_retry(error, number, delay)
            sleep(delay)
            number += 1
