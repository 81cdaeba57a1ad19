"""Running the sfsync CLI in-process (fast) or as a real subprocess (faithful)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from sfsync.cli import cli


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str, env: dict[str, str] | None = None) -> Outcome:
    """Invoke ``sfsync ARGS`` in this process with separate stdout/stderr."""
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return Outcome(result.exit_code, result.stdout, result.stderr)


def run_sfsync(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> Outcome:
    """Run ``python -m sfsync ARGS`` as a subprocess (real exit codes, real streams)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SFSYNC_")}
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "sfsync", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)
