"""AK/SK request signing for Huawei Cloud APIs (the API gateway's `SDK-HMAC-SHA256` scheme) over `requests`.

The Lambda function may not load a Huawei SDK at run time, and no maintained standalone library
implements this scheme as a `requests` auth class, so it is written here by hand. Each step of the
algorithm is one function named after the step, so that a reviewer can hold it against the
published description. `AkSkAuth` combines the steps and plugs into `requests` like its own auth classes.

The algorithm, as the signing guide and the official Python SDK core (`huaweicloudsdkcore`) define it:

    canonical request = METHOD \\n canonical URI \\n canonical query string \\n
                        canonical headers \\n signed headers \\n hex(SHA-256(body))
    string to sign    = "SDK-HMAC-SHA256" \\n X-Sdk-Date \\n hex(SHA-256(canonical request))
    signature         = hex(HMAC-SHA256(key=SK, message=string to sign))
    Authorization     = "SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<names>, Signature=<signature>"
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, Mapping
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

import requests
from requests.auth import AuthBase

from handler.core import ids

ALGORITHM = "SDK-HMAC-SHA256"
SDK_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_PAYLOAD_HASH = hashlib.sha256(b"").hexdigest()

# Headers that AkSkAuth signs whenever the request carries them.
DEFAULT_SIGNED_HEADERS = frozenset({"content-type", "host", "x-project-id", "x-sdk-date", "x-security-token"})

# Headers that `requests`, urllib3 or a proxy may add, drop or rewrite after signing. Signing one of
# them would let a correct request fail verification, so they cannot be signed even on request.
UNSIGNABLE_HEADERS = frozenset({
    "accept",
    "accept-encoding",
    "authorization",
    "connection",
    "content-length",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
})

_DEFAULT_PORTS = {"http": 80, "https": 443}

# RFC 9110 token characters, minus '_' (see signed_headers).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^`|~0-9A-Za-z-]+", re.ASCII)

# The AK ends up inside the Authorization header, so it must not contain whitespace or the ','
# that separates the header's parts.
_ACCESS_KEY = re.compile(r"[\x21-\x2b\x2d-\x7e]+", re.ASCII)

# Header values that may carry a security token: printable ASCII, no CR/LF.
_PRINTABLE_ASCII = re.compile(r"[ -~]+", re.ASCII)


@dataclass(frozen=True, repr=False)
class Credentials:
    """An access key (AK), its secret key (SK) and, for temporary credentials, the security token.

    The repr shows the first four characters of the AK only, and never the SK or the token.
    """

    ak: str
    sk: str
    security_token: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.ak, str) or not _ACCESS_KEY.fullmatch(self.ak):
            raise ValueError(
                f"invalid ak {_masked(self.ak)}: expected a non-empty access key of printable ASCII "
                "without spaces or commas"
            )
        if not isinstance(self.sk, str) or not self.sk:
            raise ValueError("invalid sk: expected a non-empty string (value not shown)")
        if self.security_token is not None and (
            not isinstance(self.security_token, str) or not _PRINTABLE_ASCII.fullmatch(self.security_token)
        ):
            raise ValueError(
                "invalid security_token: expected None or a non-empty string of printable ASCII (value not shown)"
            )

    def __repr__(self) -> str:
        token = "None" if self.security_token is None else "'***'"
        return f"Credentials(ak={_masked(self.ak)}, sk='***', security_token={token})"


def _masked(ak: object) -> str:
    if not isinstance(ak, str):
        return f"of type {type(ak).__name__}"
    return repr(ak[:4] + "***")


def sdk_date(moment: datetime) -> str:
    """Format a moment as the `X-Sdk-Date` value, UTC in `%Y%m%dT%H%M%SZ` (e.g. 20191115T033655Z).

    A naive datetime raises ValueError: the gateway rejects signatures more than 15 minutes off its
    own clock, and a naive local time would be off by the local UTC offset.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"invalid signing time {moment.isoformat()}: expected a timezone-aware datetime "
            "such as datetime.now(timezone.utc)"
        )
    return moment.astimezone(timezone.utc).strftime(SDK_DATE_FORMAT)


def _rfc3986(text: str) -> str:
    # Only A-Z a-z 0-9 - . _ ~ stay literal. quote() treats the first three groups and '-._' as safe
    # by itself, and '~' since Python 3.7, but naming it keeps the rule visible.
    return quote(text, safe="~")


def canonical_uri(path: str) -> str:
    """Build the canonical URI: percent-decode the path, encode each segment per RFC 3986, end with '/'.

    The path is split after decoding, so `%2F` counts as a separator, as in the official SDK core.
    The request itself keeps its original path; the gateway adds the trailing slash on its side too.
    A path that does not decode to UTF-8 raises ValueError instead of being guessed at.
    """
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError as error:
        raise ValueError(f"invalid request path {ids.shown(path)}: not UTF-8 after percent-decoding") from error

    segments = [_rfc3986(segment) for segment in decoded.split("/")]
    uri = "/".join(segments)

    if not uri.endswith("/"):
        uri += "/"
    return uri


def parse_query(query: str) -> list[tuple[str, str]]:
    """Decode a URL query into the (key, value) pairs a server reads from it.

    '+' decodes to a space, as in HTML form encoding, because that is how `requests` encodes a space
    in `params` (a literal '+' leaves as `%2B`). A key without '=' has the empty value, empty pairs
    (`&&`) are dropped, and a query that does not decode to UTF-8 raises ValueError.
    """
    try:
        return parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as error:
        raise ValueError(f"invalid request query {ids.shown(query)}: not UTF-8 after percent-decoding") from error


def canonical_query_string(pairs: Iterable[tuple[str, str]]) -> str:
    """Build the canonical query string from decoded (key, value) pairs.

    Pairs are sorted by key, then by value, on the decoded text (as the official Python SDK core does), then each
    key and value is encoded per RFC 3986 (a space becomes `%20`, never '+') and joined as `k=v` with
    '&'. An empty value gives `k=`, and no pairs give the empty string.
    """
    return "&".join(f"{_rfc3986(key)}={_rfc3986(value)}" for key, value in sorted(pairs))


def _header_lines(headers: Mapping[str, object]) -> dict[str, str]:
    """Map lower-case header names to trimmed values, leaving out names that contain '_'.

    The official SDK core never signs a header whose name contains '_'. Such headers can also go
    missing on the way: nginx, for one, drops them unless `underscores_in_headers` is on.
    """
    lines: dict[str, str] = {}
    for name, value in headers.items():
        lower_name = name.lower()
        if "_" in lower_name:
            continue
        if lower_name in lines:
            raise ValueError(f"header {name!r} is given twice with different letter case")

        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if not text.isascii():
            raise ValueError(f"header {name!r} has a non-ASCII value, which cannot be signed reliably")
        lines[lower_name] = text.strip()
    return dict(sorted(lines.items()))


def canonical_headers(headers: Mapping[str, object]) -> str:
    """Build the canonical headers: one `name:value` line per header, lower-case name, trimmed value.

    The lines are sorted by name, and the block ends with a newline, so the canonical request has an
    empty line before the signed headers. Names containing '_' are left out (see signed_headers).
    """
    lines = _header_lines(headers)
    return "".join(f"{name}:{value}\n" for name, value in lines.items())


def signed_headers(headers: Mapping[str, object]) -> str:
    """List the signed header names: lower case, sorted, joined with ';'.

    Names containing '_' are left out, as in the official SDK core.
    """
    return ";".join(_header_lines(headers))


def hashed_payload(body: bytes | str | None) -> str:
    """Return the hex SHA-256 of the body; a missing or empty body gives the hash of the empty string.

    A str body is hashed as UTF-8, the encoding AkSkAuth sends it in.
    """
    if not body:
        return EMPTY_PAYLOAD_HASH
    if isinstance(body, str):
        body = body.encode("utf-8")
    return hashlib.sha256(body).hexdigest()


def canonical_request(
    method: str,
    path: str,
    query_pairs: Iterable[tuple[str, str]],
    headers: Mapping[str, object],
    body: bytes | str | None,
) -> str:
    """Build the canonical request from the request's parts; `headers` contains exactly the headers to sign."""
    return "\n".join([
        method.upper(),
        canonical_uri(path),
        canonical_query_string(query_pairs),
        canonical_headers(headers),
        signed_headers(headers),
        hashed_payload(body),
    ])


def string_to_sign(sdk_date: str, canonical_request: str) -> str:
    """Build the string to sign: algorithm, `X-Sdk-Date` value and hex SHA-256 of the canonical request."""
    request_hash = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{sdk_date}\n{request_hash}"


def signature(sk: str, string_to_sign: str) -> str:
    """Return hex HMAC-SHA256 of the string to sign, keyed with the SK itself (the scheme derives no key)."""
    return hmac.new(sk.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization_header(ak: str, signed_headers: str, signature: str) -> str:
    """Build the Authorization header value from the AK, the signed header names and the signature."""
    return f"{ALGORITHM} Access={ak}, SignedHeaders={signed_headers}, Signature={signature}"


def host_header(url: str) -> str:
    """Return the `Host` value for a URL: the host, plus ':port' unless the port is the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise ValueError(f"invalid request URL {ids.shown(url)}: it has no host")

    if ":" in host:
        host = f"[{host}]"

    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{port}"
    return host


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class AkSkAuth(AuthBase):
    """Sign `requests` calls with an AK/SK pair (`SDK-HMAC-SHA256`), for example `session.auth = AkSkAuth(...)`.

    Before signing, the request gets `X-Sdk-Date` (from `clock`), `Host` (unless it has one already),
    `X-Project-Id` when `project_id` is given and `X-Security-Token` when the credentials carry one.
    Signed are `content-type`, `host`, `x-project-id`, `x-sdk-date`, `x-security-token` and the
    names in `extra_signed_headers`, each only when the request carries it.

    The query of the URL is replaced by the canonical query string. The pairs a server reads stay the
    same, but the query no longer contains '+', so servers that decode '+' as a space and servers that
    do not both read what was signed. The path is sent unchanged.

    NOTE: a signature covers one URL. Send signed requests with `allow_redirects=False`: `requests`
    keeps `X-Security-Token` on a redirect to another host, and a redirected request fails
    verification anyway.

    Parameters
    ----------
    credentials:
        the AK, SK and optional security token.
    project_id:
        sent as `X-Project-Id` (32 hex digits, sent in lower case), or None to send none.
    clock:
        returns the signing time as an aware datetime; defaults to the current UTC time.
    extra_signed_headers:
        more header names to sign when present; names containing '_' and headers that transports
        rewrite (see UNSIGNABLE_HEADERS) raise ValueError.
    """

    def __init__(
        self,
        credentials: Credentials,
        project_id: str | None = None,
        clock: Callable[[], datetime] | None = None,
        extra_signed_headers: Iterable[str] = (),
    ) -> None:
        if not isinstance(credentials, Credentials):
            raise TypeError(f"credentials must be a Credentials instance, not {type(credentials).__name__}")
        self.credentials = credentials
        self.project_id = None if project_id is None else ids.project_id(project_id)
        self.clock = clock or _utc_now
        self.header_names_to_sign = DEFAULT_SIGNED_HEADERS | _checked_header_names(extra_signed_headers)

    def __repr__(self) -> str:
        return f"AkSkAuth(credentials={self.credentials!r}, project_id={self.project_id!r})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = _body_bytes(request)
        if body is not request.body:
            request.body = body
            request.prepare_content_length(body)

        self.add_auth_headers(request)

        parts = urlsplit(request.url)
        query_pairs = parse_query(parts.query)
        request.url = urlunsplit(parts._replace(query=canonical_query_string(query_pairs)))

        headers = self.headers_to_sign(request.headers)
        date = request.headers["X-Sdk-Date"]
        request_text = canonical_request(request.method, parts.path, query_pairs, headers, body)
        request_signature = signature(self.credentials.sk, string_to_sign(date, request_text))

        request.headers["Authorization"] = authorization_header(
            self.credentials.ak, signed_headers(headers), request_signature
        )
        return request

    def add_auth_headers(self, request: requests.PreparedRequest) -> None:
        """Set `X-Sdk-Date`, `Host`, `X-Project-Id` and `X-Security-Token`, and drop an old `Authorization`."""
        request.headers.pop("Authorization", None)
        request.headers["X-Sdk-Date"] = sdk_date(self.clock())

        if "Host" not in request.headers:
            request.headers["Host"] = host_header(request.url)

        if self.project_id is not None:
            request.headers["X-Project-Id"] = self.project_id

        if self.credentials.security_token is not None:
            request.headers["X-Security-Token"] = self.credentials.security_token

    def headers_to_sign(self, headers: Mapping[str, object]) -> dict[str, object]:
        """Select the headers to sign from the request's headers, keeping their original names."""
        return {
            name: value
            for name, value in headers.items()
            if name.lower() in self.header_names_to_sign and value is not None
        }


def _checked_header_names(names: Iterable[str]) -> frozenset[str]:
    if isinstance(names, str):
        raise TypeError("extra_signed_headers must be a collection of header names, not a single string")

    checked = set()
    for name in names:
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name) or "_" in name:
            raise ValueError(
                f"invalid header name {ids.shown(name)} in extra_signed_headers: expected an HTTP header "
                "name such as X-Request-Id (names containing '_' are never signed)"
            )
        if name.lower() in UNSIGNABLE_HEADERS:
            raise ValueError(
                f"header {name!r} in extra_signed_headers cannot be signed: HTTP clients and proxies "
                "may change it after signing"
            )
        checked.add(name.lower())
    return frozenset(checked)


def _body_bytes(request: requests.PreparedRequest) -> bytes | None:
    """Return the body as the bytes that will be sent; a str body is encoded as UTF-8."""
    body = request.body
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    raise TypeError(
        f"AkSkAuth cannot sign a body of type {type(body).__name__}: the payload hash needs the whole "
        "body, so pass it as bytes or str instead of a file or generator"
    )
