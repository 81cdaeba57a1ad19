"""A waiver reaches the rep: its open Task is completed with a note; on expiry, a new one."""

from __future__ import annotations

from datetime import date, timedelta

from sfsync.audit import run_audit
from sfsync.extract import run_sync
from sfsync.writeback import run_writeback
from tests.cli_helpers import run_cli
from tests.integration.conftest import OrgFactory, RunningOrg
from tests.integration.sync_helpers import settle
from tests.integration.writeback.helpers import cycle, reconfigure, rule_of, sfsync_tasks

REASON = "Customer signs in January; legal review"


def waive(org: RunningOrg, rule: str, opportunity_id: str, until: date) -> None:
    """``sfsync waive RULE OPPORTUNITY --reason REASON --until UNTIL``, which must succeed."""
    waived = run_cli(
        "waive", rule, opportunity_id, "--reason", REASON, "--until", until.isoformat(), env=org.env
    )
    assert waived.exit_code == 0, waived.output


def test_a_waiver_completes_exactly_its_task_with_who_why_and_until(
    running_org: OrgFactory,
) -> None:
    org = running_org(200)
    reconfigure(org, fallback_owner_id=org.org.integration_user_id)
    warehouse = org.warehouse()
    cycle(org, warehouse)
    first = run_writeback(warehouse, org.settings, apply=True)
    assert first.created > 1
    before = {t["Id"]: t for t in sfsync_tasks(org.org)}
    target = next(t for t in before.values() if rule_of(t["Subject"]) == "close_date_past")
    today = first.plan.today
    until = today + timedelta(days=30)

    waive(org, "close_date_past", target["WhatId"], until)
    cycle(org, warehouse)  # the nightly sync and audit: the finding stays waived

    preview = run_writeback(warehouse, org.settings)
    completing = [a for a in preview.plan.actions if a.action == "complete_task"]
    assert [a.task_id for a in completing] == [target["Id"]]
    assert "waived" in completing[0].reason

    applied = run_writeback(warehouse, org.settings, apply=True)
    assert (applied.completed, applied.created, applied.failed) == (1, 0, 0)
    after = {t["Id"]: t for t in sfsync_tasks(org.org, open_only=False)}
    done = after[target["Id"]]
    assert done["Status"] == "Completed"
    note = done["Description"]
    assert "waived" in note
    assert REASON in note
    assert until.isoformat() in note
    assert "by " in note  # who waived it
    untouched = {i: t["Status"] for i, t in before.items() if i != target["Id"]}
    assert {i: after[i]["Status"] for i in untouched} == untouched

    # Nothing more to do while the waiver holds.
    again = run_writeback(warehouse, org.settings, apply=True)
    assert (again.completed, again.created) == (0, 0)


def test_an_expired_waiver_reopens_the_finding_and_a_new_task_follows_renotify_days(
    running_org: OrgFactory,
) -> None:
    org = running_org(200)
    reconfigure(org, fallback_owner_id=org.org.integration_user_id, renotify_after_days=14)
    warehouse = org.warehouse()
    cycle(org, warehouse)
    first = run_writeback(warehouse, org.settings, apply=True)
    today = first.plan.today
    target = next(
        t for t in sfsync_tasks(org.org) if rule_of(t["Subject"]) == "missing_rev_rec_terms"
    )
    until = today + timedelta(days=2)
    waive(org, "missing_rev_rec_terms", target["WhatId"], until)
    cycle(org, warehouse)
    assert run_writeback(warehouse, org.settings, apply=True).completed == 1

    # The waiver expires: the next audit reopens the finding.
    expired = until + timedelta(days=1)
    settle()
    assert run_sync(warehouse, org.settings).status == "ok"
    run_audit(warehouse, org.settings, as_of=expired)
    waiting = run_writeback(warehouse, org.settings, today=expired)
    pending = [a for a in waiting.plan.actions if a.opportunity_id == target["WhatId"]]
    pending = [a for a in pending if a.rule == "missing_rev_rec_terms"]
    assert [a.skip_code for a in pending] == ["renotify_pending"]

    later = today + timedelta(days=14)
    renotified = run_writeback(warehouse, org.settings, apply=True, today=later)
    new = [
        a
        for a in renotified.plan.actions
        if a.action == "create_task" and a.opportunity_id == target["WhatId"]
    ]
    assert [a.rule for a in new] == ["missing_rev_rec_terms"]
    assert renotified.failed == 0
    open_for_target = [
        t
        for t in sfsync_tasks(org.org)
        if t["WhatId"] == target["WhatId"] and rule_of(t["Subject"]) == "missing_rev_rec_terms"
    ]
    assert len(open_for_target) == 1
    assert open_for_target[0]["Id"] != target["Id"]
