"""Property tests: our signer and the official SDK core's signer give byte-identical Authorization values.

`huaweicloudsdkcore` is a test-only dependency here. Both signers get the same request: the same
method, path, query pairs, body, signing date and signed headers. Ours receives it as a `requests`
request and must recover the pairs from the encoded URL; the SDK core receives the raw pairs, as
its clients pass them.

Where the two are not given identical input, the reason is a known difference that a gateway does
not see, and the strategies below stay on ground where both are well defined:

- The SDK core signs every header it is given (its clients even sign User-Agent), while ours signs a
  fixed list. The SDK core is therefore given exactly the headers a CSS call carries and ours signs.
- The SDK core takes the query as (key, value) tuples and turns a bool into `true` and a list into
  repeated keys. A URL only carries strings, so only string keys and values are generated.
- The SDK core sends `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD` and signs that literal for non-JSON
  content types, while ours always hashes the body. CSS sends JSON or nothing, so only JSON content
  types are generated.
- For an invalid UTF-8 percent-escape the SDK core substitutes U+FFFD and ours raises ValueError.
  Generated text is always valid Unicode without surrogates.
"""

from __future__ import annotations

import json
import string
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from handler.css.signer import AkSkAuth, Credentials, canonical_query_string, parse_query

# Characters that break naive encoders, mixed into otherwise arbitrary Unicode text.
TRICKY_CHARACTERS = " +~=&%#?/;:@!$'()*,[]é中🙂\t"

unicode_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(TRICKY_CHARACTERS),
        st.characters(codec="utf-8"),
    ),
    max_size=8,
)

# A small pool of keys so that repeated keys are frequent.
query_keys = st.one_of(st.sampled_from(["k", "a b", "a+b", "a-b", "a", "~"]), unicode_text)
query_pairs = st.lists(st.tuples(query_keys, unicode_text), max_size=6)

path_segments = st.lists(unicode_text.filter(lambda segment: segment not in ("", ".", "..")), max_size=4)

json_bodies = st.one_of(
    st.just(b""),
    st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=8), st.booleans()), max_size=4).map(
        lambda document: json.dumps(document, ensure_ascii=False).encode("utf-8")
    ),
)

signing_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(timezone.utc)
)

access_keys = st.text(alphabet=string.ascii_uppercase + string.digits, min_size=1, max_size=20)
secret_keys = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=40)
security_tokens = st.one_of(st.none(), st.text(alphabet=string.ascii_letters + string.digits + "+/=-", min_size=1))
project_ids = st.one_of(st.none(), st.text(alphabet="0123456789abcdef", min_size=32, max_size=32))
content_types = st.sampled_from([None, "application/json", "application/json;charset=UTF-8"])
hosts = st.sampled_from([
    ("https", "css.ap-southeast-1.myhuaweicloud.com", None),
    ("https", "css.eu-west-101.myhuaweicloud.com", 443),
    ("https", "css.example.com", 8443),
    ("http", "127.0.0.1", 8080),
])


def encoded_path(segments: list[str], trailing_slash: bool) -> str:
    # Sub-delimiters, ':' and '@' stay literal, as RFC 3986 allows in a path, so that both signers
    # have to encode them. (The SDK core's clients quote path parameters with safe='', so they never do this.)
    path = "/" + "/".join(quote(segment, safe="!$&'()*+,;=:@~") for segment in segments)
    if trailing_slash and not path.endswith("/"):
        path += "/"
    return path


def expected_host(host: str, scheme: str, port: int | None) -> str:
    default_port = {"http": 80, "https": 443}[scheme]
    return host if port in (None, default_port) else f"{host}:{port}"


@settings(max_examples=500, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    endpoint=hosts,
    segments=path_segments,
    trailing_slash=st.booleans(),
    pairs=query_pairs,
    body=json_bodies,
    content_type=content_types,
    signing_time=signing_times,
    ak=access_keys,
    sk=secret_keys,
    security_token=security_tokens,
    project_id=project_ids,
    underscore_header=st.booleans(),
)
def test_authorization_matches_sdk_core(
    method,
    endpoint,
    segments,
    trailing_slash,
    pairs,
    body,
    content_type,
    signing_time,
    ak,
    sk,
    security_token,
    project_id,
    underscore_header,
):
    scheme, host, port = endpoint
    netloc = host if port is None else f"{host}:{port}"
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if underscore_header:
        headers["X_Trace_Id"] = "trace-1"

    request = requests.Request(
        method, f"{scheme}://{netloc}{encoded_path(segments, trailing_slash)}", params=pairs, headers=headers, data=body
    ).prepare()
    sent_path = urlsplit(request.url).path
    auth = AkSkAuth(Credentials(ak, sk, security_token), project_id=project_id, clock=lambda: signing_time)
    ours = auth(request).headers["Authorization"]

    sdk_headers = dict(headers)
    sdk_headers["Host"] = expected_host(host, scheme, port)
    sdk_headers["X-Sdk-Date"] = signing_time.strftime("%Y%m%dT%H%M%SZ")
    if project_id is not None:
        sdk_headers["X-Project-Id"] = project_id
    if security_token is not None:
        sdk_headers["X-Security-Token"] = security_token
    sdk_request = SdkRequest(
        method=method,
        schema=scheme,
        host=netloc,
        resource_path=sent_path,
        query_params=list(pairs),
        header_params=sdk_headers,
        body=body,
    )
    theirs = Signer(BasicCredentials(ak, sk)).sign(sdk_request).header_params["Authorization"]

    assert ours == theirs


@settings(max_examples=500, deadline=None)
@given(pairs=query_pairs)
def test_query_from_url_matches_sdk_core(pairs):
    prepared = requests.Request("GET", "https://css.example.com/v1.0", params=pairs).prepare()

    ours = canonical_query_string(parse_query(urlsplit(prepared.url).query))
    theirs = Signer.process_canonical_query_string(SdkRequest(query_params=list(pairs)))

    assert ours == theirs
