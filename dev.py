#!/usr/bin/env python3
"""sfsync's developer entry point; needs nothing but Python 3.11+ (no make, no pip on PATH).

    python3 dev.py demo    set up .venv, then run the demo (dev org + SQLite, one full run)
    python3 dev.py test    set up .venv, then lint (ruff, mypy) and run the whole test suite
    python3 dev.py lint    ruff (lint + format check), vulture, mypy only
    python3 dev.py setup   create/refresh .venv only

Set-up is skipped when .venv is up to date with pyproject.toml. Extra arguments after
`test` go to pytest (e.g. `python3 dev.py test -k sync`). `test` measures coverage of
sfsync/ and, without extra arguments only, fails below [tool.coverage.report] fail_under.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".sfsync-installed"


def say(message: str) -> None:
    print(f"dev.py: {message}", flush=True)


def run(*args: str | Path, env: dict[str, str] | None = None) -> int:
    return subprocess.call([str(a) for a in args], cwd=ROOT, env=env)


def must(*args: str | Path) -> None:
    code = run(*args)
    if code != 0:
        say(f"failed ({code}): {' '.join(str(a) for a in args)}")
        sys.exit(code)


def setup() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs under whatever python3 is
        say(f"sfsync needs Python 3.11 or newer; this is {sys.version.split()[0]}")
        sys.exit(2)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted and PYTHON.exists():
        return
    if not PYTHON.exists():
        say(f"creating {VENV.relative_to(ROOT)} with Python {sys.version.split()[0]}")
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    say("installing sfsync and its development dependencies (first run takes a minute)")
    must(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    must(PYTHON, "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(wanted + "\n")


def lint() -> None:
    say("ruff check")
    must(BIN / "ruff", "check", ".")
    say("ruff format --check")
    must(BIN / "ruff", "format", "--check", ".")
    say("vulture (dead code, settings in pyproject.toml)")
    must(BIN / "vulture")
    say("import contracts (lint-imports: the layers in pyproject.toml)")
    must(BIN / "lint-imports")
    say("mypy (strict on sfsync/)")
    must(BIN / "mypy")


def test(extra: list[str]) -> None:
    lint()
    say("pytest (unit + integration, SQLite and PostgreSQL), with coverage of sfsync/")
    coverage = ["--cov=sfsync", "--cov-report=term:skip-covered"]
    if extra:
        # A subset (-k, a path) covers less by design: the floor is for the whole suite.
        coverage.append("--cov-fail-under=0")
    code = run(PYTHON, "-m", "pytest", *coverage, *extra)
    if code == 5:
        # pytest's "no tests collected": a broken selection or layout, never a pass.
        say("pytest collected no tests; failing on purpose")
        sys.exit(1)
    if code != 0:
        sys.exit(code)


def demo(extra: list[str]) -> None:
    sys.exit(run(BIN / "sfsync", "demo", *extra))


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return
    command, extra = argv[0], argv[1:]
    if command not in ("setup", "demo", "test", "lint"):
        say(f"unknown command {command!r}; use demo, test, lint or setup")
        sys.exit(2)
    setup()
    if command == "demo":
        demo(extra)
    elif command == "test":
        test(extra)
    elif command == "lint":
        lint()


if __name__ == "__main__":
    main(sys.argv[1:])
