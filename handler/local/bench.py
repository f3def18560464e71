"""The benchmark script (`make bench`): the worker measured against two baselines in the same run.

It measures the cold path, CPU per message, batch concurrency, peak memory, the deployment zip, the
scan's fan-out and the CSS calls of one check. It prints a table of figures, ratios and goals, and
`--record FILE` rewrites FILE with the run. Every measured process is a fresh interpreter (see
`bench_stack`); the baselines are `bench_floor` and `bench_sdk`. `--quick` runs every section on
small numbers, for the smoke test; its figures are not comparable with a full run.

    python -m handler.local.bench [--quick] [--record docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from handler.local import bench_report
from handler.local.bench_stack import (
    IMAGES_PER_TYPE,
    PROJECT_ROOT,
    WIDE_CLUSTER_ID,
    WIDE_PROJECT_ID,
    BenchError,
    EmulatorProcess,
    LocalAws,
    QueuePurger,
    bench_catalog,
    function_environment,
    run_child,
)
from handler.local.emulator.catalog import DEFAULT_PROJECT_ID, DEFAULT_REGION, Catalog

WORKER = "handler.local.bench_worker"
FLOOR = "handler.local.bench_floor"
SDK = "handler.local.bench_sdk"
COLD_VARIANTS = (("worker", WORKER), ("floor", FLOOR), ("sdk", SDK))

ARTIFACT = PROJECT_ROOT / "build" / "css-upgrade-scout.zip"
ENGINES = ("elasticsearch", "opensearch")
LATENCY_MS = 100
BATCH_SIZE = 10
CLUSTER_PAGE_SIZE = 1000
PAGING_READINGS = ("pages", "items")


@dataclass(frozen=True)
class Options:
    """The sizes of one run; `--quick` shrinks each of them."""

    quick: bool
    cold_runs: int
    uncached_runs: int
    messages: int
    warmup_messages: int
    profile_messages: int
    cpu_rounds: int
    batch_repeats: int
    fleet: int
    seed: int


def options_from(arguments: argparse.Namespace) -> Options:
    if arguments.quick:
        return Options(quick=True, cold_runs=arguments.runs or 2, uncached_runs=1, messages=arguments.messages or 30, warmup_messages=10,
                       profile_messages=20, cpu_rounds=1, batch_repeats=1, fleet=arguments.fleet or 1500, seed=arguments.seed)
    return Options(quick=False, cold_runs=arguments.runs or 11, uncached_runs=3, messages=arguments.messages or 1000, warmup_messages=30,
                   profile_messages=300, cpu_rounds=5, batch_repeats=3, fleet=arguments.fleet or 10000, seed=arguments.seed)


class Bench:
    """One run: the local services, the fleet, and a measurement method per section."""

    def __init__(self, options: Options, workdir: Path, catalog: Catalog) -> None:
        self.options = options
        self.workdir = workdir
        self.catalog = catalog
        self.emulator = EmulatorProcess(catalog, workdir)
        self.aws = LocalAws()
        self.cold_topic = ""
        self.cold_subscriber = ""
        self.load_topic = ""

    def start(self) -> None:
        self.emulator.start()
        self.aws.start()
        self.cold_topic, self.cold_subscriber = self.aws.create_topic("bench-cold", subscribed=True)
        self.load_topic, _ = self.aws.create_topic("bench-load", subscribed=False)

    def stop(self) -> None:
        self.emulator.stop()
        self.aws.stop()

    def env(self, topic_arn: str | None = None, **extra: str) -> dict[str, str]:
        return function_environment(self.emulator, self.aws, topic_arn or self.load_topic, **extra)

    # -- the fleet -------------------------------------------------------------------------------

    def fleet_clusters(self) -> list[Any]:
        return list(self.catalog.projects[0].clusters)

    def checked_cluster_ids(self, count: int, skip: int = 0) -> list[str]:
        """Return `count` Elasticsearch and OpenSearch clusters (each check makes one details and two ListImages calls)."""
        eligible = [cluster.id for cluster in self.fleet_clusters() if cluster.datastore.type in ENGINES]
        return [eligible[(skip + index) % len(eligible)] for index in range(count)]

    def ready_cluster_id(self) -> str:
        """Return the first available, idle cluster with `cross` targets and no plugin upload: its event is `upgrade.ready`."""
        for cluster in self.fleet_clusters():
            if (
                cluster.datastore.type in ENGINES
                and cluster.status == "200"
                and not cluster.actions
                and cluster.images.get("cross")
                and not cluster.need_upload_upgrade_plugin
            ):
                return cluster.id
        raise BenchError("the generated fleet has no available cluster with cross targets")

    # -- 1. cold path ----------------------------------------------------------------------------

    def cold_path(self) -> dict[str, Any]:
        """Run each variant on one message in a fresh interpreter, in rounds of rotating order after one warm-up round."""
        body = self.ready_cluster_id()
        env = self.env(self.cold_topic)
        samples: dict[str, list[dict[str, float]]] = {name: [] for name, _ in COLD_VARIANTS}
        self.emulator.reset_calls()
        self.aws.drain(self.cold_subscriber)

        rounds = self.options.cold_runs + 1
        for number in range(rounds):
            order = COLD_VARIANTS[number % 3 :] + COLD_VARIANTS[: number % 3]
            for name, module in order:
                run = run_child(module, "cold", {"bodies": [body]}, env, self.workdir, timeout=120)
                if run.result["failures"]:
                    raise BenchError(f"the {name} cold run reported a failed record")
                if number == 0:
                    continue
                samples[name].append(
                    {
                        "wall_ms": (run.result["finished_at"] - run.started_at) * 1000,
                        "import_ms": run.result["import_seconds"] * 1000,
                        "after_import_ms": run.result["work_seconds"] * 1000,
                        "cpu_ms": run.result["cpu_seconds"] * 1000,
                        "peak_rss_mb": run.result["peak_rss_kb"] / 1024,
                        "modules": run.result["modules"],
                    }
                )

        uncached = self._uncached_cold_runs(body, env)
        counts = self.emulator.call_counts()
        published = self.aws.drain(self.cold_subscriber)
        checks = (rounds + self.options.uncached_runs) * len(COLD_VARIANTS)
        self._expect("cold path ShowClusterDetail calls", counts.get("show_cluster", 0), checks)
        self._expect("cold path ListImages calls", counts.get("list_images", 0), 2 * checks)
        self._expect("cold path SNS deliveries", len(published), checks)
        # Only the worker's events carry `upgrade_request`; the baselines publish a smaller document.
        sample_event = next(event for event in map(json.loads, published) if "upgrade_request" in event)

        medians = {name: {key: statistics.median(sample[key] for sample in values) for key in values[0]} for name, values in samples.items()}
        minimums = {name: min(sample["wall_ms"] for sample in values) for name, values in samples.items()}
        return {
            "runs": self.options.cold_runs,
            "cluster_id": body,
            "samples": samples,
            "median": medians,
            "min_wall_ms": minimums,
            "cpu_ratio_floor": medians["worker"]["cpu_ms"] / medians["floor"]["cpu_ms"],
            "ratio_floor": medians["worker"]["wall_ms"] / medians["floor"]["wall_ms"],
            "ratio_sdk": medians["worker"]["wall_ms"] / medians["sdk"]["wall_ms"],
            "uncached_runs": self.options.uncached_runs,
            "uncached_wall_ms": uncached,
            "imports": import_breakdown(),
            "sample_event": sample_event,
        }

    def _uncached_cold_runs(self, body: str, env: dict[str, str]) -> dict[str, float]:
        """Return each variant's median cold wall time without byte code: every imported module is compiled.

        This is how the deployed function starts: the zip carries no byte code, and Lambda's code
        folder is read-only, so Python cannot write any either.
        """
        empty_cache = self.workdir / "empty-pycache"
        empty_cache.mkdir(exist_ok=True)
        uncached_env = {**env, "PYTHONPYCACHEPREFIX": str(empty_cache), "PYTHONDONTWRITEBYTECODE": "1"}
        walls: dict[str, list[float]] = {name: [] for name, _ in COLD_VARIANTS}
        for number in range(self.options.uncached_runs):
            for name, module in COLD_VARIANTS[number % 3 :] + COLD_VARIANTS[: number % 3]:
                run = run_child(module, "cold", {"bodies": [body]}, uncached_env, self.workdir, timeout=180)
                walls[name].append((run.result["finished_at"] - run.started_at) * 1000)
        return {name: statistics.median(values) for name, values in walls.items()}

    # -- 2. CPU per message ----------------------------------------------------------------------

    def cpu_per_message(self, sample_event: dict[str, Any]) -> dict[str, Any]:
        """Measure CPU per message of the worker and both baselines, in rounds of rotating order.

        Each round gives every variant its share of the messages in a fresh process, so that a change
        in the machine's load during the run falls on all three alike.
        """
        options = self.options
        cluster_ids = self.checked_cluster_ids(options.messages)
        warmup_ids = self.checked_cluster_ids(options.warmup_messages, skip=options.messages)
        sns_message, sns_subject, sns_attributes = sns_publish_of(sample_event)
        env = self.env(MAX_CONCURRENCY="1")
        variants = (("worker", WORKER, "cpu"), ("bare", FLOOR, "calls"), ("sdk", SDK, "calls"))
        totals = {name: {"cpu_seconds": 0.0, "wall_seconds": 0.0} for name, _, _ in variants}
        totals["worker"].update({"instrumented_cpu_seconds": 0.0, "stages": {}})

        for number, chunk in enumerate(_split(cluster_ids, options.cpu_rounds)):
            for name, module, mode in variants[number % 3 :] + variants[: number % 3]:
                config = {
                    "bodies": chunk,
                    "warmup_bodies": warmup_ids,
                    "batch_size": BATCH_SIZE,
                    "cluster_ids": chunk,
                    "warmup_cluster_ids": warmup_ids,
                    "sns_message": sns_message,
                    "sns_subject": sns_subject,
                    "sns_attributes": sns_attributes,
                }
                self.emulator.reset_calls()
                result = run_child(module, mode, config, env, self.workdir, timeout=900).result
                # The worker goes over its messages twice: plain, then instrumented.
                passes = 2 if name == "worker" else 1
                self._expect_checks(f"{name} CPU run", passes * len(chunk) + len(warmup_ids))
                for key in ("cpu_seconds", "wall_seconds", "instrumented_cpu_seconds"):
                    if key in result:
                        totals[name][key] += result[key]
                for stage, seconds in result.get("stages", {}).items():
                    totals[name]["stages"][stage] = totals[name]["stages"].get(stage, 0.0) + seconds
        worker = totals["worker"]

        self.emulator.reset_calls()
        profile_ids = self.checked_cluster_ids(options.profile_messages)
        profile = run_child(
            WORKER,
            "profile",
            {"bodies": profile_ids, "warmup_bodies": warmup_ids, "batch_size": BATCH_SIZE, "top": 15},
            env,
            self.workdir,
            timeout=900,
        ).result

        messages = len(cluster_ids)
        worker_ms = worker["cpu_seconds"] * 1000 / messages
        instrumented_ms = worker["instrumented_cpu_seconds"] * 1000 / messages
        # The hooks cost CPU themselves, so the stages are scaled down to the plain pass's total (an estimate).
        scale = worker_ms / instrumented_ms
        stages_ms = {stage: seconds * 1000 / messages * scale for stage, seconds in worker["stages"].items()}
        bare_ms = totals["bare"]["cpu_seconds"] * 1000 / messages
        sdk_ms = totals["sdk"]["cpu_seconds"] * 1000 / messages
        calls_ms = stages_ms["sign"] + stages_ms["request"] + stages_ms["publish"]
        return {
            "messages": messages,
            "rounds": options.cpu_rounds,
            "sns_message_bytes": len(sns_message.encode()),
            "worker_ms": worker_ms,
            "worker_wall_ms": worker["wall_seconds"] * 1000 / messages,
            "instrumented_ms": instrumented_ms,
            "stages_ms": stages_ms,
            "calls_ms": calls_ms,
            "bare_ms": bare_ms,
            "bare_wall_ms": totals["bare"]["wall_seconds"] * 1000 / messages,
            "sdk_ms": sdk_ms,
            "sdk_wall_ms": totals["sdk"]["wall_seconds"] * 1000 / messages,
            "ratio_bare": worker_ms / bare_ms,
            "ratio_sdk": worker_ms / sdk_ms,
            "calls_ratio_bare": calls_ms / bare_ms,
            "profile": profile,
        }

    # -- 3. batch concurrency --------------------------------------------------------------------

    def batch_concurrency(self) -> dict[str, Any]:
        bodies = self.checked_cluster_ids(BATCH_SIZE)
        config = {"bodies": bodies, "repeats": self.options.batch_repeats}
        self.emulator.inject({"kind": "latency", "latency_ms": LATENCY_MS})
        try:
            concurrent = run_child(WORKER, "batch", {**config, "sizes": [1, BATCH_SIZE]}, self.env(), self.workdir, timeout=600).result
            sequential = run_child(WORKER, "batch", {**config, "sizes": [BATCH_SIZE]}, self.env(MAX_CONCURRENCY="1"), self.workdir, timeout=600).result
        finally:
            self.emulator.clear_faults()

        one = concurrent["median_seconds"]["1"]
        batch = concurrent["median_seconds"][str(BATCH_SIZE)]
        in_order = sequential["median_seconds"][str(BATCH_SIZE)]
        return {
            "latency_ms": LATENCY_MS,
            "repeats": self.options.batch_repeats,
            "one_record_ms": one * 1000,
            "batch_ms": batch * 1000,
            "sequential_ms": in_order * 1000,
            "ratio": batch / one,
            "speedup": in_order / batch,
        }

    # -- 4. memory -------------------------------------------------------------------------------

    def memory(self) -> dict[str, Any]:
        bodies = self.checked_cluster_ids(BATCH_SIZE)
        result = run_child(WORKER, "memory", {"bodies": bodies}, self.env(), self.workdir, timeout=120).result
        if result["failures"]:
            raise BenchError("the memory run reported failed records")
        return {"records": result["records"], "peak_rss_mb": result["peak_rss_kb"] / 1024}

    # -- 6. fan-out ------------------------------------------------------------------------------

    def fan_out(self) -> dict[str, Any]:
        runs = {}
        targets = json.dumps([{"project_id": DEFAULT_PROJECT_ID, "region": DEFAULT_REGION}])
        clusters = len(self.fleet_clusters())
        for paging in PAGING_READINGS:
            self.emulator.set_cluster_paging(paging)
            self.emulator.reset_calls()
            queue_url = self.aws.create_queue(f"bench-work-{paging}")
            try:
                env = self.env(SCAN_TARGETS=targets, WORK_QUEUE_URL=queue_url)
                with QueuePurger(self.aws, queue_url) as purger:
                    result = run_child(WORKER, "scan", {"scan_id": f"bench-{paging}"}, env, self.workdir, timeout=900).result
            finally:
                self.aws.delete_queue(queue_url)
            if purger.error is not None:
                raise BenchError(f"purging the scan's queue failed: {purger.error}")
            counts = self.emulator.call_counts()
            self._expect(f"scan ({paging}) clusters found", result["clusters_found"], clusters)
            self._expect(f"scan ({paging}) clusters SQS accepted", result["accepted_entries"], result["checks_enqueued"])
            runs[paging] = {
                "wall_s": result["wall_seconds"],
                "list_s": result["list_seconds"],
                "enqueue_s": result["enqueue_seconds"],
                "send_message_batch": result["requests"].get("SendMessageBatch", 0),
                "aws_requests": sum(count for key, count in result["requests"].items() if key not in ("css", "other")),
                "css_list_calls": counts.get("list_clusters", 0),
                "css_requests_seen": result["requests"].get("css", 0),
                "clusters_found": result["clusters_found"],
                "skipped": result["skipped"],
                "checks_enqueued": result["checks_enqueued"],
                "failed_to_enqueue": result["failed_to_enqueue"],
                "accepted_entries": result["accepted_entries"],
            }
        self.emulator.set_cluster_paging("pages")
        pages = math.ceil(clusters / CLUSTER_PAGE_SIZE)
        return {
            "clusters": clusters,
            "pages": pages,
            "max_send_message_batch": math.ceil(clusters / BATCH_SIZE) + 10,
            "max_list_calls": pages + 1,
            "runs": runs,
        }

    # -- 7. API efficiency -----------------------------------------------------------------------

    def api_efficiency(self) -> dict[str, Any]:
        body = json.dumps({"cluster_id": WIDE_CLUSTER_ID, "project_id": WIDE_PROJECT_ID})
        self.emulator.reset_calls()
        self.aws.drain(self.cold_subscriber)
        run_child(WORKER, "cold", {"bodies": [body]}, self.env(self.cold_topic), self.workdir, timeout=120)

        calls = [call for call in self.emulator.calls() if WIDE_CLUSTER_ID in call["path"]]
        list_calls_by_type: dict[str, int] = {}
        for call in calls:
            if call["route"] == "list_images":
                upgrade_type = call["path"].rstrip("/").split("/")[-2]
                list_calls_by_type[upgrade_type] = list_calls_by_type.get(upgrade_type, 0) + 1
        events = [json.loads(text) for text in self.aws.drain(self.cold_subscriber)]
        if len(events) != 1:
            raise BenchError(f"the API-efficiency check published {len(events)} events, expected 1")
        event = events[0]
        types_tried = [upgrade_type for upgrade_type in ("same", "cross", "cross-engine") if upgrade_type in list_calls_by_type]
        return {
            "images_per_type": IMAGES_PER_TYPE,
            "event_type": event["event_type"],
            "candidates": len(event["candidates"]),
            "details_calls": sum(1 for call in calls if call["route"] == "show_cluster"),
            "list_calls_by_type": list_calls_by_type,
            "types_tried": types_tried,
            "expected_calls": 1 + len(types_tried),
            "total_calls": len(calls),
        }

    # -- checks that the work was done ---------------------------------------------------------------

    def _expect_checks(self, what: str, checks: int) -> None:
        counts = self.emulator.call_counts()
        self._expect(f"{what}: ShowClusterDetail calls", counts.get("show_cluster", 0), checks)
        self._expect(f"{what}: ListImages calls", counts.get("list_images", 0), 2 * checks)

    @staticmethod
    def _expect(what: str, actual: int, expected: int) -> None:
        if actual != expected:
            raise BenchError(f"{what}: {actual}, expected {expected}; the measured work was not what the benchmark assumes")


def _split(items: list[str], parts: int) -> list[list[str]]:
    """Split `items` into `parts` consecutive lists of nearly equal length (none empty)."""
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    chunks, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        chunks.append(items[start:end])
        start = end
    return chunks


def sns_publish_of(event: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    """Return the worker's SNS message, subject and attributes for an event, for the baselines' loops to send."""
    from handler.core.events import Event, sns_message_attributes, sns_subject
    from handler.delivery.publish import sns_message

    parsed = Event.model_validate(event)
    return sns_message(parsed), sns_subject(parsed), sns_message_attributes(parsed)


def import_breakdown(runs: int = 3) -> dict[str, Any]:
    """Compare `python -X importtime` of the worker's imports with the floor's: what the worker loads that the floor does not.

    Each module's time is its fastest of `runs` runs, which other work on the machine inflates least.
    """
    statements = {
        "worker": "from handler import worker",
        "floor": "import requests, requests_aws4auth; from handler.local import bench_job",
        "sdk": "import boto3, huaweicloudsdkcore.auth.credentials, huaweicloudsdkcss.v1; from handler.local import bench_job",
    }
    modules = {name: _fastest(_import_times(statement) for _ in range(runs)) for name, statement in statements.items()}
    extra = {name: own for name, own in modules["worker"].items() if name not in modules["floor"]}
    top = sorted(extra.items(), key=lambda item: item[1], reverse=True)[:10]
    return {
        "own_ms": {name: sum(times.values()) / 1000 for name, times in modules.items()},
        "module_counts": {name: len(times) for name, times in modules.items()},
        "worker_only_count": len(extra),
        "worker_only_ms": sum(extra.values()) / 1000,
        "worker_only_top": [{"module": name, "own_ms": own / 1000} for name, own in top],
    }


def _fastest(samples: Any) -> dict[str, int]:
    """Return each module's smallest time over several runs, for the modules every run imported."""
    fastest: dict[str, int] | None = None
    for times in samples:
        if fastest is None:
            fastest = dict(times)
            continue
        fastest = {name: min(own, times[name]) for name, own in fastest.items() if name in times}
    return fastest or {}


def _import_times(statement: str) -> dict[str, int]:
    """Return each module's own import time in microseconds, from one `python -X importtime` run."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if completed.returncode != 0:
        raise BenchError(f"python -X importtime -c {statement!r} failed:\n{completed.stderr[-2000:]}")
    times = {}
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, _, name = line[len("import time:") :].split("|")
        if own.strip().isdigit():
            times[name.strip()] = int(own)
    return times


def artifact() -> dict[str, Any]:
    if not ARTIFACT.exists():
        return {"path": str(ARTIFACT.relative_to(PROJECT_ROOT)), "exists": False}
    with zipfile.ZipFile(ARTIFACT) as archive:
        infos = archive.infolist()
    return {
        "path": str(ARTIFACT.relative_to(PROJECT_ROOT)),
        "exists": True,
        "bytes": ARTIFACT.stat().st_size,
        "uncompressed_bytes": sum(info.file_size for info in infos),
        "entries": len(infos),
    }


def run(options: Options) -> dict[str, Any]:
    """Run every measurement and return the results, keyed by section."""
    started = time.monotonic()
    results: dict[str, Any] = {"options": asdict(options), "load_average": {"start": _load_average()}}
    results["artifact"] = artifact()

    with tempfile.TemporaryDirectory(prefix="scout-bench-") as directory:
        bench = Bench(options, Path(directory), bench_catalog(options.fleet, options.seed))
        bench.start()
        try:
            _step("cold path")
            results["cold"] = bench.cold_path()
            _step("CPU per message")
            results["cpu"] = bench.cpu_per_message(results["cold"].pop("sample_event"))
            _step("batch concurrency")
            results["batch"] = bench.batch_concurrency()
            _step("memory")
            results["memory"] = bench.memory()
            _step("fan-out")
            results["fan_out"] = bench.fan_out()
            _step("API efficiency")
            results["api"] = bench.api_efficiency()
        finally:
            bench.stop()

    results["duration_s"] = time.monotonic() - started
    results["load_average"]["end"] = _load_average()
    return results


def _load_average() -> list[float] | None:
    """Return the system's 1, 5 and 15 minute load averages, which show whether other work shared the cores."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def _step(name: str) -> None:
    print(f"measuring {name} ...", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m handler.local.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="every section on small numbers (about 30 s), for the smoke test")
    parser.add_argument("--record", metavar="FILE", type=Path, help="rewrite FILE (Markdown) with this run")
    parser.add_argument("--runs", type=int, help="fresh interpreters per cold-path variant (default 11, quick 2)")
    parser.add_argument("--messages", type=int, help="messages of the CPU measurement (default 1000, quick 30)")
    parser.add_argument("--fleet", type=int, help="clusters of the generated fleet the scan lists (default 10000, quick 1500)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated fleet (default 7)")
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write the raw results as JSON to FILE")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    for name in ("runs", "messages", "fleet"):
        value = getattr(arguments, name)
        if value is not None and value < 1:
            print(f"error: --{name} must be 1 or more, got {value}", file=sys.stderr)
            return 2
    options = options_from(arguments)

    try:
        results = run(options)
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1

    report = bench_report.Report(results)
    print(report.console())
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if arguments.record:
        previous = arguments.record.read_text(encoding="utf-8") if arguments.record.exists() else None
        arguments.record.write_text(report.markdown(previous), encoding="utf-8")
        print(f"\nrecorded in {arguments.record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
