"""``sfsync audit``, ``sfsync findings`` and ``sfsync waive``: parse, call, print, exit.

Every command is a few lines over :mod:`sfsync.audit`; errors are
``sfsync.errors`` types that the CLI frame (:mod:`sfsync.cli._app`) turns into a
paragraph and an exit code.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator

import click

from sfsync import audit
from sfsync.audit import (
    FINDING_STATUSES,
    AuditSummary,
    FindingRecord,
    list_findings,
    waive_finding,
)
from sfsync.cli._app import App, global_options, parse_iso_date, pass_app
from sfsync.errors import EXIT_FINDINGS, UsageError

__all__ = ["audit_command", "findings_command", "waive_command"]

EXPORT_COLUMNS = (
    "rule",
    "opportunity_id",
    "opportunity_name",
    "owner_id",
    "status",
    "profile",
    "severity",
    "opened_at",
    "resolved_at",
    "details",
)


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


def _write_csv(findings: list[FindingRecord]) -> None:
    """The export: a header and a row per finding; formula-like cells get a ``'``."""
    from sfsync.console import write_csv

    def rows() -> Iterator[list[object]]:
        yield list(EXPORT_COLUMNS)
        for finding in findings:
            record = finding.as_dict()
            record["details"] = json.dumps(record["details"], sort_keys=True)
            yield [record[c] for c in EXPORT_COLUMNS]

    write_csv(sys.stdout, rows())


@click.command("findings")
@click.option(
    "--status",
    type=click.Choice(FINDING_STATUSES),
    default="open",
    show_default=True,
    help="Which findings to list.",
)
@click.option("--rule", "rules", multiple=True, metavar="ID", help="Only this rule (repeatable).")
@click.option("--owner", "owner_id", metavar="ID", help="Only opportunities owned by this user.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@global_options
@pass_app
def findings_command(
    app: App, status: str, rules: tuple[str, ...], owner_id: str | None, fmt: str
) -> None:
    """List findings; ``--format json`` prints a JSON array, ``csv`` a header and rows."""
    from sfsync.warehouse import open_warehouse

    warehouse = open_warehouse(app.settings.database)
    try:
        findings = list_findings(warehouse, status=status, rules=rules or None, owner_id=owner_id)
    finally:
        warehouse.dispose()
    if fmt == "json":
        click.echo(json.dumps([f.as_dict() for f in findings], indent=2))
    elif fmt == "csv":
        _write_csv(findings)
    else:
        from sfsync.console import print_table

        rows = [
            [
                f.rule,
                f.opportunity_id,
                f.opportunity_name or "",
                f.owner_id or "",
                f.status,
                f.severity,
                f.opened_at.date().isoformat(),
            ]
            for f in findings
        ]
        headers = ["rule", "opportunity", "name", "owner", "status", "severity", "opened"]
        print_table(None, headers, rows)
        click.echo(f"{len(findings)} finding(s)")


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
    """Waive RULE for OPP_ID until a date: reported, never written back."""
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
