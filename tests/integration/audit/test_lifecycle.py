"""The findings lifecycle of docs/rules.md on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, update

from sfsync.audit import list_findings, run_audit, waive_finding
from sfsync.audit._lifecycle import _RESULT, FindingMerger
from sfsync.config import AuditSettings
from sfsync.errors import ConfigError, UsageError
from sfsync.warehouse import Warehouse
from sfsync.warehouse.models import Finding, Opportunity, OpportunityHistory, Organization, Run
from tests.integration.audit.conftest import ExamplesWarehouse
from tests.integration.audit.load import load_org, new_warehouse
from tests.unit.audit.examples import TODAY, examples_org
from tests.unit.audit.org import Org

DEFAULTS = AuditSettings()


def finding_rows(ew: ExamplesWarehouse) -> list[tuple[Any, ...]]:
    """Every column of every finding, in id order: the 'no row changed' witness."""
    with ew.warehouse.engine.connect() as conn:
        table = Finding.__table__
        return [tuple(row) for row in conn.execute(select(table).order_by(table.c.id))]


def live(ew: ExamplesWarehouse, rule: str, opp_id: str) -> Finding | None:
    with ew.warehouse.session() as session:
        return session.scalars(
            select(Finding).where(
                Finding.rule == rule,
                Finding.opportunity_id == opp_id,
                Finding.status.in_(("open", "waived")),
            )
        ).one_or_none()


def set_opportunity(ew: ExamplesWarehouse, opp_id: str, **values: Any) -> None:
    with ew.warehouse.engine.begin() as conn:
        conn.execute(update(Opportunity).where(Opportunity.id == opp_id).values(**values))


def run_count(ew: ExamplesWarehouse) -> int:
    with ew.warehouse.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Run)).scalar_one())


def test_reaudit_with_nothing_changed_changes_no_finding_row(
    examples_warehouse: ExamplesWarehouse,
) -> None:
    ew = examples_warehouse
    first = run_audit(ew.warehouse, DEFAULTS, as_of=TODAY)
    before = finding_rows(ew)
    assert before, "the examples org has findings"
    second = run_audit(ew.warehouse, DEFAULTS, as_of=TODAY)
    assert finding_rows(ew) == before
    assert all(c.new == 0 and c.resolved == 0 for c in second.rules), second.rules
    assert [c.open for c in second.rules] == [c.open for c in first.rules]


def test_fixing_a_record_resolves_exactly_that_finding_and_a_relapse_reopens_a_new_one(
    examples_warehouse: ExamplesWarehouse,
) -> None:
    ew = examples_warehouse
    run_audit(ew.warehouse, DEFAULTS, as_of=TODAY)
    opp = ew.ids[10]
    original = live(ew, "missing_rev_rec_terms", opp)
    assert original is not None
    assert original.status == "open"
    others_before = [r for r in finding_rows(ew) if r[0] != original.id]

    set_opportunity(ew, opp, rev_rec_terms="Net 30")
    summary = run_audit(ew.warehouse, DEFAULTS, as_of=TODAY)
    counts = {c.rule: c for c in summary.rules}
    assert counts["missing_rev_rec_terms"].resolved == 1
    assert sum(c.resolved for c in summary.rules) == 1
    assert live(ew, "missing_rev_rec_terms", opp) is None
    with ew.warehouse.session() as session:
        resolved = session.get(Finding, original.id)
        assert resolved is not None
        assert resolved.status == "resolved"
        assert resolved.resolved_run_id == summary.run_id
        assert resolved.resolved_as_of == TODAY
        assert resolved.resolved_at is not None
    assert [r for r in finding_rows(ew) if r[0] != original.id] == others_before

    set_opportunity(ew, opp, rev_rec_terms=" ")
    again = run_audit(ew.warehouse, DEFAULTS, as_of=TODAY)
    reopened = live(ew, "missing_rev_rec_terms", opp)
    assert reopened is not None
    assert reopened.id != original.id
    assert reopened.opened_run_id == again.run_id
    assert {c.rule: c.new for c in again.rules}["missing_rev_rec_terms"] == 1


def test_waiver_waives_at_once_until_it_expires(examples_warehouse: ExamplesWarehouse) -> None:
    ew = examples_warehouse
    run_audit(ew.warehouse, DEFAULTS, as_of=TODAY)
    opp = ew.ids[3]
    result = waive_finding(
        ew.warehouse,
        DEFAULTS,
        "close_date_past",
        opp,
        reason="customer signs at the board meeting",
        until=TODAY + timedelta(days=5),
        today=TODAY,
    )
    assert result.findings_waived == 1
    waived = live(ew, "close_date_past", opp)
    assert waived is not None
    assert waived.status == "waived"

    during = run_audit(ew.warehouse, DEFAULTS, as_of=TODAY + timedelta(days=5))
    still = live(ew, "close_date_past", opp)
    assert still is not None
    assert still.status == "waived"
    assert still.id == waived.id
    counts = {c.rule: c for c in during.rules}["close_date_past"]
    assert counts.waived == 1
    assert [f.opportunity_id for f in list_findings(ew.warehouse, status="waived")] == [opp]

    after = run_audit(ew.warehouse, DEFAULTS, as_of=TODAY + timedelta(days=6))
    back = live(ew, "close_date_past", opp)
    assert back is not None
    assert back.status == "open"
    assert back.id == waived.id
    assert {c.rule: c for c in after.rules}["close_date_past"].waived == 0


def test_rule_option_only_touches_that_rule(examples_warehouse: ExamplesWarehouse) -> None:
    ew = examples_warehouse
    run_audit(ew.warehouse, DEFAULTS, as_of=TODAY)
    # Fix the records behind a missing_rev_rec_terms and a close_date_past finding.
    set_opportunity(ew, ew.ids[10], rev_rec_terms="Net 30")
    set_opportunity(ew, ew.ids[3], close_date=date(2024, 9, 30))
    before = finding_rows(ew)
    summary = run_audit(ew.warehouse, DEFAULTS, as_of=TODAY, rules=["missing_rev_rec_terms"])
    assert [c.rule for c in summary.rules] == ["missing_rev_rec_terms"]
    assert live(ew, "missing_rev_rec_terms", ew.ids[10]) is None
    assert live(ew, "close_date_past", ew.ids[3]) is not None
    changed = [a for a, b in zip(finding_rows(ew), before, strict=True) if a != b]
    assert len(changed) == 1
    assert changed[0][1] == "missing_rev_rec_terms"


def test_closed_or_deleted_opportunities_resolve_their_findings(
    examples_warehouse: ExamplesWarehouse,
) -> None:
    ew = examples_warehouse
    run_audit(ew.warehouse, DEFAULTS, as_of=TODAY)
    assert live(ew, "close_date_slipping", ew.ids[15]) is not None
    assert live(ew, "close_date_past", ew.ids[1]) is not None
    set_opportunity(ew, ew.ids[15], is_closed=True, stage_name="Closed Lost")
    set_opportunity(ew, ew.ids[1], is_deleted=True)
    run_audit(ew.warehouse, DEFAULTS, as_of=TODAY)
    assert live(ew, "close_date_slipping", ew.ids[15]) is None
    assert live(ew, "close_date_past", ew.ids[1]) is None


def test_changed_settings_update_the_live_finding_in_place(
    examples_warehouse: ExamplesWarehouse,
) -> None:
    ew = examples_warehouse
    run_audit(ew.warehouse, DEFAULTS, as_of=TODAY)
    before = live(ew, "close_date_past", ew.ids[3])
    assert before is not None
    stricter = AuditSettings.model_validate(
        {"amount_threshold": 40_000, "rules": {"close_date_past": {"severity": "warn"}}}
    )
    run_audit(ew.warehouse, stricter, as_of=TODAY)
    after = live(ew, "close_date_past", ew.ids[3])
    assert after is not None
    assert after.id == before.id
    assert after.severity == "warn"
    assert after.settings_hash != before.settings_hash
    assert after.details["amount_threshold"] == 40_000.0


def test_run_row_and_counts_are_recorded(examples_warehouse: ExamplesWarehouse) -> None:
    ew = examples_warehouse
    summary = run_audit(ew.warehouse, DEFAULTS, as_of=TODAY)
    with ew.warehouse.session() as session:
        run = session.get(Run, summary.run_id)
        assert run is not None
        assert run.kind == "audit"
        assert run.status == "ok"
        assert run.as_of == TODAY
        counts = run.counts["audit"]
    assert set(counts["rules"]) == {
        "close_date_past",
        "stale_last_modified",
        "missing_rev_rec_terms",
        "close_date_slipping",
    }
    assert counts["rules"]["close_date_past"]["new"] == summary.rules[0].new
    assert counts["open_by_severity"] == summary.open_by_severity
    assert summary.open_at_or_above("error") == summary.open_by_severity.get("error", 0)
    assert summary.open_at_or_above("warn") == sum(summary.open_by_severity.values())


def test_audit_inside_a_callers_run_only_merges_counts(
    examples_warehouse: ExamplesWarehouse,
) -> None:
    from sfsync.warehouse.runs import start_run

    ew = examples_warehouse
    run_id = start_run(ew.warehouse, "run", as_of=TODAY)
    summary = run_audit(ew.warehouse, DEFAULTS, as_of=TODAY, run_id=run_id)
    assert summary.run_id == run_id
    with ew.warehouse.session() as session:
        run = session.get(Run, run_id)
        assert run is not None
        assert run.status == "running"
        assert "audit" in run.counts
    assert run_count(ew) == 1


@pytest.mark.parametrize(
    ("change", "error", "named"),
    [
        ("unknown_rule", UsageError, "close_date_passed"),
        ("unknown_stage", ConfigError, "audit.rules.stale_last_modified.min_stage"),
        ("unknown_field", ConfigError, "Rev_Rec_Term__c"),
        ("bad_fiscal_month", UsageError, "FiscalYearStartMonth is 13"),
        ("unknown_corporate_currency", ConfigError, "audit.corporate_currency"),
    ],
)
def test_bad_input_leaves_findings_untouched(
    examples_warehouse: ExamplesWarehouse, change: str, error: type[Exception], named: str
) -> None:
    ew = examples_warehouse
    run_audit(ew.warehouse, DEFAULTS, as_of=TODAY)
    set_opportunity(ew, ew.ids[10], rev_rec_terms="Net 30")  # a change the audit would pick up
    before, runs = finding_rows(ew), run_count(ew)
    settings, rules = DEFAULTS, None
    if change == "unknown_rule":
        rules = ["close_date_passed"]
    elif change == "unknown_stage":
        settings = AuditSettings.model_validate(
            {"rules": {"stale_last_modified": {"min_stage": "Qualified"}}}
        )
    elif change == "unknown_field":
        settings = AuditSettings.model_validate({"fields": {"rev_rec_terms": "Rev_Rec_Term__c"}})
    elif change == "bad_fiscal_month":
        with ew.warehouse.engine.begin() as conn:
            conn.execute(update(Organization).values(fiscal_year_start_month=13))
    else:
        settings = AuditSettings(corporate_currency="EUR")
        from tests.integration.audit.load import load_org
        from tests.unit.audit.org import Org

        load_org(ew.warehouse, _currencies_only(Org.standard(currencies={"USD": 1.0})))
    with pytest.raises(error, match=named):
        run_audit(ew.warehouse, settings, as_of=TODAY, rules=rules)
    assert finding_rows(ew) == before
    assert run_count(ew) == runs


def _currencies_only(org: Any) -> Any:
    org.records = {"CurrencyType": org.records["CurrencyType"]}
    return org


def test_a_crash_mid_audit_leaves_the_previous_state(
    examples_warehouse: ExamplesWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    ew = examples_warehouse
    run_audit(ew.warehouse, DEFAULTS, as_of=TODAY)
    set_opportunity(ew, ew.ids[10], rev_rec_terms="Net 30")
    before = finding_rows(ew)

    def crash(*_: Any, **__: Any) -> Any:
        raise RuntimeError("power cut")

    # After every rule has merged, before the transaction commits.
    monkeypatch.setattr(FindingMerger, "close", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        run_audit(ew.warehouse, DEFAULTS, as_of=TODAY)
    assert finding_rows(ew) == before
    with ew.warehouse.session() as session:
        last = session.scalars(select(Run).order_by(Run.id.desc())).first()
        assert last is not None
        assert last.status == "failed"
        assert "power cut" in (last.error or "")


def test_as_of_leaves_out_what_was_created_later(examples_warehouse: ExamplesWarehouse) -> None:
    """As of 2024-05-01, example 15 has 2 extensions (later history rows are left out)."""
    ew = examples_warehouse
    as_of = date(2024, 5, 1)
    settings = AuditSettings.model_validate(
        {"rules": {"close_date_slipping": {"min_extensions": 1}}}
    )
    run_audit(ew.warehouse, settings, as_of=as_of, rules=["close_date_slipping"])
    finding = live(ew, "close_date_slipping", ew.ids[15])
    assert finding is not None
    # Rows up to 2024-03-20 (2 pushes) and then the current 2024-07-31 (one more push).
    assert finding.details["month_extensions"] == 3
    assert finding.details["days_open"] == (as_of - date(2023, 12, 22)).days
    with ew.warehouse.engine.begin() as conn:
        conn.execute(
            update(Opportunity)
            .where(Opportunity.id == ew.ids[15])
            .values(created_date=datetime(2024, 5, 2, tzinfo=UTC))
        )
    run_audit(ew.warehouse, settings, as_of=as_of, rules=["close_date_slipping"])
    assert live(ew, "close_date_slipping", ew.ids[15]) is None


def test_history_rows_after_as_of_are_ignored_even_when_all_are_later(
    examples_warehouse: ExamplesWarehouse,
) -> None:
    ew = examples_warehouse
    with ew.warehouse.engine.begin() as conn:
        conn.execute(
            update(OpportunityHistory)
            .where(OpportunityHistory.opportunity_id == ew.ids[14])
            .values(created_date=datetime(2030, 1, 1, tzinfo=UTC))
        )
    from sfsync.audit import slip_metrics

    metrics = {m.opportunity_id: m for m in slip_metrics(ew.warehouse, DEFAULTS, TODAY)}
    assert metrics[ew.ids[14]].month_extensions == 0
    assert metrics[ew.ids[14]].lower_bound is True


def test_a_waiver_given_before_the_finding_opens_it_waived(
    examples_warehouse: ExamplesWarehouse,
) -> None:
    ew = examples_warehouse
    waive_finding(
        ew.warehouse,
        DEFAULTS,
        "close_date_past",
        ew.ids[1],
        reason="known",
        until=TODAY,
        today=TODAY,
    )
    summary = run_audit(ew.warehouse, DEFAULTS, as_of=TODAY)
    finding = live(ew, "close_date_past", ew.ids[1])
    assert finding is not None
    assert finding.status == "waived"
    counts = {c.rule: c for c in summary.rules}["close_date_past"]
    assert counts.waived == 1
    assert counts.open == 3
    assert summary.open_by_severity["error"] == 3


def test_profile_per_scope_is_stored_with_its_own_settings_hash(db_url: str) -> None:
    from tests.integration.audit.load import load_org, new_warehouse
    from tests.unit.audit.org import Org

    org = Org.standard(custom_fields=("Rev_Rec_Terms__c", "Region__c"))
    europe = org.opportunity(close_date="2024-06-30", amount=60_000.0, fields={"Region__c": "EU"})
    other = org.opportunity(close_date="2024-06-30", amount=60_000.0, fields={"Region__c": "NA"})
    warehouse = new_warehouse(db_url)
    load_org(warehouse, org, scope_field="Region__c")
    settings = AuditSettings.model_validate(
        {"scope": {"field": "Region__c", "profiles": {"EU": "europe"}}}
    )
    run_audit(warehouse, settings, as_of=TODAY, rules=["close_date_past"])
    with warehouse.session() as session:
        found = {
            f.opportunity_id: f
            for f in session.scalars(select(Finding).where(Finding.status == "open"))
        }
    warehouse.dispose()
    assert found[europe].profile == "europe"
    assert found[europe].details["sales_opportunity"] is True
    assert found[other].profile == "global"
    assert found[europe].settings_hash != found[other].settings_hash


def test_last_human_assumed_is_said_in_the_details(db_url: str) -> None:
    from tests.integration.audit.load import load_org, new_warehouse
    from tests.unit.audit.org import INTEGRATION_USER, Org

    org = Org.standard()
    opp = org.opportunity(
        stage="Qualify",
        amount=60_000.0,
        close_date="2024-09-20",
        last_modified="2024-07-01T10:00:00",
        last_modified_by=INTEGRATION_USER,
    )
    warehouse = new_warehouse(db_url)
    load_org(warehouse, org)
    run_audit(warehouse, DEFAULTS, as_of=TODAY, rules=["stale_last_modified"])
    [finding] = list_findings(warehouse, rules=["stale_last_modified"])
    warehouse.dispose()
    assert finding.opportunity_id == opp
    assert finding.details["last_human_assumed"] is True
    assert finding.details["days_since_last_human_modification"] == 45
    assert finding.details["last_human_modified_by_id"] is None


@contextmanager
def _listening(warehouse: Warehouse, name: str, hook: Any, **options: Any) -> Iterator[None]:
    """``hook`` listens to the engine's ``name`` event for the block's duration."""
    event.listen(warehouse.engine, name, hook, **options)
    try:
        yield
    finally:
        event.remove(warehouse.engine, name, hook)


_STAGING = (
    f"INSERT INTO {_RESULT.name} ",
    f"CREATE TEMPORARY TABLE {_RESULT.name} ",
)


def _staging_statements(warehouse: Warehouse, rules: list[str]) -> list[tuple[str, Any]]:
    """The statements of an audit that fill the result table, with their parameters."""
    staged: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.startswith(_STAGING):
            staged.append((statement, parameters))

    with _listening(warehouse, "before_cursor_execute", capture):
        run_audit(warehouse, DEFAULTS, as_of=TODAY, rules=rules)
    return staged


@pytest.mark.postgres
def test_each_rule_is_staged_by_a_statement_postgresql_may_run_in_parallel(
    postgres_url: str,
) -> None:
    """PostgreSQL never gives an INSERT ... SELECT parallel workers, and the hand-written
    query an audit is measured against gets them: the staging is a CREATE TABLE AS,
    planned as the plain SELECT would be. Forcing parallel plans where they are safe
    shows which one it is, whatever the (tiny) table sizes."""
    warehouse = new_warehouse(postgres_url)
    load_org(warehouse, examples_org()[0])
    rules = ["close_date_past", "missing_rev_rec_terms"]
    staged = _staging_statements(warehouse, rules)
    assert len(staged) == len(rules)
    with warehouse.engine.connect() as conn, conn.begin():
        force = conn.exec_driver_sql(
            "SELECT name FROM pg_settings "
            "WHERE name IN ('debug_parallel_query', 'force_parallel_mode')"
        ).scalar_one()
        conn.exec_driver_sql(f"SET LOCAL {force} = on")
        if any(statement.startswith("INSERT") for statement, _ in staged):
            _RESULT.create(conn)  # what an INSERT needs to be planned at all
        for statement, parameters in staged:
            plan = conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars().all()
            assert any("Gather" in line for line in plan), "\n".join(plan)
    warehouse.dispose()


def _finding_pages(warehouse: Warehouse) -> dict[int, int]:
    """Finding id -> the heap page its live version is on (PostgreSQL)."""
    with warehouse.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT id, (ctid::text::point)[0]::bigint FROM finding WHERE status = 'open'"
        ).all()
    return {int(finding_id): int(page) for finding_id, page in rows}


@pytest.mark.postgres
def test_a_nightly_audit_rewrites_most_findings_on_their_own_page_on_postgresql(
    postgres_url: str,
) -> None:
    """Each night the details of every close_date_past finding change (``today``), so the
    audit rewrites each one. PostgreSQL updates no index for a new row version that stays
    on its page (a heap-only update), and it can only stay when the page has room: the
    finding table keeps some free on each page. Measured at 1,000,000 opportunities,
    a night's audit took 41 s instead of 57 s."""
    org = Org.standard()
    for n in range(300):
        org.opportunity(stage="Qualify", close_date=date(2024, 3, 1) + timedelta(days=n % 60))
    warehouse = new_warehouse(postgres_url)
    load_org(warehouse, org)
    run_audit(warehouse, DEFAULTS, as_of=TODAY, rules=["close_date_past"])
    before = _finding_pages(warehouse)
    assert len(before) == 300
    next_night = run_audit(
        warehouse, DEFAULTS, as_of=TODAY + timedelta(days=1), rules=["close_date_past"]
    )
    after = _finding_pages(warehouse)
    warehouse.dispose()
    assert next_night.rules[0].new == 0
    assert set(after) == set(before)
    stayed = sum(after[finding_id] == page for finding_id, page in before.items())
    assert stayed >= len(before) // 3, f"{stayed} of {len(before)} stayed on their page"


def _statements(warehouse: Warehouse, audit: Any) -> list[str]:
    """Every statement ``audit()`` sends, in order."""
    sent: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(" ".join(statement.split()))

    with _listening(warehouse, "before_cursor_execute", capture):
        audit()
    return sent


def test_an_audit_reads_no_more_of_finding_than_the_rules_it_runs(
    examples_warehouse: ExamplesWarehouse,
) -> None:
    """The finding table holds every rule's findings, resolved ones included, and only
    grows. An audit of one rule with nothing changed must not read all of it: no count of
    the whole table (it cost 0.15 s of a 0.7 s audit at 1,000,000 opportunities on
    PostgreSQL), and no second read of the rule's live findings to count them by status
    and severity after the merge (0.17 s for stale_last_modified's 175,000): the merge
    has them all in hand."""
    ew = examples_warehouse
    run_audit(ew.warehouse, DEFAULTS, as_of=TODAY)
    before = finding_rows(ew)
    sent = _statements(
        ew.warehouse,
        lambda: run_audit(ew.warehouse, DEFAULTS, as_of=TODAY, rules=["missing_rev_rec_terms"]),
    )
    assert finding_rows(ew) == before
    whole = [s for s in sent if s.endswith("FROM finding") and "count(" in s]
    tallies = [s for s in sent if "FROM finding" in s and "GROUP BY" in s]
    assert whole == [], whole
    assert tallies == [], tallies


def _planned(warehouse: Warehouse) -> tuple[float, int]:
    """``finding``'s row count and pages as its statistics last recorded them."""
    with warehouse.engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT reltuples, relpages FROM pg_class WHERE oid = 'finding'::regclass"
        ).one()
    return float(row[0]), int(row[1])


@pytest.mark.postgres
def test_an_audit_refreshes_the_statistics_of_finding_when_it_has_grown(
    postgres_url: str,
) -> None:
    """The staging joins every match to ``finding``: with statistics from when the table
    was a tenth of its size the planner picks nested scans (26 s instead of 0.3 s at
    50,000 opportunities). The audit analyzes the table when it is new, or when its
    pages are off by more than a tenth from what the statistics recorded, and not
    otherwise."""
    org = Org.standard()
    for n in range(400):
        org.opportunity(stage="Qualify", close_date=date(2024, 3, 1) + timedelta(days=n % 60))
    warehouse = new_warehouse(postgres_url)
    load_org(warehouse, org)
    assert _planned(warehouse)[0] < 0  # never analyzed
    run_audit(warehouse, DEFAULTS, as_of=TODAY, rules=["close_date_past"])
    # The first audit analyzed the table it found empty; its own 400 findings are
    # more than a tenth of that, so the next audit analyzes again.
    run_audit(warehouse, DEFAULTS, as_of=TODAY, rules=["close_date_past"])
    tuples, pages = _planned(warehouse)
    assert tuples == 400
    assert pages > 0

    def analyzes(as_of: date) -> bool:
        sent = _statements(
            warehouse,
            lambda: run_audit(warehouse, DEFAULTS, as_of=as_of, rules=["close_date_past"]),
        )
        return "ANALYZE finding" in sent

    assert not analyzes(TODAY)  # nothing changed
    with warehouse.engine.begin() as conn:  # the table grows to more than twice its size
        conn.exec_driver_sql(
            "INSERT INTO finding (rule, opportunity_id, status, profile, severity, details, "
            "settings_hash, opened_run_id, opened_at, opened_as_of) "
            "SELECT 'stale_last_modified', opportunity_id, 'resolved', profile, severity, "
            "details, settings_hash, opened_run_id, opened_at, opened_as_of FROM finding, "
            "generate_series(1, 2)"
        )
    assert analyzes(TODAY)
    assert _planned(warehouse)[0] == 1200
    assert not analyzes(TODAY)
    warehouse.dispose()


@pytest.mark.postgres
def test_the_findings_a_night_writes_fire_no_trigger_on_postgresql(postgres_url: str) -> None:
    """Each night rewrites most findings (their details hold the day's figures), and
    opens and resolves some. A foreign key checks each written row against its parent
    with a trigger: the references to ``run`` cost 7 µs a row, 26 s against 33 s for a
    night at 1,000,000 opportunities. ``run`` is an append-only log and the audit writes
    only the run it created before it began, so finding keeps no such key."""
    org = Org.standard()
    opportunities = [
        org.opportunity(stage="Qualify", close_date=date(2024, 3, 1) + timedelta(days=n))
        for n in range(20)
    ]
    warehouse = new_warehouse(postgres_url)
    load_org(warehouse, org)
    run_audit(warehouse, DEFAULTS, as_of=TODAY, rules=["close_date_past"])
    with warehouse.engine.begin() as conn:  # the next day: one fixed, the rest rewritten
        conn.execute(
            update(Opportunity)
            .where(Opportunity.id == opportunities[0])
            .values(close_date=TODAY + timedelta(days=30))
        )
    triggers: list[str] = []

    def explain(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> Any:
        if statement.startswith(("UPDATE finding", "INSERT INTO finding")):
            return f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters
        return statement, parameters

    def collect(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("EXPLAIN (ANALYZE, FORMAT JSON)"):
            (plan,) = cursor.fetchone()[0]
            triggers.extend(t["Trigger Name"] for t in plan.get("Triggers", []))
            written.append(plan["Plan"]["Plans"][0]["Actual Rows"])

    written: list[int] = []
    with (
        _listening(warehouse, "before_cursor_execute", explain, retval=True),
        _listening(warehouse, "after_cursor_execute", collect),
    ):
        run_audit(warehouse, DEFAULTS, as_of=TODAY + timedelta(days=1), rules=["close_date_past"])
    warehouse.dispose()
    assert sorted(written) == [1, 19], written  # one resolved, nineteen rewritten
    assert triggers == []


@pytest.mark.postgres
def test_the_result_table_is_analyzed_from_a_small_sample_on_postgresql(
    postgres_url: str,
) -> None:
    """When some finding must change, the rule's result table is analyzed so that the
    writes are planned on its real size: the planner needs its row count and how many
    rows carry details, not histograms of JSON documents. ANALYZE reads 300 rows per
    unit of the statistics target (30,000 by default): 50-100 ms for stale_last_modified
    at 1,000,000 opportunities, against 11-15 ms for a target of 10."""
    org = Org.standard()
    for n in range(30):
        org.opportunity(stage="Qualify", close_date=date(2024, 3, 1) + timedelta(days=n))
    warehouse = new_warehouse(postgres_url)
    load_org(warehouse, org)
    targets: list[str] = []

    def capture(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement == f"ANALYZE {_RESULT.name}":
            targets.append(conn.exec_driver_sql("SHOW default_statistics_target").scalar_one())

    with _listening(warehouse, "before_cursor_execute", capture):
        run_audit(warehouse, DEFAULTS, as_of=TODAY, rules=["close_date_past"])
    with warehouse.engine.connect() as conn:  # the audit's setting ended with it
        assert conn.exec_driver_sql("SHOW default_statistics_target").scalar_one() == "100"
    warehouse.dispose()
    assert targets == ["10"]
