"""The benchmark's report: tables of figures and ratios, the goals with their margins, and the Markdown record.

A recorded file is rewritten whole by each run, except the text between NOTES_START and
NOTES_END, which is written by hand and carried over.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from handler.local.package import MAX_ARTIFACT_BYTES

NOTES_START = "<!-- notes:start -->"
NOTES_END = "<!-- notes:end -->"

PACKAGES = (
    "requests",
    "requests-aws4auth",
    "urllib3",
    "pydantic",
    "pydantic-core",
    "aws-lambda-powertools",
    "PyYAML",
    "huaweicloudsdkcore",
    "huaweicloudsdkcss",
    "boto3",
    "botocore",
    "moto",
)

COLD_FLOOR_LIMIT = 1.15
COLD_SDK_LIMIT = 0.75
CPU_BARE_LIMIT = 1.5
CPU_SDK_LIMIT = 1.0
BATCH_LIMIT = 1.5
MEMORY_LIMIT_MB = 64
MB = 1024 * 1024

STAGE_NAMES = {
    "parse": "parse (work message, policy)",
    "sign": "sign (SDK-HMAC-SHA256, SigV4)",
    "request": "request (CSS calls, JSON, models)",
    "choose": "choose (policy)",
    "render": "render (event, SNS message, text)",
    "publish": "publish (SNS call)",
    "log_metrics": "log and metrics",
    "other": "other (batch, glue)",
}

METHOD = """\
Each measurement runs the project's real code in a fresh interpreter (`python -m
handler.local.bench_worker MODE`). The CSS emulator runs in a process of its own
(`python -m handler.local.emulator`), so its CPU time never counts for the measured process; moto
runs as a server thread of the benchmark process, which measures nothing itself. Everything talks
over real sockets on 127.0.0.1. The function runs with its default policy (`same`, then `cross`),
SNS as the only target and no announce-once table. One check therefore makes one
ShowClusterDetail call, two ListImages calls and one SNS Publish call, in the worker and in both
baselines alike. The
benchmark checks the emulator's call log after each measured run and stops if a variant made other
calls than that.

Baselines, run in the same way and in the same run:

- **floor** (`handler.local.bench_floor`): imports only requests, requests-aws4auth, pydantic and
  the Powertools logger, metrics and batch modules. It runs the same job through the Powertools
  batch processor: it validates the message and the responses with small pydantic models, picks the
  image of highest priority, builds an event document and publishes it with the same seven
  message attributes. It signs the CSS calls with a minimal inline SDK-HMAC-SHA256 and the SNS call
  with requests-aws4auth.
- **SDK path** (`handler.local.bench_sdk`): the same job with the official SDKs. It uses
  huaweicloudsdkcss's `CssClient` with `BasicCredentials` (project ID given) and the emulator as
  the endpoint, and a boto3 SNS client for the publish.

1. **Cold path**: each variant processes one SQS record for the same cluster, from the interpreter
   start to the end of the handler. First comes one warm-up round, which is not counted and
   writes any missing byte code, then N rounds in rotating order. The table gives the medians and
   the fastest run. Wall time runs from just before the parent starts the process (fork and exec
   included) to the moment the handler returned, on the system's monotonic clock. Import time is
   the wall time of the variant's import statements, and CPU is the process's user and system time
   up to the result. Peak RSS is `VmHWM` of /proc/self/status: `ru_maxrss` would report the
   benchmark process's own size, because Linux keeps the high-water mark across `exec`. A second,
   smaller set of runs starts each variant without byte code (`PYTHONPYCACHEPREFIX` set to an
   empty folder, `PYTHONDONTWRITEBYTECODE=1`). That is how the deployed function starts, because
   the zip carries no `.pyc` files and Lambda's code folder is read-only. Those runs are shown for
   information and judged by no goal.
2. **CPU per message**: the messages are split into rounds. In each round every variant processes
   its share in a fresh process after a warm-up, in rotating order, so that a change in the
   machine's load falls on all variants alike. The worker processes the messages through
   `worker.lambda_handler` in batches of 10 with `MAX_CONCURRENCY=1` and reports
   `time.process_time()` per message. A second pass over the same messages wraps the public function of each stage where
   the worker looks it up. That pass reports exclusive CPU time per stage: time in a nested stage,
   such as signing inside a request, counts for the nested stage only. The baselines make the same
   HTTP calls per message in a loop: the bare loop uses a `requests.Session`, inline signing and
   `response.json()`, and the SDK path uses `CssClient` and boto3. Both publish the worker's SNS
   message for a sample event, the same for every message.
3. **Batch concurrency**: 100 ms of latency is injected on every emulator route. After one warm-up
   invocation, whole invocations of `worker.lambda_handler` are timed for a 1-record batch and for a
   10-record batch (`MAX_CONCURRENCY` 10), and for the 10-record batch with `MAX_CONCURRENCY=1`.
   The table gives the medians.
4. **Memory**: the peak RSS (`VmHWM`, see above) of a fresh process that imports the worker and
   processes one 10-record batch with the default `MAX_CONCURRENCY`.
5. **Artifact**: the size of `build/css-upgrade-scout.zip` as `make package` builds it (`make
   bench` builds it first).
6. **Fan-out**: `handler.scan.lambda_handler` scans the generated fleet into a fresh moto queue,
   once per reading of the cluster list's `offset` (page number, item position). AWS calls are
   counted in the scan's process by wrapping `HTTPAdapter.send`, which also collects the entries
   the SendMessageBatch responses list as `Successful`. They must equal the scan's count of
   enqueued checks. CSS list calls come from the emulator's call log. moto 5.2 spends time in
   proportion to a queue's depth on every message it accepts (it recomputes the queue's
   attributes, approximate counts included), so the benchmark purges the queue every 50 ms during
   the scan. Without that, a 1,500-cluster scan spent about 40 s in 138 SendMessageBatch calls,
   and 10,000 clusters would take tens of minutes (an estimate from that rate's growth).
7. **API efficiency**: one check of a cluster offered 25 target images of each of `same` and
   `cross`, through the worker, counting the emulator's calls for that cluster.
"""


@dataclass(frozen=True)
class Goal:
    """One goal: what is compared, the measured value against the limit, and why it came out so."""

    name: str
    measured: str
    limit: str
    met: bool | None
    margin: str
    why: str

    @property
    def verdict(self) -> str:
        if self.met is None:
            return "not measured"
        return "met" if self.met else "MISSED"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """Render a Markdown table whose columns line up in a terminal too."""
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[index]) for row in cells) for index in range(len(headers))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |"

    separator = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(cells[0]), separator, *(line(row) for row in cells[1:])])


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _ratio(value: float) -> str:
    return f"{value:.2f}x"


def _margin(measured: float, limit: float, *, strict: bool = False) -> str:
    """Say by how much a measured value is under or over its upper limit, in percent of the limit."""
    if limit == 0:
        return ""
    difference = (measured - limit) / limit * 100
    met = measured < limit if strict else measured <= limit
    if measured == limit:
        return "at the limit" if met else "at the limit, which it must stay under"
    if met:
        return f"{-difference:.0f} % under the limit"
    return f"{difference:.0f} % over the limit"


class Report:
    """Turns the results of `handler.local.bench.run` into the console table and the Markdown record."""

    def __init__(self, results: dict[str, Any]) -> None:
        self.results = results
        self.quick = results["options"]["quick"]

    # -- sections --------------------------------------------------------------------------------

    def cold_table(self) -> str:
        cold = self.results["cold"]
        median = cold["median"]
        names = (("worker", "worker"), ("floor", "floor"), ("sdk", "SDK path"))
        rows = [
            [label, _ms(median[key]["wall_ms"]), _ms(cold["min_wall_ms"][key]), _ms(median[key]["import_ms"]),
             _ms(median[key]["after_import_ms"]), _ms(median[key]["cpu_ms"]), f"{median[key]['peak_rss_mb']:.1f}",
             int(median[key]["modules"]), _ratio(median["worker"]["wall_ms"] / median[key]["wall_ms"])]
            for key, label in names
        ]
        headers = ["variant", "wall to result ms", "fastest ms", "import ms", "after import ms", "CPU ms", "peak RSS MB", "modules",
                   "worker / variant"]
        uncached = cold["uncached_wall_ms"]
        uncached_rows = [[label, _ms(uncached[key]), _ratio(uncached["worker"] / uncached[key])] for key, label in names]
        return (
            f"Medians of {cold['runs']} fresh interpreters each (the fastest run beside them), one message for cluster "
            f"{cold['cluster_id']}.\n\n" + table(headers, rows) + "\n\n"
            f"Without byte code, as the deployed zip starts on Lambda (every imported module compiled; median of "
            f"{cold['uncached_runs']}):\n\n" + table(["variant", "wall to result ms", "worker / variant"], uncached_rows)
        )

    def cpu_table(self) -> str:
        cpu = self.results["cpu"]
        rows = [[STAGE_NAMES[stage], f"{value:.3f}", f"{value / cpu['worker_ms'] * 100:.0f} %"] for stage, value in cpu["stages_ms"].items()]
        stages = table(["worker stage", "CPU ms per message", "share"], rows)
        comparison = table(
            ["variant", "CPU ms per message", "wall ms per message", "worker / variant"],
            [
                ["worker (whole pipeline)", f"{cpu['worker_ms']:.3f}", f"{cpu['worker_wall_ms']:.2f}", "1.00x"],
                ["worker, HTTP part only (sign + request + publish)", f"{cpu['calls_ms']:.3f}", "", _ratio(cpu["calls_ms"] / cpu["bare_ms"]) + " of bare"],
                ["bare requests loop (same calls)", f"{cpu['bare_ms']:.3f}", f"{cpu['bare_wall_ms']:.2f}", _ratio(cpu["ratio_bare"])],
                ["SDK path (same calls)", f"{cpu['sdk_ms']:.3f}", f"{cpu['sdk_wall_ms']:.2f}", _ratio(cpu["ratio_sdk"])],
            ],
        )
        return (
            f"{cpu['messages']} messages in {cpu['rounds']} rounds, no injected latency; the baselines publish a "
            f"{cpu['sns_message_bytes']} byte SNS message.\n\n"
            f"{comparison}\n\nThe stages come from the instrumented pass ({cpu['instrumented_ms']:.3f} ms per message with the "
            f"hooks), scaled down to the plain pass's total, so they are estimates.\n\n{stages}"
        )

    def batch_table(self) -> str:
        batch = self.results["batch"]
        rows = [
            ["1 record", _ms(batch["one_record_ms"]), "10", "1.00x"],
            ["10 records, concurrent", _ms(batch["batch_ms"]), "10", _ratio(batch["ratio"])],
            ["10 records, one after another", _ms(batch["sequential_ms"]), "1", _ratio(batch["sequential_ms"] / batch["one_record_ms"])],
        ]
        return (
            f"{batch['latency_ms']} ms injected on every CSS call; median of {batch['repeats']} invocations after a warm-up.\n\n"
            + table(["batch", "wall ms", "MAX_CONCURRENCY", "vs one record"], rows)
        )

    def memory_table(self) -> str:
        memory = self.results["memory"]
        cold = self.results["cold"]["median"]
        rows = [
            [f"worker, {memory['records']}-record batch", f"{memory['peak_rss_mb']:.1f}"],
            ["worker, cold path (1 record)", f"{cold['worker']['peak_rss_mb']:.1f}"],
            ["floor, cold path (1 record)", f"{cold['floor']['peak_rss_mb']:.1f}"],
            ["SDK path, cold path (1 record)", f"{cold['sdk']['peak_rss_mb']:.1f}"],
        ]
        return table(["process", "peak RSS MB"], rows)

    def artifact_table(self) -> str:
        artifact = self.results["artifact"]
        if not artifact["exists"]:
            return f"{artifact['path']} does not exist: run `make package` (`make bench` builds it first)."
        rows = [[artifact["path"], f"{artifact['bytes'] / MB:.2f}", f"{artifact['uncompressed_bytes'] / MB:.2f}", artifact["entries"]]]
        return table(["artifact", "zip MB", "unpacked MB", "entries"], rows)

    def fan_out_table(self) -> str:
        fan_out = self.results["fan_out"]
        rows = [
            [paging, run["clusters_found"], run["checks_enqueued"], run["skipped"], run["send_message_batch"], run["aws_requests"],
             run["css_list_calls"], f"{run['wall_s']:.1f}"]
            for paging, run in fan_out["runs"].items()
        ]
        headers = ["offset reading", "clusters", "enqueued", "skipped", "SendMessageBatch", "AWS calls", "CSS list calls", "wall s"]
        return f"{fan_out['clusters']} clusters, {fan_out['pages']} pages of 1000.\n\n" + table(headers, rows)

    def api_table(self) -> str:
        api = self.results["api"]
        rows = [["ShowClusterDetail", api["details_calls"]]]
        rows += [[f"ListImages {upgrade_type}", count] for upgrade_type, count in api["list_calls_by_type"].items()]
        rows.append(["total", api["total_calls"]])
        return (
            f"One check, {api['images_per_type']} images per upgrade type; event {api['event_type']} with {api['candidates']} candidates.\n\n"
            + table(["CSS call", "count"], rows)
        )

    # -- goals -----------------------------------------------------------------------------------

    def goals(self) -> list[Goal]:
        return [goal() for goal in (self._cold_floor, self._cold_sdk, self._cpu_bare, self._cpu_sdk, self._batch, self._memory,
                                    self._artifact, self._send_batches, self._list_calls, self._api)]

    def _cold_floor(self) -> Goal:
        cold = self.results["cold"]
        median, imports = cold["median"], cold["imports"]
        top = ", ".join(f"{item['module']} {item['own_ms']:.1f} ms" for item in imports["worker_only_top"][:6])
        why = (
            f"Wall {_ms(median['worker']['wall_ms'])} ms against {_ms(median['floor']['wall_ms'])} ms (fastest runs "
            f"{_ms(cold['min_wall_ms']['worker'])} and {_ms(cold['min_wall_ms']['floor'])} ms; CPU {_ratio(cold['cpu_ratio_floor'])}). Imports take "
            f"{_ms(median['worker']['import_ms'])} ms against {_ms(median['floor']['import_ms'])} ms, and the work after them "
            f"{_ms(median['worker']['after_import_ms'])} ms against {_ms(median['floor']['after_import_ms'])} ms. "
            f"The worker loads {imports['worker_only_count']} modules the floor does not, with "
            f"{imports['worker_only_ms']:.0f} ms of own import time (fastest of 3 `-X importtime` runs). The largest are {top}."
        )
        ratio = cold["ratio_floor"]
        return Goal("cold path: worker / floor", _ratio(ratio), f"<= {COLD_FLOOR_LIMIT}x", ratio <= COLD_FLOOR_LIMIT, _margin(ratio, COLD_FLOOR_LIMIT), why)

    def _cold_sdk(self) -> Goal:
        cold = self.results["cold"]
        median = cold["median"]
        why = (
            f"Wall {_ms(median['worker']['wall_ms'])} ms against {_ms(median['sdk']['wall_ms'])} ms. The SDK path's imports "
            f"(huaweicloudsdkcss, huaweicloudsdkcore, boto3) take {_ms(median['sdk']['import_ms'])} ms, and creating its clients "
            f"and making the calls {_ms(median['sdk']['after_import_ms'])} ms."
        )
        ratio = cold["ratio_sdk"]
        return Goal("cold path: worker / SDK path", _ratio(ratio), f"<= {COLD_SDK_LIMIT}x", ratio <= COLD_SDK_LIMIT, _margin(ratio, COLD_SDK_LIMIT), why)

    def _cpu_bare(self) -> Goal:
        cpu = self.results["cpu"]
        stages = cpu["stages_ms"]
        ranked = sorted(stages.items(), key=lambda item: item[1], reverse=True)
        biggest = ", ".join(f"{stage} {value:.2f} ms" for stage, value in ranked[:4])
        rest = cpu["worker_ms"] - cpu["calls_ms"]
        why = (
            f"{cpu['worker_ms']:.2f} ms per message against {cpu['bare_ms']:.2f} ms for the bare calls. The worker's HTTP part "
            f"(sign, request, publish) is {cpu['calls_ms']:.2f} ms ({_ratio(cpu['calls_ratio_bare'])} the bare loop), and it "
            f"also validates every response into models. The rest of its pipeline (parse, choose, render, logs, metrics, "
            f"batch handling) adds {rest:.2f} ms, work the bare loop does not do. Largest stages: {biggest}."
        )
        ratio = cpu["ratio_bare"]
        return Goal("CPU per message: worker / bare calls", _ratio(ratio), f"<= {CPU_BARE_LIMIT}x", ratio <= CPU_BARE_LIMIT, _margin(ratio, CPU_BARE_LIMIT), why)

    def _cpu_sdk(self) -> Goal:
        cpu = self.results["cpu"]
        why = f"{cpu['worker_ms']:.2f} ms per message for the whole pipeline against {cpu['sdk_ms']:.2f} ms for the SDK path's calls alone."
        ratio = cpu["ratio_sdk"]
        return Goal("CPU per message: worker / SDK path", _ratio(ratio), f"< {CPU_SDK_LIMIT:.2f}x", ratio < CPU_SDK_LIMIT, _margin(ratio, CPU_SDK_LIMIT, strict=True), why)

    def _batch(self) -> Goal:
        batch = self.results["batch"]
        why = (
            f"10 records took {_ms(batch['batch_ms'])} ms against {_ms(batch['one_record_ms'])} ms for one record; one after "
            f"another they took {_ms(batch['sequential_ms'])} ms, so the thread pool made the batch {batch['speedup']:.1f}x faster."
        )
        ratio = batch["ratio"]
        return Goal("batch of 10 / one record", _ratio(ratio), f"<= {BATCH_LIMIT}x", ratio <= BATCH_LIMIT, _margin(ratio, BATCH_LIMIT), why)

    def _memory(self) -> Goal:
        memory = self.results["memory"]
        cold = self.results["cold"]["median"]
        why = (
            f"Peak RSS {memory['peak_rss_mb']:.1f} MB for a 10-record batch, {cold['worker']['peak_rss_mb']:.1f} MB for one cold "
            f"record; the floor peaks at {cold['floor']['peak_rss_mb']:.1f} MB and the SDK path at {cold['sdk']['peak_rss_mb']:.1f} MB."
        )
        peak = memory["peak_rss_mb"]
        return Goal("peak RSS, 10-record batch", f"{peak:.1f} MB", f"<= {MEMORY_LIMIT_MB} MB", peak <= MEMORY_LIMIT_MB, _margin(peak, MEMORY_LIMIT_MB), why)

    def _artifact(self) -> Goal:
        artifact = self.results["artifact"]
        limit = MAX_ARTIFACT_BYTES / MB
        if not artifact["exists"]:
            return Goal("deployment zip size", "missing", f"<= {limit:.0f} MB", None, "", "The zip was not built; run `make package`.")
        size = artifact["bytes"] / MB
        why = f"{artifact['entries']} entries, {artifact['uncompressed_bytes'] / MB:.1f} MB unpacked."
        return Goal("deployment zip size", f"{size:.2f} MB", f"<= {limit:.0f} MB", size <= limit, _margin(size, limit), why)

    def _send_batches(self) -> Goal:
        fan_out = self.results["fan_out"]
        worst = max(run["send_message_batch"] for run in fan_out["runs"].values())
        limit = fan_out["max_send_message_batch"]
        detail = "; ".join(
            f"{paging}: {run['send_message_batch']} calls for {run['checks_enqueued']} messages, {run['aws_requests']} AWS calls in all"
            for paging, run in fan_out["runs"].items()
        )
        return Goal("scan: SendMessageBatch calls", str(worst), f"<= {limit}", worst <= limit, _margin(worst, limit), detail + ".")

    def _list_calls(self) -> Goal:
        fan_out = self.results["fan_out"]
        worst = max(run["css_list_calls"] for run in fan_out["runs"].values())
        limit = fan_out["max_list_calls"]
        detail = "; ".join(f"{paging}: {run['css_list_calls']} list calls in {run['wall_s']:.1f} s" for paging, run in fan_out["runs"].items())
        why = f"{fan_out['pages']} pages. {detail}. The second page's offset tells the two readings apart, so both stay within one extra call."
        return Goal("scan: CSS list calls", str(worst), f"<= {limit} (pages + 1)", worst <= limit, _margin(worst, limit), why)

    def _api(self) -> Goal:
        api = self.results["api"]
        expected = api["expected_calls"]
        per_type_once = all(count == 1 for count in api["list_calls_by_type"].values())
        met = api["total_calls"] == expected and api["details_calls"] == 1 and per_type_once
        why = (
            f"{api['details_calls']} details call and ListImages calls {api['list_calls_by_type']} for types tried "
            f"{', '.join(api['types_tried'])}; the client asks for pages of 1000 and stops at totalSize, so 25 images need one page."
        )
        return Goal("one check's CSS calls", str(api["total_calls"]), f"= {expected} (1 + types tried)", met, "exact" if met else "", why)

    # -- output ----------------------------------------------------------------------------------

    def sections(self) -> list[tuple[str, Callable[[], str]]]:
        return [
            ("1. Cold path", self.cold_table),
            ("2. Per-message CPU", self.cpu_table),
            ("3. Batch concurrency", self.batch_table),
            ("4. Memory", self.memory_table),
            ("5. Artifact", self.artifact_table),
            ("6. Fan-out", self.fan_out_table),
            ("7. API efficiency", self.api_table),
        ]

    def goals_table(self) -> str:
        rows = [[goal.name, goal.measured, goal.limit, goal.verdict, goal.margin] for goal in self.goals()]
        return table(["goal", "measured", "limit", "result", "margin"], rows)

    def console(self) -> str:
        parts = []
        if self.quick:
            parts.append("QUICK RUN: small numbers for the smoke test; the figures are not comparable with a full run.\n")
        for title, render in self.sections():
            parts.append(f"== {title} ==\n{render()}\n")
        parts.append(f"== Goals ==\n{self.goals_table()}\n")
        for goal in self.goals():
            parts.append(f"- {goal.name} ({goal.verdict}): {goal.why}")
        parts.append(
            f"\nTotal benchmark time {self.results['duration_s']:.0f} s; load average (1, 5, 15 min) at start and end: "
            f"{_load_text(self.results.get('load_average', {}))}."
        )
        return "\n".join(parts)

    def markdown(self, previous: str | None = None) -> str:
        """Return the whole record; `previous` is the file's earlier text, whose hand-written notes are kept."""
        machine = machine_info()
        lines = [
            "# Benchmarks",
            "",
            "Recorded by `make bench` (`python -m handler.local.bench --record docs/benchmarks.md`), which rewrites this",
            "file on every run except the notes between the `notes` markers. The method is described below; the script",
            "is `handler/local/bench.py`.",
            "",
        ]
        if self.quick:
            lines += ["**Quick run**: small numbers for the smoke test; these figures are not comparable with a full run.", ""]
        lines += [
            "## Run",
            "",
            table(
                ["item", "value"],
                [
                    ["date (UTC)", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")],
                    ["commit", git_commit()],
                    ["CPU", machine["cpu"]],
                    ["cores", machine["cores"]],
                    ["memory", machine["memory"]],
                    ["system", machine["system"]],
                    ["Python", machine["python"]],
                    ["load average (1, 5, 15 min) at start and end", _load_text(self.results.get("load_average", {}))],
                    ["benchmark time", f"{self.results['duration_s']:.0f} s"],
                ],
            ),
            "",
            table(["package", "version"], [[name, version] for name, version in package_versions().items()]),
            "",
            "## Goals",
            "",
            self.goals_table(),
            "",
        ]
        for goal in self.goals():
            lines += [f"- **{goal.name}** ({goal.verdict}): {goal.why}"]
        lines += ["", "## Notes", "", NOTES_START, kept_notes(previous), NOTES_END, "", "## Results", ""]
        for title, render in self.sections():
            lines += [f"### {title}", "", render(), ""]
        lines += ["### Where the worker's CPU goes", "", self.profile_table(), "", "### What the worker imports that the floor does not", "",
                  self.imports_table(), "", "## Method", "", METHOD]
        return "\n".join(lines)

    def profile_table(self) -> str:
        profile = self.results["cpu"]["profile"]
        rows = [[row["function"], row["calls"], f"{row['own_seconds'] * 1000 / profile['messages']:.3f}",
                 f"{row['cumulative_seconds'] * 1000 / profile['messages']:.3f}"] for row in profile["top"]]
        return (
            f"cProfile over {profile['messages']} messages (profiling slows every call, so only the shares count).\n\n"
            + table(["function", "calls", "own ms per message", "cumulative ms per message"], rows)
        )

    def imports_table(self) -> str:
        imports = self.results["cold"]["imports"]
        rows = [[item["module"], f"{item['own_ms']:.1f}"] for item in imports["worker_only_top"]]
        own = imports["own_ms"]
        counts = imports["module_counts"]
        return (
            f"Fastest of 3 `python -X importtime` runs per module: the worker's imports load {counts['worker']} modules ({own['worker']:.0f} ms own time), "
            f"the floor's {counts['floor']} ({own['floor']:.0f} ms), the SDK path's {counts['sdk']} ({own['sdk']:.0f} ms). "
            f"Modules only the worker loads: {imports['worker_only_count']}, {imports['worker_only_ms']:.0f} ms.\n\n"
            + table(["module only the worker loads", "own import ms"], rows)
        )


def _load_text(load: dict[str, Any]) -> str:
    def one(values: list[float] | None) -> str:
        return " / ".join(f"{value:.2f}" for value in values) if values else "unknown"

    return f"{one(load.get('start'))}; {one(load.get('end'))}"


def kept_notes(previous: str | None) -> str:
    """Return the hand-written notes of an earlier record, or a placeholder."""
    if previous and NOTES_START in previous and NOTES_END in previous:
        return previous.split(NOTES_START, 1)[1].split(NOTES_END, 1)[0].strip("\n")
    return "(No notes yet. Text written here, between the markers, is kept when the benchmark rewrites this file.)"


def machine_info() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    memory = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "cpu": f"{cpu} ({platform.machine()})",
        "cores": str(os.cpu_count()),
        "memory": memory,
        "system": platform.platform(),
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
    }


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> str:
    """Return the short commit of the working tree, marked when the tree has uncommitted changes."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit} (with uncommitted changes)" if dirty else commit
