"""`css-upgrade-scout demo` runs the main job end to end from a fresh process, as `make run` does."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_prints_decisions_and_policy_effect():
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "CSS_", "HUAWEICLOUD_"))}
    result = subprocess.run(
        [sys.executable, "-m", "handler.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Events received by the subscriber (17)" in out
    assert "logs-prod (profile conservative)" in out
    assert "upgrade.blocked (plugin_upload_required)" in out
    assert "upgrade.none (unsupported_engine)" in out
    assert "Where the demo policy changed the outcome" in out
    assert "search-prod: 7.10.2_26.1.0_0224 (same) -> 7.10.2_25.9.1_0113 (same)" in out
    assert "Dead-letter queue (2)" in out
    assert "invalid_message" in out
