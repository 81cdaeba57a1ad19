"""The installed package (what the container holds) works with only env vars and a config file.

And a plain ``pip install sfsync`` (no extras) carries no dev org: neither trustme
nor lark is installed, ``sfsync run`` works, and the dev-org commands say which
extra to install instead of failing with a traceback.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.integration.conftest import OrgFactory

ROOT = Path(__file__).resolve().parents[2]
DEVORG_ONLY = {"trustme", "lark"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sfsync built as a wheel, without network (hatchling is in the test extra)."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(work),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    return next(work.glob("sfsync-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sfsync's wheel installed into a directory outside the source tree."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return target


def sfsync(
    installed: Path, cwd: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SFSYNC_")}
    clean.update(env, PYTHONPATH=str(installed))
    return subprocess.run(
        [sys.executable, "-m", "sfsync", *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_wheel_carries_its_migrations_and_runs_from_env_and_one_config(
    installed: Path, running_org: OrgFactory, tmp_path: Path
) -> None:
    org = running_org(100)
    # The container layout: working directory with config/sfsync.yaml, secrets only in env.
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    config = yaml.safe_load(org.config_path.read_text())
    secret = config["salesforce"].pop("client_secret")
    for unused in ("password", "security_token"):
        config["salesforce"].pop(unused, None)
    (home / "config" / "sfsync.yaml").write_text(yaml.safe_dump(config))
    env = {
        "SFSYNC_SALESFORCE__CLIENT_SECRET": secret,
        "SFSYNC_DATABASE_URL": f"sqlite:///{home / 'w.db'}",
    }

    located = subprocess.run(
        [sys.executable, "-c", "import sfsync; print(sfsync.__file__)"],
        cwd=home,
        env={**os.environ, "PYTHONPATH": str(installed)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert located.stdout.strip().startswith(str(installed)), "the installed copy, not the checkout"

    upgrade = sfsync(installed, home, env, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    check = sfsync(installed, home, env, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    run = sfsync(installed, home, env, "run", "--apply")
    assert run.returncode == 0, run.stderr
    assert "writeback ok" in run.stdout
    assert secret not in run.stdout + run.stderr + check.stdout + check.stderr


def base_requirements(wheel: Path) -> list[Requirement]:
    """The wheel's own Requires-Dist that apply without any extra (what ``pip install`` takes)."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(name).decode())
    requirements = [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]
    return [r for r in requirements if r.marker is None or r.marker.evaluate({"extra": ""})]


def runtime_closure(requirements: list[Requirement]) -> dict[str, importlib.metadata.Distribution]:
    """Every distribution those requirements pull in, transitively, with extras and markers.

    Resolved against this environment's installed distributions: the same set
    ``pip install`` would fetch, found without a network.
    """
    found: dict[str, importlib.metadata.Distribution] = {}
    seen: set[tuple[str, str]] = set()
    todo = list(requirements)
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        dist = found.get(name) or importlib.metadata.distribution(requirement.name)
        assert requirement.specifier.contains(dist.version, prereleases=True), (
            f"{requirement} is not satisfied by the installed {dist.version}"
        )
        found[name] = dist
        for extra in ("", *sorted(requirement.extras)):
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for line in dist.requires or []:
                nested = Requirement(line)
                if nested.marker is None or nested.marker.evaluate({"extra": extra}):
                    todo.append(nested)
    return found


def copy_distribution(dist: importlib.metadata.Distribution, site: Path) -> None:
    """Copy an installed distribution's files (per its RECORD) into another site-packages."""
    origin = Path(str(dist.locate_file(""))).resolve()
    assert dist.files is not None, f"{dist.metadata['Name']} has no RECORD to copy from"
    for file in dist.files:
        source = Path(str(dist.locate_file(file))).resolve()
        if not source.is_relative_to(origin) or not source.is_file():
            continue  # console scripts in bin/: not needed to import the package
        target = site / source.relative_to(origin)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


class FreshVenv:
    """A new virtual environment with the wheel and its base requirements, nothing else."""

    def __init__(self, root: Path, closure: set[str]) -> None:
        self.root = root
        self.closure = closure
        self.python = root / "bin" / "python"

    def pip(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(self.python), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def run(
        self, cwd: Path, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        clean = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SFSYNC_", "PYTHON", "VIRTUAL_ENV"))
        }
        return subprocess.run(
            args,
            cwd=cwd,
            env={**clean, **(env or {}), "PATH": f"{self.root / 'bin'}{os.pathsep}{clean['PATH']}"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> FreshVenv:
    """``pip install sfsync`` (no extras) into a new venv, offline.

    pip installs the wheel itself (``--no-deps --no-index``); its base requirements
    and theirs, read from the wheel's metadata, are copied from this environment's
    installed distributions. Nothing else gets in: no ``--system-site-packages``,
    no PYTHONPATH, so whatever the wheel does not require is absent.
    """
    root = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    site = next((root / "lib").glob("python3*/site-packages"))
    closure = runtime_closure(base_requirements(wheel))
    for dist in closure.values():
        copy_distribution(dist, site)
    venv = FreshVenv(root, set(closure))
    installed = venv.pip("install", "--no-deps", "--no-index", "-q", str(wheel))
    assert installed.returncode == 0, installed.stderr
    return venv


def test_plain_install_carries_no_dev_org_dependencies(fresh_venv: FreshVenv) -> None:
    assert not DEVORG_ONLY & fresh_venv.closure, "the dev org's; only its extra may require them"
    listed = fresh_venv.pip("list", "--format", "freeze")
    assert listed.returncode == 0, listed.stderr
    names = {canonicalize_name(line.split("==")[0]) for line in listed.stdout.splitlines()}
    assert "sfsync" in names
    assert not DEVORG_ONLY & names
    check = fresh_venv.pip("check")
    assert check.returncode == 0, check.stdout + check.stderr  # every base requirement is met
    for module in sorted(DEVORG_ONLY):
        probe = fresh_venv.run(fresh_venv.root, "python", "-c", f"import {module}")
        assert probe.returncode == 1
        assert f"No module named '{module}'" in probe.stderr


def test_plain_install_runs_against_a_dev_org_served_elsewhere(
    fresh_venv: FreshVenv, running_org: OrgFactory, tmp_path: Path
) -> None:
    org = running_org(100)  # served by this (test) environment, which has the extra
    located = fresh_venv.run(tmp_path, "python", "-c", "import sfsync; print(sfsync.__file__)")
    assert located.stdout.strip().startswith(str(fresh_venv.root)), located.stderr
    run = fresh_venv.run(tmp_path, "sfsync", "run", "--apply", env=org.env)
    assert run.returncode == 0, run.stderr
    assert "writeback ok" in run.stdout
    helped = fresh_venv.run(tmp_path, "sfsync", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "devorg" in helped.stdout


@pytest.mark.parametrize(
    "command",
    [
        ("sfsync", "devorg", "serve", "--help"),
        ("sfsync", "devorg", "generate", "--opportunities", "10", "--out", "org.json"),
        ("sfsync", "demo", "--dir", "demo"),
        ("python", "-m", "sfsync.devorg", "serve", "--data", "org.json"),
    ],
    ids=["devorg-serve", "devorg-generate", "demo", "python-m-devorg"],
)
def test_dev_org_commands_without_the_extra_name_it_and_exit_2(
    fresh_venv: FreshVenv, tmp_path: Path, command: tuple[str, ...]
) -> None:
    result = fresh_venv.run(tmp_path, *command)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    # Said once: stderr is not a terminal, so in JSON log mode as one "error" event,
    # else (before logging is set up) as one paragraph starting "error: ".
    lines = result.stderr.splitlines()
    events = [json.loads(line) for line in lines if line.startswith("{")]
    said = [e["message"] for e in events if e.get("event") == "error"]
    said += [line for line in lines if line.startswith("error: ")]
    assert len(said) == 1, result.stderr
    assert "pip install 'sfsync[devorg]'" in said[0]
    assert not any(tmp_path.iterdir()), "nothing written before failing"
