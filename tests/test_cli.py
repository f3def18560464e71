"""`css-upgrade-scout check` against the emulator: exit statuses, output, publishing, and each policy rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from handler.cli import main
from handler.local.emulator.catalog import DEFAULT_ACCESS_KEY, DEFAULT_PROJECT_ID, DEFAULT_SECRET_KEY, default_catalog, load_catalog
from handler.local.emulator.server import Emulator

LOGS_PROD = "ea244205-d641-45d9-9dcb-ab2236bcd07e"
SEARCH_PROD = "02bfab90-9f44-5f39-9d58-2fe518687173"
LEGACY_LOGS = "e08f92c9-cac6-5470-be67-ee133e0f44f9"
METRICS_PROD = "5b2a4984-fcd4-5a5a-ae0e-4ccd28427a5b"
OS_LOGS = "a4a1bdf6-41a9-58d1-9159-3d8df47655b0"
OLD_LOGS = "8515be4d-214d-5629-9e9f-20448ad5124f"
UNDATED = "7d3c1a52-93b0-4c55-8f1e-2a6b0c9d4e10"


@pytest.fixture(autouse=True)
def restore_cli_switches(monkeypatch):
    """`main` turns metrics off and sets the log level in os.environ; restore both after each test."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")


@pytest.fixture
def cli_env(emulator, monkeypatch):
    for name in list(os.environ):
        if name.startswith(("CSS_", "HUAWEICLOUD_", "UPGRADE_", "NOTIFY_", "DEDUPE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CSS_ENDPOINT", emulator.url)
    monkeypatch.setenv("CSS_PROJECT_ID", DEFAULT_PROJECT_ID)
    monkeypatch.setenv("CSS_REGION", "ap-southeast-1")
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", DEFAULT_ACCESS_KEY)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", DEFAULT_SECRET_KEY)
    return monkeypatch


def _check(capsys, *arguments: str) -> tuple[int, dict]:
    status = main(["check", "--json", *arguments])
    out = capsys.readouterr().out
    return status, json.loads(out) if out.strip() else {}


def _target(event: dict) -> str:
    if event["target_image"]:
        return f"{event['event_type']} {event['target_image']['display_name']}"
    return f"{event['event_type']} {event['reason']}"


def test_check_ready_json(cli_env, capsys):
    status, event = _check(capsys, "--cluster-id", LOGS_PROD)
    assert status == 0
    assert _target(event) == "upgrade.ready 7.10.2_24.3.4_0109"
    assert event["trigger"]["source"] == "cli"


def test_check_invalid_id_exit_2(cli_env, capsys):
    status = main(["check", "--cluster-id", "../etc"])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert "invalid cluster_id" in captured.err


def test_check_invalid_policy_exit_2(cli_env, capsys):
    cli_env.setenv("UPGRADE_POLICY", '{"min_age_days": {"same": -1}}')
    status = main(["check", "--cluster-id", LOGS_PROD])
    assert status == 2
    assert "min_age_days.same" in capsys.readouterr().err


def test_check_missing_credentials_exit_2(cli_env, capsys):
    cli_env.delenv("HUAWEICLOUD_SDK_SK")
    assert main(["check", "--cluster-id", LOGS_PROD]) == 2
    assert "HUAWEICLOUD_SDK" in capsys.readouterr().err


def test_check_rejected_credentials_exit_3(cli_env, capsys):
    cli_env.setenv("HUAWEICLOUD_SDK_SK", "wrong-secret")
    status = main(["check", "--cluster-id", LOGS_PROD])
    captured = capsys.readouterr()
    assert status == 3
    assert "APIGW.0301" in captured.err
    assert "wrong-secret" not in captured.err


def test_check_deleted_cluster_exit_3_with_event(cli_env, capsys):
    status, event = _check(capsys, "--cluster-id", OLD_LOGS)
    assert status == 3
    assert event["event_type"] == "check.failed"
    assert event["reason"] == "cluster_not_found"


def test_type_cross_engine_rejected_under_default_policy(cli_env, capsys):
    status, event = _check(capsys, "--cluster-id", SEARCH_PROD, "--type", "cross-engine")
    assert status == 0
    assert _target(event) == "upgrade.none all_rejected_by_policy"
    assert [candidate["rejected_reason"] for candidate in event["candidates"]] == ["engine_change_not_allowed"]


def test_text_output_shows_request(cli_env, capsys):
    assert main(["check", "--cluster-id", LOGS_PROD]) == 0
    out = capsys.readouterr().out
    assert "7.10.2_24.3.4_0109" in out
    assert f"POST /v1.0/{DEFAULT_PROJECT_ID}/clusters/{LOGS_PROD}/inst-type/all/image/upgrade" in out


# Each rule of the policy, shown changing one cluster's outcome: (cluster, policy, extra arguments,
# outcome under the default policy, outcome under the rule).
RULES = {
    "upgrade_types": (SEARCH_PROD, {"upgrade_types": ["cross"]}, [], "upgrade.ready 7.10.2_26.1.0_0224", "upgrade.none no_target_images"),
    "allow_cross_engine": (
        SEARCH_PROD,
        {"upgrade_types": ["cross-engine"], "allow_cross_engine": True},
        [],
        "upgrade.ready 7.10.2_26.1.0_0224",
        "upgrade.ready 1.3.6_24.3.4_0109",
    ),
    "versions": (LEGACY_LOGS, {"versions": {"elasticsearch": ">=7.10"}}, [], "upgrade.ready 6.8.23_24.3.4_0109", "upgrade.ready 7.10.2_24.3.4_0109"),
    "deny_images": (LOGS_PROD, {"deny_images": ["7.10.2_24.3.4_*"]}, [], "upgrade.ready 7.10.2_24.3.4_0109", "upgrade.ready 7.10.2_24.3.3_0102"),
    "min_age_days": (OS_LOGS, {"min_age_days": {"same": 36500}}, [], "upgrade.ready 1.3.6_24.3.4_0109", "upgrade.ready 2.19.0_25.6.0_0918"),
    "plugin_upload": (METRICS_PROD, {"plugin_upload": "allow"}, [], "upgrade.blocked 7.10.2_24.3.4_0109", "upgrade.ready 7.10.2_24.3.4_0109"),
    "profiles": (
        LOGS_PROD,
        {"profiles": {"conservative": {"upgrade_types": ["same"]}}},
        ["--profile", "conservative"],
        "upgrade.ready 7.10.2_24.3.4_0109",
        "upgrade.none no_target_images",
    ),
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_policy_rule_changes_outcome(cli_env, capsys, rule):
    cluster, policy, extra, default_outcome, ruled_outcome = RULES[rule]

    status, event = _check(capsys, "--cluster-id", cluster)
    assert status == 0
    assert _target(event) == default_outcome

    cli_env.setenv("UPGRADE_POLICY", json.dumps(policy))
    status, event = _check(capsys, "--cluster-id", cluster, *extra)
    assert status == 0
    assert _target(event) == ruled_outcome


def test_policy_file_yaml(cli_env, capsys, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("deny_images:\n  - 7.10.2_24.3.4_*\n")
    cli_env.setenv("UPGRADE_POLICY", str(path))
    status, event = _check(capsys, "--cluster-id", LOGS_PROD)
    assert status == 0
    assert _target(event) == "upgrade.ready 7.10.2_24.3.3_0102"


def test_unknown_age_rule(capsys, monkeypatch):
    catalog_data = default_catalog().model_dump(by_alias=True, mode="json")
    catalog_data["projects"][0]["clusters"].append(
        {
            "id": UNDATED,
            "name": "custom-build",
            "datastore": {"type": "elasticsearch", "version": "7.10.2", "subVersion": "7.10.2_24.3.4_0109"},
            "images": {
                "same": [
                    {"id": "9a1f0c1e-0000-4000-8000-000000000001", "displayName": "custom-hotfix", "datastoreType": "elasticsearch", "datastoreVersion": "7.10.2", "priority": 30}
                ]
            },
        }
    )
    with Emulator(load_catalog(catalog_data)) as emulator:
        monkeypatch.setenv("CSS_ENDPOINT", emulator.url)
        monkeypatch.setenv("CSS_PROJECT_ID", DEFAULT_PROJECT_ID)
        monkeypatch.setenv("CSS_REGION", "ap-southeast-1")
        monkeypatch.setenv("HUAWEICLOUD_SDK_AK", DEFAULT_ACCESS_KEY)
        monkeypatch.setenv("HUAWEICLOUD_SDK_SK", DEFAULT_SECRET_KEY)
        monkeypatch.setenv("UPGRADE_POLICY", json.dumps({"min_age_days": {"same": 1}}))
        status, event = _check(capsys, "--cluster-id", UNDATED)
        assert _target(event) == "upgrade.ready custom-hotfix"

        monkeypatch.setenv("UPGRADE_POLICY", json.dumps({"min_age_days": {"same": 1}, "unknown_age": "reject"}))
        status, event = _check(capsys, "--cluster-id", UNDATED)
        assert status == 0
        assert _target(event) == "upgrade.none all_rejected_by_policy"
        assert event["candidates"][0]["rejected_reason"] == "unknown_age"


def test_publish_announces_once(cli_env, capsys, sandbox):
    cli_env.setenv("CSS_ENDPOINT", sandbox.emulator.url)
    assert main(["check", "--cluster-id", LOGS_PROD, "--publish"]) == 0
    assert "published to SNS" in capsys.readouterr().err
    assert main(["check", "--cluster-id", LOGS_PROD, "--publish"]) == 0
    assert "already announced" in capsys.readouterr().err

    received = sandbox.received_events()
    assert [event["cluster"]["id"] for event in received] == [LOGS_PROD]


def test_subprocess_stdout_is_only_the_event(emulator):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CSS_", "HUAWEICLOUD_", "UPGRADE_", "NOTIFY_", "DEDUPE_", "AWS_"))}
    env.update(
        CSS_ENDPOINT=emulator.url,
        CSS_PROJECT_ID=DEFAULT_PROJECT_ID,
        CSS_REGION="ap-southeast-1",
        HUAWEICLOUD_SDK_AK=DEFAULT_ACCESS_KEY,
        HUAWEICLOUD_SDK_SK=DEFAULT_SECRET_KEY,
        POWERTOOLS_LOG_LEVEL="DEBUG",
    )
    result = subprocess.run(
        [sys.executable, "-m", "handler.cli", "check", "--cluster-id", LOGS_PROD, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["event_type"] == "upgrade.ready"


def test_publish_without_target_exit_2_before_css(cli_env, capsys, emulator):
    status = main(["check", "--cluster-id", LOGS_PROD, "--publish"])
    assert status == 2
    assert "NOTIFY_TOPIC_ARN" in capsys.readouterr().err
    assert emulator.calls == []


def test_publish_without_aws_credentials_exit_2_before_css(cli_env, capsys, emulator):
    cli_env.setenv("NOTIFY_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:events")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        cli_env.delenv(name, raising=False)
    cli_env.setenv("AWS_REGION", "us-east-1")
    status = main(["check", "--cluster-id", LOGS_PROD, "--publish"])
    assert status == 2
    assert "AWS_ACCESS_KEY_ID" in capsys.readouterr().err
    assert emulator.calls == []


def test_cli_wording_names_options(cli_env, capsys):
    cli_env.delenv("CSS_PROJECT_ID")
    assert main(["check", "--cluster-id", LOGS_PROD]) == 2
    assert "pass --project-id or set CSS_PROJECT_ID" in capsys.readouterr().err

    assert main(["check", "--cluster-id", LOGS_PROD, "--project-id", DEFAULT_PROJECT_ID, "--endpoint", "http://css.example.com"]) == 2
    assert "invalid --endpoint" in capsys.readouterr().err

    assert main(["check", "--cluster-id", LOGS_PROD, "--project-id", DEFAULT_PROJECT_ID, "--profile", "conservative"]) == 2
    assert "invalid --profile" in capsys.readouterr().err


def test_retry_warning_readable_on_stderr(emulator):
    from handler.local.emulator.faults import Fault

    emulator.inject(Fault(kind="throttle", route="list_images", times=1, retry_after=0))
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CSS_", "HUAWEICLOUD_", "UPGRADE_", "NOTIFY_", "DEDUPE_", "POWERTOOLS_"))}
    env.update(
        CSS_ENDPOINT=emulator.url,
        CSS_PROJECT_ID=DEFAULT_PROJECT_ID,
        CSS_REGION="ap-southeast-1",
        HUAWEICLOUD_SDK_AK=DEFAULT_ACCESS_KEY,
        HUAWEICLOUD_SDK_SK=DEFAULT_SECRET_KEY,
    )
    result = subprocess.run(
        [sys.executable, "-m", "handler.cli", "check", "--cluster-id", LOGS_PROD, "--json"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "warning: retrying CSS call (operation=ListImages" in result.stderr
    assert "error_kind=throttled" in result.stderr


def test_broken_pipe_exits_quietly(emulator):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CSS_", "HUAWEICLOUD_", "UPGRADE_"))}
    env.update(CSS_ENDPOINT=emulator.url, CSS_PROJECT_ID=DEFAULT_PROJECT_ID, CSS_REGION="ap-southeast-1",
               HUAWEICLOUD_SDK_AK=DEFAULT_ACCESS_KEY, HUAWEICLOUD_SDK_SK=DEFAULT_SECRET_KEY)
    result = subprocess.run(
        f"'{sys.executable}' -m handler.cli check --cluster-id {LOGS_PROD} | head -1",
        shell=True, capture_output=True, text=True, timeout=60, env=env,
    )
    assert "Traceback" not in result.stderr
    assert "BrokenPipeError" not in result.stderr
