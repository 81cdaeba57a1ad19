"""``sfsync findings``: list the findings as a table, a JSON array or CSV.

A few lines over :func:`sfsync.audit.list_findings`; :func:`emit_findings` is the
one rendering of a list of findings (the audit command's what-if output uses it
too). Errors are ``sfsync.errors`` types that the CLI frame
(:mod:`sfsync.cli._app`) turns into a paragraph and an exit code.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from sfsync.audit import (
    FINDING_STATUSES,
    FindingColumn,
    FindingRecord,
    finding_columns,
    list_findings,
)
from sfsync.cli._app import App, RulesCommand, global_options, pass_app
from sfsync.errors import UsageError

if TYPE_CHECKING:
    from sfsync.console import TextSink

__all__ = ["FORMATS", "emit_findings", "findings_command"]

FORMATS = ("table", "json", "csv")
Format = Literal["table", "json", "csv"]

TABLE_COLUMNS = (
    "rule",
    "opportunity",
    "name",
    "owner",
    "amount",
    "stage",
    "close_date",
    "status",
    "severity",
    "opened",
    "values",
)
# Values the table's own columns already show (as they are now, where the rule saw them).
_SHOWN_IN_TABLE = frozenset({"amount", "currency", "converted_amount"})
_SHOWN_IF_EQUAL = frozenset({"stage", "close_date"})
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T")


def emit_findings(
    records: Sequence[FindingRecord],
    fmt: Format | str = "table",
    out: Path | None = None,
    *,
    rules: Sequence[str] | None = None,
    limit: int | None = None,
) -> None:
    """Render findings as a table, a JSON array or CSV, to stdout or atomically to ``out``.

    ``rules`` are the rules listed (default: all): they decide the CSV columns and the
    JSON keys (:func:`sfsync.audit.finding_columns`). ``limit`` keeps the first N
    records and says so: the table ends "showing N of M finding(s)"; for JSON and CSV,
    whose output stays data only, the same line goes to stderr. A file that cannot be
    written is a usage error naming it (exit 2), and nothing is left behind.
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    shown = list(records if limit is None else records[:limit])
    cut = (
        f"showing {len(shown)} of {len(records)} finding(s)" if len(shown) < len(records) else None
    )
    columns = finding_columns(rules, records)
    if out is None:
        _render(shown, fmt, sys.stdout, columns, cut, total=len(records))
    else:
        from sfsync.files import atomic_text_file

        try:
            with atomic_text_file(out) as stream:
                _render(shown, fmt, stream, columns, cut, total=len(records))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise UsageError(f"--out: cannot write {out}: {reason}") from exc
    if cut is not None and fmt != "table":
        _tell(f"{cut} (--limit {limit})", shown=len(shown), total=len(records))


def _tell(text: str, **fields: Any) -> None:
    """A note beside the data: through the command's :class:`App` (an event in JSON log
    mode), else on stderr."""
    ctx = click.get_current_context(silent=True)
    app = None if ctx is None else ctx.find_object(App)
    if app is None:
        click.echo(text, err=True)
    else:
        app.tell(text, event="findings.cut", **fields)


def _render(
    records: list[FindingRecord],
    fmt: str,
    stream: TextSink,
    columns: Sequence[FindingColumn],
    cut: str | None,
    *,
    total: int,
) -> None:
    from sfsync.console import write_csv

    if fmt == "json":
        stream.write(json.dumps([r.exported(columns) for r in records], indent=2) + "\n")
        stream.flush()
    elif fmt == "csv":
        write_csv(stream, _csv_rows(records, columns))
    else:
        _print(records, stream, cut, total=total)


def _csv_rows(
    records: list[FindingRecord], columns: Sequence[FindingColumn]
) -> Iterator[list[Any]]:
    """A header, then a row per finding: a cell per column, empty where it has no value."""
    yield [column.name for column in columns]
    for record in records:
        values = record.exported(columns)
        yield [_csv_cell(values.get(column.name)) for column in columns]


def _csv_cell(value: Any) -> Any:
    """Booleans as JSON writes them; anything structured (a rule's list) as text items."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}={v}" for k, v in value.items())
    return value


def _print(records: list[FindingRecord], stream: TextSink, cut: str | None, *, total: int) -> None:
    from sfsync.console import print_table

    rows = [
        [
            r.rule,
            r.opportunity_id,
            r.opportunity_name or "",
            r.owner_name or r.owner_id or "",
            "" if r.amount is None else f"{r.amount:,.0f}",
            r.stage or "",
            "" if r.close_date is None else r.close_date.isoformat(),
            r.status,
            r.severity,
            r.opened_at.date().isoformat(),
            _values_text(r),
        ]
        for r in records
    ]
    print_table(None, TABLE_COLUMNS, rows, stream=stream)
    footer = cut or f"{total} finding(s)"
    currency = next((r.amount_currency for r in records if r.amount_currency), None)
    if currency is not None:
        footer += f"; amounts in {currency}"
    stream.write(footer + "\n")
    stream.flush()


def _values_text(record: FindingRecord) -> str:
    """The rule's values as ``name=value``, compact: without what the other columns show,
    without record ids, instants as their date (the CSV and JSON have them all)."""
    now = {"stage": record.stage, "close_date": record.close_date}
    parts = []
    for name, value in record.values().items():
        if value is None or name in _SHOWN_IN_TABLE or name.endswith("_id"):
            continue
        current = now.get(name)
        if name in _SHOWN_IF_EQUAL and str(value) == ("" if current is None else str(current)):
            continue
        parts.append(f"{name}={_text(value)}")
    return " ".join(parts)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, str) and _INSTANT.match(value):
        return value[:10]
    return str(value)


@click.command("findings", cls=RulesCommand)
@click.option(
    "--status",
    type=click.Choice(FINDING_STATUSES),
    default="open",
    show_default=True,
    help="Which findings to list.",
)
@click.option("--rule", "rules", multiple=True, metavar="ID", help="Only this rule (repeatable).")
@click.option(
    "--owner",
    metavar="USER",
    help="Only opportunities owned by this user: an id (15 or 18 characters) or a name.",
)
@click.option(
    "--sort",
    metavar="KEY",
    help="amount, close_date, name, opened, owner, rule, severity, stage, status, resolved "
    "or a rule's value (month_extensions...); -KEY: descending.",
)
@click.option("--desc", is_flag=True, help="Sort descending.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Only the first N.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="PATH",
    help="Write to this file (replaced atomically) instead of stdout.",
)
@global_options
@pass_app
def findings_command(
    app: App,
    status: str,
    rules: tuple[str, ...],
    owner: str | None,
    sort: str | None,
    desc: bool,
    limit: int | None,
    fmt: str,
    out: Path | None,
) -> None:
    """List findings with their opportunity and the rule's values.

    ``--format json`` prints a JSON array, ``csv`` a header and one column per value.
    """
    from sfsync.warehouse import open_warehouse

    warehouse = open_warehouse(app.settings.database)
    try:
        findings = list_findings(
            warehouse,
            status=status,
            rules=rules or None,
            owner=owner,
            settings=app.settings,
            sort=sort,
            descending=desc,
        )
    finally:
        warehouse.dispose()
    emit_findings(findings, fmt, out, rules=rules or None, limit=limit)
    if out is not None:
        shown = len(findings) if limit is None else min(limit, len(findings))
        click.echo(f"wrote {shown} finding(s) to {out}")
