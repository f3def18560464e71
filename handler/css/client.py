"""The CSS API calls css-upgrade-scout makes, over one reused `requests` session.

The client knows HTTP, AK/SK signing, paging, error classification and retries. It validates every
path parameter before a request is built, never follows redirects, and always sets connect and read
timeouts. It imports nothing from SQS, SNS or Lambda.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol
from urllib.parse import quote, urlencode

import requests
from pydantic import ValidationError
from requests.adapters import HTTPAdapter

from handler import __version__
from handler.core import ids
from handler.core.models import (
    Cluster,
    ClusterPage,
    TargetImage,
    TargetImagePage,
    TargetImages,
    UpgradeTask,
    UpgradeTaskPage,
)
from handler.css import errors
from handler.css.endpoints import resolve_endpoint
from handler.css.signer import AkSkAuth, Credentials
from handler.retry import NO_DEADLINE, Deadline, RetryPolicy, call_with_retries

logger = logging.getLogger(__name__)

# Largest page sizes the API documents (`limit` 1-1000 on every list call).
MAX_PAGE_SIZE = 1000
# ListImages documents `offset` 0-1000: with pages of 1000 at most 2,000 images can be read.
MAX_IMAGE_OFFSET = 1000

DEFAULT_TIMEOUT = (3.05, 15.0)

_SIGNATURE = re.compile(r"Signature=([0-9a-fA-F]+)")


class CredentialsProvider(Protocol):
    """Source of AK/SK credentials: environment variables or a Secrets Manager secret."""

    def get(self) -> Credentials: ...

    def invalidate(self) -> None: ...


@dataclass
class StaticCredentials:
    """Credentials fixed at start-up (the `HUAWEICLOUD_SDK_*` variables); nothing to refresh."""

    credentials: Credentials

    def get(self) -> Credentials:
        return self.credentials

    def invalidate(self) -> None:
        return None


@dataclass
class _Call:
    method: str
    operation: str
    path: str
    project_id: str
    region: str
    cluster_id: str | None = None
    query: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    # Only requests that cannot have changed anything may be sent again after an unclear failure.
    idempotent: bool = True


class CssClient:
    """Client for the CSS v1.0 API of any region, sharing one connection pool across calls.

    Parameters:
        credentials: a provider of AK/SK credentials, or fixed credentials.
        endpoint: `CSS_ENDPOINT` (may contain `{region}`), or None for the public endpoints.
        timeout: (connect, read) seconds per attempt; each is also capped by the caller's deadline.
        retry_policy: attempts and backoff for throttled, busy, server and transport errors.
        pool_size: connections kept per host; at least the number of concurrent callers.
    """

    def __init__(
        self,
        credentials: CredentialsProvider | Credentials,
        *,
        endpoint: str | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry_policy: RetryPolicy | None = None,
        pool_size: int = 16,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if isinstance(credentials, Credentials):
            credentials = StaticCredentials(credentials)
        self._credentials = credentials
        self._endpoint_override = endpoint
        self._timeout = timeout
        self._retry_policy = retry_policy or RetryPolicy()
        self._sleep = sleep
        self._session = session or _new_session(pool_size)
        self._refresh_lock = threading.Lock()

    # -- the API ---------------------------------------------------------------------------------

    def show_cluster(self, *, project_id: str, region: str, cluster_id: str, deadline: Deadline = NO_DEADLINE) -> Cluster:
        """Read one cluster's details (ShowClusterDetail)."""
        project_id, region, cluster_id = _scope(project_id, region, cluster_id)
        call = _Call("GET", "ShowClusterDetail", f"/v1.0/{project_id}/clusters/{cluster_id}", project_id, region, cluster_id)
        data = self._request(call, deadline)
        cluster_data = data.get("cluster", data) if isinstance(data, dict) else data
        return _parse(Cluster, cluster_data, call)

    def list_images(
        self,
        *,
        project_id: str,
        region: str,
        cluster_id: str,
        upgrade_type: str,
        deadline: Deadline = NO_DEADLINE,
        page_size: int = MAX_PAGE_SIZE,
    ) -> TargetImages:
        """Read every target image of one upgrade type (ListImages), across all pages.

        Pages are read with `offset` counting images from 0, until `totalSize` images were read, a
        page comes back shorter than asked, or a page brings no image not seen before (a server
        that ignores `offset` cannot make the loop run forever).
        """
        project_id, region, cluster_id = _scope(project_id, region, cluster_id)
        upgrade_type = ids.upgrade_type(upgrade_type)
        path = f"/v1.0/{project_id}/clusters/{cluster_id}/target/{quote(upgrade_type, safe='')}/images"

        images: dict[str, TargetImage] = {}
        need_plugin = False
        offset = 0
        while True:
            call = _Call("GET", "ListImages", path, project_id, region, cluster_id, {"offset": str(offset), "limit": str(page_size)})
            page = _parse(TargetImagePage, self._request(call, deadline), call)
            need_plugin = need_plugin or page.need_upload_upgrade_plugin
            new = [image for image in page.image_info_list if image.id not in images]
            for image in new:
                images[image.id] = image

            if page.total_size is not None and len(images) >= page.total_size:
                break
            if not new or len(page.image_info_list) < page_size:
                break
            offset += len(page.image_info_list)
            if offset > MAX_IMAGE_OFFSET:
                logger.warning(
                    "ListImages stopped at the API's maximum offset",
                    extra={"cluster_id": cluster_id, "upgrade_type": upgrade_type, "images_read": len(images)},
                )
                break

        return TargetImages(upgrade_type=upgrade_type, need_upload_upgrade_plugin=need_plugin, images=list(images.values()))

    def iter_clusters(
        self,
        *,
        project_id: str,
        region: str,
        datastore_type: str | None = None,
        deadline: Deadline = NO_DEADLINE,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[Cluster]:
        """Yield every cluster of a project once (ListClustersDetails), deduplicated by ID.

        The API pages with a 1-based `offset` and does not document whether it counts clusters or
        pages. The second request (`offset=2`) distinguishes them: if it repeats clusters of the
        first page, `offset` counts clusters and the next offset is the number read plus one;
        otherwise it counts pages. Either way this makes at most one request more than there are
        pages. Reading stops at `totalSize`, at a short page when `totalSize` is absent, or at a
        page with no new cluster.
        """
        project_id = ids.project_id(project_id)
        region = ids.region(region)
        path = f"/v1.0/{project_id}/clusters"
        seen: set[str] = set()
        counts_items: bool | None = None
        offset = 1

        while True:
            query = {"offset": str(offset), "limit": str(page_size)}
            if datastore_type:
                query["datastoreType"] = datastore_type
            call = _Call("GET", "ListClustersDetails", path, project_id, region, None, query)
            page = _parse(ClusterPage, self._request(call, deadline), call)

            new = [cluster for cluster in page.clusters if cluster.id not in seen]
            if offset == 2:
                # Counting clusters, offset 2 repeats all but one cluster of the first page. Counting
                # pages, it repeats none, or a few when clusters were created while reading.
                repeated = len(page.clusters) - len(new)
                counts_items = repeated * 2 > len(page.clusters)
            for cluster in new:
                seen.add(cluster.id)
                yield cluster

            if page.total_size is not None and len(seen) >= page.total_size:
                return
            if page.total_size is None and len(page.clusters) < page_size:
                return
            if not new:
                return

            if offset == 1:
                offset = 2
            elif counts_items:
                offset = len(seen) + 1
            else:
                offset += 1

    def list_clusters(self, **kwargs: Any) -> list[Cluster]:
        """Return every cluster of a project; see `iter_clusters`."""
        return list(self.iter_clusters(**kwargs))

    def upgrade_core(
        self,
        *,
        project_id: str,
        region: str,
        cluster_id: str,
        target_image_id: str,
        upgrade_type: str,
        agency: str,
        indices_backup_check: bool = True,
        deadline: Deadline = NO_DEADLINE,
    ) -> None:
        """Start an upgrade (UpgradeCore). The API returns an empty body, so no task ID.

        The POST is retried only when the gateway throttled it, which means it never reached CSS.
        After any other unclear failure the caller must look at UpgradeDetail before trying again.
        """
        project_id, region, cluster_id = _scope(project_id, region, cluster_id)
        body = {
            "target_image_id": _image_id(target_image_id),
            "upgrade_type": ids.upgrade_type(upgrade_type),
            "indices_backup_check": bool(indices_backup_check),
            "agency": _agency(agency),
        }
        path = f"/v1.0/{project_id}/clusters/{cluster_id}/inst-type/all/image/upgrade"
        call = _Call("POST", "UpgradeCore", path, project_id, region, cluster_id, body=body, idempotent=False)
        self._request(call, deadline)

    def upgrade_tasks(
        self,
        *,
        project_id: str,
        region: str,
        cluster_id: str,
        deadline: Deadline = NO_DEADLINE,
    ) -> list[UpgradeTask]:
        """Return the cluster's upgrade tasks, newest first (UpgradeDetail, `action_mode` omitted).

        NOTE: one page of up to 1000 tasks is read; a cluster's upgrade history is far shorter.
        """
        project_id, region, cluster_id = _scope(project_id, region, cluster_id)
        path = f"/v1.0/{project_id}/clusters/{cluster_id}/upgrade/detail"
        call = _Call("GET", "UpgradeDetail", path, project_id, region, cluster_id, {"offset": "1", "limit": str(MAX_PAGE_SIZE)})
        page = _parse(UpgradeTaskPage, self._request(call, deadline), call)
        return page.detail_list

    def retry_upgrade(
        self,
        *,
        project_id: str,
        region: str,
        cluster_id: str,
        task_id: str,
        abort: bool = False,
        deadline: Deadline = NO_DEADLINE,
    ) -> None:
        """Retry a failed upgrade task, or end it with `abort=True` (RetryUpgradeTask)."""
        project_id, region, cluster_id = _scope(project_id, region, cluster_id)
        task_id = ids.task_id(task_id)
        path = f"/v1.0/{project_id}/clusters/{cluster_id}/upgrade/{task_id}/retry"
        query = {"retry_mode": "abort"} if abort else {}
        call = _Call("PUT", "RetryUpgradeTask", path, project_id, region, cluster_id, query, idempotent=False)
        self._request(call, deadline)

    # -- transport -------------------------------------------------------------------------------

    def _request(self, call: _Call, deadline: Deadline) -> Any:
        """Send one call with retries; return the decoded JSON body (None for an empty body)."""

        def attempt() -> Any:
            return self._send_with_fresh_credentials(call, deadline)

        def retryable(error: Exception) -> bool:
            if not isinstance(error, errors.CssTransientError) or isinstance(error, errors.DeadlineExceeded):
                return False
            if call.idempotent:
                return True
            # A throttled write never reached CSS, so sending it again is safe.
            return isinstance(error, errors.ThrottledError)

        def log_retry(error: Exception, number: int, delay: float) -> None:
            logger.warning(
                "retrying CSS call",
                extra={
                    "operation": call.operation,
                    "cluster_id": call.cluster_id,
                    "attempt": number,
                    "delay_seconds": round(delay, 3),
                    "error_kind": getattr(error, "kind", type(error).__name__),
                    "error": str(error),
                },
            )

        kwargs: dict[str, Any] = {}
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep
        return call_with_retries(
            attempt,
            policy=self._retry_policy,
            deadline=deadline,
            is_retryable=retryable,
            retry_after=lambda error: getattr(error, "retry_after", None),
            on_retry=log_retry,
            **kwargs,
        )

    def _send_with_fresh_credentials(self, call: _Call, deadline: Deadline) -> Any:
        """Send once; when CSS rejects the credentials, fetch them again and send once more.

        Rotated secrets are picked up this way without a restart. A second rejection is final.
        """
        credentials = self._credentials.get()
        try:
            return self._send(call, credentials, deadline)
        except errors.CredentialError:
            with self._refresh_lock:
                self._credentials.invalidate()
                fresh = self._credentials.get()
            if fresh == credentials:
                raise
            logger.info("CSS rejected the credentials; retrying once with freshly read ones", extra={"operation": call.operation})
            return self._send(call, fresh, deadline)

    def _send(self, call: _Call, credentials: Credentials, deadline: Deadline) -> Any:
        if deadline.expired():
            raise errors.DeadlineExceeded(
                "the deadline passed before the request could be sent",
                operation=call.operation,
                cluster_id=call.cluster_id,
            )

        base = resolve_endpoint(call.region, self._endpoint_override)
        url = base + call.path
        if call.query:
            url += "?" + urlencode(call.query, quote_via=quote)
        headers = {"Content-Type": "application/json", "User-Agent": f"css-upgrade-scout/{__version__}"}
        data = None if call.body is None else json.dumps(call.body, separators=(",", ":")).encode()

        try:
            response = self._session.request(
                call.method,
                url,
                data=data,
                headers=headers,
                auth=AkSkAuth(credentials, project_id=call.project_id),
                timeout=self._timeouts(deadline),
                allow_redirects=False,
            )
        except requests.Timeout as error:
            raise errors.TransportError(
                f"timed out ({type(error).__name__})", operation=call.operation, cluster_id=call.cluster_id
            ) from None
        except requests.RequestException as error:
            raise errors.TransportError(
                f"connection failed ({type(error).__name__})", operation=call.operation, cluster_id=call.cluster_id
            ) from None

        if 300 <= response.status_code < 400:
            raise errors.CssConfigurationError(
                "the endpoint returned a redirect, which is never followed; check CSS_ENDPOINT",
                operation=call.operation,
                cluster_id=call.cluster_id,
                status=response.status_code,
                request_id=response.headers.get("X-Request-Id"),
            )

        failure = errors.classify(
            response.status_code,
            _redacted(response.content, _request_secrets(credentials, response.request)),
            response.headers,
            operation=call.operation,
            cluster_id=call.cluster_id,
        )
        if failure is not None:
            raise failure

        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            raise errors.ServerError(
                "the success response body is not valid JSON",
                operation=call.operation,
                cluster_id=call.cluster_id,
                status=response.status_code,
                request_id=response.headers.get("X-Request-Id"),
            ) from None

    def _timeouts(self, deadline: Deadline) -> tuple[float, float]:
        connect, read = self._timeout
        remaining = deadline.remaining()
        if remaining is None:
            return connect, read
        # A floor keeps a nearly spent deadline from turning into a zero (blocking) timeout.
        return max(0.05, min(connect, remaining)), max(0.05, min(read, remaining))


def _new_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    # Retries happen above the transport, where the deadline and error classes are known.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    # Proxies and credentials from the environment or ~/.netrc must not change where signed
    # requests go or what they carry.
    session.trust_env = False
    return session


def _request_secrets(credentials: Credentials, request: requests.PreparedRequest | None) -> list[str]:
    """Return the credentials and the Authorization header sent: what an error body must not carry into a message.

    A gateway or proxy may quote the request back in an error body, and error messages end up in
    logs, events and dead letters. Longest first, because the header contains the AK and the signature.
    """
    secrets = [credentials.ak, credentials.sk, credentials.security_token or ""]
    authorization = request.headers.get("Authorization") if request is not None else None
    if authorization:
        secrets.append(authorization)
        secrets.extend(_SIGNATURE.findall(authorization))
    return sorted((secret for secret in secrets if secret), key=len, reverse=True)


def _redacted(body: bytes, secrets: list[str]) -> bytes:
    """Replace each secret in a response body before it is parsed, so that no length cut can split one."""
    for secret in secrets:
        body = body.replace(secret.encode("utf-8"), b"[redacted]")
    return body


def _scope(project_id: str, region: str, cluster_id: str) -> tuple[str, str, str]:
    return ids.project_id(project_id), ids.region(region), ids.cluster_id(cluster_id)


def _image_id(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 64 or not all(c.isascii() and (c.isalnum() or c in "-_") for c in value):
        raise ids.InvalidValue("target_image_id", value, "an image ID from ListImages")
    return value


def _agency(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 64 or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in value):
        raise ids.InvalidValue("agency", value, "an IAM agency name (letters, digits, '-', '_', '.')")
    return value


def _parse(model: type, data: Any, call: _Call) -> Any:
    """Validate a success body; a body that does not fit the model is a server error, never 'empty'."""
    if data is None:
        raise errors.ServerError("the success response has an empty body", operation=call.operation, cluster_id=call.cluster_id)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "body"
        raise errors.ServerError(
            f"the success response is malformed at {where}: {first.get('msg')}",
            operation=call.operation,
            cluster_id=call.cluster_id,
        ) from None
