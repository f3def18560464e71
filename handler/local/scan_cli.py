"""The CLI's `scan` command: list the clusters of the scan targets, then enqueue a check per cluster or check each one here.

It shares the listing and skipping rules with the scheduled scan (handler.scan). With `--check` it
runs the check of every eligible cluster in this process and prints a fleet table (or JSON). Without
it, it enqueues work messages on `WORK_QUEUE_URL` like the scheduled scan. Progress goes to standard
error as a plain text bar, so standard output carries only the result.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, TextIO

from handler.config import ConfigurationError, ScanTarget, Settings, load_settings
from handler.core import ids
from handler.css.endpoints import EndpointError, resolve_endpoint

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_FAILED = 3

BAR_WIDTH = 30
# Column titles and maximum widths of the fleet table. Longer values are cut and end in "..."
_COLUMNS = (("CLUSTER", 36), ("NAME", 24), ("ENGINE", 22), ("CURRENT IMAGE", 26), ("BEST TARGET", 26), ("EVENT", 44))


class ProgressBar:
    """A progress bar redrawn on one line of a terminal. Elsewhere it prints a line at every tenth of the way.

    Written by hand to avoid a dependency for twenty lines.
    """

    def __init__(self, stream: TextIO, *, interactive: bool | None = None) -> None:
        self._stream = stream
        self._interactive = stream.isatty() if interactive is None else interactive
        self._lock = threading.Lock()
        self._last_tenth = -1

    def listing(self, found: int) -> None:
        """Show how many clusters the listing has found so far."""
        if self._interactive:
            self._write(f"\rlisting clusters: {found} found")

    def start(self, label: str, total: int) -> None:
        """Begin a bar of `total` steps."""
        self._label = label
        self._total = total
        self._done = 0
        self._last_tenth = -1
        if self._interactive:
            self._write("\n")
        self.advance(0)

    def advance(self, steps: int = 1) -> None:
        """Add `steps` finished steps and redraw."""
        with self._lock:
            self._done += steps
            line = render_bar(self._done, self._total, self._label)
            if self._interactive:
                self._write("\r" + line)
                return
            tenth = 10 if self._total == 0 else self._done * 10 // self._total
            if tenth != self._last_tenth:
                self._last_tenth = tenth
                self._write(line + "\n")

    def finish(self) -> None:
        if self._interactive:
            self._write("\n")

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()


def render_bar(done: int, total: int, label: str) -> str:
    """Return a bar such as `[#######.......]  12/40 checked`."""
    filled = BAR_WIDTH if total == 0 else BAR_WIDTH * min(done, total) // total
    width = len(str(total))
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done:>{width}}/{total} {label}"


@dataclass
class Row:
    """One cluster of the fleet table."""

    cluster_id: str
    name: str | None
    project_id: str
    region: str
    engine: str | None
    engine_version: str | None
    current_image: str | None
    skip_reason: str | None = None
    event: dict[str, Any] | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        event = self.event or {}
        target = event.get("target_image") or {}
        return {
            "cluster_id": self.cluster_id,
            "name": self.name,
            "project_id": self.project_id,
            "region": self.region,
            "engine": self.engine,
            "engine_version": self.engine_version,
            "current_image": self.current_image,
            "skip_reason": self.skip_reason,
            "event_type": event.get("event_type"),
            "reason": event.get("reason"),
            "upgrade_type": event.get("upgrade_type"),
            "target_image": target.get("display_name"),
            "error": self.error,
            "event": self.event,
        }

    def cells(self) -> list[str]:
        data = self.as_dict()
        if self.skip_reason:
            outcome = f"skipped: {self.skip_reason}"
        elif self.error or not data["event_type"]:
            outcome = "error: see below"
        else:
            outcome = data["event_type"] + (f" ({data['reason']})" if data["reason"] else "")
        engine = " ".join(part for part in (self.engine, self.engine_version) if part)
        return [self.cluster_id, self.name or "", engine, self.current_image or "", data["target_image"] or "-", outcome]


def run(args: argparse.Namespace) -> int:
    """Run `css-upgrade-scout scan`; exit 0 when everything was listed and enqueued or checked, 2 for invalid arguments or settings, 3 otherwise."""
    with ExitStack() as stack:
        try:
            settings = load_settings()
            if getattr(args, "emulator", False):
                if args.project_id or args.region or args.endpoint:
                    raise ConfigurationError("--emulator scans every project of the bundled fleet: leave out --project-id, --region and --endpoint")
                endpoint, targets, credentials = _start_emulator(stack)
            else:
                targets = scan_targets(args, settings)
                endpoint = args.endpoint or settings.css_endpoint
                if endpoint:
                    resolve_endpoint(targets[0].region, endpoint)
                credentials = _credentials()
            if not args.check and not settings.work_queue_url:
                raise ConfigurationError("WORK_QUEUE_URL is not set: set it to enqueue the checks, or pass --check to check each cluster here")
        except (ConfigurationError, ids.InvalidValue, EndpointError) as error:
            _error(str(error))
            return EXIT_USAGE

        from handler.css.client import CssClient

        css = CssClient(credentials, endpoint=endpoint, pool_size=settings.max_concurrency + 4)
        if args.check:
            return _check_fleet(css, targets, settings, args.json)
        return _enqueue_fleet(css, targets, settings, args.json)


def scan_targets(args: argparse.Namespace, settings: Settings) -> list[ScanTarget]:
    """Return the targets: --project-id/--region (each defaulting to CSS_PROJECT_ID/CSS_REGION), else
    SCAN_TARGETS, else the one target CSS_PROJECT_ID and CSS_REGION name together."""
    if args.project_id or args.region:
        project_id = args.project_id or settings.css_project_id
        region = args.region or settings.css_region
        if not project_id or not region:
            missing = "--project-id (or CSS_PROJECT_ID)" if not project_id else "--region (or CSS_REGION)"
            raise ConfigurationError(f"missing {missing}: a scan target needs both a project and a region")
        return [ScanTarget(project_id=ids.project_id(project_id, "--project-id"), region=ids.region(region, "--region"))]
    if settings.scan_targets:
        return list(settings.scan_targets)
    if settings.css_project_id and settings.css_region:
        return [ScanTarget(project_id=settings.css_project_id, region=settings.css_region)]
    raise ConfigurationError(
        "nothing to scan: pass --project-id and --region, or set SCAN_TARGETS, or CSS_PROJECT_ID and CSS_REGION",
        variable="SCAN_TARGETS",
    )


def _credentials():
    from handler.credentials import credentials_from_environment

    return credentials_from_environment()


def _start_emulator(stack: ExitStack):
    """Serve the bundled CSS emulator on 127.0.0.1 for this run; return its endpoint, every project as a target, and its credentials."""
    from handler.css.signer import Credentials
    from handler.local.emulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Emulator

    emulator = stack.enter_context(Emulator())
    region = emulator.catalog.region
    targets = [ScanTarget(project_id=project.id, region=region) for project in emulator.catalog.projects]
    print(f"css-upgrade-scout: scanning the bundled CSS emulator at {emulator.url}", file=sys.stderr)
    return emulator.url, targets, Credentials(ak=DEFAULT_ACCESS_KEY, sk=DEFAULT_SECRET_KEY)


def _list_fleet(css, targets: list[ScanTarget], progress: ProgressBar):
    from handler.scan import list_target

    clusters: dict[str, tuple[ScanTarget, Any, str | None]] = {}
    scans = []
    for target in targets:
        def seen(cluster, reason, target=target):
            clusters[cluster.id] = (target, cluster, reason)
            progress.listing(len(clusters))

        scans.append(list_target(css, target, on_cluster=seen))
    progress.finish()
    return scans, clusters


def _enqueue_fleet(css, targets: list[ScanTarget], settings: Settings, as_json: bool) -> int:
    from handler.aws.client import AwsClient
    from handler.scan import enqueue_checks, fleet_summary, scan_id_from, target_summary

    progress = ProgressBar(sys.stderr)
    try:
        scans, _ = _list_fleet(css, targets, progress)
    except ConfigurationError as error:
        _error(str(error))
        return EXIT_FAILED

    scan_id = scan_id_from(None)
    aws = AwsClient()
    progress.start("enqueued", sum(len(scanned.eligible) for scanned in scans))
    summaries = []
    try:
        for scanned in scans:
            cluster_ids = [cluster.id for cluster in scanned.eligible]
            failed = enqueue_checks(settings.work_queue_url, scanned.target, cluster_ids, scan_id, aws)
            progress.advance(len(cluster_ids))
            summaries.append(target_summary(scanned, failed, enqueued=len(cluster_ids) - len(failed)))
    except ConfigurationError as error:
        progress.finish()
        _error(str(error))
        return EXIT_FAILED
    progress.finish()

    summary = fleet_summary(scan_id, summaries)
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print(_summary_text(summary))
    return EXIT_OK if summary["status"] == "completed" else EXIT_FAILED


def _check_fleet(css, targets: list[ScanTarget], settings: Settings, as_json: bool) -> int:
    progress = ProgressBar(sys.stderr)
    try:
        scans, clusters = _list_fleet(css, targets, progress)
    except ConfigurationError as error:
        _error(str(error))
        return EXIT_FAILED

    rows = {cluster_id: _row(target, cluster, reason) for cluster_id, (target, cluster, reason) in clusters.items()}
    eligible = [(scanned.target, cluster) for scanned in scans for cluster in scanned.eligible]
    progress.start("checked", len(eligible))

    def check_one(item) -> None:
        target, cluster = item
        rows[cluster.id].event, rows[cluster.id].error = _check_cluster(css, target, cluster.id, settings)
        progress.advance()

    with ThreadPoolExecutor(max_workers=settings.max_concurrency) as pool:
        list(pool.map(check_one, eligible))
    progress.finish()

    listing_errors = [f"{scanned.target.project_id} in {scanned.target.region}: {scanned.error}" for scanned in scans if scanned.error]
    ordered = list(rows.values())
    if as_json:
        print(json.dumps({"clusters": [row.as_dict() for row in ordered], "listing_errors": listing_errors}, indent=2))
    else:
        print(fleet_table(ordered))
        for row in ordered:
            if row.error:
                print(f"{row.cluster_id}: {row.error}")
        for problem in listing_errors:
            print(f"listing failed for project {problem}")

    failed = listing_errors or any(row.error or (row.event or {}).get("event_type") == "check.failed" for row in ordered)
    return EXIT_FAILED if failed else EXIT_OK


def _check_cluster(css, target: ScanTarget, cluster_id: str, settings: Settings) -> tuple[dict[str, Any] | None, str | None]:
    """Check one cluster; return (event, None), or (None, error text) when the check could not finish."""
    from handler.check import CheckFailed, run_check
    from handler.core.events import Trigger
    from handler.core.message import WorkMessage
    from handler.css import errors as css_errors

    message = WorkMessage(cluster_id=ids.cluster_id(cluster_id), project_id=target.project_id, region=target.region, source="cli")
    trigger = Trigger(source="cli", requested_by=os.environ.get("USER") or None)
    try:
        result = run_check(css, message, settings.policy, trigger=trigger, agency=settings.upgrade_agency)
        return result.event.to_dict(), None
    except CheckFailed as failure:
        return failure.event.to_dict(), None
    except css_errors.CssError as error:
        return None, f"check failed: {error}"


def _row(target: ScanTarget, cluster, reason: str | None) -> Row:
    return Row(
        cluster_id=cluster.id,
        name=cluster.name,
        project_id=target.project_id,
        region=target.region,
        engine=cluster.datastore.type,
        engine_version=cluster.datastore.version,
        current_image=cluster.current_image,
        skip_reason=reason,
    )


def fleet_table(rows: list[Row]) -> str:
    """Return the fleet as an aligned text table, one cluster per line."""
    widths = [min(limit, max([len(title)] + [len(row.cells()[index]) for row in rows])) for index, (title, limit) in enumerate(_COLUMNS)]
    lines = [_table_line([title for title, _ in _COLUMNS], widths)]
    lines.extend(_table_line(row.cells(), widths) for row in rows)
    return "\n".join(lines)


def _table_line(cells: list[str], widths: list[int]) -> str:
    return "  ".join(_fit(cell, width).ljust(width) for cell, width in zip(cells, widths)).rstrip()


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _summary_text(summary: dict[str, Any]) -> str:
    lines = [summary["message"]]
    for target in summary["targets"]:
        lines.append(
            f"  {target['project_id']} in {target['region']}: {target['clusters_found']} found, "
            f"{target['skipped']['count']} skipped, {target['checks_enqueued']} enqueued, {target['failed_to_enqueue']} failed"
        )
        for reason, entry in target["skipped"]["by_reason"].items():
            lines.append(f"    skipped ({reason}): {', '.join(entry['cluster_ids'])}")
        if target["failed_cluster_ids"]:
            lines.append(f"    not enqueued: {', '.join(target['failed_cluster_ids'])}")
        if target["error"]:
            lines.append(f"    listing failed: {target['error']}")
    return "\n".join(lines)


def _error(text: str) -> None:
    print(f"css-upgrade-scout: {text}", file=sys.stderr)
