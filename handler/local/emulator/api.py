"""The emulated CSS routes: path patterns, parameter checks, and calls into the Fleet.

Each handler checks its path, query and body parameters the way CSS documents them (ranges,
defaults, required fields). Invalid input gets a CSS error reply that names the parameter.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable
from urllib.parse import unquote

from .responses import Reply, empty_reply, json_reply
from .state import ApiError, Fleet, UpgradeRequest, valid_agency_name

MAX_PAGE_OFFSET = 1000
MAX_LIMIT = 1000
DEFAULT_LIMIT = 10

# Path spellings of the upgrade types; `crossEngine` is the older documents' spelling.
_UPGRADE_TYPES = {"same": "same", "cross": "cross", "cross-engine": "cross-engine", "crossEngine": "cross-engine"}
_DATASTORE_TYPES = ("elasticsearch", "opensearch", "logstash")
_ACTION_MODES = ("UPGRADING", "AZ_MIGRATION")
_INTEGER = re.compile(r"-?\d{1,12}", re.ASCII)


@dataclass
class Settings:
    """Server settings that tests may change while the emulator runs."""

    cluster_paging: str = "pages"
    cluster_total_size: bool = True


@dataclass
class Request:
    """A request as the routes see it. `headers` maps lower-case names to values."""

    method: str
    raw_path: str
    raw_query: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    request_id: str


Handler = Callable[[Fleet, Request, dict[str, str], Settings], Reply]


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    pattern: re.Pattern[str]
    handler: Handler


def list_images(fleet: Fleet, request: Request, params: dict[str, str], settings: Settings) -> Reply:
    upgrade_type = _upgrade_type(params["upgrade_type"], "upgrade_type")
    offset = _integer(request.query, "offset", default=0, low=0, high=MAX_PAGE_OFFSET)
    limit = _integer(request.query, "limit", default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    body = fleet.list_images(params["project_id"], params["cluster_id"], upgrade_type, offset, limit)
    return json_reply(200, body)


def show_cluster(fleet: Fleet, request: Request, params: dict[str, str], settings: Settings) -> Reply:
    return json_reply(200, fleet.show_cluster(params["project_id"], params["cluster_id"]))


def list_clusters(fleet: Fleet, request: Request, params: dict[str, str], settings: Settings) -> Reply:
    paging = settings.cluster_paging
    offset = _one_based_offset(request.query, paging)
    limit = _integer(request.query, "limit", default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    datastore_type = request.query.get("datastoreType") or None
    if datastore_type is not None and datastore_type not in _DATASTORE_TYPES:
        raise ApiError("CSS.0001", f"Invalid parameter datastoreType={datastore_type!r}: expected one of {', '.join(_DATASTORE_TYPES)}.")
    body = fleet.list_clusters(params["project_id"], offset, limit, datastore_type, paging, settings.cluster_total_size)
    return json_reply(200, body)


def upgrade_core(fleet: Fleet, request: Request, params: dict[str, str], settings: Settings) -> Reply:
    if params["inst_type"] != "all":
        raise ApiError("CSS.0001", f"Invalid parameter inst_type={params['inst_type']!r}: only 'all' is supported.")
    upgrade = parse_upgrade_body(request.body)
    fleet.start_upgrade(params["project_id"], params["cluster_id"], upgrade)
    # The real API returns no task ID: clients find the new task as the RUNNING entry of UpgradeDetail.
    return empty_reply(200)


def upgrade_detail(fleet: Fleet, request: Request, params: dict[str, str], settings: Settings) -> Reply:
    offset = _one_based_offset(request.query, settings.cluster_paging)
    limit = _integer(request.query, "limit", default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    action_mode = request.query.get("action_mode") or "UPGRADING"
    if action_mode not in _ACTION_MODES:
        raise ApiError("CSS.0001", f"Invalid parameter action_mode={action_mode!r}: expected UPGRADING or AZ_MIGRATION.")
    body = fleet.upgrade_details(
        params["project_id"], params["cluster_id"], offset, limit, settings.cluster_paging, action_mode
    )
    return json_reply(200, body)


def retry_upgrade(fleet: Fleet, request: Request, params: dict[str, str], settings: Settings) -> Reply:
    # `retry_mode` is a query parameter; a body (as some clients send) is ignored, as CSS ignores it.
    retry_mode = request.query.get("retry_mode")
    if retry_mode is not None and retry_mode != "abort":
        raise ApiError("CSS.0001", f"Invalid parameter retry_mode={retry_mode!r}: the only value is 'abort'.")
    fleet.retry_upgrade(params["project_id"], params["cluster_id"], params["action_id"], abort=retry_mode == "abort")
    return empty_reply(200)


def parse_upgrade_body(body: bytes) -> UpgradeRequest:
    """Check an UpgradeCore body and return it, or raise ApiError naming the first invalid field."""
    try:
        data = json.loads(body or b"null")
    except ValueError:
        raise ApiError("CSS.0001", "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError("CSS.0001", "The request body must be a JSON object.")

    target_image_id = data.get("target_image_id")
    if target_image_id is None or target_image_id == "":
        raise ApiError("CSS.0006", "The parameter target_image_id is empty.")
    if not isinstance(target_image_id, str):
        raise ApiError("CSS.0001", "Invalid parameter target_image_id: expected a string.")

    if data.get("upgrade_type") in (None, ""):
        raise ApiError("CSS.0006", "The parameter upgrade_type is empty.")
    upgrade_type = _upgrade_type(data["upgrade_type"], "upgrade_type")

    indices_backup_check = data.get("indices_backup_check")
    if indices_backup_check is None:
        raise ApiError("CSS.0006", "The parameter indices_backup_check is empty.")
    if not isinstance(indices_backup_check, bool):
        raise ApiError("CSS.0001", "Invalid parameter indices_backup_check: expected true or false.")

    agency = data.get("agency")
    if not isinstance(agency, str) or not valid_agency_name(agency):
        raise ApiError("CSS.5130", f"Invalid agency name {agency!r}: an IAM agency name is required.")

    cluster_load_check = data.get("cluster_load_check", True)
    if not isinstance(cluster_load_check, bool):
        raise ApiError("CSS.0001", "Invalid parameter cluster_load_check: expected true or false.")
    batch_size = data.get("batch_size", 1)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ApiError("CSS.0001", "Invalid parameter batch_size: expected an integer of 1 or more.")

    return UpgradeRequest(target_image_id, upgrade_type, indices_backup_check, agency, cluster_load_check, batch_size)


def _upgrade_type(value: object, name: str) -> str:
    canonical = _UPGRADE_TYPES.get(value) if isinstance(value, str) else None
    if canonical is None:
        raise ApiError("CSS.0001", f"Invalid parameter {name}={value!r}: expected same, cross or cross-engine.")
    return canonical


def _integer(query: dict[str, str], name: str, default: int, low: int, high: int | None) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not _INTEGER.fullmatch(text):
        raise ApiError("CSS.0001", f"Invalid parameter {name}={text!r}: expected an integer.")
    value = int(text)
    if value < low or (high is not None and value > high):
        upper = "" if high is None else f" to {high}"
        raise ApiError("CSS.0001", f"Invalid parameter {name}={value}: expected {low}{upper or ' or more'}.")
    return value


def _one_based_offset(query: dict[str, str], paging: str) -> int:
    # A page number stays within the documented 1-1000. Read as an item position it is not capped,
    # so that fleets of more than 1000 clusters can be listed page after page.
    high = MAX_PAGE_OFFSET if paging == "pages" else None
    return _integer(query, "offset", default=1, low=1, high=high)


_PREFIX = r"^/v1\.0/(?P<project_id>[^/?]+)/clusters"
ROUTES: tuple[Route, ...] = (
    Route("list_images", "GET", re.compile(_PREFIX + r"/(?P<cluster_id>[^/]+)/target/(?P<upgrade_type>[^/]+)/images/?$"), list_images),
    Route("upgrade_detail", "GET", re.compile(_PREFIX + r"/(?P<cluster_id>[^/]+)/upgrade/detail/?$"), upgrade_detail),
    Route("retry_upgrade", "PUT", re.compile(_PREFIX + r"/(?P<cluster_id>[^/]+)/upgrade/(?P<action_id>[^/]+)/retry/?$"), retry_upgrade),
    Route(
        "upgrade_core",
        "POST",
        re.compile(_PREFIX + r"/(?P<cluster_id>[^/]+)/inst-type/(?P<inst_type>[^/]+)/image/upgrade/?$"),
        upgrade_core,
    ),
    Route("show_cluster", "GET", re.compile(_PREFIX + r"/(?P<cluster_id>[^/]+)/?$"), show_cluster),
    Route("list_clusters", "GET", re.compile(_PREFIX + r"/?$"), list_clusters),
)


def match_route(method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
    """Return the route of a request and its percent-decoded path parameters, or None."""
    for route in ROUTES:
        if route.method != method:
            continue
        found = route.pattern.match(raw_path)
        if found:
            return route, {name: unquote(value) for name, value in found.groupdict().items()}
    return None


def route_name(method: str, raw_path: str) -> str | None:
    """Return the name of the route a request goes to, or None."""
    matched = match_route(method, raw_path)
    return matched[0].name if matched else None
