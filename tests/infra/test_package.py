"""The deployment zip: what it contains and leaves out, its size, and handlers that import from it alone.

The zip is built for the interpreter running the tests (the Lambda target's arm64 wheels cannot be
imported here) from the wheel folder that `make wheels` fills, offline.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from handler.local import package

ROOT = Path(__file__).resolve().parents[2]
WHEELS = ROOT / ".wheels"
HANDLER_MODULES = ("handler.worker", "handler.scan", "handler.webhook", "handler.workflow")
EXCLUDED_PREFIXES = ("boto3/", "botocore/", "s3transfer/", "handler/local/")


@pytest.fixture(scope="session")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not any(WHEELS.glob("*.whl")):
        pytest.fail(f"{WHEELS} contains no wheels; run `make wheels` (`make test` runs it first)")
    out = tmp_path_factory.mktemp("artifact") / "css-upgrade-scout.zip"
    command = [sys.executable, "-m", "handler.local.package", "build", "--host", "--wheels", str(WHEELS), "--out", str(out)]

    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="session")
def artifact_names(artifact: Path) -> list[str]:
    with zipfile.ZipFile(artifact) as archive:
        return archive.namelist()


@pytest.fixture(scope="session")
def unpacked(artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("unpacked")
    with zipfile.ZipFile(artifact) as archive:
        archive.extractall(folder)
    return folder


def _isolated_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: no PYTHON* or PIP_* variables, AWS aimed at a closed local port."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "PIP_", "AWS_"))}
    env.update(
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL="http://127.0.0.1:9",
        POWERTOOLS_SERVICE_NAME="css-upgrade-scout",
        POWERTOOLS_METRICS_NAMESPACE="CssUpgradeScout",
    )
    env.update(extra)
    return env


# --- contents -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", EXCLUDED_PREFIXES)
def test_artifact_leaves_out(artifact_names: list[str], prefix: str) -> None:
    assert [name for name in artifact_names if name.startswith(prefix)] == []


def test_artifact_has_no_handler_tests(artifact_names: list[str]) -> None:
    assert [name for name in artifact_names if name.startswith("handler/") and "/tests/" in name] == []


def test_artifact_has_no_bytecode(artifact_names: list[str]) -> None:
    assert [name for name in artifact_names if "__pycache__" in name or name.endswith((".pyc", ".pyo"))] == []


def test_artifact_ships_every_handler_source(artifact_names: list[str]) -> None:
    expected = {f"handler/{path.as_posix()}" for path in package.shipped_sources(ROOT / "handler")}
    shipped = {name for name in artifact_names if name.startswith("handler/")}
    assert shipped == expected


def test_artifact_within_size_budget(artifact: Path) -> None:
    size = artifact.stat().st_size
    assert size <= package.MAX_ARTIFACT_BYTES, f"{size / 1_048_576:.2f} MiB"


def test_artifact_entries_sorted(artifact_names: list[str]) -> None:
    assert artifact_names == sorted(artifact_names)


def test_artifact_timestamps_fixed(artifact: Path) -> None:
    with zipfile.ZipFile(artifact) as archive:
        stamps = {info.date_time for info in archive.infolist()}
    assert stamps == {package.ZIP_TIMESTAMP}


@pytest.mark.parametrize("module", HANDLER_MODULES)
def test_handler_imports_from_artifact_alone(unpacked: Path, module: str) -> None:
    # -I ignores PYTHON* variables and the script folder; -S skips site-packages, so sys.path is the
    # standard library plus the artifact folder inserted first.
    probe = textwrap.dedent(
        f"""
        import importlib, json, sys
        standard_library = list(sys.path)
        sys.path.insert(0, {str(unpacked)!r})
        handler = getattr(importlib.import_module({module!r}), "lambda_handler", None)
        foreign = sorted(
            name for name, loaded in list(sys.modules.items())
            if getattr(loaded, "__file__", None)
            and not loaded.__file__.startswith({str(unpacked)!r})
            and not any(loaded.__file__.startswith(path) for path in standard_library if path)
        )
        print(json.dumps({{
            "callable": callable(handler),
            "aws_sdk": sorted(name for name in ("boto3", "botocore") if name in sys.modules),
            "foreign": foreign,
        }}))
        """
    )

    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe], cwd=unpacked, env=_isolated_env(),
        capture_output=True, text=True, timeout=60, check=False,
    )

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["callable"] is True
    assert report["aws_sdk"] == []
    assert report["foreign"] == []


# --- wheels command -----------------------------------------------------------------------------------


@pytest.fixture
def unreachable_index() -> str:
    """An index URL on a local port that refuses connections (bound, never listening)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as refusing:
        refusing.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{refusing.getsockname()[1]}/simple"


def _run_wheels(dest: Path, index_url: str) -> subprocess.CompletedProcess[str]:
    env = _isolated_env(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=index_url, PIP_RETRIES="0", PIP_TIMEOUT="5")
    return subprocess.run(
        [sys.executable, "-m", "handler.local.package", "wheels", "--dest", str(dest)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_wheels_without_index_and_wheels_fails_clearly(tmp_path: Path, unreachable_index: str) -> None:
    result = _run_wheels(tmp_path / "wheels", unreachable_index)

    assert result.returncode == 1
    assert "contains no wheels" in result.stderr
    assert "index is unreachable" in result.stderr


def test_wheels_skips_download_when_complete(unreachable_index: str) -> None:
    if not any(WHEELS.glob("*.whl")):
        pytest.fail(f"{WHEELS} contains no wheels; run `make wheels` (`make test` runs it first)")

    result = _run_wheels(WHEELS, unreachable_index)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("already contains the wheels") == 2


# --- building blocks ----------------------------------------------------------------------------------


def _write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_zip_bytes_independent_of_mtime_and_mode(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for tree, mtime, mode in ((first, 1_000_000_000, 0o600), (second, 1_700_000_000, 0o755)):
        for name in ("b/c.py", "a.txt", "b/a.so"):
            path = _write(tree / name, f"content of {name}")
            path.chmod(mode)
            os.utime(path, (mtime, mtime))

    package.write_deterministic_zip(first, tmp_path / "first.zip")
    package.write_deterministic_zip(second, tmp_path / "second.zip")

    assert (tmp_path / "first.zip").read_bytes() == (tmp_path / "second.zip").read_bytes()


def test_shipped_sources_skip_local_tools(tmp_path: Path) -> None:
    for name in ("__init__.py", "worker.py", "core/policy.json", "local/package.py", "core/tests/test_x.py",
                 "core/__pycache__/ids.cpython-311.pyc", "stale.pyc", "aws/local.py"):
        _write(tmp_path / name)

    shipped = [path.as_posix() for path in package.shipped_sources(tmp_path)]

    assert shipped == ["__init__.py", "aws/local.py", "core/policy.json", "worker.py"]


def test_remove_aws_sdk_deletes_distributions(tmp_path: Path) -> None:
    _write(tmp_path / "boto3" / "__init__.py")
    _write(tmp_path / "boto3-1.40.0.dist-info" / "METADATA", "Name: boto3\n")
    _write(tmp_path / "botocore" / "__init__.py")
    _write(tmp_path / "botocore-1.40.0.dist-info" / "METADATA", "Name: botocore\n")
    _write(tmp_path / "aws_xray_sdk" / "__init__.py")
    _write(tmp_path / "aws_xray_sdk-2.14.0.dist-info" / "METADATA", "Name: aws-xray-sdk\nRequires-Dist: botocore>=1.11.3\n")

    removed = package.remove_aws_sdk(tmp_path)

    assert removed == ["boto3", "botocore"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["aws_xray_sdk", "aws_xray_sdk-2.14.0.dist-info"]


def test_aws_sdk_import_rejected(tmp_path: Path) -> None:
    _write(tmp_path / "__init__.py")
    _write(tmp_path / "notify.py", "def publish():\n    import boto3\n    return boto3\n")
    _write(tmp_path / "local" / "demo.py", "import boto3\n")

    with pytest.raises(package.PackagingError, match=r"handler/notify\.py import boto3"):
        package.check_no_aws_sdk_imports(tmp_path)


def test_local_tools_may_import_aws_sdk(tmp_path: Path) -> None:
    _write(tmp_path / "__init__.py", "import json\n")
    _write(tmp_path / "local" / "demo.py", "import boto3\nfrom botocore.config import Config\n")

    package.check_no_aws_sdk_imports(tmp_path)


def test_runtime_requirements_leave_out_boto3() -> None:
    names = [package.REQUIREMENT_NAME.match(requirement).group().lower() for requirement in package.runtime_requirements()]
    assert "boto3" not in names
    assert "requests" in names


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (package.HOST_TARGET, ["--only-binary=:all:"]),
        (
            package.LAMBDA_TARGET,
            ["--only-binary=:all:", "--implementation", "cp", "--python-version", "3.13",
             "--platform", "manylinux2014_aarch64"],
        ),
    ],
)
def test_target_pip_options(target: package.Target, expected: list[str]) -> None:
    assert target.pip_options() == expected
