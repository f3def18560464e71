"""Where the CSS API of a region lives, and which endpoint URLs are safe to send credentials to."""

from __future__ import annotations

from urllib.parse import urlsplit

from handler.core import ids

# Regions whose CSS endpoint uses the older `es.` host name (huaweicloudsdkcss `CssRegion`).
_ES_HOST_REGIONS = frozenset({"cn-north-1", "cn-east-2"})

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class EndpointError(ValueError):
    """The configured endpoint cannot be used (a configuration fault, found before any request)."""


def default_endpoint(region: str) -> str:
    """Return the public CSS endpoint of a Huawei Cloud region."""
    region = ids.region(region)
    prefix = "es" if region in _ES_HOST_REGIONS else "css"
    return f"https://{prefix}.{region}.myhuaweicloud.com"


def resolve_endpoint(region: str, override: str | None = None) -> str:
    """Return the base URL for `region`: `override` (which may contain `{region}`) or the default.

    The result has no trailing slash, no path, query or fragment, and uses https unless the host is
    a loopback address (the local emulator), so AK/SK-signed requests never travel in clear text.
    """
    region = ids.region(region)
    if not override:
        return default_endpoint(region)

    url = override.strip().replace("{region}", region)
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise EndpointError(f"invalid CSS_ENDPOINT {url!r}: expected an http(s) URL such as https://css.{region}.myhuaweicloud.com")
    if parts.username or parts.password:
        raise EndpointError("invalid CSS_ENDPOINT: credentials in the URL are not allowed")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise EndpointError(f"invalid CSS_ENDPOINT {url!r}: expected a base URL without a path or query")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        raise EndpointError(f"invalid CSS_ENDPOINT {url!r}: plain http is allowed only for 127.0.0.1 (the local emulator)")
    return f"{parts.scheme}://{parts.netloc}"
