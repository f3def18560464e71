"""Tests of the SDK-HMAC-SHA256 signer: each step against published values, AkSkAuth's headers, and
a full signed request verified by an HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import re
import threading
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, quote, unquote

import pytest
import requests

from handler.css.signer import (
    EMPTY_PAYLOAD_HASH,
    AkSkAuth,
    Credentials,
    authorization_header,
    canonical_headers,
    canonical_query_string,
    canonical_request,
    canonical_uri,
    hashed_payload,
    host_header,
    parse_query,
    sdk_date,
    signature,
    signed_headers,
    string_to_sign,
)

# The worked example of Huawei Cloud's "API Request Signing Guide" (AK/SK authentication).
GUIDE_PATH = "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs"
GUIDE_QUERY = "limit=2&marker=13551d6b-755d-4757-b956-536f674975c0"
GUIDE_DATE = "20191115T033655Z"
GUIDE_HEADERS = {
    "Content-Type": "application/json",
    "Host": "service.region.example.com",
    "X-Sdk-Date": GUIDE_DATE,
}
GUIDE_SK = "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"
GUIDE_CANONICAL_REQUEST_HASH = "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a"
GUIDE_SIGNATURE = "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"

# The vectors of the official Python SDK core's own unit test (huaweicloud-sdk-core tests/test_signer.py).
SDK_TEST_URL = "https://service.endpoint.myhuaweicloud.com/resources?size=1"
SDK_TEST_TIME = datetime(2020, 6, 8, 2, 39, 0, tzinfo=timezone.utc)
SDK_TEST_GET_SIGNATURE = "cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f128e12cd842"
SDK_TEST_POST_SIGNATURE = "436b1ac0a1ae03705934bb70ef2f2e09f7bfed2117d731a38235053199323a1f"

PROJECT_ID = "6204a5bd270343b5885144cf9c8c158d"
FIXED_TIME = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)

_AUTHORIZATION = re.compile(
    r"SDK-HMAC-SHA256 Access=(?P<ak>[^,\s]+), SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


def fixed_clock(moment: datetime = FIXED_TIME):
    return lambda: moment


def signed(request: requests.Request, auth: AkSkAuth) -> requests.PreparedRequest:
    return auth(request.prepare())


def authorization_parts(prepared: requests.PreparedRequest) -> dict[str, str]:
    match = _AUTHORIZATION.fullmatch(prepared.headers["Authorization"])
    assert match, prepared.headers["Authorization"]
    return match.groupdict()


# --- the signing guide's worked example, step by step ---


def test_guide_canonical_uri():
    assert canonical_uri(GUIDE_PATH) == GUIDE_PATH + "/"


def test_guide_canonical_query_string():
    assert canonical_query_string(parse_query(GUIDE_QUERY)) == GUIDE_QUERY


def test_guide_signed_headers():
    assert signed_headers(GUIDE_HEADERS) == "content-type;host;x-sdk-date"


def test_guide_canonical_headers():
    expected = "content-type:application/json\nhost:service.region.example.com\nx-sdk-date:20191115T033655Z\n"
    assert canonical_headers(GUIDE_HEADERS) == expected


def test_guide_canonical_request_hash():
    request_text = canonical_request("GET", GUIDE_PATH, parse_query(GUIDE_QUERY), GUIDE_HEADERS, b"")
    assert hashlib.sha256(request_text.encode()).hexdigest() == GUIDE_CANONICAL_REQUEST_HASH


def test_guide_string_to_sign():
    request_text = canonical_request("GET", GUIDE_PATH, parse_query(GUIDE_QUERY), GUIDE_HEADERS, b"")
    expected = f"SDK-HMAC-SHA256\n{GUIDE_DATE}\n{GUIDE_CANONICAL_REQUEST_HASH}"
    assert string_to_sign(GUIDE_DATE, request_text) == expected


def test_guide_signature():
    request_text = canonical_request("GET", GUIDE_PATH, parse_query(GUIDE_QUERY), GUIDE_HEADERS, b"")
    assert signature(GUIDE_SK, string_to_sign(GUIDE_DATE, request_text)) == GUIDE_SIGNATURE


def test_guide_full_request_through_auth():
    guide_time = datetime(2019, 11, 15, 3, 36, 55, tzinfo=timezone.utc)
    auth = AkSkAuth(Credentials("AK0000000000000000", GUIDE_SK), clock=fixed_clock(guide_time))
    request = requests.Request(
        "GET",
        "https://service.region.example.com" + GUIDE_PATH,
        params=[("limit", "2"), ("marker", "13551d6b-755d-4757-b956-536f674975c0")],
        headers={"Content-Type": "application/json"},
    )

    parts = authorization_parts(signed(request, auth))

    assert parts["signed"] == "content-type;host;x-sdk-date"
    assert parts["signature"] == GUIDE_SIGNATURE


# --- the SDK core's own unit-test vectors, through AkSkAuth ---


@pytest.mark.parametrize(
    ("method", "body", "expected_signature"),
    [
        ("GET", None, SDK_TEST_GET_SIGNATURE),
        ("POST", b'{"name":"test","id":1}', SDK_TEST_POST_SIGNATURE),
    ],
)
def test_sdk_core_vectors(method, body, expected_signature):
    auth = AkSkAuth(Credentials("AccessKey", "SecretKey"), clock=fixed_clock(SDK_TEST_TIME))
    request = requests.Request(method, SDK_TEST_URL, headers={"TEST_UNDERSCORE": "TEST_VALUE"}, data=body)

    prepared = signed(request, auth)

    assert prepared.headers["Authorization"] == (
        f"SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=host;x-sdk-date, Signature={expected_signature}"
    )


def test_sdk_core_vector_step_by_step():
    headers = {
        "Host": "service.endpoint.myhuaweicloud.com",
        "X-Sdk-Date": "20200608T023900Z",
        "TEST_UNDERSCORE": "TEST_VALUE",
    }
    request_text = canonical_request("GET", "/resources", [("size", "1")], headers, None)

    assert signature("SecretKey", string_to_sign("20200608T023900Z", request_text)) == SDK_TEST_GET_SIGNATURE


# --- the steps on harder input ---


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", "/"),
        ("/", "/"),
        ("/a/b/", "/a/b/"),
        ("/a%20b", "/a%20b/"),
        ("/a+b", "/a%2Bb/"),
        ("/%7Eu~", "/~u~/"),
        ("/a;b=c,d", "/a%3Bb%3Dc%2Cd/"),
        ("/%C3%A9/%E4%B8%AD", "/%C3%A9/%E4%B8%AD/"),
        ("/%c3%a9", "/%C3%A9/"),
        ("/a%2Fb", "/a/b/"),
        ("/A-Z.0_9", "/A-Z.0_9/"),
    ],
)
def test_canonical_uri_cases(path, expected):
    assert canonical_uri(path) == expected


def test_canonical_uri_rejects_invalid_utf8():
    with pytest.raises(ValueError, match="not UTF-8"):
        canonical_uri("/a%FF")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", []),
        ("a=b+c", [("a", "b c")]),
        ("a=b%20c", [("a", "b c")]),
        ("a=%2B", [("a", "+")]),
        ("flag", [("flag", "")]),
        ("empty=", [("empty", "")]),
        ("a=1&&b=2", [("a", "1"), ("b", "2")]),
        ("eq=x%3Dy&amp=x%26y", [("eq", "x=y"), ("amp", "x&y")]),
        ("%7E=~", [("~", "~")]),
        ("k=%C3%A9", [("k", "é")]),
        ("k=2&k=1", [("k", "2"), ("k", "1")]),
    ],
)
def test_parse_query_cases(query, expected):
    assert parse_query(query) == expected


def test_parse_query_rejects_invalid_utf8():
    with pytest.raises(ValueError, match="not UTF-8"):
        parse_query("k=%FF")


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([], ""),
        ([("b", "1"), ("a", "2")], "a=2&b=1"),
        ([("k", "2"), ("k", "1"), ("k", "10")], "k=1&k=10&k=2"),
        ([("empty", "")], "empty="),
        ([("a b", "c d")], "a%20b=c%20d"),
        ([("plus", "+")], "plus=%2B"),
        ([("tilde~", "~")], "tilde~=~"),
        ([("eq", "x=y"), ("amp", "x&y")], "amp=x%26y&eq=x%3Dy"),
        ([("k", "é中")], "k=%C3%A9%E4%B8%AD"),
        ([("a-b", "1"), ("a", "2")], "a=2&a-b=1"),
        ([("reserved", "!*'();:@$,/?#[]")], "reserved=%21%2A%27%28%29%3B%3A%40%24%2C%2F%3F%23%5B%5D"),
        # The string cases of the SDK core's own query test.
        (
            [("limit", "1"), ("test", "一 (&=?!#%.*)"), ("path", "/tmp/123")],
            "limit=1&path=%2Ftmp%2F123&test=%E4%B8%80%20%28%26%3D%3F%21%23%25.%2A%29",
        ),
    ],
)
def test_canonical_query_string_cases(pairs, expected):
    assert canonical_query_string(pairs) == expected


def test_canonical_headers_trims_and_sorts():
    headers = {"X-Sdk-Date": " 20240506T070809Z ", "Host": "example.com", "Content-Type": "application/json"}
    expected = "content-type:application/json\nhost:example.com\nx-sdk-date:20240506T070809Z\n"
    assert canonical_headers(headers) == expected


def test_canonical_headers_skip_underscore():
    assert canonical_headers({"Host": "h", "X_Trace_Id": "1"}) == "host:h\n"


def test_signed_headers_skip_underscore():
    assert signed_headers({"Host": "h", "X-Sdk-Date": "d", "TEST_UNDERSCORE": "1"}) == "host;x-sdk-date"


def test_canonical_headers_reject_case_duplicates():
    with pytest.raises(ValueError, match="twice"):
        canonical_headers({"Host": "a", "host": "b"})


def test_canonical_headers_reject_non_ascii():
    with pytest.raises(ValueError, match="X-Note"):
        canonical_headers({"X-Note": "café"})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (None, EMPTY_PAYLOAD_HASH),
        (b"", EMPTY_PAYLOAD_HASH),
        (b"{}", hashlib.sha256(b"{}").hexdigest()),
        ('{"k":"é"}', hashlib.sha256('{"k":"é"}'.encode()).hexdigest()),
    ],
)
def test_hashed_payload_cases(body, expected):
    assert hashed_payload(body) == expected


def test_empty_payload_hash_value():
    assert EMPTY_PAYLOAD_HASH == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_authorization_header_format():
    value = authorization_header("AK1", "host;x-sdk-date", "ab" * 32)
    assert value == f"SDK-HMAC-SHA256 Access=AK1, SignedHeaders=host;x-sdk-date, Signature={'ab' * 32}"


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2019, 11, 15, 3, 36, 55, tzinfo=timezone.utc), "20191115T033655Z"),
        (datetime(2019, 11, 15, 11, 36, 55, tzinfo=timezone(timedelta(hours=8))), "20191115T033655Z"),
        (datetime(2019, 12, 31, 23, 0, 0, 999999, tzinfo=timezone(timedelta(hours=-2))), "20200101T010000Z"),
    ],
)
def test_sdk_date_cases(moment, expected):
    assert sdk_date(moment) == expected


def test_sdk_date_rejects_naive():
    with pytest.raises(ValueError, match="timezone-aware"):
        sdk_date(datetime(2019, 11, 15, 3, 36, 55))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://css.eu-west-101.myhuaweicloud.com/v1.0", "css.eu-west-101.myhuaweicloud.com"),
        ("https://example.com:443/", "example.com"),
        ("http://example.com:80/", "example.com"),
        ("https://example.com:80/", "example.com:80"),
        ("http://127.0.0.1:8443/x", "127.0.0.1:8443"),
        ("https://[::1]:9000/", "[::1]:9000"),
        ("https://[::1]/", "[::1]"),
        ("https://Example.COM/", "example.com"),
    ],
)
def test_host_header_cases(url, expected):
    assert host_header(url) == expected


def test_host_header_rejects_missing_host():
    with pytest.raises(ValueError, match="no host"):
        host_header("/relative/path")


# --- credentials ---


def test_credentials_repr_hides_secrets():
    credentials = Credentials("AKIDEXAMPLE123", "secret-key-value", security_token="token-value")

    text = repr(credentials)

    assert "secret-key-value" not in text
    assert "token-value" not in text
    assert "AKIDEXAMPLE123" not in text
    assert "AKID***" in text


def test_credentials_str_hides_secrets():
    credentials = Credentials("AKIDEXAMPLE123", "secret-key-value", security_token="token-value")

    text = f"{credentials} {credentials!s} {[credentials]}"

    assert "secret-key-value" not in text
    assert "token-value" not in text


def test_auth_repr_hides_secrets():
    auth = AkSkAuth(Credentials("AKIDEXAMPLE123", "secret-key-value", "token-value"), project_id=PROJECT_ID)

    text = repr(auth)

    assert "secret-key-value" not in text
    assert "token-value" not in text
    assert PROJECT_ID in text


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ak": "", "sk": "s"}, "ak"),
        ({"ak": "AK WITH SPACE", "sk": "s"}, "ak"),
        ({"ak": "AK,1", "sk": "s"}, "ak"),
        ({"ak": None, "sk": "s"}, "ak"),
        ({"ak": "AK1", "sk": ""}, "sk"),
        ({"ak": "AK1", "sk": b"bytes"}, "sk"),
        ({"ak": "AK1", "sk": "s", "security_token": ""}, "security_token"),
        ({"ak": "AK1", "sk": "s", "security_token": "tok\r\nX-Evil: 1"}, "security_token"),
    ],
)
def test_credentials_reject_invalid(kwargs, field):
    with pytest.raises(ValueError, match=f"invalid {field}"):
        Credentials(**kwargs)


def test_credentials_error_hides_secret():
    with pytest.raises(ValueError) as raised:
        Credentials("AK1", "s", security_token="secret-token\n")

    assert "secret-token" not in str(raised.value)


# --- AkSkAuth: headers it adds and signs ---


def test_auth_adds_and_signs_security_token():
    auth = AkSkAuth(Credentials("AK1", "SK1", security_token="temporary-token"), clock=fixed_clock())

    prepared = signed(requests.Request("GET", "https://example.com/v1.0/x"), auth)

    assert prepared.headers["X-Security-Token"] == "temporary-token"
    assert "x-security-token" in authorization_parts(prepared)["signed"].split(";")


def test_auth_adds_and_signs_project_id():
    auth = AkSkAuth(Credentials("AK1", "SK1"), project_id=PROJECT_ID.upper(), clock=fixed_clock())

    prepared = signed(requests.Request("GET", "https://example.com/v1.0/x"), auth)

    assert prepared.headers["X-Project-Id"] == PROJECT_ID
    assert "x-project-id" in authorization_parts(prepared)["signed"].split(";")


def test_auth_rejects_invalid_project_id():
    with pytest.raises(ValueError, match="invalid project_id 'not-a-project'"):
        AkSkAuth(Credentials("AK1", "SK1"), project_id="not-a-project")


def test_auth_sets_date_from_clock():
    auth = AkSkAuth(Credentials("AK1", "SK1"), clock=fixed_clock())

    prepared = signed(requests.Request("GET", "https://example.com/"), auth)

    assert prepared.headers["X-Sdk-Date"] == "20240506T070809Z"


def test_auth_default_clock_is_current_utc():
    before = datetime.now(timezone.utc).replace(microsecond=0)
    prepared = signed(requests.Request("GET", "https://example.com/"), AkSkAuth(Credentials("AK1", "SK1")))
    after = datetime.now(timezone.utc)

    sent = datetime.strptime(prepared.headers["X-Sdk-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)

    assert before <= sent <= after


def test_auth_host_with_non_default_port():
    auth = AkSkAuth(Credentials("AK1", "SK1"), clock=fixed_clock())

    prepared = signed(requests.Request("GET", "https://example.com:8443/v1.0/x"), auth)

    assert prepared.headers["Host"] == "example.com:8443"
    assert "host" in authorization_parts(prepared)["signed"].split(";")


def test_auth_host_omits_default_port():
    auth = AkSkAuth(Credentials("AK1", "SK1"), clock=fixed_clock())

    prepared = signed(requests.Request("GET", "https://example.com:443/v1.0/x"), auth)

    assert prepared.headers["Host"] == "example.com"


def test_auth_keeps_existing_host():
    auth = AkSkAuth(Credentials("AK1", "SK1"), clock=fixed_clock())
    request = requests.Request("GET", "http://127.0.0.1:9/x", headers={"Host": "css.example.com"})

    prepared = signed(request, auth)

    assert prepared.headers["Host"] == "css.example.com"


def test_auth_signs_only_listed_headers():
    auth = AkSkAuth(Credentials("AK1", "SK1"), project_id=PROJECT_ID, clock=fixed_clock())
    request = requests.Request(
        "POST",
        "https://example.com/v1.0/x",
        json={"a": 1},
        headers={"User-Agent": "ua", "Accept": "*/*", "Accept-Encoding": "gzip", "Connection": "close", "X-Other": "1"},
    )

    prepared = signed(request, auth)

    assert authorization_parts(prepared)["signed"] == "content-type;host;x-project-id;x-sdk-date"


def test_auth_signs_extra_header_when_present():
    auth = AkSkAuth(Credentials("AK1", "SK1"), clock=fixed_clock(), extra_signed_headers=["X-Request-Id"])
    request = requests.Request("GET", "https://example.com/", headers={"X-Request-Id": "r-1"})

    prepared = signed(request, auth)

    assert authorization_parts(prepared)["signed"] == "host;x-request-id;x-sdk-date"


def test_auth_skips_absent_extra_header():
    auth = AkSkAuth(Credentials("AK1", "SK1"), clock=fixed_clock(), extra_signed_headers=["X-Request-Id"])

    prepared = signed(requests.Request("GET", "https://example.com/"), auth)

    assert authorization_parts(prepared)["signed"] == "host;x-sdk-date"


@pytest.mark.parametrize(
    "name",
    [
        "User-Agent",
        "accept",
        "Accept-Encoding",
        "Connection",
        "Content-Length",
        "Authorization",
        "X_Trace",
        "bad name",
        "",
    ],
)
def test_auth_rejects_unsignable_extra_header(name):
    with pytest.raises(ValueError, match="extra_signed_headers"):
        AkSkAuth(Credentials("AK1", "SK1"), extra_signed_headers=[name])


def test_auth_rejects_extra_headers_as_string():
    with pytest.raises(TypeError, match="single string"):
        AkSkAuth(Credentials("AK1", "SK1"), extra_signed_headers="X-Request-Id")


def test_auth_rewrites_query_canonically():
    auth = AkSkAuth(Credentials("AK1", "SK1"), clock=fixed_clock())
    request = requests.Request("GET", "https://example.com/a b/c+d", params=[("z", "a b"), ("a", "1+1")])

    prepared = signed(request, auth)

    assert prepared.url == "https://example.com/a%20b/c+d?a=1%2B1&z=a%20b"


def test_auth_resign_replaces_date_and_signature():
    moments = iter([FIXED_TIME, FIXED_TIME + timedelta(seconds=1)])
    auth = AkSkAuth(Credentials("AK1", "SK1"), clock=lambda: next(moments))
    prepared = signed(requests.Request("GET", "https://example.com/"), auth)
    first = authorization_parts(prepared)["signature"]

    auth(prepared)

    assert prepared.headers["X-Sdk-Date"] == "20240506T070810Z"
    assert authorization_parts(prepared)["signature"] != first


def test_auth_encodes_str_body_as_utf8():
    auth = AkSkAuth(Credentials("AK1", "SK1"), clock=fixed_clock())
    request = requests.Request(
        "POST", "https://example.com/", data='{"k":"é"}', headers={"Content-Type": "application/json"}
    )

    prepared = signed(request, auth)

    assert prepared.body == '{"k":"é"}'.encode()
    assert prepared.headers["Content-Length"] == str(len('{"k":"é"}'.encode()))


def test_auth_rejects_streaming_body():
    auth = AkSkAuth(Credentials("AK1", "SK1"), clock=fixed_clock())
    request = requests.Request("POST", "https://example.com/", data=(chunk for chunk in [b"a", b"b"]))

    with pytest.raises(TypeError, match="generator"):
        signed(request, auth)


def test_auth_rejects_naive_clock():
    auth = AkSkAuth(Credentials("AK1", "SK1"), clock=lambda: datetime(2024, 1, 1))

    with pytest.raises(ValueError, match="timezone-aware"):
        signed(requests.Request("GET", "https://example.com/"), auth)


# --- a full request over a socket, verified by the server ---

VERIFIER_CREDENTIALS = {"AKVERIFY0001": "verifier-secret-é"}


class VerifyingHandler(http.server.BaseHTTPRequestHandler):
    """Recompute the signature from the raw request, as a gateway would, with no code from the signer."""

    def do_GET(self):
        self._verify()

    do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, format, *args):
        pass

    def _verify(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        raw_path, _, raw_query = self.path.partition("?")

        match = _AUTHORIZATION.fullmatch(self.headers.get("Authorization", ""))
        if not match:
            self._reply(401, {"error": "missing or malformed Authorization"})
            return

        decoded_path = unquote(raw_path)
        uri = "/".join(quote(segment, safe="-_.~") for segment in decoded_path.split("/"))
        if not uri.endswith("/"):
            uri += "/"

        # Both ways of reading '+' must give the same pairs, or the query is ambiguous.
        form_pairs = parse_qsl(raw_query, keep_blank_values=True)
        plain_pairs = [
            (unquote(key), unquote(value))
            for key, _, value in (item.partition("=") for item in raw_query.split("&") if item)
        ]
        query = "&".join(
            quote(key, safe="-_.~") + "=" + quote(value, safe="-_.~") for key, value in sorted(form_pairs)
        )

        names = match["signed"].split(";")
        header_block = "".join(f"{name}:{self.headers[name].strip()}\n" for name in names)
        text = "\n".join(
            [self.command, uri, query, header_block, match["signed"], hashlib.sha256(body).hexdigest()]
        )
        to_sign = "SDK-HMAC-SHA256\n{}\n{}".format(
            self.headers["X-Sdk-Date"], hashlib.sha256(text.encode()).hexdigest()
        )
        secret = VERIFIER_CREDENTIALS.get(match["ak"], "")
        expected = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()

        self._reply(
            200 if hmac.compare_digest(expected, match["signature"]) else 401,
            {
                "path": decoded_path,
                "query": sorted(form_pairs),
                "query_unambiguous": form_pairs == plain_pairs,
                "signed_headers": names,
                "host": self.headers["Host"],
                "body": body.decode("utf-8"),
            },
        )

    def _reply(self, status, document):
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture(scope="module")
def verifier_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), VerifyingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def session():
    with requests.Session() as session:
        session.trust_env = False  # never route 127.0.0.1 through a proxy from the environment
        yield session


SOCKET_CASES = [
    pytest.param("GET", "/v1.0/clusters", [("a b", "c d")], None, id="spaces"),
    pytest.param("GET", "/v1.0/clusters", [("q", "a+b"), ("plus+key", "+")], None, id="plus"),
    pytest.param(
        "GET",
        "/v1.0/~user",
        [("k~", "~v"), ("eq", "a=b"), ("amp", "x&y"), ("semi;", "a;b,c")],
        None,
        id="tilde-eq-amp",
    ),
    pytest.param("GET", "/v1.0/é/中文", [("名", "värde"), ("emoji", "🙂")], None, id="unicode"),
    pytest.param("GET", "/v1.0/a b/c+d/e=f&g;h,i!*'()@:$", [], None, id="path-reserved"),
    pytest.param("GET", "/v1.0/x", [("k", "2"), ("k", "1"), ("e", "")], None, id="repeated-empty"),
    pytest.param("POST", "/v1.0/x/upgrade", [("retry_mode", "abort")], {"name": "é", "n": 1}, id="json-body"),
    pytest.param("PUT", "/v1.0/x", [], {}, id="empty-json"),
    pytest.param("DELETE", "/", [], None, id="root"),
]


@pytest.mark.parametrize(("method", "path", "params", "json_body"), SOCKET_CASES)
def test_socket_signature_verified(session, verifier_url, method, path, params, json_body):
    credentials = Credentials("AKVERIFY0001", VERIFIER_CREDENTIALS["AKVERIFY0001"], security_token="tmp-token")
    session.auth = AkSkAuth(credentials, project_id=PROJECT_ID)

    response = session.request(
        method,
        verifier_url + path,
        params=params,
        json=json_body,
        headers={"Content-Type": "application/json", "X_Ignored": "1"},
        allow_redirects=False,
        timeout=10,
    )
    seen = response.json()

    assert response.status_code == 200, seen
    assert seen["path"] == path
    assert seen["query"] == [list(pair) for pair in sorted(params)]
    assert seen["query_unambiguous"] is True
    assert seen["signed_headers"] == ["content-type", "host", "x-project-id", "x-sdk-date", "x-security-token"]
    assert seen["host"] == verifier_url.removeprefix("http://")


def test_socket_wrong_secret_rejected(session, verifier_url):
    session.auth = AkSkAuth(Credentials("AKVERIFY0001", "not-the-secret"))

    response = session.get(verifier_url + "/v1.0/x", params={"a": "b"}, timeout=10)

    assert response.status_code == 401
