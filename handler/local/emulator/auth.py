"""A minimal SDK-HMAC-SHA256 signer for requests, for tests and local tools that call the emulator.

It reuses the emulator's canonical-request functions, so it proves nothing about the project's own
signer (handler.css.signer); the emulator's tests hold those functions against published vectors.
"""

from __future__ import annotations

import time
from typing import Callable
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase

from . import signature

# Headers this signer covers when the request carries them.
_SIGNABLE = ("content-type", "host", "x-project-id", "x-sdk-date", "x-security-token")


class EmulatorAuth(AuthBase):
    """Sign a prepared request with an AK/SK pair (and a security token for temporary credentials)."""

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        project_id: str | None = None,
        security_token: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.access_key = access_key
        self._secret_key = secret_key
        self.project_id = project_id
        self._security_token = security_token
        self._clock = clock

    def __repr__(self) -> str:
        return f"EmulatorAuth(access_key={self.access_key!r}, project_id={self.project_id!r})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        url = urlsplit(request.url or "")
        request.headers["Host"] = url.netloc
        request.headers["X-Sdk-Date"] = time.strftime(signature.SDK_DATE_FORMAT, time.gmtime(self._clock()))
        if self.project_id is not None:
            request.headers["X-Project-Id"] = self.project_id
        if self._security_token is not None:
            request.headers["X-Security-Token"] = self._security_token

        headers = {name.lower(): value for name, value in request.headers.items()}
        signed_headers = sorted(name for name in headers if name in _SIGNABLE)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")

        canonical = signature.canonical_request(
            request.method or "GET", url.path, url.query, headers, signed_headers, body
        )
        signed = signature.signature(self._secret_key, signature.string_to_sign(headers["x-sdk-date"], canonical))
        request.headers["Authorization"] = (
            f"{signature.ALGORITHM} Access={self.access_key}, SignedHeaders={';'.join(signed_headers)}, Signature={signed}"
        )
        return request
