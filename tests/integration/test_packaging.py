"""The installed package (what the container holds) works with only env vars and a config file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import OrgFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sfsync built as a wheel and installed into a directory outside the source tree."""
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
    wheel = next(work.glob("sfsync-*.whl"))
    target = work / "site"
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
