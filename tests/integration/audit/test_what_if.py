"""What-if audits (another day, or a subset of rules) change nothing in the warehouse.

Only an audit of today over every enabled rule records findings and feeds the
write-back; `--record` backfills a past day on purpose and the write-back refuses to act
on it.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sfsync.config import Settings
from sfsync.warehouse.models import Base
from sfsync.writeback import WritebackRefused, run_writeback
from tests.cli_helpers import run_cli
from tests.integration.audit.conftest import ExamplesWarehouse

AS_OF = "2024-08-15"  # the worked examples' day


def env(ew: ExamplesWarehouse) -> dict[str, str]:
    return {"SFSYNC_DATABASE_URL": ew.url}


def snapshot(ew: ExamplesWarehouse) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every warehouse table, in primary-key order."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with ew.warehouse.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            rows = conn.execute(select(table).order_by(*order))
            tables[table.name] = [tuple(row) for row in rows]
    return tables


def test_what_if_audits_leave_every_table_as_it_was(
    examples_warehouse: ExamplesWarehouse, tmp_path: Path
) -> None:
    ew = examples_warehouse
    recorded = run_cli("audit", "--as-of", AS_OF, "--record", env=env(ew))
    assert recorded.exit_code == 0, recorded.output
    before = snapshot(ew)
    assert before["finding"], "the recorded audit opened findings"
    settings = Settings.model_validate({"database": {"url": ew.url}})
    plan_before = run_writeback(ew.warehouse, settings, force=True).plan

    future = (date.today() + timedelta(days=400)).isoformat()
    out = tmp_path / "what-if.csv"
    ahead = run_cli("audit", "--as-of", future, "--format", "csv", "--out", str(out), env=env(ew))
    assert ahead.exit_code == 0, ahead.output
    assert "what-if" in ahead.stderr + ahead.stdout
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows, "a year ahead, every open deal's close date is in the past"
    assert {r["rule"] for r in rows} >= {"close_date_past"}

    subset = run_cli("audit", "--rule", "close_date_past", "--format", "json", env=env(ew))
    assert subset.exit_code == 0, subset.output
    document = json.loads(subset.stdout)
    assert document["recorded"] is False
    assert {f["rule"] for f in document["findings"]} <= {"close_date_past"}

    past = run_cli("audit", "--as-of", AS_OF, "--rule", "missing_rev_rec_terms", env=env(ew))
    assert past.exit_code == 0, past.output

    assert snapshot(ew) == before
    plan_after = run_writeback(ew.warehouse, settings, force=True).plan
    assert plan_after.actions == plan_before.actions


def test_a_what_if_reports_what_it_would_find_with_the_same_exit_codes(
    examples_warehouse: ExamplesWarehouse,
) -> None:
    ew = examples_warehouse
    table = run_cli("audit", "--as-of", AS_OF, "--fail-on", "error", env=env(ew))
    assert table.exit_code == 1, table.output  # close_date_past findings are errors
    lines = table.stdout.splitlines()
    assert lines[0].startswith(f"what-if audit as of {AS_OF}")
    assert lines[1].split() == ["rule", "severity", "open", "new", "resolved", "waived"]
    assert lines[2].split() == ["close_date_past", "error", "4", "4", "0", "0"]
    assert snapshot(ew)["finding"] == []

    as_csv = run_cli("audit", "--as-of", AS_OF, "--format", "csv", env=env(ew))
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(rows) == 4 + 9  # 4 error findings, 9 warn ones (docs/rules.md's examples)


def test_record_refuses_a_future_day_and_a_subset_of_rules(
    examples_warehouse: ExamplesWarehouse,
) -> None:
    ew = examples_warehouse
    future = (date.today() + timedelta(days=1)).isoformat()
    ahead = run_cli("audit", "--as-of", future, "--record", env=env(ew))
    assert ahead.exit_code == 2
    assert "--record" in ahead.stderr
    assert future in ahead.stderr
    subset = run_cli("audit", "--rule", "close_date_past", "--record", env=env(ew))
    assert subset.exit_code == 2
    assert "--rule" in subset.stderr
    assert snapshot(ew)["finding"] == []


def test_the_write_back_refuses_to_act_on_a_backfilled_audit(
    examples_warehouse: ExamplesWarehouse,
) -> None:
    ew = examples_warehouse
    assert run_cli("audit", "--as-of", AS_OF, "--record", env=env(ew)).exit_code == 0
    settings = Settings.model_validate({"database": {"url": ew.url}})
    preview = run_writeback(ew.warehouse, settings)
    assert any("backfill" in w for w in preview.warnings), preview.warnings
    with pytest.raises(WritebackRefused, match=f"backfill.*{AS_OF}"):
        run_writeback(ew.warehouse, settings, apply=True)


def test_run_refuses_an_as_of_in_the_future(examples_warehouse: ExamplesWarehouse) -> None:
    future = (date.today() + timedelta(days=30)).isoformat()
    outcome = run_cli("run", "--as-of", future, env=env(examples_warehouse))
    assert outcome.exit_code == 2
    assert "--as-of" in outcome.stderr
    assert "what-if" in outcome.stderr
