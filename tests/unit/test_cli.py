"""The CLI frame: version, config errors, exit codes, no secrets in output."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from sfsync import __version__
from tests.cli_helpers import run_cli


def test_version() -> None:
    outcome = run_cli("--version")
    assert outcome.exit_code == 0
    assert __version__ in outcome.stdout


def test_bad_config_with_three_mistakes_prints_all_three_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "salesforce:\n  timeout_s: abc\n  client_secret: top-secret-value\n"
        "sync:\n  max_api_shar: 0.5\naudit:\n  fiscal_year_start_month: 0\n"
    )
    outcome = run_cli("--config", str(bad), "--log-format", "json", "check")
    assert outcome.exit_code == 2
    assert "configuration has 3 problems" in outcome.stderr
    assert "salesforce.timeout_s" in outcome.stderr
    assert "sync.max_api_shar: unknown key (did you mean 'max_api_share'?)" in outcome.stderr
    assert "audit.fiscal_year_start_month" in outcome.stderr
    assert '"event": "error"' in outcome.stderr
    assert "Traceback" not in outcome.output
    assert "top-secret-value" not in outcome.output


def test_traceback_only_with_verbose(tmp_path: Path) -> None:
    outcome = run_cli("--config", str(tmp_path / "missing.yaml"), "-v", "check")
    assert outcome.exit_code == 2
    assert "Traceback" in outcome.stderr


def test_missing_warehouse_is_a_clear_error_and_creates_nothing(tmp_path: Path) -> None:
    outcome = run_cli("db", "current")
    assert outcome.exit_code == 2
    assert "run `sfsync db upgrade`" in outcome.stderr
    assert not (tmp_path / "sfsync.db").exists()


def test_usage_errors_exit_2() -> None:
    assert run_cli("no-such-command").exit_code == 2
    assert run_cli("--log-format", "xml", "check").exit_code == 2


def test_no_library_module_imports_the_cli() -> None:
    """The command layer sits on top: only it and the ``__main__`` entry points import it."""
    root = Path(__file__).resolve().parents[2] / "sfsync"
    importers = []
    for path in root.rglob("*.py"):
        if path.is_relative_to(root / "cli") or path.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module is not None:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            if any(name == "sfsync.cli" or name.startswith("sfsync.cli.") for name in names):
                importers.append(str(path.relative_to(root.parent)))
    assert importers == []


def test_help_leaves_the_write_back_and_the_report_unimported() -> None:
    """``sfsync --help`` lists every command without loading the libraries they call."""
    probe = (
        "import sys\n"
        "from sfsync.cli import main\n"
        "sys.argv = ['sfsync', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('sfsync.writeback', 'sfsync.report'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.splitlines()[-1] == "[]"
