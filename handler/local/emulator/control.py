"""The control API under /_emulator/: configure an emulator that runs in another process.

Control requests need no signature (the emulator listens on 127.0.0.1 only by default), are never
recorded in the call log and are never hit by injected faults. Errors are `{"error": "..."}`.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from .api import Request, route_name
from .catalog import describe_validation_error
from .faults import DEFAULT_RANDOM_KINDS, Fault
from .responses import Reply, empty_reply, json_reply

if TYPE_CHECKING:
    from .server import Emulator

PREFIX = "/_emulator"
_CLUSTER_PATH = re.compile(r"^/_emulator/clusters/(?P<cluster_id>[^/]+)/?$")


class ControlError(Exception):
    """An invalid control request; becomes a 400 reply with the message."""


def handle_control(emulator: "Emulator", request: Request) -> Reply:
    """Serve one control API request."""
    path = request.raw_path.rstrip("/") or "/"
    method = request.method
    try:
        if path == f"{PREFIX}/health" and method == "GET":
            return json_reply(200, {"status": "ok", "url": emulator.url})
        if path == f"{PREFIX}/calls":
            return _calls(emulator, request)
        if path == f"{PREFIX}/faults":
            return _faults(emulator, request)
        if path == f"{PREFIX}/failure-rate" and method == "POST":
            return _failure_rate(emulator, request)
        if path == f"{PREFIX}/settings":
            return _settings(emulator, request)
        if path == f"{PREFIX}/reset" and method == "POST":
            emulator.reset()
            return empty_reply(204)
        if path == f"{PREFIX}/catalog" and method == "GET":
            return json_reply(200, catalog_without_secrets(emulator))
        cluster_path = _CLUSTER_PATH.match(path)
        if cluster_path and method == "GET":
            return _cluster(emulator, cluster_path.group("cluster_id"))
    except ControlError as error:
        return json_reply(400, {"error": str(error)})
    return json_reply(404, {"error": f"unknown control request {method} {request.raw_path}; see docs/emulator.md"})


def catalog_without_secrets(emulator: "Emulator") -> dict[str, Any]:
    """Return the catalog as JSON with secret keys and tokens left out (access keys stay)."""
    data = emulator.catalog.model_dump(mode="json", by_alias=True, exclude={"credentials"})
    data["credentials"] = [
        {"ak": credential.ak, "temporary": credential.security_token is not None, "projects": credential.projects}
        for credential in emulator.catalog.credentials
    ]
    return data


def _calls(emulator: "Emulator", request: Request) -> Reply:
    if request.method == "DELETE":
        emulator.reset_calls()
        return empty_reply(204)
    if request.method != "GET":
        raise ControlError(f"{request.method} is not allowed on {PREFIX}/calls: use GET or DELETE")

    wanted_route = request.query.get("route")
    calls = []
    for call in emulator.calls:
        name = route_name(call.method, call.path)
        if wanted_route is None or wanted_route == name:
            calls.append({"method": call.method, "path": call.path, "query": call.query, "status": call.status, "route": name})
    return json_reply(200, {"count": len(calls), "calls": calls})


def _faults(emulator: "Emulator", request: Request) -> Reply:
    if request.method == "GET":
        return json_reply(200, {"faults": emulator.faults.armed()})
    if request.method == "DELETE":
        emulator.clear_faults()
        return empty_reply(204)
    if request.method != "POST":
        raise ControlError(f"{request.method} is not allowed on {PREFIX}/faults: use GET, POST or DELETE")

    data = _json_body(request)
    items = data if isinstance(data, list) else [data]
    faults = [_fault(item) for item in items]
    for fault in faults:
        emulator.inject(fault)
    return json_reply(201, {"faults": emulator.faults.armed()})


def _failure_rate(emulator: "Emulator", request: Request) -> Reply:
    data = _json_body(request)
    if not isinstance(data, dict):
        raise ControlError("the failure-rate body must be a JSON object with rate and seed")
    rate, seed = data.get("rate"), data.get("seed")
    if not isinstance(rate, (int, float)) or isinstance(rate, bool):
        raise ControlError(f"invalid rate {rate!r}: expected a number from 0 to 1")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ControlError(f"invalid seed {seed!r}: expected an integer")

    kinds = [item if isinstance(item, str) else _fault(item) for item in data.get("kinds", DEFAULT_RANDOM_KINDS)]
    try:
        emulator.set_failure_rate(float(rate), seed, kinds=kinds, routes=data.get("routes"))
    except ValidationError as error:
        raise ControlError(describe_validation_error(error)) from None
    except ValueError as error:
        raise ControlError(str(error)) from None
    return empty_reply(204)


def _settings(emulator: "Emulator", request: Request) -> Reply:
    if request.method in ("POST", "PATCH"):
        data = _json_body(request)
        if not isinstance(data, dict):
            raise ControlError("the settings body must be a JSON object")
        unknown = set(data) - {"cluster_paging", "cluster_total_size"}
        if unknown:
            raise ControlError(f"unknown settings {sorted(unknown)}: expected cluster_paging, cluster_total_size")
        try:
            if "cluster_paging" in data:
                emulator.cluster_paging = data["cluster_paging"]
            if "cluster_total_size" in data:
                emulator.cluster_total_size = data["cluster_total_size"]
        except ValueError as error:
            raise ControlError(str(error)) from None
    elif request.method != "GET":
        raise ControlError(f"{request.method} is not allowed on {PREFIX}/settings: use GET or POST")
    return json_reply(200, {"cluster_paging": emulator.cluster_paging, "cluster_total_size": emulator.cluster_total_size})


def _cluster(emulator: "Emulator", cluster_id: str) -> Reply:
    try:
        return json_reply(200, emulator.cluster_state(cluster_id))
    except KeyError:
        return json_reply(404, {"error": f"cluster {cluster_id} is not in the catalog"})


def _fault(item: object) -> Fault:
    try:
        return Fault.model_validate(item)
    except ValidationError as error:
        raise ControlError(f"invalid fault {json.dumps(item)[:200]}: {describe_validation_error(error)}") from None


def _json_body(request: Request) -> Any:
    try:
        return json.loads(request.body or b"null")
    except ValueError:
        raise ControlError("the request body is not valid JSON") from None
