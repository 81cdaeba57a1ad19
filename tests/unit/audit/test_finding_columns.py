"""The findings export's layout: one column per value, named without ambiguity."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from sfsync.audit import FindingRecord, finding_columns
from sfsync.audit.rules import get_rule, rule_ids

COMMON = [
    "rule",
    "opportunity_id",
    "opportunity_name",
    "owner_id",
    "owner_name",
    "stage",
    "close_date",
    "amount",
    "amount_currency",
    "status",
    "profile",
    "severity",
    "opened_at",
    "resolved_at",
]


def record(rule: str, details: dict[str, Any]) -> FindingRecord:
    return FindingRecord(
        id=1,
        rule=rule,
        opportunity_id="006000000000001AAA",
        opportunity_name="Deal",
        owner_id="005000000000002AAA",
        owner_name="Rita Rep",
        stage="Qualify",
        status="open",
        profile="global",
        severity="warn",
        opened_at=datetime(2024, 8, 15, 3, 0, tzinfo=UTC),
        resolved_at=None,
        details=details,
    )


def fields(rule: str) -> list[str]:
    return [f.name for f in dataclasses.fields(get_rule(rule).details_type)]


def test_one_rule_names_its_values_plainly_unless_a_common_column_has_the_name() -> None:
    names = [c.name for c in finding_columns(["close_date_slipping"])]
    assert names == [
        *COMMON,
        "close_date_slipping.stage",  # what the rule saw, beside the stage now
        "close_date_slipping.close_date",
        "month_extensions",
        "min_extensions",
        "lower_bound",
        "close_date_source",
        "days_since_stage_change",
        "days_open",
    ]


def test_every_rule_listed_has_one_column_per_value_and_shared_names_get_the_rule_id() -> None:
    columns = finding_columns()
    names = [c.name for c in columns]
    assert names[: len(COMMON)] == COMMON
    assert len(names) == len(set(names))
    for rule in rule_ids():
        assert [c.key for c in columns if c.rule == rule] == fields(rule), rule
    # k is a value of two rules; today and threshold_days of one.
    assert "close_date_past.k" in names
    assert "stale_last_modified.k" in names
    assert "k" not in names
    assert "today" in names
    assert "threshold_days" in names
    assert "days_since_last_human_modification" in names


def test_the_header_depends_on_the_rules_listed_not_on_the_rows() -> None:
    rows = [record("close_date_past", {"k": -1}), record("stale_last_modified", {"k": 0})]
    assert finding_columns(["close_date_past"]) == finding_columns(["close_date_past"], rows[:1])
    assert finding_columns() == finding_columns(None, rows)


def test_values_are_the_declared_fields_in_order_with_none_for_keys_never_stored() -> None:
    finding = record("close_date_slipping", {"month_extensions": 4, "note": "not declared"})
    values = finding.values()
    assert list(values) == fields("close_date_slipping")
    assert values["month_extensions"] == 4
    assert values["days_open"] is None
    assert "note" not in values


def test_a_finding_exports_the_common_columns_and_its_own_rules_columns_only() -> None:
    columns = finding_columns()
    finding = record("close_date_slipping", {"month_extensions": 4, "stage": "Create"})
    exported = finding.exported(columns)
    assert list(exported)[: len(COMMON)] == COMMON
    assert exported["month_extensions"] == 4
    assert exported["stage"] == "Qualify"  # now
    assert exported["close_date_slipping.stage"] == "Create"  # when the rule saw it
    assert not [k for k in exported if k.startswith(("close_date_past.", "stale_last_modified."))]
    assert exported["opened_at"] == "2024-08-15T03:00:00Z"


def test_a_rule_no_longer_registered_keeps_what_it_stored() -> None:
    gone = record("retired_rule", {"b": 2, "a": 1})
    assert gone.values() == {"a": 1, "b": 2}
    columns = finding_columns(["close_date_past"], [gone])
    assert [c.name for c in columns if c.rule == "retired_rule"] == ["a", "b"]
    assert gone.exported(columns)["a"] == 1
