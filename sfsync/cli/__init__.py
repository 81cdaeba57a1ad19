"""The ``sfsync`` command line: parse, call the library, print, exit.

The command layer sits on top of the library: every command is a few lines over
a library call that a Python caller can make too, and no library module imports
this package. :mod:`sfsync.cli._app` is the frame (the global options, the
settings, the error paragraph and exit code); each group of commands is a module
here, imported only when one of its commands runs or is listed, so start-up stays
fast.
"""

from __future__ import annotations

import sys

import click

from sfsync import __version__
from sfsync.cli import _startup
from sfsync.cli._app import SfsyncGroup, global_options, reader_went_away
from sfsync.errors import EXIT_INTERNAL, EXIT_OK
from sfsync.logging import redact_text

__all__ = ["cli", "main"]

# Every command, by name: "module:attribute", imported when the command runs or shows its help.
COMMANDS = {
    "db": "sfsync.cli.db:db",
    "check": "sfsync.cli.check:check",
    "sync": "sfsync.cli.sync:sync",
    "run": "sfsync.cli.run:run_command",
    "worker": "sfsync.cli.run:worker",
    "runs": "sfsync.cli.run:runs",
    "audit": "sfsync.cli.audit:audit_command",
    "findings": "sfsync.cli.findings:findings_command",
    "waive": "sfsync.cli.audit:waive_command",
    "writeback": "sfsync.cli.writeback:writeback_command",
    "report": "sfsync.cli.report:report_command",
    "devorg": "sfsync.cli.devorg:devorg",
    "demo": "sfsync.cli.demo:demo",
}

# The first sentence of each command's help: `sfsync --help` lists the commands by
# these without importing them (tests/unit/test_cli.py checks that they are the
# commands' own).
SUMMARIES = {
    "db": "Warehouse schema: create, upgrade, inspect.",
    "check": "Preflight: config, database, schema, Salesforce login, fields, API budget.",
    "sync": "Pull changes since the last watermark (or everything) into the warehouse.",
    "run": "Sync, audit and write back as one recorded run (holding the run lock).",
    "worker": "Run on schedule.cron until SIGTERM/SIGINT (the nightly container's command).",
    "runs": "Recent runs: status, per-stage counts, API calls used, duration.",
    "audit": "Audit today's pipeline and record the findings, or run a what-if.",
    "findings": "List findings with their opportunity and the rule's values.",
    "waive": "Waive RULE for OPP_ID until a date: still reported; its open Task is completed.",
    "writeback": "Preview (default) or apply the Tasks and flags the findings call for.",
    "report": "Write the pipeline-hygiene report: findings, owners, slip metrics, trends, runs.",
    "devorg": "A Salesforce-compatible org on loopback, for demos, tests and benchmarks.",
    "demo": "Everything on embedded defaults: a generated dev org, a SQLite warehouse, one run.",
}


@click.group(
    cls=SfsyncGroup,
    lazy_commands=COMMANDS,
    lazy_summaries=SUMMARIES,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "--version", prog_name="sfsync")
@global_options
def cli() -> None:
    """Keep a SQL warehouse in sync with Salesforce, audit the pipeline, write back Tasks."""


def main() -> None:
    """Console-script entry point."""
    _startup.starting()
    try:
        cli.main(prog_name="sfsync")
    except SystemExit as done:
        # The command has finished; a reader that went away since only loses the tail.
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            reader_went_away(done.code if isinstance(done.code, int) else EXIT_OK)
        raise
    except BaseException as exc:  # pragma: no cover - SfsyncGroup catches first
        from sfsync.console import printable

        click.echo(f"error: {printable(redact_text(str(exc)), newlines=True)}", err=True)
        sys.exit(EXIT_INTERNAL)
