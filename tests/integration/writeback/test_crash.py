"""Crash safety: SIGKILL the write-back anywhere, run again, never two open Tasks per pair."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from sfsync.devorg import FaultSpec
from sfsync.warehouse import Warehouse
from sfsync.warehouse.models import Finding, Opportunity
from sfsync.writeback import CRASH_ENV
from tests.integration.conftest import OrgFactory, RunningOrg, generated_org_file
from tests.integration.writeback.helpers import (
    cycle,
    ledger_rows,
    open_findings,
    open_task_pairs,
    org_data,
    reconfigure,
    sfsync_tasks,
    without_key_field,
)

# In this order, so that a reconciliation always has something in doubt to find.
CRASH_POINTS = (
    "writeback.before_send",
    "writeback.after_send",
    "writeback.after_reconcile",
    "writeback.after_confirm",
    "writeback.after_plan",
)
ROUNDS = 20


def _apply(org: RunningOrg, log: Path, crash_at: str | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFSYNC_")}
    env.update(org.env)
    if crash_at:
        env[CRASH_ENV] = crash_at
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "sfsync", "writeback", "--apply"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )


def _people_change_things(org: RunningOrg, warehouse: Warehouse, rng: random.Random) -> None:
    """Reps complete some Tasks (renotify is 0: they come back) and fix a few deals."""
    tasks = sfsync_tasks(org.org)
    for task in rng.sample(tasks, min(4, len(tasks))):
        org.org.update("Task", task["Id"], {"Status": "Completed"}, as_user=task["OwnerId"])
    with warehouse.engine.connect() as conn:
        rows = conn.execute(
            select(Finding.opportunity_id, Opportunity.owner_id)
            .join(Opportunity, Opportunity.id == Finding.opportunity_id)
            .where(Finding.status == "open", Finding.rule == "missing_rev_rec_terms")
        ).all()
    for row in rng.sample(rows, min(1, len(rows))):
        org.org.update(
            "Opportunity",
            row.opportunity_id,
            {"Rev_Rec_Terms__c": "Standard"},
            as_user=row.owner_id,
        )


def _assert_never_two(org: RunningOrg, when: str) -> None:
    pairs = open_task_pairs(org.org)
    doubled = {p: n for p, n in pairs.items() if n > 1}
    assert not doubled, f"{when}: duplicate open sfsync Tasks {doubled}"


def _campaign(org: RunningOrg, tmp_path: Path, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    reconfigure(
        org,
        fallback_owner_id=org.org.integration_user_id,
        batch_size=1,
        renotify_after_days=0,
    )
    # Each API call takes a while, so a kill lands inside the run, not after it.
    org.server.set_faults(FaultSpec(latency_ms=100))
    warehouse = org.warehouse()
    cycle(org, warehouse)
    log = tmp_path / "writeback.log"
    seen = {"killed": 0, "crashed": 0, "finished": 0}
    history: list[int] = []
    for round_ in range(ROUNDS):
        if round_ % 2 == 0:
            point = CRASH_POINTS[(round_ // 2) % len(CRASH_POINTS)]
            proc = _apply(org, log, f"{point}:{rng.randint(1, 3)}")
            code = proc.wait(timeout=120)
        else:
            proc = _apply(org, log)
            time.sleep(rng.uniform(0.5, 4.0))
            proc.kill()
            code = proc.wait(timeout=60)
        assert code in (0, 137, -9), f"round {round_}: exit {code}; see {log}"
        seen["crashed" if code == 137 else "killed" if code == -9 else "finished"] += 1
        history.append(code)
        _assert_never_two(org, f"after round {round_}")
        if round_ % 2 == 1:
            _people_change_things(org, warehouse, rng)
            cycle(org, warehouse)
    # The run after the storm settles everything; the one after that has nothing to do.
    org.server.set_faults(FaultSpec())
    for _ in range(2):
        final = _apply(org, log)
        assert final.wait(timeout=120) == 0, log.read_text()[-3000:]
        cycle(org, warehouse)
    _assert_never_two(org, "at the end")
    assert set(open_task_pairs(org.org)) == open_findings(warehouse)
    assert {r.state for r in ledger_rows(warehouse)} <= {"confirmed", "abandoned"}
    print(f"exit codes by round: {history}")
    return seen


@pytest.mark.slow
def test_sigkill_at_any_moment_never_duplicates_a_task(
    running_org: OrgFactory, tmp_path: Path
) -> None:
    """20 kills (named crash points and random SIGKILLs) with the external-id field: upsert."""
    org = running_org(300)
    seen = _campaign(org, tmp_path, seed=3)
    assert seen["crashed"] >= 5
    assert seen["killed"] >= 3


@pytest.mark.slow
def test_sigkill_without_the_key_field_is_reconciled_by_match(
    running_org: OrgFactory, org_files: Path, tmp_path: Path
) -> None:
    """The same storm where Task has no Sfsync_Key__c: create, then reconcile by match."""
    org = running_org(data=without_key_field(org_data(generated_org_file(org_files, 300))))
    seen = _campaign(org, tmp_path, seed=4)
    assert seen["crashed"] >= 5
    assert seen["killed"] >= 3


@pytest.mark.parametrize("key_field", [True, False], ids=["external id", "no key field"])
def test_a_crash_between_the_answer_and_the_ledger_commit_is_reconciled_not_resent(
    running_org: OrgFactory, org_files: Path, tmp_path: Path, key_field: bool
) -> None:
    """SFSYNC_CRASH_AT=writeback.after_send: the Tasks exist, the ledger says `sent`."""
    data = org_data(generated_org_file(org_files, 300))
    org = running_org(data=data if key_field else without_key_field(data))
    reconfigure(org, fallback_owner_id=org.org.integration_user_id, batch_size=200)
    warehouse = org.warehouse()
    cycle(org, warehouse)
    log = tmp_path / "writeback.log"
    assert _apply(org, log, "writeback.after_send").wait(timeout=120) == 137
    created = len(sfsync_tasks(org.org))
    assert created == len(open_findings(warehouse))
    assert {r.state for r in ledger_rows(warehouse)} == {"sent"}

    org.server.clear_requests()
    assert _apply(org, log).wait(timeout=120) == 0
    assert len(sfsync_tasks(org.org)) == created
    writes = [r for r in org.server.requests if r.method != "GET" and "/sobjects" in r.path]
    assert writes == []  # found by key: nothing sent again
    queries = [r for r in org.server.requests if "/queryAll" in r.path]
    if key_field:
        assert len(queries) == -(-created // 100)  # by key, 100 keys a query
    else:
        opportunities = len({o for o, _ in open_findings(warehouse)})
        assert len(queries) == -(-opportunities // 100)  # by WhatId, then matched
    assert {r.state for r in ledger_rows(warehouse)} == {"confirmed"}
