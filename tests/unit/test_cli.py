"""The CLI frame: version, config errors, exit codes, no secrets in output."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from sfsync import __version__
from sfsync.cli import cli
from sfsync.cli._app import App
from tests.cli_helpers import CLI_FRAME, imported, run_cli, run_sfsync, sfsync_modules


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


# What starting sfsync costs: the settings model (pydantic, the rule registry), logging
# (structlog, and the rich it imports), the warehouse (SQLAlchemy, Alembic), the
# scheduler and the HTTP clients. Each is imported by the command that uses it.
STARTUP_HEAVY = (
    "sfsync.config",
    "sfsync.warehouse",
    "sfsync.audit",
    "pydantic",
    "yaml",
    "structlog",
    "rich",
    "sqlalchemy",
    "alembic",
    "apscheduler",
    "httpx",
    "requests",
    "simple_salesforce",
)


def test_version_reads_no_settings_and_imports_no_library(tmp_path: Path) -> None:
    """``sfsync --version`` answers from click and sfsync's frame alone."""
    code, _, stderr, modules = sfsync_modules("--version", cwd=tmp_path)
    assert code == 0, stderr
    assert imported(modules, STARTUP_HEAVY) == []
    assert sorted(m for m in modules if m.startswith("sfsync.")) == [
        "sfsync.cli",
        "sfsync.cli._app",
        "sfsync.cli._startup",
        "sfsync.errors",
        "sfsync.logging",
    ]


def test_help_lists_the_commands_without_importing_them(tmp_path: Path) -> None:
    """``sfsync --help`` lists each command by its summary: no command module, no library."""
    code, _, stderr, modules = sfsync_modules("--help", cwd=tmp_path)
    assert code == 0, stderr
    assert imported(modules, STARTUP_HEAVY) == []
    assert [m for m in modules if m.startswith("sfsync.cli.") and m not in CLI_FRAME] == []


def test_the_help_summaries_are_the_commands_own() -> None:
    """Listed from SUMMARIES, each command reads in ``sfsync --help`` as its own help says."""
    from sfsync.cli import COMMANDS, SUMMARIES

    assert set(SUMMARIES) == set(COMMANDS)
    ctx = click.Context(cli)
    for name, summary in SUMMARIES.items():
        command = cli.get_command(ctx, name)
        assert command is not None, name
        assert not command.hidden, name
        stand_in = click.Command(name, help=summary)
        for limit in (20, 45, 60, 74, 200):
            assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit), (
                name,
                limit,
            )


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group under ``group``, as the words that name it."""
    ctx = click.Context(group)
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found.extend(command_paths(command, (*prefix, name)))
    return found


@pytest.mark.parametrize("path", command_paths(cli), ids=" ".join)
def test_every_command_takes_the_global_options(path: tuple[str, ...]) -> None:
    """README: every command takes --config, -v and --log-format (after it, too)."""
    outcome = run_cli(*path, "--help")
    assert outcome.exit_code == 0, outcome.output
    for option in ("--config FILE", "-v, --verbose", "--log-format"):
        assert option in outcome.stdout, option


def elsewhere(tmp_path: Path) -> Path:
    """A config whose warehouse is not the default one: an empty, upgraded SQLite file."""
    config = tmp_path / "elsewhere.yaml"
    config.write_text(f"database:\n  url: sqlite:///{tmp_path / 'elsewhere.db'}\n")
    upgraded = run_cli("--config", str(config), "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    return config


def test_config_after_the_subcommand_is_the_one_read(tmp_path: Path) -> None:
    config = elsewhere(tmp_path)
    assert run_cli("findings").exit_code == 2  # the default warehouse does not exist

    findings = run_cli("findings", "--config", str(config))
    assert findings.exit_code == 0, findings.output
    assert "0 finding(s)" in findings.stdout

    current = run_cli("db", "current", "--config", str(config))
    assert current.exit_code == 0, current.output
    assert "up to date" in current.stdout

    # After the subcommand wins over before it; a group takes them too.
    missing = tmp_path / "missing.yaml"
    both = run_cli("--config", str(missing), "findings", "--config", str(config))
    assert both.exit_code == 0, both.output
    group = run_cli("db", "--config", str(config), "current")
    assert "up to date" in group.stdout, group.output


def test_later_options_win_and_verbose_counts_add_up() -> None:
    app = App()
    app.add_options(Path("before.yaml"), 1, "json")
    app.add_options(None, 0, None)
    app.add_options(Path("after.yaml"), 2, "console")
    assert (app.config_path, app.verbose, app.log_format) == (Path("after.yaml"), 3, "console")


def test_verbose_after_the_subcommand_shows_the_traceback(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.yaml")
    quiet = run_cli("check", "--config", missing)
    assert quiet.exit_code == 2
    assert "Traceback" not in quiet.stderr
    verbose = run_cli("check", "--config", missing, "-v")
    assert verbose.exit_code == 2
    assert "Traceback" in verbose.stderr


def test_log_format_after_the_subcommand_sets_the_log_format(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sync:\n  max_api_shar: 0.5\n")
    outcome = run_cli("db", "current", "--config", str(bad), "--log-format", "json")
    assert outcome.exit_code == 2
    assert '"event": "error"' in outcome.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["check"],  # a configuration error: no credentials
        ["db", "current"],  # the warehouse does not exist
        ["findings", "--status", "bogus"],  # click's own usage error
        ["audit", "--as-of", "15/08/2024"],  # sfsync's usage error
        ["-v", "db", "current"],  # with the traceback
    ],
    ids=lambda a: " ".join(a),
)
def test_in_json_mode_every_line_on_stderr_of_a_failing_command_is_json(
    tmp_path: Path, args: list[str]
) -> None:
    """A log collector parses stderr line by line: no plain `error: ...` paragraph."""
    env = {"SFSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}"}
    outcome = run_sfsync("--log-format", "json", *args, env=env, cwd=tmp_path)
    assert outcome.exit_code == 2, outcome.output
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    assert lines
    events = [json.loads(line) for line in lines]
    [error] = [e for e in events if e["level"] == "error"]  # `error`, or `check.failed`
    assert error["message"]


def test_in_console_mode_the_error_is_a_paragraph(tmp_path: Path) -> None:
    env = {"SFSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}"}
    outcome = run_sfsync("--log-format", "console", "db", "current", env=env, cwd=tmp_path)
    assert outcome.exit_code == 2
    assert outcome.stderr.splitlines()[-1].startswith("error: ")


@pytest.mark.parametrize("command", ["audit", "findings", "waive"])
def test_the_help_of_commands_about_rules_lists_the_rule_ids(command: str) -> None:
    from sfsync.audit.rules import rule_ids

    outcome = run_cli(command, "--help")
    assert outcome.exit_code == 0
    for rule in rule_ids():
        assert rule in outcome.stdout, (command, rule)
