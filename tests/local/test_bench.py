"""The benchmark script in its quick mode: every section printed and recorded, counts checked, no timing asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from handler.local import bench_report

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = (
    "1. Cold path",
    "2. Per-message CPU",
    "3. Batch concurrency",
    "4. Memory",
    "5. Artifact",
    "6. Fan-out",
    "7. API efficiency",
)
GOALS = (
    "cold path: worker / floor",
    "cold path: worker / SDK path",
    "CPU per message: worker / bare calls",
    "CPU per message: worker / SDK path",
    "batch of 10 / one record",
    "peak RSS, 10-record batch",
    "deployment zip size",
    "scan: SendMessageBatch calls",
    "scan: CSS list calls",
    "one check's CSS calls",
)
HAND_NOTES = "Written by hand before the run."


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("bench")
    record = folder / "benchmarks.md"
    record.write_text(f"# Old record\n\n{bench_report.NOTES_START}\n{HAND_NOTES}\n{bench_report.NOTES_END}\n", encoding="utf-8")
    results = folder / "results.json"
    command = [sys.executable, "-m", "handler.local.bench", "--quick", "--record", str(record), "--json", str(results)]

    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return {
        "stdout": completed.stdout,
        "record": record.read_text(encoding="utf-8"),
        "results": json.loads(results.read_text(encoding="utf-8")),
    }


@pytest.mark.parametrize("section", SECTIONS)
def test_console_prints_section(quick_run, section):
    assert f"== {section} ==" in quick_run["stdout"]


@pytest.mark.parametrize("section", SECTIONS)
def test_record_contains_section(quick_run, section):
    assert f"### {section}" in quick_run["record"]


@pytest.mark.parametrize("goal", GOALS)
def test_goal_judged_in_console_and_record(quick_run, goal):
    assert f"| {goal} " in quick_run["stdout"]
    assert f"- **{goal}** (" in quick_run["record"]


def test_record_names_machine_and_packages(quick_run):
    record = quick_run["record"]
    for item in ("| CPU ", "| cores ", "| memory ", "| Python ", "| huaweicloudsdkcss ", "| requests-aws4auth "):
        assert item in record


def test_record_marks_quick_run(quick_run):
    assert "**Quick run**" in quick_run["record"]


def test_record_keeps_hand_notes(quick_run):
    record = quick_run["record"]
    assert HAND_NOTES in record
    assert record.index(bench_report.NOTES_START) < record.index(HAND_NOTES) < record.index(bench_report.NOTES_END)


def test_check_makes_one_call_per_type(quick_run):
    api = quick_run["results"]["api"]
    assert api["details_calls"] == 1
    assert api["list_calls_by_type"] == {"same": 1, "cross": 1}
    assert api["candidates"] == 50


@pytest.mark.parametrize("paging", ["pages", "items"])
def test_scan_calls_within_bounds(quick_run, paging):
    fan_out = quick_run["results"]["fan_out"]
    scan = fan_out["runs"][paging]
    assert scan["clusters_found"] == fan_out["clusters"]
    assert scan["accepted_entries"] == scan["checks_enqueued"]
    assert scan["send_message_batch"] <= fan_out["max_send_message_batch"]
    assert scan["css_list_calls"] <= fan_out["max_list_calls"]


def test_kept_notes_without_markers():
    assert "No notes yet" in bench_report.kept_notes("# A record without notes\n")


def test_table_aligns_columns():
    rendered = bench_report.table(["name", "value"], [["a", 1], ["longer", 22]])

    lines = rendered.splitlines()
    assert lines[0] == "| name   | value |"
    assert lines[1] == "|--------|-------|"
    assert lines[3] == "| longer | 22    |"
