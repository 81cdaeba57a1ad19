"""Write-back against the dev org: one Task per finding, completion, faults, bad input, gates."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sfsync.devorg import FaultSpec
from sfsync.formats import soql_quote
from sfsync.warehouse.models import Finding, Opportunity, Run
from sfsync.writeback import WritebackRefused, run_writeback
from tests.cli_helpers import run_cli
from tests.integration.conftest import OrgFactory, RunningOrg, generated_org_file
from tests.integration.writeback.helpers import (
    NO_SLIPPING_TASKS,
    cycle,
    ledger_rows,
    open_findings,
    open_task_pairs,
    org_data,
    reconfigure,
    rule_of,
    sfsync_tasks,
    without_key_field,
)


def _writes(org: RunningOrg) -> list[Any]:
    """Record writes the org received (logins and composite reads are POSTs too)."""
    return [
        r
        for r in org.server.requests
        if r.method in ("POST", "PATCH", "DELETE") and "/sobjects" in r.path
    ]


def _one_per_finding(org: RunningOrg, warehouse: Any) -> None:
    """Every open finding has exactly one open sfsync Task, and no pair has two."""
    pairs = open_task_pairs(org.org)
    assert max(pairs.values(), default=0) <= 1, [p for p, n in pairs.items() if n > 1]
    expected = open_findings(warehouse)
    assert set(pairs) == expected


def test_one_open_task_per_open_finding_and_a_second_run_creates_none(
    running_org: OrgFactory,
) -> None:
    org = running_org(300)
    reconfigure(org, fallback_owner_id=org.org.integration_user_id)
    warehouse = org.warehouse()
    cycle(org, warehouse)
    assert open_findings(warehouse)

    first = run_writeback(warehouse, org.settings, apply=True)
    assert first.status == "ok"
    assert first.mode == "upsert"
    assert first.created == len(open_findings(warehouse))
    _one_per_finding(org, warehouse)
    # ceil(N/200) collection calls, plus login-free describe: nothing else.
    assert first.api_calls == 1 + -(-first.created // 200)

    tasks = sfsync_tasks(org.org)
    sample = next(t for t in tasks if rule_of(t["Subject"]) == "missing_rev_rec_terms")
    assert (
        "Rev Rec Terms must be entered before the Prove stage can be completed"
        in sample["Description"]
    )
    assert sample["Status"] == "Not Started"

    cycle(org, warehouse)
    org.server.clear_requests()
    second = run_writeback(warehouse, org.settings, apply=True)
    assert (second.created, second.completed, second.failed) == (0, 0, 0)
    assert _writes(org) == []
    _one_per_finding(org, warehouse)
    with warehouse.session() as session:
        run = session.get(Run, first.run_id)
        assert run is not None
        assert run.kind == "writeback"
        assert run.status == "ok"
        assert run.counts["writeback"]["created"] == first.created
        assert run.api_calls == first.api_calls


def test_fixing_records_completes_exactly_their_tasks(running_org: OrgFactory) -> None:
    org = running_org(300)
    reconfigure(org, fallback_owner_id=org.org.integration_user_id)
    warehouse = org.warehouse()
    cycle(org, warehouse)
    run_writeback(warehouse, org.settings, apply=True)
    by_pair = {(t["WhatId"], rule_of(t["Subject"])): t["Id"] for t in sfsync_tasks(org.org)}

    # A rep fixes a few records: Rev Rec Terms entered, and two deals closed as lost.
    with warehouse.engine.connect() as conn:
        rows = conn.execute(
            select(Finding.opportunity_id, Finding.rule, Opportunity.owner_id)
            .join(Opportunity, Opportunity.id == Finding.opportunity_id)
            .where(Finding.status == "open")
            .order_by(Finding.id)
        ).all()
    rev_rec = [r for r in rows if r.rule == "missing_rev_rec_terms"][:2]
    closing = [r for r in rows if r.rule == "close_date_past"][:2]
    for row in rev_rec:
        org.org.update(
            "Opportunity",
            row.opportunity_id,
            {"Rev_Rec_Terms__c": "Standard"},
            as_user=row.owner_id,
        )
    for row in closing:
        org.org.update(
            "Opportunity", row.opportunity_id, {"StageName": "Closed Lost"}, as_user=row.owner_id
        )
    before = open_findings(warehouse)
    cycle(org, warehouse)
    after = open_findings(warehouse)
    resolved = before - after
    assert {(r.opportunity_id, "missing_rev_rec_terms") for r in rev_rec} <= resolved

    result = run_writeback(warehouse, org.settings, apply=True)
    assert result.completed == len(resolved)
    completed_ids = {by_pair[p] for p in resolved}
    closed = {
        t["Id"]: t for t in sfsync_tasks(org.org, open_only=False) if t["Id"] in completed_ids
    }
    assert set(closed) == completed_ids
    for task in closed.values():
        assert task["Status"] == "Completed"
        assert "resolved, the problem is no longer present" in task["Description"]
        assert "What is wrong:" in task["Description"]  # the note is appended
    # Nothing else was completed, and the remaining findings still have their one Task.
    assert result.created == len(after - before)
    _one_per_finding(org, warehouse)


def test_the_preview_json_is_what_apply_writes(running_org: OrgFactory) -> None:
    org = running_org(300)
    reconfigure(org, fallback_owner_id=org.org.integration_user_id)
    warehouse = org.warehouse()
    cycle(org, warehouse)
    org.server.clear_requests()

    preview = run_cli("writeback", "--format", "json", env=org.env)
    assert preview.exit_code == 0, preview.stderr
    planned = json.loads(preview.stdout)
    assert planned["applied"] is False
    assert _writes(org) == []

    applied_run = run_cli("writeback", "--apply", "--format", "json", env=org.env)
    assert applied_run.exit_code == 0, applied_run.stderr
    applied = json.loads(applied_run.stdout)
    assert applied["plan"]["actions"] == planned["plan"]["actions"]

    creates = {a["key"]: a for a in planned["plan"]["actions"] if a["action"] == "create_task"}
    assert creates
    tasks = org.org.query(
        "SELECT Id, Sfsync_Key__c, WhatId, OwnerId, Subject, ActivityDate, Priority, Status, "
        "Description FROM Task WHERE Sfsync_Key__c != null"
    )
    written = {t["Sfsync_Key__c"]: t for t in tasks}
    assert set(written) == set(creates)
    for key, action in creates.items():
        task = written[key]
        assert (
            task["WhatId"],
            task["OwnerId"],
            task["Subject"],
            task["ActivityDate"],
            task["Priority"],
            task["Status"],
            task["Description"],
        ) == (
            action["opportunity_id"],
            action["owner_id"],
            action["subject"],
            action["due_date"],
            action["priority"],
            action["status"],
            action["description"],
        )
    # The ledger holds the same payloads, confirmed with the Tasks' ids.
    rows = {r.idempotency_key: r for r in ledger_rows(warehouse)}
    assert {k: rows[k].salesforce_id for k in creates} == {k: written[k]["Id"] for k in creates}
    assert all(rows[k].state == "confirmed" for k in creates)


def test_lock_errors_and_inactive_owners_are_reported_exit_5_and_finished_next_run(
    running_org: OrgFactory,
) -> None:
    """20% of writes hit UNABLE_TO_LOCK_ROW and some owners turn inactive after the sync."""
    org = running_org(300)
    reconfigure(org, fallback_owner_id=org.org.integration_user_id)
    warehouse = org.warehouse()
    cycle(org, warehouse)
    users = {u["Id"]: u for u in org.org.query("SELECT Id, IsActive, ManagerId FROM User")}
    with warehouse.engine.connect() as conn:
        owners = Counter(
            conn.execute(
                select(Opportunity.owner_id)
                .join(Finding, Finding.opportunity_id == Opportunity.id)
                .where(Finding.status == "open")
            ).scalars()
        )
    leaving = [
        owner
        for owner, _ in owners.most_common()
        if users[owner]["IsActive"] and owner != org.org.integration_user_id
    ][:2]
    assert leaving
    for owner in leaving:  # the warehouse still thinks they are active
        org.org.update("User", owner, {"IsActive": False})
    org.server.set_faults(FaultSpec(lock_rate=0.2, seed=11))

    outcome = run_cli("writeback", "--apply", "--format", "json", env=org.env)
    assert outcome.exit_code == 5, outcome.stderr
    assert "failed write(s)" in outcome.stderr
    first = json.loads(outcome.stdout)
    codes = Counter(f["code"] for f in first["failures"])
    assert set(codes) == {"UNABLE_TO_LOCK_ROW"}
    assert all(f["outcome"] == "retry" for f in first["failures"])
    assert first["reassigned"] >= 1
    assert {r["original_owner_id"] for r in first["reassignments"]} <= set(leaving)
    failed_rows = [r for r in ledger_rows(warehouse) if r.state == "failed"]
    assert {r.idempotency_key for r in failed_rows} == {f["key"] for f in first["failures"]}
    assert all(r.error_code == "UNABLE_TO_LOCK_ROW" for r in failed_rows)
    assert all(r.attempts == (2 if r.reassigned_reason else 1) for r in failed_rows)

    # The preview shows what failed, and the next run (no more faults) finishes the job.
    preview = run_cli("writeback", env=org.env)
    assert "failures on record from earlier runs" in preview.stdout
    org.server.set_faults(FaultSpec())
    second = run_cli("writeback", "--apply", "--format", "json", env=org.env)
    assert second.exit_code == 0, second.stderr
    finished = json.loads(second.stdout)
    assert finished["created"] == len(first["failures"])
    pairs = open_task_pairs(org.org)
    assert max(pairs.values()) == 1
    assert set(pairs) == open_findings(warehouse)
    for task in sfsync_tasks(org.org):
        assert task["OwnerId"] not in leaving


def test_a_fallback_owner_that_does_not_exist_is_reported_per_record(
    running_org: OrgFactory,
) -> None:
    org = running_org(300)
    missing = "005000000000999AAA"
    reconfigure(org, fallback_owner_id=missing)
    warehouse = org.warehouse()
    cycle(org, warehouse)
    # One owner of flagged deals leaves, and so does their manager.
    with warehouse.engine.connect() as conn:
        owner = (
            conn.execute(
                select(Opportunity.owner_id)
                .join(Finding, Finding.opportunity_id == Opportunity.id)
                .where(
                    Finding.status == "open", Opportunity.owner_id != org.org.integration_user_id
                )
                .order_by(Finding.id)
            )
            .scalars()
            .first()
        )
    assert owner is not None
    soql = f"SELECT ManagerId FROM User WHERE Id = {soql_quote(owner)}"
    manager = org.org.query(soql)[0]["ManagerId"]
    for user in (owner, manager):
        if user:
            org.org.update("User", user, {"IsActive": False})
    cycle(org, warehouse)
    result = run_writeback(warehouse, org.settings, apply=True)
    skipped = [a for a in result.plan.actions if a.skip_code == "no_active_owner"]
    assert skipped, "the generated org has findings on deals of inactive owners"
    assert all(f"fallback_owner_id {missing} does not exist" in a.reason for a in skipped)
    assert result.created == len(open_findings(warehouse)) - len(skipped)
    assert result.status == "ok"
    preview = run_cli("writeback", "--show-skipped", env=org.env)
    assert "no_active_owner" in preview.stdout


def test_without_the_key_field_tasks_are_created_and_never_duplicated(
    running_org: OrgFactory, org_files: Path
) -> None:
    data = without_key_field(org_data(generated_org_file(org_files, 300)))
    org = running_org(data=data)
    reconfigure(org, fallback_owner_id=org.org.integration_user_id)
    warehouse = org.warehouse()
    cycle(org, warehouse)
    first = run_writeback(warehouse, org.settings, apply=True)
    assert first.mode == "create"
    assert any("Sfsync_Key__c does not exist" in w for w in first.warnings)
    _one_per_finding(org, warehouse)
    cycle(org, warehouse)
    second = run_writeback(warehouse, org.settings, apply=True)
    assert second.created == 0
    _one_per_finding(org, warehouse)


def test_a_validation_rule_and_a_deleted_opportunity_fail_only_their_records(
    running_org: OrgFactory, org_files: Path
) -> None:
    data = org_data(generated_org_file(org_files, 300))
    data["validation_rules"] = [NO_SLIPPING_TASKS]
    org = running_org(data=data)
    reconfigure(org, fallback_owner_id=org.org.integration_user_id)
    warehouse = org.warehouse()
    cycle(org, warehouse)
    findings = open_findings(warehouse)
    slipping_opps = {o for o, rule in findings if rule == "close_date_slipping"}
    doomed = sorted(
        o for o, rule in findings if rule == "missing_rev_rec_terms" and o not in slipping_opps
    )[0]
    org.org.soft_delete("Opportunity", doomed)  # between the audit and the write-back

    result = run_writeback(warehouse, org.settings, apply=True)
    assert result.status == "partial"
    by_code = Counter(f.code for f in result.failures)
    slipping = {p for p in findings if p[1] == "close_date_slipping" and p[0] != doomed}
    assert by_code["FIELD_CUSTOM_VALIDATION_EXCEPTION"] == len(slipping)
    deleted = [f for f in result.failures if f.opportunity_id == doomed]
    assert deleted
    assert {f.code for f in deleted} <= {"INVALID_CROSS_REFERENCE_KEY", "ENTITY_IS_DELETED"}
    assert all(f.outcome == "retry_later" for f in result.failures)
    validation = next(f for f in result.failures if f.code == "FIELD_CUSTOM_VALIDATION_EXCEPTION")
    assert "deal desk" in validation.message
    assert result.created == len(findings) - len(result.failures)

    # Not sent again the same day: the next run shows them waiting (attempts stay at 1).
    cycle(org, warehouse)
    again = run_writeback(warehouse, org.settings, apply=True, today=result.plan.today)
    assert (again.created, again.failed) == (0, 0)
    waiting = [a for a in again.plan.actions if a.skip_code == "retry_later"]
    assert len(waiting) == len(slipping)
    failed = [r for r in ledger_rows(warehouse) if r.state == "failed"]
    assert failed
    assert all(r.attempts == 1 for r in failed)


def test_a_person_completing_a_task_gets_a_new_one_only_after_renotify(
    running_org: OrgFactory,
) -> None:
    org = running_org(300)
    reconfigure(org, fallback_owner_id=org.org.integration_user_id, renotify_after_days=3)
    warehouse = org.warehouse()
    cycle(org, warehouse)
    run_writeback(warehouse, org.settings, apply=True)
    tasks = sfsync_tasks(org.org)
    done, gone = tasks[0], tasks[1]
    org.org.update("Task", done["Id"], {"Status": "Completed"}, as_user=done["OwnerId"])
    org.org.soft_delete("Task", gone["Id"], as_user=gone["OwnerId"])
    cycle(org, warehouse)

    soon = run_writeback(warehouse, org.settings, apply=True)
    assert soon.created == 0
    pending = [a for a in soon.plan.actions if a.skip_code == "renotify_pending"]
    assert {a.opportunity_id for a in pending} == {done["WhatId"], gone["WhatId"]}

    later = datetime.now(UTC).date() + timedelta(days=3)
    renotified = run_writeback(warehouse, org.settings, apply=True, today=later)
    assert renotified.created == 2
    assert {
        a.key.rsplit(":", 1)[1]
        for a in renotified.plan.actions
        if a.key and a.action == "create_task"
    } == {"1"}
    pairs = open_task_pairs(org.org)
    assert max(pairs.values()) == 1


def test_the_first_nights_spread_a_backlog_over_the_cap(running_org: OrgFactory) -> None:
    """writeback.over_cap: spread (the default): each night creates up to the cap, exit 0."""
    org = running_org(300)
    reconfigure(org, fallback_owner_id=org.org.integration_user_id, max_tasks_per_run=5)
    warehouse = org.warehouse()
    cycle(org, warehouse)
    backlog = len(open_findings(warehouse))
    assert backlog > 10
    preview = run_cli("writeback", "--show-skipped", env=org.env)
    assert "over_cap" in preview.stdout
    first = run_cli("writeback", "--apply", env=org.env)
    assert first.exit_code == 0, first.output
    assert len(sfsync_tasks(org.org)) == 5
    second = run_cli("writeback", "--apply", env=org.env)
    assert second.exit_code == 0, second.output
    assert len(sfsync_tasks(org.org)) == 10
    assert max(open_task_pairs(org.org).values()) == 1


def test_the_cap_stops_before_writing_anything_unless_forced(running_org: OrgFactory) -> None:
    org = running_org(300)
    reconfigure(
        org,
        fallback_owner_id=org.org.integration_user_id,
        max_tasks_per_run=5,
        over_cap="refuse",
    )
    warehouse = org.warehouse()
    cycle(org, warehouse)
    org.server.clear_requests()
    refused = run_cli("writeback", "--apply", env=org.env)
    assert refused.exit_code == 2
    assert "more than writeback.max_tasks_per_run = 5" in refused.stderr
    assert _writes(org) == []
    assert ledger_rows(warehouse) == []
    forced = run_cli("writeback", "--apply", "--force", env=org.env)
    assert forced.exit_code == 0, forced.stderr
    _one_per_finding(org, warehouse)


def test_no_writeback_after_a_partial_sync_unless_forced(running_org: OrgFactory) -> None:
    org = running_org(300)
    reconfigure(org, fallback_owner_id=org.org.integration_user_id)
    warehouse = org.warehouse()
    cycle(org, warehouse)
    with warehouse.session() as session:
        latest = session.scalars(
            select(Run).where(Run.kind == "sync").order_by(Run.id.desc())
        ).first()
        assert latest is not None
        latest.status = "partial"
        latest.counts = {**latest.counts, "sync": {**latest.counts["sync"], "status": "partial"}}
    with pytest.raises(WritebackRefused, match="was partial"):
        run_writeback(warehouse, org.settings, apply=True)
    assert ledger_rows(warehouse) == []
    assert run_writeback(warehouse, org.settings, apply=True, force=True).created > 0


def test_disabled_writeback_writes_nothing_and_says_so(running_org: OrgFactory) -> None:
    org = running_org(300)
    reconfigure(org, enabled=False)
    warehouse = org.warehouse()
    cycle(org, warehouse)
    org.server.clear_requests()
    outcome = run_cli("writeback", "--apply", env=org.env)
    assert outcome.exit_code == 0
    assert "writeback.enabled is false: nothing was written" in outcome.stderr
    assert _writes(org) == []
    assert sfsync_tasks(org.org) == []


def test_a_stop_request_finishes_the_batch_and_the_next_run_completes(
    running_org: OrgFactory,
) -> None:
    org = running_org(300)
    reconfigure(org, fallback_owner_id=org.org.integration_user_id, batch_size=10)
    warehouse = org.warehouse()
    cycle(org, warehouse)
    batches = {"n": 0}

    def stop_after_two() -> bool:
        batches["n"] += 1
        return batches["n"] > 2

    first = run_writeback(warehouse, org.settings, apply=True, should_stop=stop_after_two)
    assert first.interrupted
    assert first.created == 20
    assert {r.state for r in ledger_rows(warehouse)} == {"confirmed", "planned"}
    second = run_writeback(warehouse, org.settings, apply=True)
    assert second.created == len(open_findings(warehouse)) - 20
    _one_per_finding(org, warehouse)


def test_flags_are_written_on_change_only(running_org: OrgFactory, org_files: Path) -> None:
    data = org_data(generated_org_file(org_files, 300))
    data["custom_fields"]["Opportunity"].update(
        {
            "Sfsync_Flags__c": {"type": "string", "length": 255},
            "Sfsync_Month_Extensions__c": {"type": "double"},
        }
    )
    org = running_org(data=data)
    reconfigure(org, tasks=False, flags={"enabled": True})
    warehouse = org.warehouse()
    cycle(org, warehouse)
    first = run_writeback(warehouse, org.settings, apply=True)
    flagged = {o for o, _ in open_findings(warehouse)}
    assert first.flags_set == len(flagged)
    rows = org.org.query(
        "SELECT Id, Sfsync_Flags__c, Sfsync_Month_Extensions__c, IsClosed FROM Opportunity "
        "WHERE Sfsync_Flags__c != null"
    )
    assert {r["Id"] for r in rows} == flagged
    expected: dict[str, set[str]] = {}
    for opp, rule in open_findings(warehouse):
        expected.setdefault(opp, set()).add(rule)
    assert {r["Id"]: set(r["Sfsync_Flags__c"].split(";")) for r in rows} == expected
    assert any(r["Sfsync_Month_Extensions__c"] for r in rows)

    cycle(org, warehouse)
    org.server.clear_requests()
    second = run_writeback(warehouse, org.settings, apply=True)
    assert (second.flags_set, second.flags_cleared) == (0, 0)
    assert _writes(org) == []
