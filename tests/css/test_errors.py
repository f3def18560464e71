"""Classification of CSS responses: error code first, HTTP status second, three body shapes."""

import pytest

from handler.css import errors

CSS_BODY = '{{"errCode": "{code}", "externalMessage": "{code} : something happened"}}'
GATEWAY_BODY = '{{"error_code": "{code}", "error_msg": "gateway says no", "request_id": "req-gw-1"}}'
TOMCAT_PAGE = "<html><head><title>CloudMiddleWareTomcat</title></head><body><h1>HTTP Status 502 - Bad Gateway</h1></body></html>"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        # CSS reuses statuses: the code decides.
        (400, CSS_BODY.format(code="CSS.0036"), errors.ServerError),
        (400, CSS_BODY.format(code="CSS.6013"), errors.BusyError),
        (400, CSS_BODY.format(code="CSS.0047"), errors.NotFoundError),
        (403, CSS_BODY.format(code="CSS.0015"), errors.NotFoundError),
        (202, CSS_BODY.format(code="CSS.0011"), errors.BusyError),
        (409, CSS_BODY.format(code="CSS.0011"), errors.BusyError),
        (200, CSS_BODY.format(code="CSS.0011"), errors.BusyError),
        (403, CSS_BODY.format(code="CSS.0010"), errors.AccessDeniedError),
        (400, CSS_BODY.format(code="CSS.0001"), errors.InvalidRequestError),
        (400, CSS_BODY.format(code="CSS.5140"), errors.InvalidRequestError),
        (500, CSS_BODY.format(code="CSS.9999"), errors.ServerError),
        # Gateway shape.
        (429, GATEWAY_BODY.format(code="APIGW.0308"), errors.ThrottledError),
        (429, GATEWAY_BODY.format(code="APIG.0308"), errors.ThrottledError),
        (401, GATEWAY_BODY.format(code="APIGW.0301"), errors.CredentialError),
        # No code: the status decides.
        (429, "", errors.ThrottledError),
        (409, "", errors.BusyError),
        (502, TOMCAT_PAGE, errors.ServerError),
        (503, "", errors.ServerError),
        (404, "", errors.NotFoundError),
        (403, "", errors.AccessDeniedError),
        (401, "", errors.CredentialError),
        (400, "not json at all", errors.InvalidRequestError),
    ],
)
def test_classify_maps_code_then_status(status, body, expected):
    error = errors.classify(status, body, {"X-Request-Id": "req-1"}, operation="ListImages", cluster_id="c1")
    assert type(error) is expected


@pytest.mark.parametrize("status", [200, 201, 204])
def test_classify_success_without_code_is_none(status):
    assert errors.classify(status, '{"imageInfoList": []}', {}) is None


def test_retryable_classes():
    assert errors.ThrottledError("x").retryable
    assert errors.BusyError("x").retryable
    assert errors.ServerError("x").retryable
    assert errors.TransportError("x").retryable
    assert not errors.NotFoundError("x").retryable
    assert not errors.AccessDeniedError("x").retryable
    assert not errors.InvalidRequestError("x").retryable
    assert not errors.CredentialError("x").retryable


def test_message_names_cluster_status_code_and_request_id():
    error = errors.classify(403, CSS_BODY.format(code="CSS.0015"), {"x-request-id": "abc123"}, operation="ListImages", cluster_id="c-1")
    text = str(error)
    assert "ListImages" in text
    assert "cluster c-1" in text
    assert "HTTP 403" in text
    assert "CSS.0015" in text
    assert "request ID abc123" in text


def test_gateway_request_id_from_body():
    error = errors.classify(429, GATEWAY_BODY.format(code="APIGW.0308"), {})
    assert error.request_id == "req-gw-1"


def test_html_body_is_reduced_to_text():
    error = errors.classify(502, TOMCAT_PAGE, {})
    assert "<" not in error.detail
    assert "Bad Gateway" in error.detail


@pytest.mark.parametrize(("header", "expected"), [("3", 3.0), ("0.5", 0.5), ("-1", None), ("Wed, 21 Oct 2015 07:28:00 GMT", None), ("nan", None)])
def test_retry_after_header(header, expected):
    error = errors.classify(429, "", {"Retry-After": header})
    assert error.retry_after == expected


def test_parse_error_body_shapes():
    assert errors.parse_error_body(CSS_BODY.format(code="CSS.0036")) == ("CSS.0036", "CSS.0036 : something happened", None)
    assert errors.parse_error_body(GATEWAY_BODY.format(code="APIGW.0308")) == ("APIGW.0308", "gateway says no", "req-gw-1")
    assert errors.parse_error_body(b"") == (None, None, None)
    assert errors.parse_error_body("[1, 2]")[0] is None


def test_html_page_reduced_to_heading():
    page = (
        "<html><head><title>Apache Tomcat - Error report</title><style>body {font-family:Tahoma,Arial}</style></head>"
        "<body><h1>HTTP Status 500 - Internal Server Error</h1><p>details</p></body></html>"
    )
    error = errors.classify(500, page, {})
    assert error.detail == "HTTP Status 500 - Internal Server Error"
