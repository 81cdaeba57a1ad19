"""``sfsync audit`` and ``sfsync waive``: parse, call, print, exit.

Every command is a few lines over :mod:`sfsync.audit`; errors are
``sfsync.errors`` types that the CLI frame (:mod:`sfsync.cli._app`) turns into a
paragraph and an exit code.
"""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Any

import click

from sfsync import audit
from sfsync.audit import AuditSummary, FindingRecord, waive_finding
from sfsync.cli._app import App, RulesCommand, global_options, parse_iso_date, pass_app
from sfsync.errors import EXIT_FINDINGS, UsageError
from sfsync.files import atomic_text_file

__all__ = ["audit_command", "waive_command"]


def _title(summary: AuditSummary, *, backfill: bool) -> str:
    day = summary.as_of.isoformat()
    if not summary.recorded:
        return f"what-if audit as of {day} (nothing recorded; the write-back never sees it)"
    if backfill:
        return f"audit run {summary.run_id}, as of {day} (a backfill: the write-back ignores it)"
    return f"audit run {summary.run_id}, as of {day}"


def _print_summary(summary: AuditSummary, *, backfill: bool = False) -> None:
    from sfsync.console import print_table

    rows = [
        [c.rule, c.severity, str(c.open), str(c.new), str(c.resolved), str(c.waived)]
        for c in summary.rules
    ]
    headers = ["rule", "severity", "open", "new", "resolved", "waived"]
    print_table(_title(summary, backfill=backfill), headers, rows)
    by_severity = ", ".join(f"{n} {s}" for s, n in sorted(summary.open_by_severity.items()))
    click.echo(f"open findings: {by_severity or 'none'}")


def _summary_document(summary: AuditSummary, findings: list[FindingRecord]) -> dict[str, Any]:
    return {
        "recorded": summary.recorded,
        "run_id": summary.run_id,
        "as_of": summary.as_of.isoformat(),
        "rules": [
            {
                "rule": c.rule,
                "severity": c.severity,
                "open": c.open,
                "new": c.new,
                "resolved": c.resolved,
                "waived": c.waived,
            }
            for c in summary.rules
        ],
        "open_by_severity": dict(summary.open_by_severity),
        "findings": [f.as_dict() for f in findings],
    }


@click.command("audit", cls=RulesCommand)
@click.option(
    "--rule",
    "rules",
    multiple=True,
    metavar="ID",
    help="Only this rule (repeatable): a what-if, nothing is recorded.",
)
@click.option(
    "--as-of",
    "as_of",
    metavar="YYYY-MM-DD",
    help="Audit as of this date (default today); another day is a what-if.",
)
@click.option(
    "--record",
    is_flag=True,
    help="Record the audit of a past --as-of day (a backfill of the history; the "
    "write-back does not act on it).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["warn", "error"]),
    default=None,
    help="Exit 1 if open findings at or above this severity exist.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="table: the summary (and a what-if's findings); json: summary and findings; "
    "csv: the findings, one row each.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the json/csv (or the table of findings) to this file.",
)
@global_options
@pass_app
def audit_command(
    app: App,
    rules: tuple[str, ...],
    as_of: str | None,
    record: bool,
    fail_on: str | None,
    fmt: str,
    out: Path | None,
) -> None:
    """Audit today's pipeline and record the findings, or run a what-if.

    Only an audit of today (in audit.timezone) over every enabled rule records
    findings and feeds the write-back. With --as-of another day, or with --rule,
    the audit is a what-if: it prints (and with --format/--out exports) exactly
    what it would find, with the same exit codes, and changes nothing in the
    warehouse. --record keeps the audit of a past day on purpose (to backfill the
    history); the write-back refuses to act on such an audit.
    """
    from zoneinfo import ZoneInfo

    from sfsync.audit import list_findings, today_in
    from sfsync.cli.findings import emit_findings
    from sfsync.context import run_context

    day = parse_iso_date(as_of, "--as-of")
    tz = app.settings.audit.timezone
    today = today_in(ZoneInfo(tz))
    if record and day is not None and day > today:
        raise UsageError(
            f"--record: {day.isoformat()} is in the future (today is {today.isoformat()} in "
            f"{tz}); an audit of a day to come can only be a what-if: drop --record"
        )
    if record and rules:
        raise UsageError(
            "--record: a recorded audit evaluates every enabled rule; an audit of some "
            "rules (--rule) is a what-if only"
        )
    recorded = record or ((day is None or day == today) and not rules)
    with run_context(app.settings, as_of=day) as ctx:
        if recorded:
            summary = audit.run(ctx)
            findings = []
            if fmt != "table":
                for status in ("open", "waived"):
                    findings += list_findings(ctx.warehouse, status=status, settings=ctx.settings)
        else:
            result = audit.what_if(ctx, rules=rules or None)
            summary, findings = result.summary, result.findings
    backfill = recorded and summary.as_of < today
    if fmt == "json":
        document = json.dumps(_summary_document(summary, findings), indent=2, default=str)
        if out is None:
            click.echo(document)
        else:
            with atomic_text_file(out) as stream:
                stream.write(document + "\n")
    elif fmt == "csv":
        emit_findings(findings, "csv", out=out, rules=rules or None)
    if fmt == "table" or out is not None:
        _print_summary(summary, backfill=backfill)
    elif not summary.recorded:
        app.tell(
            f"{_title(summary, backfill=False)}: {len(findings)} finding(s)",
            event="audit.what_if_output",
            findings=len(findings),
        )
    if fmt == "table" and not summary.recorded and findings:
        emit_findings(findings, "table", out=out, rules=rules or None)
    if fail_on is not None and summary.open_at_or_above(fail_on) > 0:
        sys.exit(EXIT_FINDINGS)


@click.command("waive", cls=RulesCommand)
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
