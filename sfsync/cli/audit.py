"""``sfsync audit`` and ``sfsync waive``: parse, call, print, exit.

Every command is a few lines over :mod:`sfsync.audit`; errors are
``sfsync.errors`` types that the CLI frame (:mod:`sfsync.cli._app`) turns into a
paragraph and an exit code.
"""

from __future__ import annotations

import getpass
import sys

import click

from sfsync import audit
from sfsync.audit import AuditSummary, waive_finding
from sfsync.cli._app import App, global_options, parse_iso_date, pass_app
from sfsync.errors import EXIT_FINDINGS, UsageError

__all__ = ["audit_command", "waive_command"]


def _print_summary(summary: AuditSummary) -> None:
    from sfsync.console import print_table

    rows = [
        [c.rule, c.severity, str(c.open), str(c.new), str(c.resolved), str(c.waived)]
        for c in summary.rules
    ]
    title = f"audit run {summary.run_id}, as of {summary.as_of.isoformat()}"
    print_table(title, ["rule", "severity", "open", "new", "resolved", "waived"], rows)
    by_severity = ", ".join(f"{n} {s}" for s, n in sorted(summary.open_by_severity.items()))
    click.echo(f"open findings: {by_severity or 'none'}")


@click.command("audit")
@click.option("--rule", "rules", multiple=True, metavar="ID", help="Only this rule (repeatable).")
@click.option(
    "--as-of", "as_of", metavar="YYYY-MM-DD", help="Audit as of this date (default today)."
)
@click.option(
    "--fail-on",
    type=click.Choice(["warn", "error"]),
    default=None,
    help="Exit 1 if open findings at or above this severity exist.",
)
@global_options
@pass_app
def audit_command(app: App, rules: tuple[str, ...], as_of: str | None, fail_on: str | None) -> None:
    """Evaluate the rules on the warehouse, update findings, print a summary."""
    from sfsync.context import run_context

    day = parse_iso_date(as_of, "--as-of")
    with run_context(app.settings, as_of=day) as ctx:
        summary = audit.run(ctx, rules=rules or None)
    _print_summary(summary)
    if fail_on is not None and summary.open_at_or_above(fail_on) > 0:
        sys.exit(EXIT_FINDINGS)


@click.command("waive")
@click.argument("rule")
@click.argument("opportunity_id", metavar="OPP_ID")
@click.option("--reason", required=True, help="Why this finding is acceptable.")
@click.option(
    "--until",
    "until",
    required=True,
    metavar="YYYY-MM-DD",
    help="Last day waived (9999-12-31: for good).",
)
@global_options
@pass_app
def waive_command(app: App, rule: str, opportunity_id: str, reason: str, until: str) -> None:
    """Waive RULE for OPP_ID until a date: still reported; its open Task is completed.

    The next write-back completes the finding's open sfsync Task with a note saying
    who waived it, why and until when.
    """
    from sfsync.warehouse import open_warehouse

    # Any date: 9999-12-31 is the way to say "for good"; a past one is refused below.
    day = parse_iso_date(until, "--until", within=None)
    if day is None:  # pragma: no cover - click requires --until
        raise UsageError("--until is required")
    try:
        user: str | None = getpass.getuser()
    except (KeyError, OSError):
        user = None
    warehouse = open_warehouse(app.settings.database)
    try:
        result = waive_finding(
            warehouse,
            app.settings,
            rule,
            opportunity_id,
            reason=reason,
            until=day,
            created_by=user,
        )
    finally:
        warehouse.dispose()
    click.echo(
        f"waived {result.rule} for {result.opportunity_id} until {result.until.isoformat()} "
        f"({result.findings_waived} live finding(s) now waived)"
    )
