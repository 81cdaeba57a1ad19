"""Running the sfsync CLI in-process (fast) or as a real subprocess (faithful)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from sfsync.cli import cli

# The modules of the CLI's frame, which every command imports: not a command's module.
CLI_FRAME = ("sfsync.cli._app", "sfsync.cli._startup")


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


def python(
    code: str, *, env: dict[str, str] | None = None, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in a fresh process, without the developer's SFSYNC_ settings."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SFSYNC_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=full_env,
        cwd=cwd,
    )


def sfsync_modules(
    *args: str, env: dict[str, str] | None = None, cwd: Path
) -> tuple[int, str, str, set[str]]:
    """Exit code, stdout, stderr and ``sys.modules`` of a fresh ``sfsync ARGS`` process."""
    probe = (
        "import json, sys\n"
        "from sfsync.cli import main\n"
        f"sys.argv = ['sfsync', *{list(args)!r}]\n"
        "code = 0\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    code = done.code or 0\n"
        "sys.stdout.flush()\n"
        "sys.stderr.write('\\nMODULES ' + json.dumps(sorted(sys.modules)) + '\\n')\n"
        "sys.exit(code)\n"
    )
    done = python(probe, env=env, cwd=cwd)
    stderr, _, modules = done.stderr.rpartition("\nMODULES ")
    return done.returncode, done.stdout, stderr, set(json.loads(modules))


def imported(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    """The ``packages`` of which ``modules`` holds the package itself or a submodule."""
    return sorted(
        p for p in packages if p in modules or any(m.startswith(p + ".") for m in modules)
    )
