"""Where the CSS AK/SK comes from: the official SDKs' environment variables, or a Secrets Manager secret.

Secrets are cached across invocations with an expiry, and read again when CSS rejects the cached
ones (a rotated secret is picked up without a restart). Values never appear in logs or errors.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Callable, Mapping

from handler.config import ConfigurationError
from handler.css.client import CredentialsProvider, StaticCredentials
from handler.css.signer import Credentials

# How long a secret read from Secrets Manager is trusted before it is read again.
SECRET_MAX_AGE_SECONDS = 300.0


class SecretCredentials:
    """AK/SK from a Secrets Manager secret whose JSON holds `ak`, `sk` and optionally `security_token`."""

    def __init__(
        self,
        secret_id: str,
        fetch: Callable[[str], str] | None = None,
        max_age: float = SECRET_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret_id = secret_id
        self._fetch = fetch or _fetch_secret
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: Credentials | None = None
        self._read_at = 0.0

    def get(self) -> Credentials:
        with self._lock:
            if self._cached is None or self._clock() - self._read_at > self._max_age:
                self._cached = self._read()
                self._read_at = self._clock()
            return self._cached

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None

    def _read(self) -> Credentials:
        text = self._fetch(self._secret_id)
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ConfigurationError(
                f"secret {self._secret_id} (CSS_CREDENTIALS_SECRET) is not a JSON object with ak and sk",
                variable="CSS_CREDENTIALS_SECRET",
            )
        ak, sk, token = data.get("ak"), data.get("sk"), data.get("security_token")
        if not isinstance(ak, str) or not ak or not isinstance(sk, str) or not sk:
            raise ConfigurationError(
                f"secret {self._secret_id} (CSS_CREDENTIALS_SECRET) lacks a non-empty ak or sk",
                variable="CSS_CREDENTIALS_SECRET",
            )
        if token is not None and (not isinstance(token, str) or not token):
            raise ConfigurationError(
                f"secret {self._secret_id} (CSS_CREDENTIALS_SECRET) has an invalid security_token",
                variable="CSS_CREDENTIALS_SECRET",
            )
        return Credentials(ak=ak, sk=sk, security_token=token)


def credentials_from_environment(env: Mapping[str, str] | None = None) -> CredentialsProvider:
    """Return the credentials provider the environment configures, or raise ConfigurationError."""
    env = os.environ if env is None else env
    ak = (env.get("HUAWEICLOUD_SDK_AK") or "").strip()
    sk = (env.get("HUAWEICLOUD_SDK_SK") or "").strip()
    token = (env.get("HUAWEICLOUD_SDK_SECURITY_TOKEN") or "").strip() or None
    secret_id = (env.get("CSS_CREDENTIALS_SECRET") or "").strip()

    if ak and sk:
        return StaticCredentials(Credentials(ak=ak, sk=sk, security_token=token))
    if ak or sk:
        missing = "HUAWEICLOUD_SDK_SK" if ak else "HUAWEICLOUD_SDK_AK"
        raise ConfigurationError(f"missing {missing}: set both HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK", variable=missing)
    if secret_id:
        return SecretCredentials(secret_id)
    raise ConfigurationError(
        "missing CSS credentials: set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK, or CSS_CREDENTIALS_SECRET",
        variable="HUAWEICLOUD_SDK_AK",
    )


def _fetch_secret(secret_id: str) -> str:
    # Imported here so that a deployment using environment credentials never loads the AWS client.
    from handler.aws import secrets

    return secrets.get_secret_string(secret_id)
