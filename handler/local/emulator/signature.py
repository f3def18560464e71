"""Verification of SDK-HMAC-SHA256 (APIG AK/SK) signatures, as the API gateway checks them.

This code path is independent of handler.css.signer on purpose: it rebuilds the canonical request
from the bytes that arrived, so a mistake in the client's signer is caught here instead of being
mirrored. Each step of the algorithm is one function, named after the step.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from calendar import timegm
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence
from urllib.parse import quote, unquote

ALGORITHM = "SDK-HMAC-SHA256"
SDK_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_PAYLOAD_HASH = hashlib.sha256(b"").hexdigest()

# The gateway rejects a request whose X-Sdk-Date is more than 15 minutes from its own clock.
MAX_CLOCK_SKEW_SECONDS = 15 * 60

# The gateway's words for a signature that does not match (also used for an unknown access key).
SIGNATURE_MISMATCH = "verify aksk signature fail"

# Headers that every signature must cover.
REQUIRED_SIGNED_HEADERS = ("host", "x-sdk-date")


class SignatureError(Exception):
    """The request's signature is missing, malformed, stale or wrong.

    The message names the check that failed. It never contains the secret key, the signature or the token.
    """


@dataclass(frozen=True)
class SigningCredential:
    """An access key as the verifier needs it: the secret key and, for temporary credentials, the token."""

    access_key: str
    secret_key: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AuthorizationHeader:
    """The parts of `Authorization: SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...`."""

    access_key: str
    signed_headers: tuple[str, ...]
    signature: str = field(repr=False)


def encode_rfc3986(text: str) -> str:
    """Percent-encode everything except A-Z, a-z, 0-9 and `-._~` (RFC 3986 unreserved characters)."""
    return quote(text, safe="~")


def parse_authorization(value: str | None) -> AuthorizationHeader:
    """Split the Authorization header into access key, signed headers and signature."""
    if not value:
        raise SignatureError("the Authorization header is missing")

    algorithm, _, parameters = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureError(f"the Authorization header does not use {ALGORITHM}")

    parts: dict[str, str] = {}
    for item in parameters.split(","):
        name, separator, text = item.strip().partition("=")
        if separator:
            parts[name] = text.strip()

    access_key = parts.get("Access", "")
    signed_headers = parts.get("SignedHeaders", "")
    signature = parts.get("Signature", "")
    if not access_key or not signed_headers or not signature:
        raise SignatureError("the Authorization header lacks Access, SignedHeaders or Signature")
    return AuthorizationHeader(access_key, tuple(signed_headers.split(";")), signature)


def canonical_uri(raw_path: str) -> str:
    """Percent-decode the path, encode each segment with RFC 3986, and end it with `/`."""
    segments = [encode_rfc3986(segment) for segment in unquote(raw_path).split("/")]
    uri = "/".join(segments)
    if not uri.endswith("/"):
        uri += "/"
    return uri


def canonical_query_string(raw_query: str) -> str:
    """Decode each `key=value` pair, sort by key then value, and re-encode with RFC 3986.

    `+` is kept as a literal plus sign, not read as a space, as the gateway does. A key without `=`
    gets an empty value (`key=`).
    """
    if not raw_query:
        return ""

    pairs = []
    for item in raw_query.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        pairs.append((unquote(key), unquote(value)))
    pairs.sort()
    return "&".join(f"{encode_rfc3986(key)}={encode_rfc3986(value)}" for key, value in pairs)


def canonical_headers(headers: Mapping[str, str], signed_headers: Sequence[str]) -> str:
    """Write one `name:value` line per signed header (name in lower case, value trimmed), ending with a newline."""
    lines = []
    for name in signed_headers:
        value = headers.get(name)
        if value is None:
            raise SignatureError(f"the signed header {name!r} is not in the request")
        lines.append(f"{name}:{_as_signed(value).strip()}")
    return "\n".join(lines) + "\n"


def payload_hash(body: bytes, headers: Mapping[str, str]) -> str:
    """Return the hex SHA-256 of the body, or the value of X-Sdk-Content-Sha256 when the client set one."""
    declared = headers.get("x-sdk-content-sha256")
    if body and declared:
        return declared.strip()
    return hashlib.sha256(body).hexdigest()


def canonical_request(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    body: bytes,
) -> str:
    """Build the canonical request: method, URI, query, headers, signed header list and payload hash.

    `headers` maps lower-case header names to the values that arrived.
    """
    return "\n".join(
        (
            method.upper(),
            canonical_uri(raw_path),
            canonical_query_string(raw_query),
            canonical_headers(headers, signed_headers),
            ";".join(signed_headers),
            payload_hash(body, headers),
        )
    )


def string_to_sign(sdk_date: str, canonical: str) -> str:
    """Return `SDK-HMAC-SHA256`, the X-Sdk-Date value and the hex SHA-256 of the canonical request, one per line."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{sdk_date}\n{digest}"


def signature(secret_key: str, text_to_sign: str) -> str:
    """Return hex HMAC-SHA256 of the string to sign, keyed with the secret key itself (no key derivation)."""
    return hmac.new(secret_key.encode("utf-8"), text_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def parse_sdk_date(value: str | None) -> float:
    """Return the X-Sdk-Date value (`20191115T033655Z`, UTC) as epoch seconds."""
    if not value:
        raise SignatureError("the X-Sdk-Date header is missing")
    try:
        parsed = time.strptime(value.strip(), SDK_DATE_FORMAT)
    except ValueError:
        raise SignatureError("the X-Sdk-Date header is not in the form YYYYMMDDTHHMMSSZ") from None
    return float(timegm(parsed))


class Verifier:
    """Check a request's AK/SK signature against a set of known credentials."""

    def __init__(
        self,
        credentials: Sequence[SigningCredential],
        clock: Callable[[], float] = time.time,
        max_clock_skew: float = MAX_CLOCK_SKEW_SECONDS,
    ) -> None:
        self._credentials = {credential.access_key: credential for credential in credentials}
        self._clock = clock
        self._max_clock_skew = max_clock_skew

    def verify(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> SigningCredential:
        """Return the credential that signed the request, or raise SignatureError.

        `headers` maps lower-case header names to the values that arrived.
        """
        authorization = parse_authorization(headers.get("authorization"))
        self._check_signed_header_list(authorization.signed_headers)
        self._check_date(headers.get("x-sdk-date"))

        credential = self._credentials.get(authorization.access_key)
        if credential is None:
            raise SignatureError(f"{SIGNATURE_MISMATCH}: the access key is not known")
        self._check_security_token(credential, authorization.signed_headers, headers)

        canonical = canonical_request(method, raw_path, raw_query, headers, authorization.signed_headers, body)
        expected = signature(credential.secret_key, string_to_sign(headers["x-sdk-date"].strip(), canonical))
        if not hmac.compare_digest(expected, authorization.signature.lower()):
            raise SignatureError(SIGNATURE_MISMATCH)
        return credential

    def _check_signed_header_list(self, signed_headers: Sequence[str]) -> None:
        for name in signed_headers:
            if not name or name != name.lower():
                raise SignatureError("SignedHeaders must list lower-case header names separated by ';'")
        for name in REQUIRED_SIGNED_HEADERS:
            if name not in signed_headers:
                raise SignatureError(f"SignedHeaders must include {name}")

    def _check_date(self, value: str | None) -> None:
        signed_at = parse_sdk_date(value)
        if abs(self._clock() - signed_at) > self._max_clock_skew:
            raise SignatureError("the request has expired: X-Sdk-Date is more than 15 minutes from the server time")

    def _check_security_token(
        self,
        credential: SigningCredential,
        signed_headers: Sequence[str],
        headers: Mapping[str, str],
    ) -> None:
        sent = headers.get("x-security-token")
        if credential.security_token is None:
            if sent is not None:
                raise SignatureError("a security token was sent with a permanent access key")
            return

        if sent is None or "x-security-token" not in signed_headers:
            raise SignatureError("temporary credentials need a signed X-Security-Token header")
        if not hmac.compare_digest(_as_signed(sent).strip().encode(), credential.security_token.encode()):
            raise SignatureError("the security token does not belong to the access key")


def _as_signed(value: str) -> str:
    # http.server decodes header bytes as ISO-8859-1, while clients sign the UTF-8 text. Undoing the
    # decoding compares a non-ASCII value as the client signed it.
    try:
        return value.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value
