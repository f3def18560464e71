"""A local emulator of the Huawei Cloud CSS API, for the demo, the tests and the benchmarks.

`Emulator` serves a `Catalog` over HTTP on 127.0.0.1; `Fault` describes injected failures. The
catalog format, the accepted credentials and the control API are described in docs/emulator.md.
"""

from .catalog import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_PROJECT_ID,
    DEFAULT_REGION,
    DEFAULT_SECRET_KEY,
    Catalog,
    CatalogError,
    ClusterSpec,
    Credential,
    Image,
    default_catalog,
    generate_catalog,
    load_catalog,
)
from .faults import ROUTE_NAMES, Fault
from .server import Call, Emulator

__all__ = [
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_PROJECT_ID",
    "DEFAULT_REGION",
    "DEFAULT_SECRET_KEY",
    "ROUTE_NAMES",
    "Call",
    "Catalog",
    "CatalogError",
    "ClusterSpec",
    "Credential",
    "Emulator",
    "Fault",
    "Image",
    "default_catalog",
    "generate_catalog",
    "load_catalog",
]
