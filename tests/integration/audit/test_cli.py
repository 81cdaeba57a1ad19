"""``sfsync audit``, ``findings`` and ``waive`` through the real CLI frame."""

from __future__ import annotations

import csv
import io
import json

import pytest

from sfsync.audit import finding_columns
from tests.cli_helpers import run_cli
from tests.integration.audit.conftest import ExamplesWarehouse
from tests.integration.audit.load import new_warehouse


def env(ew: ExamplesWarehouse) -> dict[str, str]:
    return {"SFSYNC_DATABASE_URL": ew.url}


def upgraded(ew: ExamplesWarehouse) -> None:
    """The examples warehouse was built by Alembic; the CLI's revision gate accepts it."""
    outcome = run_cli("db", "current", env=env(ew))
    assert "up to date" in outcome.stdout, outcome.output


def test_audit_prints_a_summary_and_fail_on_sets_the_exit_code(
    examples_warehouse: ExamplesWarehouse,
) -> None:
    ew = examples_warehouse
    upgraded(ew)
    plain = run_cli("audit", "--as-of", "2024-08-15", "--record", env=env(ew))
    assert plain.exit_code == 0, plain.output
    lines = plain.stdout.splitlines()
    assert lines[0].startswith("audit run 1, as of 2024-08-15")
    assert lines[1].split() == ["rule", "severity", "open", "new", "resolved", "waived"]
    assert lines[2].split() == ["close_date_past", "error", "4", "4", "0", "0"]
    assert "open findings: 4 error, 9 warn" in plain.stdout

    again = run_cli("audit", "--as-of", "2024-08-15", "--record", "--fail-on", "error", env=env(ew))
    assert again.exit_code == 1
    assert again.stdout.splitlines()[2].split() == ["close_date_past", "error", "4", "0", "0", "0"]

    warn_only = ["--rule", "missing_rev_rec_terms", "--as-of", "2024-08-15"]
    assert run_cli("audit", *warn_only, "--fail-on", "error", env=env(ew)).exit_code == 0
    assert run_cli("audit", *warn_only, "--fail-on", "warn", env=env(ew)).exit_code == 1


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--as-of", "15/08/2024"], "--as-of: '15/08/2024'"),
        (["--rule", "stale"], "unknown rule id 'stale'"),
        (["--fail-on", "fatal"], "fatal"),
    ],
)
def test_audit_usage_errors_exit_2_naming_the_value(
    examples_warehouse: ExamplesWarehouse, args: list[str], named: str
) -> None:
    outcome = run_cli("audit", *args, env=env(examples_warehouse))
    assert outcome.exit_code == 2
    assert named in outcome.stderr
    listed = run_cli("findings", "--status", "all", "--format", "json", env=env(examples_warehouse))
    assert json.loads(listed.stdout) == []


def test_findings_json_has_exactly_the_export_keys(examples_warehouse: ExamplesWarehouse) -> None:
    ew = examples_warehouse
    assert run_cli("audit", "--as-of", "2024-08-15", "--record", env=env(ew)).exit_code == 0
    outcome = run_cli("findings", "--format", "json", "--rule", "close_date_slipping", env=env(ew))
    assert outcome.exit_code == 0, outcome.output
    findings = json.loads(outcome.stdout)
    assert [f["opportunity_id"] for f in findings] == [ew.ids[14], ew.ids[15]]
    keys = [c.name for c in finding_columns(["close_date_slipping"])]
    for finding in findings:
        assert list(finding) == keys
        assert finding["status"] == "open"
        assert finding["resolved_at"] is None
        assert finding["opened_at"].endswith("Z")
    example_15 = findings[1]
    assert example_15["opportunity_name"] == "Example 15"
    assert example_15["owner_name"] == "Rita Rep"
    assert example_15["month_extensions"] == 4
    assert example_15["days_since_stage_change"] == 100
    assert example_15["days_open"] == 237


def test_findings_csv_and_table_and_filters(examples_warehouse: ExamplesWarehouse) -> None:
    ew = examples_warehouse
    run_cli("audit", "--as-of", "2024-08-15", "--record", env=env(ew))
    outcome = run_cli("findings", "--format", "csv", env=env(ew))
    rows = list(csv.reader(io.StringIO(outcome.stdout)))
    assert rows[0] == [c.name for c in finding_columns()]
    assert "details" not in rows[0]
    assert len(rows) == 1 + 13

    table = run_cli("findings", "--rule", "missing_rev_rec_terms", env=env(ew))
    assert table.exit_code == 0
    assert ew.ids[10] in table.stdout
    assert "1 finding(s)" in table.stdout

    none = run_cli("findings", "--status", "resolved", "--format", "json", env=env(ew))
    assert json.loads(none.stdout) == []
    owner = run_cli("findings", "--owner", "005000000000002AAA", "--format", "json", env=env(ew))
    assert len(json.loads(owner.stdout)) == 13
    bad = run_cli("findings", "--owner", "nobody", env=env(ew))
    assert bad.exit_code == 2
    assert "'nobody'" in bad.stderr
    unknown = run_cli("findings", "--status", "closed", env=env(ew))
    assert unknown.exit_code == 2


def test_waive_applies_at_once_and_bad_input_exits_2(examples_warehouse: ExamplesWarehouse) -> None:
    ew = examples_warehouse
    run_cli("audit", "--as-of", "2024-08-15", "--record", env=env(ew))
    opp = ew.ids[10]
    ok = run_cli(
        "waive", "missing_rev_rec_terms", opp, "--reason", "agreed", "--until", "2099-12-31",
        env=env(ew),
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "1 live finding(s) now waived" in ok.stdout
    waived = json.loads(
        run_cli("findings", "--status", "waived", "--format", "json", env=env(ew)).stdout
    )
    assert [(f["rule"], f["opportunity_id"]) for f in waived] == [("missing_rev_rec_terms", opp)]

    cases = [
        (["no_such_rule", opp, "--reason", "x", "--until", "2099-01-01"], "'no_such_rule'"),
        (["close_date_past", "006XYZ", "--reason", "x", "--until", "2099-01-01"], "'006XYZ'"),
        (
            ["close_date_past", "006000000000999AAA", "--reason", "x", "--until", "2099-01-01"],
            "006000000000999AAA is not in the warehouse",
        ),
        (
            ["close_date_past", opp, "--reason", "x", "--until", "2020-01-01"],
            "2020-01-01 is in the past",
        ),
        (["close_date_past", opp, "--reason", "  ", "--until", "2099-01-01"], "--reason"),
        (["close_date_past", opp, "--reason", "x", "--until", "tomorrow"], "--until: 'tomorrow'"),
    ]
    for args, named in cases:
        outcome = run_cli("waive", *args, env=env(ew))
        assert outcome.exit_code == 2, (args, outcome.output)
        assert named in outcome.stderr, (args, outcome.stderr)
    after = json.loads(
        run_cli("findings", "--status", "waived", "--format", "json", env=env(ew)).stdout
    )
    assert after == waived


def test_commands_on_a_missing_warehouse_exit_2() -> None:
    for args in (
        ["audit"],
        ["findings"],
        ["waive", "close_date_past", "x", "--reason", "r", "--until", "2099-01-01"],
    ):
        outcome = run_cli(*args)
        assert outcome.exit_code == 2
        assert "sfsync db upgrade" in outcome.stderr


def test_an_audit_before_any_sync_says_the_warehouse_is_empty(db_url: str) -> None:
    """Not a configuration problem ("stage 'Qualify' cannot be ranked"): nothing was synced."""
    new_warehouse(db_url).dispose()
    outcome = run_cli("audit", env={"SFSYNC_DATABASE_URL": db_url})
    assert outcome.exit_code == 2, outcome.output
    assert "the warehouse is empty: run `sfsync sync` first" in outcome.stderr
    assert "cannot be ranked" not in outcome.stderr
