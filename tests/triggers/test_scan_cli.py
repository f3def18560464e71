"""`css-upgrade-scout scan` from a terminal: fleet table and JSON with --check, enqueuing without it, and the progress bar."""

from __future__ import annotations

import io
import json

import pytest

from handler import cli
from handler.local.emulator import DEFAULT_PROJECT_ID, DEFAULT_REGION
from handler.local.scan_cli import ProgressBar, render_bar

from . import queue_bodies

LOGS_PROD = "ea244205-d641-45d9-9dcb-ab2236bcd07e"
METRICS_PROD = "5b2a4984-fcd4-5a5a-ae0e-4ccd28427a5b"
LOGSTASH = "610b571c-1d0f-53fb-af05-f367e528b606"
EU_LOGS = "2014b9a5-d42e-5230-a525-8602d8aea8b1"


@pytest.fixture(autouse=True)
def quiet_cli(monkeypatch):
    # The CLI sets these itself; monkeypatch restores them after each test.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")


def test_check_emulator_json_lists_fleet(capsys):
    status = cli.main(["scan", "--check", "--emulator", "--json"])

    output = json.loads(capsys.readouterr().out)
    rows = {row["cluster_id"]: row for row in output["clusters"]}
    assert status == 0
    assert len(rows) == 15
    assert output["listing_errors"] == []
    assert rows[LOGS_PROD]["event_type"] == "upgrade.ready"
    assert rows[LOGS_PROD]["target_image"] == "7.10.2_24.3.4_0109"
    assert rows[LOGS_PROD]["event"]["trigger"]["source"] == "cli"
    assert rows[METRICS_PROD]["event_type"] == "upgrade.blocked"
    assert rows[METRICS_PROD]["reason"] == "plugin_upload_required"
    assert rows[LOGSTASH]["skip_reason"] == "unsupported_engine"
    assert rows[LOGSTASH]["event"] is None
    assert rows[EU_LOGS]["project_id"] == "1f0e8c7b6a5d4c3b2a1908f7e6d5c4b3"


def test_check_prints_fleet_table(sandbox, capsys):
    status = cli.main(["scan", "--check", "--project-id", DEFAULT_PROJECT_ID, "--region", DEFAULT_REGION])

    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    logs_prod = next(line for line in lines if line.startswith(LOGS_PROD))
    assert status == 0
    assert lines[0].split() == ["CLUSTER", "NAME", "ENGINE", "CURRENT", "IMAGE", "BEST", "TARGET", "EVENT"]
    assert len(lines) == 1 + 14
    assert logs_prod.split() == [LOGS_PROD, "logs-prod", "elasticsearch", "7.6.2", "7.6.2_24.3.3_1224", "7.10.2_24.3.4_0109", "upgrade.ready"]
    assert "skipped: unsupported_engine" in next(line for line in lines if line.startswith(LOGSTASH))
    assert "11/11 checked" in captured.err


def test_check_reports_failed_listing(sandbox, env, capsys):
    env(SCAN_TARGETS=json.dumps([{"project_id": "0123456789abcdef0123456789abcdef", "region": DEFAULT_REGION}]))

    status = cli.main(["scan", "--check"])

    assert status == 3
    assert "listing failed for project 0123456789abcdef0123456789abcdef" in capsys.readouterr().out


def test_enqueue_sends_work_messages(sandbox, env, capsys):
    env(SCAN_TARGETS=json.dumps([{"project_id": DEFAULT_PROJECT_ID, "region": DEFAULT_REGION}]))

    status = cli.main(["scan", "--json"])

    summary = json.loads(capsys.readouterr().out)
    bodies = queue_bodies(sandbox.boto("sqs"), sandbox.work_queue_url)
    assert status == 0
    assert summary["checks_enqueued"] == 11
    assert len(bodies) == 11
    assert {body["source"] for body in bodies} == {"schedule"}
    assert {body["correlation_id"] for body in bodies} == {summary["scan_id"]}


def test_enqueue_text_summary(sandbox, capsys):
    status = cli.main(["scan", "--project-id", DEFAULT_PROJECT_ID, "--region", DEFAULT_REGION])

    output = capsys.readouterr().out
    assert status == 0
    assert "14 clusters found in 1 targets, 3 skipped, 11 checks enqueued, 0 failed to enqueue" in output
    assert f"skipped (unsupported_engine): {LOGSTASH}" in output


@pytest.mark.parametrize(
    "argv, variables, message",
    [
        (["scan"], {"WORK_QUEUE_URL": None, "SCAN_TARGETS": json.dumps([{"project_id": DEFAULT_PROJECT_ID, "region": DEFAULT_REGION}])}, "WORK_QUEUE_URL is not set"),
        (["scan", "--check"], {"CSS_PROJECT_ID": None}, "nothing to scan"),
        (["scan", "--check", "--emulator", "--region", DEFAULT_REGION], {}, "--emulator scans every project"),
        (["scan", "--check", "--project-id", DEFAULT_PROJECT_ID], {"CSS_REGION": None}, "missing --region"),
        (["scan", "--check", "--project-id", "nope", "--region", DEFAULT_REGION], {}, "invalid --project-id 'nope'"),
        (["scan", "--check", "--project-id", DEFAULT_PROJECT_ID, "--region", DEFAULT_REGION, "--endpoint", "http://css.example.com"], {}, "plain http"),
    ],
    ids=["no-queue", "no-targets", "emulator-with-target", "half-target", "invalid-project", "insecure-endpoint"],
)
def test_invalid_arguments_exit_2(sandbox, env, capsys, argv, variables, message):
    env(**variables)

    status = cli.main(argv)

    assert status == 2
    assert message in capsys.readouterr().err
    assert sandbox.emulator.call_count("list_clusters") == 0


@pytest.mark.parametrize(
    "done, total, bar",
    [
        (0, 40, "[..............................]  0/40 checked"),
        (12, 40, "[#########.....................] 12/40 checked"),
        (40, 40, "[##############################] 40/40 checked"),
        (0, 0, "[##############################] 0/0 checked"),
    ],
)
def test_render_bar(done, total, bar):
    assert render_bar(done, total, "checked") == bar


def test_progress_without_terminal_prints_tenths():
    stream = io.StringIO()
    progress = ProgressBar(stream, interactive=False)

    progress.start("checked", 40)
    for _ in range(40):
        progress.advance()

    lines = stream.getvalue().splitlines()
    assert len(lines) == 11
    assert lines[0].endswith(" 0/40 checked")
    assert lines[-1].endswith("40/40 checked")


def test_progress_on_terminal_redraws_one_line():
    stream = io.StringIO()
    progress = ProgressBar(stream, interactive=True)

    progress.listing(3)
    progress.start("enqueued", 2)
    progress.advance(2)
    progress.finish()

    assert stream.getvalue() == (
        "\rlisting clusters: 3 found\n"
        "\r[..............................] 0/2 enqueued"
        "\r[##############################] 2/2 enqueued\n"
    )


def test_default_project_and_region_scanned(sandbox, env, capsys):
    env(SCAN_TARGETS=None)

    status = cli.main(["scan", "--check", "--json"])

    assert status == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows["clusters"] if isinstance(rows, dict) else rows) == 14
