"""Secrets Manager reads with an in-process cache, so a warm Lambda does not fetch a secret on every
invocation.

Each client has its own cache; entries expire after `DEFAULT_MAX_AGE` seconds unless the caller asks
otherwise. `invalidate` drops one entry, for example after the secret was rejected and may have
been rotated. Secret values never appear in logs, errors or reprs.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

from handler.aws.client import AwsClient, get_client
from handler.aws.endpoints import SECRETS_MANAGER, region_of_identifier, resolve_endpoint
from handler.aws.errors import AwsConfigurationError
from handler.retry import Deadline

logger = logging.getLogger(__name__)

# Seconds a fetched secret is served from the cache; Powertools' parameters utility uses the same default.
DEFAULT_MAX_AGE = 300.0


@dataclass
class _Entry:
    value: str = field(repr=False)
    fetched_at: float


class SecretCache:
    """Secret strings by secret ID, each with the monotonic time it was fetched."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SecretCache({len(self._entries)} entries)"

    def get(self, secret_id: str, max_age: float) -> str | None:
        """Return the cached value when it is younger than `max_age` seconds, else None."""
        with self._lock:
            entry = self._entries.get(secret_id)
        if entry is None or self._clock() - entry.fetched_at >= max_age:
            return None
        return entry.value

    def put(self, secret_id: str, value: str) -> None:
        with self._lock:
            self._entries[secret_id] = _Entry(value, self._clock())

    def invalidate(self, secret_id: str) -> None:
        with self._lock:
            self._entries.pop(secret_id, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_caches: "weakref.WeakKeyDictionary[AwsClient, SecretCache]" = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def cache_for(client: AwsClient) -> SecretCache:
    """Return the secret cache of `client`, creating it on first use."""
    with _caches_lock:
        cache = _caches.get(client)
        if cache is None:
            cache = _caches[client] = SecretCache()
        return cache


def get_secret_string(
    secret_id: str,
    max_age: float = DEFAULT_MAX_AGE,
    deadline: Deadline | None = None,
    *,
    client: AwsClient | None = None,
) -> str:
    """Return the current `SecretString` of a secret (name or ARN), from the cache when fresh enough.

    Raises `AwsConfigurationError` when the secret is missing, unreadable by the function's role, or
    holds only binary data.
    """
    if not isinstance(secret_id, str) or not secret_id:
        raise ValueError(f"invalid secret ID {secret_id!r}: expected a secret name or ARN")
    client = client or get_client()
    cache = cache_for(client)
    cached = cache.get(secret_id, max_age)
    if cached is not None:
        return cached

    region = region_of_identifier(secret_id, expected_service="secretsmanager", field="secret ID") or client.region
    response = client.call_json(
        SECRETS_MANAGER,
        "GetSecretValue",
        {"SecretId": secret_id},
        region=region,
        endpoint=resolve_endpoint(SECRETS_MANAGER, region, client.environ),
        resource=f"secret {secret_id}",
        deadline=deadline,
    )
    value = response.get("SecretString")
    if not isinstance(value, str):
        raise AwsConfigurationError(
            f"secret {secret_id} has no string value (binary secrets are not supported)",
            service=SECRETS_MANAGER.name,
            operation="GetSecretValue",
            resource=f"secret {secret_id}",
        )
    cache.put(secret_id, value)
    logger.debug("fetched secret %s (version %s)", secret_id, response.get("VersionId"))
    return value


def get_secret_json(
    secret_id: str,
    max_age: float = DEFAULT_MAX_AGE,
    deadline: Deadline | None = None,
    *,
    client: AwsClient | None = None,
) -> dict[str, Any]:
    """Return a secret whose string is a JSON object, decoded.

    Raises `AwsConfigurationError` when the string is not a JSON object; the message never quotes it.
    """
    text = get_secret_string(secret_id, max_age, deadline, client=client)
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise AwsConfigurationError(
            f"secret {secret_id} is not a JSON object",
            service=SECRETS_MANAGER.name,
            resource=f"secret {secret_id}",
        )
    return value


def invalidate(secret_id: str, *, client: AwsClient | None = None) -> None:
    """Drop a secret from the cache, so the next read fetches it again."""
    cache_for(client or get_client()).invalidate(secret_id)
