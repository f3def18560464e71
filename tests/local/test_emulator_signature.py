"""The emulator's signature verifier: published test vectors, and rejections over real HTTP."""

from __future__ import annotations

import hashlib
import time

import pytest
import requests

from handler.local.emulator import DEFAULT_ACCESS_KEY, DEFAULT_PROJECT_ID, DEFAULT_SECRET_KEY, Emulator
from handler.local.emulator import signature
from handler.local.emulator.auth import EmulatorAuth
from handler.local.emulator.signature import SignatureError, SigningCredential, Verifier

TEMPORARY_AK = "EMULATORTEMPAK00000000"
TEMPORARY_SK = "emulator-temporary-secret-do-not-use"
SECURITY_TOKEN = "emulator-security-token-do-not-use"
LOGS_PROD = "ea244205-d641-45d9-9dcb-ab2236bcd07e"

# Huawei's signing guide: a VPC list call signed with content-type, host and x-sdk-date.
GUIDE_HEADERS = {
    "content-type": "application/json",
    "host": "service.region.example.com",
    "x-sdk-date": "20191115T033655Z",
}
GUIDE_PATH = "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs"
GUIDE_QUERY = "limit=2&marker=13551d6b-755d-4757-b956-536f674975c0"
GUIDE_SIGNED = ("content-type", "host", "x-sdk-date")

# The Python SDK core's unit test: AK AccessKey, SK SecretKey, signed headers host and x-sdk-date.
SDK_HEADERS = {"host": "service.endpoint.myhuaweicloud.com", "x-sdk-date": "20200608T023900Z"}


def guide_canonical_request() -> str:
    return signature.canonical_request("GET", GUIDE_PATH, GUIDE_QUERY, GUIDE_HEADERS, GUIDE_SIGNED, b"")


# -- Published vectors ---------------------------------------------------------------------------


def test_guide_canonical_uri_gets_trailing_slash():
    assert signature.canonical_uri(GUIDE_PATH) == GUIDE_PATH + "/"


def test_guide_canonical_query():
    assert signature.canonical_query_string(GUIDE_QUERY) == GUIDE_QUERY


def test_guide_canonical_request_hash():
    digest = hashlib.sha256(guide_canonical_request().encode()).hexdigest()
    assert digest == "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a"


def test_guide_signature():
    to_sign = signature.string_to_sign("20191115T033655Z", guide_canonical_request())
    result = signature.signature("MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc", to_sign)
    assert result == "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"


@pytest.mark.parametrize(
    ("method", "body", "expected"),
    [
        ("GET", b"", "cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f128e12cd842"),
        ("POST", b'{"name":"test","id":1}', "436b1ac0a1ae03705934bb70ef2f2e09f7bfed2117d731a38235053199323a1f"),
    ],
)
def test_sdk_unit_test_signatures(method, body, expected):
    canonical = signature.canonical_request(method, "/resources", "size=1", SDK_HEADERS, ("host", "x-sdk-date"), body)
    to_sign = signature.string_to_sign("20200608T023900Z", canonical)
    assert signature.signature("SecretKey", to_sign) == expected


@pytest.mark.parametrize(
    ("raw_query", "expected"),
    [
        ("", ""),
        ("b=2&a=1", "a=1&b=2"),
        ("a=2&a=1", "a=1&a=2"),
        ("flag", "flag="),
        ("name=a%20b", "name=a%20b"),
        ("name=a+b", "name=a%2Bb"),
        ("path=%2Fx%2Fy", "path=%2Fx%2Fy"),
        ("tilde=~x", "tilde=~x"),
        ("a-b=1&a=2", "a=2&a-b=1"),
    ],
)
def test_canonical_query_cases(raw_query, expected):
    assert signature.canonical_query_string(raw_query) == expected


@pytest.mark.parametrize(
    ("raw_path", "expected"),
    [
        ("/", "/"),
        ("/v1.0/p/clusters", "/v1.0/p/clusters/"),
        ("/v1.0/p/clusters/", "/v1.0/p/clusters/"),
        ("/a%20b/c", "/a%20b/c/"),
        ("/x/cross-engine/images", "/x/cross-engine/images/"),
        ("/x/a:b", "/x/a%3Ab/"),
    ],
)
def test_canonical_uri_cases(raw_path, expected):
    assert signature.canonical_uri(raw_path) == expected


def test_canonical_headers_trim_values():
    text = signature.canonical_headers({"host": " h:1 ", "x-sdk-date": "d"}, ("host", "x-sdk-date"))
    assert text == "host:h:1\nx-sdk-date:d\n"


def test_parse_authorization_parts():
    parsed = signature.parse_authorization("SDK-HMAC-SHA256 Access=AK1, SignedHeaders=host;x-sdk-date, Signature=abc")
    assert (parsed.access_key, parsed.signed_headers, parsed.signature) == ("AK1", ("host", "x-sdk-date"), "abc")


def test_authorization_repr_hides_signature():
    parsed = signature.parse_authorization("SDK-HMAC-SHA256 Access=AK1, SignedHeaders=host;x-sdk-date, Signature=abcdef")
    assert "abcdef" not in repr(parsed)


def test_credential_repr_hides_secrets():
    text = repr(SigningCredential("AK1", "very-secret", "token-value"))
    assert "very-secret" not in text
    assert "token-value" not in text


# -- Verifier, without HTTP ----------------------------------------------------------------------

# The verifier's clock for the vectors: one minute after the guide's X-Sdk-Date.
VECTOR_TIME = signature.parse_sdk_date("20191115T033655Z") + 60


def guide_request_headers(signature_value: str, access_key: str = "GUIDEAK") -> dict[str, str]:
    authorization = f"SDK-HMAC-SHA256 Access={access_key}, SignedHeaders=content-type;host;x-sdk-date, Signature={signature_value}"
    return {**GUIDE_HEADERS, "authorization": authorization}


def guide_verifier(clock_time: float = VECTOR_TIME) -> Verifier:
    credential = SigningCredential("GUIDEAK", "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc")
    return Verifier([credential], clock=lambda: clock_time)


GUIDE_SIGNATURE = "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"


def test_verifier_accepts_guide_request():
    headers = guide_request_headers(GUIDE_SIGNATURE)
    credential = guide_verifier().verify("GET", GUIDE_PATH, GUIDE_QUERY, headers, b"")
    assert credential.access_key == "GUIDEAK"


def test_verifier_accepts_upper_case_signature():
    headers = guide_request_headers(GUIDE_SIGNATURE.upper())
    assert guide_verifier().verify("GET", GUIDE_PATH, GUIDE_QUERY, headers, b"").access_key == "GUIDEAK"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"path": GUIDE_PATH + "x"}, "verify aksk signature fail"),
        ({"query": "limit=3&marker=13551d6b-755d-4757-b956-536f674975c0"}, "verify aksk signature fail"),
        ({"method": "DELETE"}, "verify aksk signature fail"),
        ({"body": b"{}"}, "verify aksk signature fail"),
        ({"signature": "0" * 64}, "verify aksk signature fail"),
        ({"access_key": "OTHERAK"}, "not known"),
        ({"clock": VECTOR_TIME + 20 * 60}, "expired"),
        ({"clock": VECTOR_TIME - 20 * 60}, "expired"),
    ],
)
def test_verifier_rejects_changed_request(change, reason):
    headers = guide_request_headers(change.get("signature", GUIDE_SIGNATURE), change.get("access_key", "GUIDEAK"))
    verifier = guide_verifier(change.get("clock", VECTOR_TIME))
    with pytest.raises(SignatureError, match=reason):
        verifier.verify(
            change.get("method", "GET"),
            change.get("path", GUIDE_PATH),
            change.get("query", GUIDE_QUERY),
            headers,
            change.get("body", b""),
        )


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("AWS4-HMAC-SHA256 Credential=x", "does not use SDK-HMAC-SHA256"),
        ("SDK-HMAC-SHA256 Access=GUIDEAK, Signature=abc", "lacks"),
        ("SDK-HMAC-SHA256 Access=GUIDEAK, SignedHeaders=content-type;x-sdk-date, Signature=abc", "must include host"),
        ("SDK-HMAC-SHA256 Access=GUIDEAK, SignedHeaders=content-type;host, Signature=abc", "must include x-sdk-date"),
        ("SDK-HMAC-SHA256 Access=GUIDEAK, SignedHeaders=Host;x-sdk-date, Signature=abc", "lower-case"),
        ("SDK-HMAC-SHA256 Access=GUIDEAK, SignedHeaders=host;x-sdk-date;x-missing, Signature=abc", "not in the request"),
    ],
)
def test_verifier_rejects_authorization_header(authorization, reason):
    headers = dict(GUIDE_HEADERS)
    if authorization is not None:
        headers["authorization"] = authorization
    with pytest.raises(SignatureError, match=reason):
        guide_verifier().verify("GET", GUIDE_PATH, GUIDE_QUERY, headers, b"")


@pytest.mark.parametrize("date", ["", "2019-11-15T03:36:55Z", "20191115 033655"])
def test_verifier_rejects_malformed_date(date):
    headers = {**guide_request_headers(GUIDE_SIGNATURE), "x-sdk-date": date}
    with pytest.raises(SignatureError, match="X-Sdk-Date"):
        guide_verifier().verify("GET", GUIDE_PATH, GUIDE_QUERY, headers, b"")


def test_verifier_uses_declared_payload_hash():
    headers = {"host": "h", "x-sdk-date": "20191115T033655Z", "x-sdk-content-sha256": signature.UNSIGNED_PAYLOAD}
    canonical = signature.canonical_request("POST", "/p", "", headers, ("host", "x-sdk-date"), b"binary")
    assert canonical.endswith("\n" + signature.UNSIGNED_PAYLOAD)


# -- Over HTTP -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator():
    with Emulator() as running:
        yield running


def images_url(emulator: Emulator) -> str:
    return f"{emulator.url}/v1.0/{DEFAULT_PROJECT_ID}/clusters/{LOGS_PROD}/target/cross/images"


def assert_rejected(response: requests.Response, reason: str) -> None:
    assert response.status_code == 401
    body = response.json()
    assert body["error_code"] == "APIGW.0301"
    assert body["error_msg"].startswith("Incorrect IAM authentication information: ")
    assert reason in body["error_msg"]
    assert body["request_id"] == response.headers["X-Request-Id"]


def test_http_signed_request_accepted(emulator):
    response = requests.get(images_url(emulator), auth=EmulatorAuth(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, DEFAULT_PROJECT_ID))
    assert response.status_code == 200


def test_http_unsigned_request_rejected(emulator):
    assert_rejected(requests.get(images_url(emulator)), "Authorization header is missing")


def test_http_wrong_secret_rejected(emulator):
    response = requests.get(images_url(emulator), auth=EmulatorAuth(DEFAULT_ACCESS_KEY, "wrong-secret"))
    assert_rejected(response, "verify aksk signature fail")


def test_http_unknown_access_key_rejected(emulator):
    response = requests.get(images_url(emulator), auth=EmulatorAuth("UNKNOWNAK0000000000000", DEFAULT_SECRET_KEY))
    assert_rejected(response, "not known")


@pytest.mark.parametrize("minutes", [-16, 16])
def test_http_stale_date_rejected(emulator, minutes):
    auth = EmulatorAuth(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, clock=lambda: time.time() + minutes * 60)
    assert_rejected(requests.get(images_url(emulator), auth=auth), "expired")


def test_http_date_within_skew_accepted(emulator):
    auth = EmulatorAuth(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, clock=lambda: time.time() - 10 * 60)
    assert requests.get(images_url(emulator), auth=auth).status_code == 200


def test_http_tampered_query_rejected(emulator):
    signed = requests.Request("GET", images_url(emulator), params={"limit": "1"}).prepare()
    EmulatorAuth(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)(signed)
    signed.url = signed.url.replace("limit=1", "limit=2")
    with requests.Session() as session:
        assert_rejected(session.send(signed), "verify aksk signature fail")


def test_http_tampered_body_rejected(emulator):
    url = f"{emulator.url}/v1.0/{DEFAULT_PROJECT_ID}/clusters/{LOGS_PROD}/inst-type/all/image/upgrade"
    signed = requests.Request("POST", url, data=b'{"a":1}', headers={"Content-Type": "application/json"}).prepare()
    EmulatorAuth(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)(signed)
    signed.body = b'{"a":2}'
    with requests.Session() as session:
        assert_rejected(session.send(signed), "verify aksk signature fail")


def test_http_temporary_credential_with_token_accepted(emulator):
    auth = EmulatorAuth(TEMPORARY_AK, TEMPORARY_SK, DEFAULT_PROJECT_ID, security_token=SECURITY_TOKEN)
    assert requests.get(images_url(emulator), auth=auth).status_code == 200


def test_http_temporary_credential_without_token_rejected(emulator):
    auth = EmulatorAuth(TEMPORARY_AK, TEMPORARY_SK, DEFAULT_PROJECT_ID)
    assert_rejected(requests.get(images_url(emulator), auth=auth), "X-Security-Token")


def test_http_temporary_credential_wrong_token_rejected(emulator):
    auth = EmulatorAuth(TEMPORARY_AK, TEMPORARY_SK, DEFAULT_PROJECT_ID, security_token="another-token")
    assert_rejected(requests.get(images_url(emulator), auth=auth), "does not belong")


def test_http_unsigned_token_header_rejected(emulator):
    signed = requests.Request("GET", images_url(emulator)).prepare()
    EmulatorAuth(TEMPORARY_AK, TEMPORARY_SK, DEFAULT_PROJECT_ID)(signed)
    signed.headers["X-Security-Token"] = SECURITY_TOKEN
    with requests.Session() as session:
        assert_rejected(session.send(signed), "X-Security-Token")


def test_http_token_with_permanent_key_rejected(emulator):
    auth = EmulatorAuth(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, security_token=SECURITY_TOKEN)
    assert_rejected(requests.get(images_url(emulator), auth=auth), "permanent access key")


def test_http_rejection_is_recorded(emulator):
    emulator.reset_calls()
    requests.get(images_url(emulator))
    assert [call.status for call in emulator.calls] == [401]
