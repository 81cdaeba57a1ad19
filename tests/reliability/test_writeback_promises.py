"""Write-back promises on the paths users walk: renamed Tasks, refused writes, budget stops."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from sfsync.devorg import FaultSpec
from sfsync.devorg._http import Request, Response
from sfsync.formats import soql_quote
from sfsync.warehouse.models import Run
from sfsync.writeback import run_writeback
from sfsync.writeback._keys import parse_task_key
from sfsync.writeback._text import key_from_description
from tests.cli_helpers import run_sfsync
from tests.integration.conftest import OrgFactory, RunningOrg, generated_org_file
from tests.integration.sync_helpers import settle
from tests.integration.writeback.helpers import (
    NO_SLIPPING_TASKS,
    cycle,
    ledger_rows,
    open_findings,
    org_data,
    reconfigure,
    sfsync_tasks,
    without_key_field,
)
from tests.reliability.kills import is_write


def _open_tasks_by_pair(org: RunningOrg) -> Counter[tuple[str, str]]:
    """Open Tasks sfsync created, by (opportunity, rule), whatever their subject now is."""
    soql = (
        "SELECT Id, WhatId, Description FROM Task WHERE IsClosed = false AND CreatedById = "
        + soql_quote(org.org.integration_user_id)
    )
    pairs: Counter[tuple[str, str]] = Counter()
    for task in org.org.query(soql):
        key = parse_task_key(key_from_description(task.get("Description")))
        if key is not None:
            pairs[(key.opportunity_id, key.rule)] += 1
    return pairs


def test_a_renamed_task_is_still_the_open_task_not_a_deleted_one(
    running_org: OrgFactory, org_files: Path
) -> None:
    """Without the key field: a rep renames an sfsync Task; a full sync and a run add no twin."""
    org = running_org(data=without_key_field(org_data(generated_org_file(org_files, 300))))
    reconfigure(
        org,
        task_key_field=None,
        fallback_owner_id=org.org.integration_user_id,
        renotify_after_days=0,
    )
    for _ in range(2):  # the second night's sync brings the first night's Tasks in
        night = run_sfsync("run", "--apply", env=org.env)
        assert night.exit_code == 0, night.stderr
        settle()
    task = sfsync_tasks(org.org)[0]
    org.org.update("Task", task["Id"], {"Subject": "Re: update the deal"}, as_user=task["OwnerId"])
    settle()
    assert run_sfsync("sync", "--full", env=org.env).exit_code == 0
    again = run_sfsync("run", "--apply", env=org.env)
    assert again.exit_code == 0, again.stderr
    doubled = {pair: n for pair, n in _open_tasks_by_pair(org).items() if n > 1}
    assert doubled == {}
    renamed = org.org.query(f"SELECT IsClosed FROM Task WHERE Id = {soql_quote(task['Id'])}")
    assert [r["IsClosed"] for r in renamed] == [False]


def test_writes_refused_by_a_validation_rule_are_retried_on_later_runs(
    running_org: OrgFactory, org_files: Path
) -> None:
    """Refused (exit 5), waiting in the plan, then written once the rule is gone."""
    data = org_data(generated_org_file(org_files, 300))
    data["validation_rules"] = [NO_SLIPPING_TASKS]
    org = running_org(data=data)
    reconfigure(org, fallback_owner_id=org.org.integration_user_id)
    warehouse = org.warehouse()
    cycle(org, warehouse)
    refused = run_writeback(warehouse, org.settings, apply=True)
    slipping = {p for p in open_findings(warehouse) if p[1] == "close_date_slipping"}
    assert refused.status == "partial"
    assert {f.code for f in refused.failures} == {"FIELD_CUSTOM_VALIDATION_EXCEPTION"}
    assert len(refused.failures) == len(slipping)
    day = refused.plan.today

    org.org.validation_rules.clear()  # the admin removes the rule
    cycle(org, warehouse)
    same_day = run_writeback(warehouse, org.settings, apply=True, today=day)
    waiting = [a for a in same_day.plan.actions if a.skip_code == "retry_later"]
    assert len(waiting) == len(slipping)
    assert all((day + timedelta(days=1)).isoformat() in a.reason for a in waiting)

    next_day = run_writeback(warehouse, org.settings, apply=True, today=day + timedelta(days=1))
    assert (next_day.created, next_day.failed, next_day.status) == (len(slipping), 0, "ok")
    open_pairs = Counter((t["WhatId"], t["Subject"]) for t in sfsync_tasks(org.org))
    assert all(n == 1 for n in open_pairs.values())
    assert {r.state for r in ledger_rows(warehouse)} <= {"confirmed", "abandoned"}


def _budget_runs_out_after(org: RunningOrg, writes: int) -> dict[str, Any]:
    """When the first write arrives, leave the org exactly ``writes`` write calls in all."""
    seen: dict[str, Any] = {"armed": False}

    def hook(phase: str, req: Request, _response: Response | None) -> None:
        if phase == "before" and is_write(req) and not seen["armed"]:
            seen["armed"] = True
            # This call is already counted: it and writes - 1 more fit.
            org.server.set_faults(FaultSpec(api_limit=org.server.api_calls + writes - 1))

    org.server.add_hook(hook)
    return seen


def test_a_budget_stop_during_write_back_says_what_was_written(running_org: OrgFactory) -> None:
    """Exit 4, the run partial, the message counts the Tasks created, the ledger holds them."""
    org = running_org(300)
    reconfigure(
        org,
        sync={"max_api_share": 1.0, "api_floor": 0},
        fallback_owner_id=org.org.integration_user_id,
        batch_size=10,
    )
    org.server.reset_api_usage()
    warehouse = org.warehouse()
    cycle(org, warehouse)
    armed = _budget_runs_out_after(org, writes=3)
    outcome = run_sfsync("run", "--apply", env=org.env)
    assert armed["armed"]
    assert outcome.exit_code == 4, outcome.stderr
    created = len(sfsync_tasks(org.org))
    assert created == 30
    assert "30 Tasks created" in outcome.stderr
    assert "did not write back" not in outcome.stderr
    with warehouse.session() as session:
        run = session.scalars(select(Run).where(Run.kind == "run")).one()
    assert run.status == "partial"
    confirmed = [r for r in ledger_rows(warehouse) if r.state == "confirmed"]
    assert len(confirmed) == created
    assert not [r for r in ledger_rows(warehouse) if r.state == "sent"]

    org.server.set_faults(FaultSpec())
    org.server.reset_api_usage()
    settle()
    final = run_sfsync("run", "--apply", env=org.env)
    assert final.exit_code == 0, final.stderr
    assert len(sfsync_tasks(org.org)) == len(open_findings(warehouse))


def test_a_run_whose_sync_hits_the_budget_at_once_stops_there(running_org: OrgFactory) -> None:
    """No audit of an empty warehouse (and no stage-ranking message): exit 4 after the sync."""
    org = running_org(300, extra={"sync": {"max_api_share": 1.0, "api_floor": 0}})
    org.server.set_faults(FaultSpec(api_limit=1))  # the first call is the last one allowed
    outcome = run_sfsync("run", "--apply", env=org.env)
    assert outcome.exit_code == 4, outcome.stderr
    assert "rank" not in outcome.stderr
    assert "budget" in outcome.stderr.lower() or "limit" in outcome.stderr.lower()
    warehouse = org.warehouse()
    with warehouse.session() as session:
        run = session.scalars(select(Run).where(Run.kind == "run")).one()
    assert run.status == "partial"
    assert "audit" not in run.counts
