"""The `css-upgrade-scout` command: check one cluster, scan a fleet, run the demo or the emulator.

Logs go to standard error and metrics are off, so standard output carries only results. Exit
status of `check`: 0 when a decision was made, 2 for invalid arguments or configuration found
before any API call, 3 when the check failed (including credentials the API rejects).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from typing import Iterator, Sequence

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_FAILED = 3


def main(argv: Sequence[str] | None = None) -> int:
    with _cli_settings():
        parser = _parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        try:
            return args.run(args)
        except BrokenPipeError:
            # The reader of standard output went away (`... | head`): stop quietly, as Unix tools do.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_OK


@contextlib.contextmanager
def _cli_settings() -> Iterator[None]:
    """Turn metrics off and send library logs to standard error for one command, then restore both.

    The command may run inside another program (a test, a notebook), which keeps its own settings.
    """
    saved_env = {name: os.environ.get(name) for name in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_LOG_LEVEL")}
    library = logging.getLogger("handler")
    saved_logger = (list(library.handlers), library.level, library.propagate)

    # Set before any handler module builds its logger or metrics.
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_TerminalFormatter())
    library.handlers = [handler]
    library.setLevel(os.environ["POWERTOOLS_LOG_LEVEL"].upper())
    library.propagate = False
    try:
        yield
    finally:
        library.handlers, level, library.propagate = saved_logger
        library.setLevel(level)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _TerminalFormatter(logging.Formatter):
    """One line per record for a person: level, message, then the structured fields as key=value."""

    _STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        fields = {key: value for key, value in vars(record).items() if key not in self._STANDARD and not key.startswith("_")}
        text = f"{record.levelname.lower()}: {record.getMessage()}"
        if fields:
            text += " (" + ", ".join(f"{key}={value}" for key, value in fields.items()) + ")"
        return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="css-upgrade-scout", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")

    check = commands.add_parser("check", help="check one cluster and print its event")
    check.add_argument("--cluster-id", required=True, help="cluster ID (a UUID)")
    check.add_argument("--project-id", help="project ID (32 hex digits); default CSS_PROJECT_ID")
    check.add_argument("--region", help="region such as ap-southeast-1; default CSS_REGION")
    check.add_argument("--type", dest="types", help="upgrade types to try, comma-separated (same,cross,cross-engine); replaces the policy's list")
    check.add_argument("--profile", help="policy profile to apply (a key of the policy's profiles)")
    check.add_argument("--endpoint", help="CSS endpoint URL; default CSS_ENDPOINT or the region's public endpoint")
    check.add_argument("--json", action="store_true", help="print only the event, as JSON")
    check.add_argument("--publish", action="store_true", help="also broadcast the event (SNS / EventBridge), subject to suppression")
    check.set_defaults(run=_run_check)

    scan = commands.add_parser("scan", help="list every cluster of the scan targets and enqueue or check each")
    scan.add_argument("--project-id", help="project to scan (with --region); default SCAN_TARGETS")
    scan.add_argument("--region", help="region to scan (with --project-id)")
    scan.add_argument("--endpoint", help="CSS endpoint URL; default CSS_ENDPOINT")
    scan.add_argument("--check", action="store_true", help="check each cluster directly instead of enqueuing it")
    scan.add_argument("--json", action="store_true", help="print the result as JSON")
    scan.add_argument("--emulator", action="store_true", help="scan the bundled CSS emulator's fleet, served on 127.0.0.1 for this run")
    scan.set_defaults(run=_run_scan)

    demo = commands.add_parser("demo", help="the main job end to end on local stand-ins (CSS emulator, moto)")
    demo.set_defaults(run=_run_demo)

    workflow_demo = commands.add_parser(
        "workflow-demo", help="one approved upgrade workflow run on local stand-ins (CSS emulator, moto, fake Slack)"
    )
    workflow_demo.set_defaults(run=_run_workflow_demo)

    emulator = commands.add_parser("emulator", help="serve the CSS API emulator; prints its URL first")
    emulator.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    emulator.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default)")
    emulator.add_argument("--catalog", help="catalog file (JSON); default: the bundled fleet")
    emulator.add_argument("--cluster-paging", choices=("pages", "items"), default="pages", help="how ListClustersDetails reads offset")
    emulator.add_argument("--generate", type=int, metavar="N", help="serve a generated fleet of N clusters instead of a catalog")
    emulator.add_argument("--seed", type=int, default=1, help="seed of the generated fleet (default 1)")
    emulator.add_argument("--no-cluster-total-size", action="store_true", help="leave totalSize out of ListClustersDetails")
    emulator.add_argument("--log-level", default="INFO", help="log level on standard error (default INFO)")
    emulator.set_defaults(run=_run_emulator)
    return parser


def _run_check(args: argparse.Namespace) -> int:
    from handler.climain import run_check_command

    return run_check_command(args)


def _run_scan(args: argparse.Namespace) -> int:
    from handler.climain import run_scan_command

    return run_scan_command(args)


def _run_demo(args: argparse.Namespace) -> int:
    from handler.local.demo import main as demo_main

    return demo_main()


def _run_workflow_demo(args: argparse.Namespace) -> int:
    from handler.local.workflow_demo import main as workflow_demo_main

    return workflow_demo_main()


def _run_emulator(args: argparse.Namespace) -> int:
    from handler.local.emulator.__main__ import main as emulator_main

    argv = ["--host", args.host, "--port", str(args.port), "--cluster-paging", args.cluster_paging, "--log-level", args.log_level]
    if args.catalog:
        argv += ["--catalog", args.catalog]
    if args.generate is not None:
        argv += ["--generate", str(args.generate), "--seed", str(args.seed)]
    if args.no_cluster_total_size:
        argv.append("--no-cluster-total-size")
    return emulator_main(argv)


if __name__ == "__main__":
    sys.exit(main())
