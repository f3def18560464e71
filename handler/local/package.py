"""Build the Lambda deployment zip: the runtime dependencies' wheels plus `handler/`, without local tools.

`sam build` is not used because it builds the dependencies in a container or for the build machine's own
platform. Installing prebuilt wheels with pip's `--platform` builds the arm64 artifact on any machine, and
offline once `wheels` has filled the wheel folder.

    python -m handler.local.package wheels --dest .wheels
    python -m handler.local.package build --wheels .wheels --out build/css-upgrade-scout.zip
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_NAME = "handler"

# The project's size budget for the zip, well below Lambda's 50 MB limit for a directly uploaded zip.
MAX_ARTIFACT_BYTES = 6 * 1024 * 1024

# The Lambda runtime ships its own boto3, and the function code never imports it (AWS calls go through handler.aws).
AWS_SDK_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer")
AWS_SDK_MODULES = ("boto3", "botocore")

# Parts of the package tree that nothing imports at run time: the local tools (top level only),
# test folders and byte-code caches anywhere.
LOCAL_TOOLS_DIR = "local"
EXCLUDED_SOURCE_DIRS = {"tests", "__pycache__"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}
DIST_INFO_FILES_TO_DROP = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}

# Every entry gets this timestamp (the earliest a zip can hold), so that equal inputs give equal bytes.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)

# The distribution name at the start of a Requires-Dist value (PEP 508).
REQUIREMENT_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


class PackagingError(Exception):
    """Raised when the artifact cannot be built. The message gives the cause and the fix."""


@dataclass(frozen=True)
class Target:
    """The interpreter and platform whose wheels pip selects. No platforms means the running interpreter."""

    platforms: tuple[str, ...] = ()
    python_version: str | None = None

    def pip_options(self) -> list[str]:
        options = ["--only-binary=:all:"]
        if not self.platforms:
            return options
        options += ["--implementation", "cp"]
        if self.python_version:
            options += ["--python-version", self.python_version]
        for platform in self.platforms:
            options += ["--platform", platform]
        return options

    def describe(self) -> str:
        if not self.platforms:
            return f"this interpreter (Python {sys.version_info.major}.{sys.version_info.minor})"
        return f"Python {self.python_version} on {', '.join(self.platforms)}"


# Runtime and Architectures of infra/template.yaml (Globals.Function): change them together.
LAMBDA_TARGET = Target(platforms=("manylinux2014_aarch64",), python_version="3.13")
HOST_TARGET = Target()


@dataclass(frozen=True)
class Artifact:
    path: Path
    size: int
    entries: int


def runtime_requirements(pyproject: Path = PROJECT_ROOT / "pyproject.toml") -> list[str]:
    """Return `[project].dependencies` of pyproject.toml: what the Lambda function needs at run time."""
    with pyproject.open("rb") as file:
        project = tomllib.load(file).get("project", {})
    requirements = project.get("dependencies")
    if not requirements:
        raise PackagingError(f"{pyproject} has no [project].dependencies")
    return list(requirements)


def write_tested_constraints(path: Path) -> Path:
    """Write pip constraints pinning every distribution installed here, so the zip ships the tested versions.

    A dependency that this environment lacks stays unpinned. When a distribution is installed twice,
    the copy that `import` finds first (earliest on sys.path) wins, as it does for the tests.
    """
    pins: dict[str, str] = {}
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata["Name"]
        if name and distribution.version:
            pins.setdefault(_normalized(name), f"{name}=={distribution.version}")
    path.write_text("\n".join(pins[key] for key in sorted(pins)) + "\n", encoding="utf-8")
    return path


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _run_pip(arguments: list[str], *, quiet: bool = True) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip", *arguments]
    return subprocess.run(command, capture_output=quiet, text=True, check=False)


def _offline_pip_options(wheels: Path) -> list[str]:
    # --isolated ignores the user's pip configuration and PIP_* variables, whose find-links or
    # extra indexes would otherwise let a folder that lacks a wheel look complete.
    return ["--isolated", "--no-index", "--find-links", str(wheels)]


def has_wheels_for(wheels: Path, requirements: list[str], target: Target, constraints: Path) -> bool:
    """Return whether `wheels` alone satisfies `requirements` (and their dependencies) for `target`."""
    if not wheels.is_dir():
        return False
    result = _run_pip(
        ["download", *_offline_pip_options(wheels), "--dest", str(wheels), "--constraint", str(constraints),
         *target.pip_options(), *requirements]
    )
    return result.returncode == 0


def download_wheels(dest: Path, requirements: list[str], targets: list[Target]) -> None:
    """Download the wheels of `requirements` for every target into `dest`, skipping targets it already covers."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="css-upgrade-scout-") as scratch:
        constraints = write_tested_constraints(Path(scratch) / "constraints.txt")
        for target in targets:
            if has_wheels_for(dest, requirements, target, constraints):
                print(f"{dest} already contains the wheels for {target.describe()}")
                continue

            print(f"downloading wheels for {target.describe()} into {dest}")
            result = _run_pip(
                ["download", "--dest", str(dest), "--constraint", str(constraints), *target.pip_options(),
                 *requirements],
                quiet=False,
            )
            if result.returncode == 0:
                continue
            if not any(dest.glob("*.whl")):
                raise PackagingError(
                    f"could not download the wheels for {target.describe()}, and {dest} contains no wheels. "
                    "The package index is unreachable or has no matching wheels (see pip's output above). "
                    f"Connect to the index, or copy the wheels into {dest}, then run the command again."
                )
            raise PackagingError(
                f"could not download the wheels for {target.describe()}, and {dest} lacks some of them. pip's "
                "output above names the requirement. Versions are pinned to the ones installed here, so an "
                "installed version without a wheel for this target fails too: upgrade it here, or connect to "
                "the package index, then run the command again."
            )


def install_requirements(wheels: Path, requirements: list[str], target: Target, site: Path, constraints: Path) -> None:
    """Install `requirements` for `target` into the folder `site` from `wheels` only, without byte-code."""
    result = _run_pip(
        ["install", *_offline_pip_options(wheels), "--target", str(site), "--constraint", str(constraints),
         "--no-compile", "--no-warn-script-location", "--disable-pip-version-check", *target.pip_options(),
         *requirements]
    )
    if result.returncode != 0:
        raise PackagingError(
            f"could not install the runtime dependencies for {target.describe()} from {wheels}; run "
            f"`python -m handler.local.package wheels --dest {wheels}` (or `make wheels`) first.\n"
            f"pip's output:\n{result.stdout}{result.stderr}"
        )


def imports_of(source: Path) -> set[str]:
    """Return the top-level module names a Python file imports."""
    tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _is_shipped(relative: Path) -> bool:
    folders = relative.parts[:-1]
    if folders[:1] == (LOCAL_TOOLS_DIR,) or any(part in EXCLUDED_SOURCE_DIRS for part in folders):
        return False
    return relative.suffix not in EXCLUDED_SUFFIXES


def shipped_sources(package_dir: Path) -> list[Path]:
    """Return the files of the package that go into the zip, relative to `package_dir`, sorted."""
    files = [path.relative_to(package_dir) for path in package_dir.rglob("*") if path.is_file()]
    return sorted(relative for relative in files if _is_shipped(relative))


def check_no_aws_sdk_imports(package_dir: Path) -> None:
    """Raise PackagingError when shipped code imports boto3 or botocore, which the zip leaves out."""
    offenders = []
    for relative in shipped_sources(package_dir):
        if relative.suffix == ".py" and imports_of(package_dir / relative) & set(AWS_SDK_MODULES):
            offenders.append(f"{PACKAGE_NAME}/{relative.as_posix()}")
    if offenders:
        raise PackagingError(
            f"{', '.join(offenders)} import boto3 or botocore, which the deployment zip leaves out; "
            "call AWS through handler.aws, or move the code under handler/local/."
        )


def copy_package(package_dir: Path, site: Path) -> None:
    """Copy the shipped files of the package into `site`."""
    destination = site / PACKAGE_NAME
    if destination.exists():
        raise PackagingError(f"a runtime dependency installed a top-level '{PACKAGE_NAME}', which would hide ours")
    for relative in shipped_sources(package_dir):
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(package_dir / relative, target)


def _distribution_name(dist_info: Path) -> str:
    return _normalized(dist_info.name.split("-")[0])


def _requirers_of(site: Path, names: set[str]) -> list[str]:
    requirers = []
    for dist_info in site.glob("*.dist-info"):
        metadata = dist_info / "METADATA"
        if not metadata.is_file() or _distribution_name(dist_info) in names:
            continue
        for line in metadata.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.startswith("Requires-Dist:") or "extra ==" in line:
                continue
            match = REQUIREMENT_NAME.match(line.split(":", 1)[1].strip())
            if match and _normalized(match.group()) in names:
                requirers.append(_distribution_name(dist_info))
                break
    return sorted(requirers)


def remove_aws_sdk(site: Path) -> list[str]:
    """Delete boto3, botocore and s3transfer from `site` if a dependency pulled them in; return what was removed.

    The Lambda runtime provides its own copies, and the function code never imports them.
    """
    names = set(AWS_SDK_DISTRIBUTIONS)
    present = sorted(_distribution_name(d) for d in site.glob("*.dist-info") if _distribution_name(d) in names)
    if not present:
        return []

    requirers = _requirers_of(site, names)
    print(f"removing {', '.join(present)} from the artifact (pulled in by {', '.join(requirers) or 'an unknown dependency'})")
    for dist_info in site.glob("*.dist-info"):
        if _distribution_name(dist_info) in names:
            shutil.rmtree(dist_info)
    for module in names:
        module_dir = site / module.replace("-", "_")
        if module_dir.is_dir():
            shutil.rmtree(module_dir)
    return present


def strip_tree(site: Path) -> None:
    """Remove what nothing reads at run time: byte-code, scripts, type stubs and installer records."""
    for cache in sorted(site.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache)
    scripts = site / "bin"
    if scripts.is_dir():
        shutil.rmtree(scripts)
    for path in list(site.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix in EXCLUDED_SUFFIXES or path.suffix == ".pyi":
            path.unlink()
        elif path.parent.name.endswith(".dist-info") and path.name in DIST_INFO_FILES_TO_DROP:
            path.unlink()


def write_deterministic_zip(tree: Path, out: Path) -> int:
    """Zip every file under `tree` into `out` in sorted order with fixed timestamps and modes; return the entry count."""
    files = sorted(path.relative_to(tree).as_posix() for path in tree.rglob("*") if path.is_file())
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in files:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            # Regular file, rw-r--r--: Lambda needs read access only, also for extension modules.
            info.external_attr = 0o100644 << 16
            archive.writestr(info, (tree / name).read_bytes(), compresslevel=9)
    os.replace(partial, out)
    return len(files)


def build_artifact(
    wheels: Path,
    out: Path,
    target: Target = LAMBDA_TARGET,
    *,
    project_root: Path = PROJECT_ROOT,
    max_bytes: int = MAX_ARTIFACT_BYTES,
) -> Artifact:
    """Build the deployment zip for `target` from the wheel folder `wheels` and the project's `handler/`."""
    package_dir = project_root / PACKAGE_NAME
    if not any(wheels.glob("*.whl")):
        raise PackagingError(
            f"{wheels} contains no wheels; run `python -m handler.local.package wheels --dest {wheels}` (or `make wheels`) first"
        )
    check_no_aws_sdk_imports(package_dir)

    with tempfile.TemporaryDirectory(prefix="css-upgrade-scout-") as scratch:
        constraints = write_tested_constraints(Path(scratch) / "constraints.txt")
        site = Path(scratch) / "site"
        install_requirements(wheels, runtime_requirements(project_root / "pyproject.toml"), target, site, constraints)
        remove_aws_sdk(site)
        strip_tree(site)
        copy_package(package_dir, site)
        entries = write_deterministic_zip(site, out)

    size = out.stat().st_size
    if size > max_bytes:
        raise PackagingError(
            f"{out} is {size / 1_048_576:.2f} MiB, over the {max_bytes / 1_048_576:.2f} MiB budget; "
            "look for a new or grown dependency in pyproject.toml"
        )
    return Artifact(path=out, size=size, entries=entries)


def _target_from(arguments: argparse.Namespace) -> Target:
    if arguments.host:
        return HOST_TARGET
    return Target(platforms=tuple(arguments.platform or LAMBDA_TARGET.platforms), python_version=arguments.python_version)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m handler.local.package", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def add_target_options(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--platform", action="append",
            help=f"wheel platform tag of the Lambda target; repeatable (default {LAMBDA_TARGET.platforms[0]})",
        )
        command.add_argument(
            "--python-version", default=LAMBDA_TARGET.python_version,
            help=f"Python version of the Lambda target (default {LAMBDA_TARGET.python_version})",
        )

    wheels = commands.add_parser(
        "wheels", help="download the runtime wheels for the Lambda target and for this interpreter"
    )
    wheels.add_argument("--dest", type=Path, required=True, help="folder that receives the wheels")
    add_target_options(wheels)

    build = commands.add_parser("build", help="build the deployment zip from a wheel folder, offline")
    build.add_argument("--wheels", type=Path, required=True, help="folder filled by the wheels command")
    build.add_argument("--out", type=Path, required=True, help="path of the zip to write")
    add_target_options(build)
    build.add_argument(
        "--host", action="store_true",
        help="build for this interpreter and machine instead of the Lambda target (for local tests)",
    )
    build.add_argument(
        "--max-mb", type=float, default=MAX_ARTIFACT_BYTES / 1_048_576,
        help="fail when the zip is larger than this many MiB (default %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        if arguments.command == "wheels":
            lambda_target = Target(tuple(arguments.platform or LAMBDA_TARGET.platforms), arguments.python_version)
            download_wheels(arguments.dest, runtime_requirements(), [lambda_target, HOST_TARGET])
            return 0

        artifact = build_artifact(
            arguments.wheels, arguments.out, _target_from(arguments), max_bytes=int(arguments.max_mb * 1_048_576)
        )
    except PackagingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    print(f"wrote {artifact.path}: {artifact.size / 1_048_576:.2f} MiB, {artifact.entries} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
