"""Crash safety: SIGKILL the write-back anywhere, run again, never two open Tasks per pair.

Every kill is placed at a named crash point or on a write call the dev org holds, so
each test kills exactly as often as it says, on any machine.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from sfsync.warehouse import Warehouse
from sfsync.warehouse.models import Finding, Opportunity
from sfsync.writeback import run_writeback
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
from tests.reliability.kills import CRASHED, KILLED, Gate, finish, is_write, sfsync_process

ROUNDS = 20
# The kinds of kill, in turn. A named crash point exits 137 at the n-th time the
# point is reached; "held" kills are SIGKILLs while the n-th write call is in flight
# (before the org applies it, or after it applied it but before the answer is sent).
KINDS = (
    "writeback.after_plan",
    "writeback.before_send",
    "held before",
    "writeback.after_send",
    "held after",
    "writeback.after_reconcile",
    "writeback.after_confirm",
)


def _apply(org: RunningOrg, log: Path, crash_at: str | None = None) -> subprocess.Popen[bytes]:
    return sfsync_process("writeback", "--apply", env=org.env, log=log, crash_at=crash_at)


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


def _kill(
    round_: int, org: RunningOrg, warehouse: Warehouse, rng: random.Random
) -> tuple[str, int]:
    """This round's kind of kill and its n, chosen from what the run will certainly do."""
    plan = run_writeback(warehouse, org.settings, apply=False).plan
    in_doubt = sum(1 for a in plan.actions if a.reconcile)
    # Writes certainly sent, one per batch (batch_size 1): creates that are not in doubt
    # (those may be found in Salesforce and not re-sent), completions and flags.
    sent = sum(1 for a in plan.writes if not a.reconcile)
    kind = KINDS[round_ % len(KINDS)]
    if kind == "writeback.after_reconcile" and not in_doubt:
        kind = "writeback.after_plan"
    if kind == "writeback.after_plan" or kind == "writeback.after_reconcile":
        assert plan.writes or in_doubt, f"round {round_}: nothing to do"
        return kind, 1
    assert sent, f"round {round_}: no write will certainly be sent"
    return kind, rng.randint(1, min(3, sent))


def _campaign(org: RunningOrg, tmp_path: Path, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    reconfigure(
        org,
        fallback_owner_id=org.org.integration_user_id,
        batch_size=1,
        renotify_after_days=0,
    )
    warehouse = org.warehouse()
    cycle(org, warehouse)
    log = tmp_path / "writeback.log"
    seen = {"crashed": 0, "killed": 0}
    for round_ in range(ROUNDS):
        kind, nth = _kill(round_, org, warehouse, rng)
        if kind.startswith("held"):
            gate = Gate(org.server, is_write, nth=nth, after=kind == "held after")
            code = gate.kill_when_held(_apply(org, log))
            assert code == KILLED, f"round {round_} ({kind} {nth}): exit {code}; see {log}"
            seen["killed"] += 1
        else:
            code = finish(_apply(org, log, f"{kind}:{nth}"))
            assert code == CRASHED, f"round {round_} ({kind}:{nth}): exit {code}; see {log}"
            seen["crashed"] += 1
        _assert_never_two(org, f"after round {round_} ({kind} {nth})")
        _people_change_things(org, warehouse, rng)
        cycle(org, warehouse)
    # The run after the storm settles everything; the one after that has nothing to do.
    for _ in range(2):
        assert finish(_apply(org, log)) == 0, log.read_text()[-3000:]
        cycle(org, warehouse)
    _assert_never_two(org, "at the end")
    assert set(open_task_pairs(org.org)) == open_findings(warehouse)
    assert {r.state for r in ledger_rows(warehouse)} <= {"confirmed", "abandoned"}
    return seen


@pytest.mark.slow
def test_sigkill_at_any_moment_never_duplicates_a_task(
    running_org: OrgFactory, tmp_path: Path
) -> None:
    """20 kills (named crash points and in-flight SIGKILLs) with the external-id field: upsert."""
    org = running_org(300)
    assert _campaign(org, tmp_path, seed=3) == {"crashed": 14, "killed": 6}


@pytest.mark.slow
def test_sigkill_without_the_key_field_is_reconciled_by_match(
    running_org: OrgFactory, org_files: Path, tmp_path: Path
) -> None:
    """The same storm where Task has no Sfsync_Key__c: create, then reconcile by match."""
    org = running_org(data=without_key_field(org_data(generated_org_file(org_files, 300))))
    assert _campaign(org, tmp_path, seed=4) == {"crashed": 14, "killed": 6}


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
