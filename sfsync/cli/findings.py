"""``sfsync findings``: list the findings as a table, a JSON array or CSV.

A few lines over :func:`sfsync.audit.list_findings`; errors are ``sfsync.errors``
types that the CLI frame (:mod:`sfsync.cli._app`) turns into a paragraph and an
exit code.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import click

from sfsync.audit import FINDING_STATUSES, FindingRecord, list_findings
from sfsync.cli._app import App, global_options, pass_app

__all__ = ["findings_command"]

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
