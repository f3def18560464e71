"""The project's side of the benchmarks: one fresh process that runs the real handlers and reports what it measured.

`handler.local.bench` starts `python -m handler.local.bench_worker MODE` with the function's
environment and a configuration file; the modes are `cold`, `cpu`, `batch`, `memory` and `scan`.
Nothing of the project is imported before a mode's clock starts.
"""

from __future__ import annotations

import functools
import sys
import time
from typing import Any, Callable

from handler.local.bench_protocol import LambdaContext, batches, emit, peak_rss_kb, read_config, sqs_event

# CPU stages of one message, in the order the worker runs them.
STAGES = ("parse", "sign", "request", "choose", "render", "publish", "log_metrics")


def run_cold(config: dict[str, Any]) -> dict[str, Any]:
    """Import the worker and process one SQS batch to the end; the parent's clock runs from the process start."""
    started = time.perf_counter()
    from handler import worker

    imported = time.perf_counter()
    response = worker.lambda_handler(sqs_event(config["bodies"]), LambdaContext())
    finished_at = time.monotonic()
    return {
        "finished_at": finished_at,
        "import_seconds": imported - started,
        "work_seconds": time.perf_counter() - imported,
        "cpu_seconds": time.process_time(),
        "peak_rss_kb": peak_rss_kb(),
        "failures": len(response["batchItemFailures"]),
        "modules": len(sys.modules),
    }


class StageClock:
    """Exclusive CPU time per stage: time spent in a nested stage counts for that stage only.

    Single-threaded use only, which is why the CPU measurement runs with MAX_CONCURRENCY=1.
    """

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self._stack = ["other"]
        self._mark = time.process_time()

    def _switch(self) -> None:
        now = time.process_time()
        top = self._stack[-1]
        self.totals[top] = self.totals.get(top, 0.0) + now - self._mark
        self._mark = now

    def wrap(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._switch()
            self._stack.append(stage)
            try:
                return function(*args, **kwargs)
            finally:
                self._switch()
                self._stack.pop()

        return timed

    def reset(self) -> None:
        self.totals = {}
        self._mark = time.process_time()


def instrument(clock: StageClock) -> None:
    """Wrap the public functions of each stage where the worker looks them up, so that the real worker runs unchanged."""
    from requests_aws4auth import AWS4Auth

    from handler import check, process, worker
    from handler.aws import sns
    from handler.css.client import CssClient
    from handler.css.signer import AkSkAuth
    from handler.delivery import publish

    process.parse_body = clock.wrap("parse", process.parse_body)

    # AWS4Auth derives its signing key in __init__, and the AWS client builds one per request.
    AkSkAuth.__call__ = clock.wrap("sign", AkSkAuth.__call__)
    AWS4Auth.__init__ = clock.wrap("sign", AWS4Auth.__init__)
    AWS4Auth.__call__ = clock.wrap("sign", AWS4Auth.__call__)

    # Both calls include reading the JSON and validating it into the project's models.
    CssClient.show_cluster = clock.wrap("request", CssClient.show_cluster)
    CssClient.list_images = clock.wrap("request", CssClient.list_images)

    check.choose = clock.wrap("choose", check.choose)

    check.build_check_event = clock.wrap("render", check.build_check_event)
    for name in ("sns_message", "fit_to_size", "sns_subject", "sns_message_attributes"):
        setattr(publish, name, clock.wrap("render", getattr(publish, name)))

    sns.publish = clock.wrap("publish", sns.publish)

    process.count = clock.wrap("log_metrics", process.count)
    for method in ("info", "warning"):
        setattr(process.logger, method, clock.wrap("log_metrics", getattr(process.logger, method)))
    worker.metrics.flush_metrics = clock.wrap("log_metrics", worker.metrics.flush_metrics)


def run_cpu(config: dict[str, Any]) -> dict[str, Any]:
    """Process the messages twice after a warm-up: once plain for the total, once instrumented for the stages."""
    from handler import worker

    def process_all(bodies: list[str]) -> None:
        for chunk in batches(bodies, config["batch_size"]):
            response = worker.lambda_handler(sqs_event(chunk), LambdaContext())
            if response["batchItemFailures"]:
                raise RuntimeError(f"{len(response['batchItemFailures'])} records failed: {response}")

    bodies = config["bodies"]
    process_all(config["warmup_bodies"])

    started = time.process_time()
    wall_started = time.perf_counter()
    process_all(bodies)
    total = time.process_time() - started
    wall = time.perf_counter() - wall_started

    clock = StageClock()
    instrument(clock)
    clock.reset()
    started = time.process_time()
    process_all(bodies)
    instrumented_total = time.process_time() - started
    clock._switch()

    return {
        "messages": len(bodies),
        "cpu_seconds": total,
        "wall_seconds": wall,
        "instrumented_cpu_seconds": instrumented_total,
        "stages": {stage: clock.totals.get(stage, 0.0) for stage in (*STAGES, "other")},
    }


def run_profile(config: dict[str, Any]) -> dict[str, Any]:
    """Profile the messages with cProfile after a warm-up; return the functions with the most own time."""
    import cProfile
    import pstats

    from handler import worker

    def process_all(bodies: list[str]) -> None:
        for chunk in batches(bodies, config["batch_size"]):
            worker.lambda_handler(sqs_event(chunk), LambdaContext())

    process_all(config["warmup_bodies"])
    profiler = cProfile.Profile()
    profiler.enable()
    process_all(config["bodies"])
    profiler.disable()

    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, function), (_, calls, own, cumulative, _) in stats.stats.items():
        rows.append({"function": f"{_short_path(filename)}:{line}({function})", "calls": calls, "own_seconds": own, "cumulative_seconds": cumulative})
    rows.sort(key=lambda row: row["own_seconds"], reverse=True)
    return {"messages": len(config["bodies"]), "top": rows[: config.get("top", 15)]}


def _short_path(filename: str) -> str:
    """Shorten a source path to the part after `site-packages/`, the project root or the standard library's folder."""
    for marker, keep_marker in (("site-packages/", False), ("/handler/", True), ("/lib/python3.", False)):
        index = filename.rfind(marker)
        if index < 0:
            continue
        if keep_marker:
            return filename[index + 1 :]
        rest = filename[index + len(marker) :]
        return rest.split("/", 1)[1] if marker == "/lib/python3." and "/" in rest else rest
    return filename


def run_batch(config: dict[str, Any]) -> dict[str, Any]:
    """Time whole invocations of the given batch sizes, after one warm-up invocation, with the configured MAX_CONCURRENCY."""
    import statistics

    from handler import worker

    bodies = config["bodies"]
    worker.lambda_handler(sqs_event(bodies[:1]), LambdaContext())

    timings: dict[str, list[float]] = {}
    for size in config["sizes"]:
        for _ in range(config["repeats"]):
            event = sqs_event(bodies[:size])
            started = time.perf_counter()
            response = worker.lambda_handler(event, LambdaContext())
            elapsed = time.perf_counter() - started
            if response["batchItemFailures"]:
                raise RuntimeError(f"{len(response['batchItemFailures'])} records failed: {response}")
            timings.setdefault(str(size), []).append(elapsed)
    return {"seconds": timings, "median_seconds": {size: statistics.median(values) for size, values in timings.items()}}


def run_memory(config: dict[str, Any]) -> dict[str, Any]:
    """Process one batch in this fresh process and report its peak resident set size."""
    from handler import worker

    response = worker.lambda_handler(sqs_event(config["bodies"]), LambdaContext())
    return {"peak_rss_kb": peak_rss_kb(), "records": len(config["bodies"]), "failures": len(response["batchItemFailures"])}


def count_requests() -> tuple[dict[str, int], set[str]]:
    """Count every HTTP request this process sends, by AWS operation (`X-Amz-Target`) or as `css` for the CSS endpoint.

    Also collects the entry IDs that SendMessageBatch responses list as `Successful`.
    """
    import json
    import os

    from requests.adapters import HTTPAdapter

    counts: dict[str, int] = {}
    accepted: set[str] = set()
    css_endpoint = os.environ["CSS_ENDPOINT"]
    original_send = HTTPAdapter.send

    def send(self: HTTPAdapter, request: Any, *args: Any, **kwargs: Any) -> Any:
        target = request.headers.get("X-Amz-Target")
        if target:
            key = target.rsplit(".", 1)[-1]
        elif request.url.startswith(css_endpoint):
            key = "css"
        else:
            key = "other"
        counts[key] = counts.get(key, 0) + 1
        response = original_send(self, request, *args, **kwargs)
        if key == "SendMessageBatch" and response.status_code == 200:
            accepted.update(entry["Id"] for entry in json.loads(response.content).get("Successful", []))
        return response

    HTTPAdapter.send = send
    return counts, accepted


def run_scan(config: dict[str, Any]) -> dict[str, Any]:
    """Run the scheduled scan's Lambda handler once, counting the requests it sends."""
    counts, accepted = count_requests()
    from handler import scan

    spent = {"list": 0.0, "enqueue": 0.0}

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - started

        return wrapper

    scan.list_target = timed("list", scan.list_target)
    scan.enqueue_checks = timed("enqueue", scan.enqueue_checks)

    started = time.perf_counter()
    summary = scan.lambda_handler({"execution_id": config["scan_id"]}, LambdaContext())
    elapsed = time.perf_counter() - started
    return {
        "wall_seconds": elapsed,
        "list_seconds": spent["list"],
        "enqueue_seconds": spent["enqueue"],
        "requests": counts,
        "accepted_entries": len(accepted),
        "clusters_found": summary["clusters_found"],
        "skipped": summary["skipped"]["count"],
        "checks_enqueued": summary["checks_enqueued"],
        "failed_to_enqueue": summary["failed_to_enqueue"],
        "status": summary["status"],
    }


MODES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "cold": run_cold,
    "cpu": run_cpu,
    "profile": run_profile,
    "batch": run_batch,
    "memory": run_memory,
    "scan": run_scan,
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in MODES:
        print(f"usage: python -m handler.local.bench_worker {{{','.join(MODES)}}}", file=sys.stderr)
        return 2
    emit(MODES[argv[0]](read_config()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
