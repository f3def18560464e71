"""Fault injection: scripted faults for chosen routes and clusters, and seeded random failures.

A Fault is a pydantic model, so the same definition comes from Python, from the control API's JSON
and from a file. The FaultBook stores the armed faults and picks the one that applies to a request.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .responses import CSS_ERRORS, GATEWAY_ERRORS

RouteName = Literal["list_images", "show_cluster", "list_clusters", "upgrade_core", "upgrade_detail", "retry_upgrade"]
ROUTE_NAMES: tuple[str, ...] = (
    "list_images",
    "show_cluster",
    "list_clusters",
    "upgrade_core",
    "upgrade_detail",
    "retry_upgrade",
)

FaultKind = Literal[
    "latency",
    "throttle",
    "server_error",
    "css_error",
    "gateway_error",
    "empty_body",
    "connection_reset",
    "malformed_json",
]

# Kinds drawn by set_failure_rate when no kinds are given: all are transient faults that a client
# should retry.
DEFAULT_RANDOM_KINDS: tuple[str, ...] = ("throttle", "server_error", "css_error", "connection_reset")


class Fault(BaseModel):
    """One way to misbehave, for the requests that match `route`, `cluster_id` and `upgrade_type`.

    Kinds:
        latency: wait `latency_ms`, then run the route as usual.
        throttle: 429 with `Retry-After: retry_after` and an APIGW.0308 body.
        server_error: `status` (default 500) with a Tomcat-style HTML page.
        css_error: a CSS body for `error_code` (default CSS.0036), with its usual status unless `status` is set
            (for example 202 with CSS.0011).
        gateway_error: an API gateway body for `error_code` (default APIGW.0301, 401).
        empty_body: `status` (default 502) with no body.
        connection_reset: close the connection with a TCP reset and send nothing.
        malformed_json: run the route, then send its body cut in half with status 200.

    A field left at None matches every request. `times` limits the fault to the first N matching
    requests; None keeps it armed until cleared. With `after_route`, the route runs first (its effects
    happen, for example an upgrade task starts) and the fault replaces its reply.
    """

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    route: RouteName | None = None
    cluster_id: str | None = None
    upgrade_type: str | None = None
    times: int | None = Field(default=None, ge=1)
    latency_ms: int = Field(default=0, ge=0, le=600_000)
    status: int | None = Field(default=None, ge=100, le=599)
    error_code: str | None = None
    message: str | None = None
    retry_after: int = Field(default=1, ge=0, le=3600)
    after_route: bool = False

    @model_validator(mode="after")
    def _fill_kind_defaults(self) -> "Fault":
        if self.cluster_id is not None:
            self.cluster_id = self.cluster_id.lower()
        if self.upgrade_type == "crossEngine":
            self.upgrade_type = "cross-engine"

        if self.kind == "latency" and self.latency_ms <= 0:
            raise ValueError("a latency fault needs latency_ms greater than 0")
        if self.kind == "server_error":
            self.status = self.status or 500
            if self.status < 500:
                raise ValueError(f"a server_error fault needs a 5xx status, got {self.status}")
        if self.kind == "empty_body":
            self.status = self.status or 502
        if self.kind == "throttle":
            self.status, self.error_code = 429, "APIGW.0308"
        if self.kind == "css_error":
            self.error_code = self.error_code or "CSS.0036"
            if not re.fullmatch(r"CSS\.\d{4}", self.error_code):
                raise ValueError(f"a css_error fault needs an error_code like CSS.0036, got {self.error_code!r}")
            self.status = self.status or CSS_ERRORS.get(self.error_code, (400, ""))[0]
        if self.kind == "gateway_error":
            self.error_code = self.error_code or "APIGW.0301"
            if not re.fullmatch(r"APIGW?\.\d{4}", self.error_code):
                raise ValueError(f"a gateway_error fault needs an error_code like APIGW.0301, got {self.error_code!r}")
            self.status = self.status or GATEWAY_ERRORS.get(self.error_code, (400, ""))[0]
        return self

    def matches(self, route: str, cluster_id: str | None, upgrade_type: str | None) -> bool:
        """Return whether this fault applies to a request of `route` about `cluster_id` and `upgrade_type`."""
        if self.route is not None and self.route != route:
            return False
        if self.cluster_id is not None and self.cluster_id != cluster_id:
            return False
        if self.upgrade_type is not None and self.upgrade_type != upgrade_type:
            return False
        return True


@dataclass
class _Armed:
    fault: Fault
    remaining: int | None


class FaultBook:
    """The armed faults and the random failure setting; safe to use from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[_Armed] = []
        self._random: _RandomFailures | None = None

    def add(self, fault: Fault) -> None:
        """Arm a fault behind those already armed (the first matching fault wins)."""
        with self._lock:
            self._armed.append(_Armed(fault.model_copy(), fault.times))

    def clear(self) -> None:
        """Disarm every fault and stop random failures."""
        with self._lock:
            self._armed = []
            self._random = None

    def set_failure_rate(
        self,
        rate: float,
        seed: int,
        kinds: Sequence[str | Fault] = DEFAULT_RANDOM_KINDS,
        routes: Iterable[str] | None = None,
    ) -> None:
        """Fail a fraction `rate` of the requests with faults drawn from `kinds`, from a seeded generator.

        A kind given as a name uses that kind's defaults. Scripted faults are checked first. With the
        same seed and the same order of requests, the same requests fail.
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"invalid failure rate {rate!r}: expected a number from 0 to 1")
        templates = tuple(kind if isinstance(kind, Fault) else Fault(kind=kind) for kind in kinds)
        if not templates:
            raise ValueError("invalid failure kinds []: expected at least one kind")
        route_set = frozenset(routes) if routes is not None else frozenset(ROUTE_NAMES)
        unknown = route_set - set(ROUTE_NAMES)
        if unknown:
            raise ValueError(f"invalid routes {sorted(unknown)}: expected names from {list(ROUTE_NAMES)}")
        with self._lock:
            self._random = _RandomFailures(rate, random.Random(seed), templates, route_set)

    def armed(self) -> list[dict]:
        """Return the armed faults with the number of matches each has left (None for unlimited)."""
        with self._lock:
            return [{**entry.fault.model_dump(), "remaining": entry.remaining} for entry in self._armed]

    def take(self, route: str, cluster_id: str | None, upgrade_type: str | None) -> Fault | None:
        """Return the fault for this request, counting it against the fault's `times`, or None."""
        if not self._armed and self._random is None:
            return None

        with self._lock:
            for index, entry in enumerate(self._armed):
                if not entry.fault.matches(route, cluster_id, upgrade_type):
                    continue
                if entry.remaining is not None:
                    entry.remaining -= 1
                    if entry.remaining == 0:
                        del self._armed[index]
                return entry.fault

            if self._random is not None:
                return self._random.draw(route)
        return None


@dataclass
class _RandomFailures:
    rate: float
    rng: random.Random
    templates: tuple[Fault, ...]
    routes: frozenset[str]

    def draw(self, route: str) -> Fault | None:
        if route not in self.routes:
            return None
        if self.rng.random() >= self.rate:
            return None
        return self.rng.choice(self.templates)
