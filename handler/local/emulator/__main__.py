"""Command-line entry of the CSS API emulator: serve until SIGINT or SIGTERM.

The first line written to standard output is the URL the emulator listens on, so that a parent
process can read it. Logs and errors go to standard error.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Sequence

from .catalog import CatalogError, default_catalog, generate_catalog, load_catalog
from .server import PAGING_READINGS, Emulator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m handler.local.emulator",
        description="Serve the Huawei Cloud CSS API emulator on a local port (see docs/emulator.md).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free port (default 0)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--catalog", metavar="FILE", help="catalog JSON file (default: the shipped default catalog)")
    source.add_argument(
        "--generate",
        type=int,
        metavar="N",
        help="serve a generated fleet of N clusters instead of a catalog file",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of --generate (default 1)")
    parser.add_argument(
        "--cluster-paging",
        choices=PAGING_READINGS,
        default="pages",
        help="how the 1-based offset of the cluster list is read: page number or item position (default pages)",
    )
    parser.add_argument(
        "--no-cluster-total-size",
        action="store_true",
        help="leave totalSize out of the cluster list",
    )
    parser.add_argument("--log-level", default="INFO", help="log level on standard error (default INFO)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until SIGINT or SIGTERM; return the exit status (0, or 2 for invalid arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    try:
        if args.generate is not None:
            catalog = generate_catalog(args.generate, args.seed)
        elif args.catalog:
            catalog = load_catalog(args.catalog)
        else:
            catalog = default_catalog()
    except (CatalogError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    emulator = Emulator(
        catalog,
        host=args.host,
        port=args.port,
        cluster_paging=args.cluster_paging,
        cluster_total_size=not args.no_cluster_total_size,
    )
    try:
        emulator.start()
    except OSError as error:
        print(f"error: cannot listen on {args.host}:{args.port}: {error.strerror}", file=sys.stderr)
        return 2

    stopped = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stopped.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        # Signal handlers can only be installed from the main thread; elsewhere Ctrl-C still raises
        # KeyboardInterrupt, which the finally block below handles.
        previous = {signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(emulator.url, flush=True)
        while not stopped.wait(1.0):
            pass
    finally:
        emulator.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
