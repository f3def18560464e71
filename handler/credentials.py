"""Sources of the CSS AK/SK: the official SDKs' environment variables, or a Secrets Manager secret.

Secrets are cached across invocations with an expiry, and read again when CSS rejects the cached
ones (a rotated secret is picked up without a restart). Values never appear in logs or errors.
"""

from __future__ import annotations

import json
import os
import threading
from typing import TYPE_CHECKING, Mapping

from handler.config import ConfigurationError
from handler.css.client import CredentialsProvider, StaticCredentials
from handler.css.signer import Credentials

if TYPE_CHECKING:
    from handler.aws.client import AwsClient


class SecretCredentials:
    """AK/SK from a Secrets Manager secret whose JSON contains `ak`, `sk` and optionally `security_token`.

    The secret string is cached by the AWS client's secret cache (5 minutes); `invalidate` drops it,
    so the next `get` reads the secret again.
    """

    def __init__(self, secret_id: str, client: "AwsClient | None" = None) -> None:
        self._secret_id = secret_id
        self._client = client
        self._lock = threading.Lock()
        self._parsed: tuple[str, Credentials] | None = None

    def get(self) -> Credentials:
        from handler.aws import secrets

        text = secrets.get_secret_string(self._secret_id, client=self._client)
        with self._lock:
            if self._parsed is None or self._parsed[0] != text:
                self._parsed = (text, self._read(text))
            return self._parsed[1]

    def invalidate(self) -> None:
        from handler.aws import secrets

        secrets.invalidate(self._secret_id, client=self._client)

    def _read(self, text: str) -> Credentials:
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
        try:
            return Credentials(ak=ak, sk=sk, security_token=token)
        except ValueError:
            raise ConfigurationError(
                f"secret {self._secret_id} (CSS_CREDENTIALS_SECRET) contains an AK, SK or token that is invalid in an HTTP header",
                variable="CSS_CREDENTIALS_SECRET",
            ) from None


def credentials_from_environment(env: Mapping[str, str] | None = None, client: "AwsClient | None" = None) -> CredentialsProvider:
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
        return SecretCredentials(secret_id, client)
    raise ConfigurationError(
        "missing CSS credentials: set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK, or CSS_CREDENTIALS_SECRET",
        variable="HUAWEICLOUD_SDK_AK",
    )
