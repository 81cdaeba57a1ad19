"""One recorded run (lock -> sync -> audit -> write-back), the lock between processes, the demo."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select
from structlog.typing import EventDict

from sfsync.devorg import DevOrg, FaultSpec
from sfsync.runner import run_once
from sfsync.warehouse.models import Finding, Run, RunLock
from sfsync.writeback import WritebackRefused
from tests.cli_helpers import run_cli, run_sfsync
from tests.integration.conftest import OrgFactory
from tests.integration.writeback.helpers import reconfigure
from tests.reliability.kills import KILLED, Gate, sfsync_process


def open_sfsync_tasks(org: DevOrg) -> Counter[tuple[str, str]]:
    """Open sfsync Tasks per (opportunity, rule), from the org itself."""
    tasks = org.query(
        "SELECT WhatId, Sfsync_Key__c FROM Task WHERE IsClosed = false AND Sfsync_Key__c != null"
    )
    return Counter((t["WhatId"], t["Sfsync_Key__c"].split(":")[1]) for t in tasks)


def test_run_apply_records_every_stage_and_is_idempotent(running_org: OrgFactory) -> None:
    org = running_org(300)
    first = run_sfsync("run", "--apply", env=org.env)
    assert first.exit_code == 0, first.stderr
    assert "sync ok, audit ok, writeback ok" in first.stdout
    warehouse = org.warehouse()
    with warehouse.session() as session:
        run = session.scalars(select(Run).where(Run.kind == "run")).one()
        assert run.status == "ok"
        assert set(run.counts) >= {"sync", "audit", "writeback", "stages"}
        assert run.api_calls > 0
        open_findings = session.scalars(select(Finding).where(Finding.status == "open")).all()
    tasks = open_sfsync_tasks(org.org)
    assert max(tasks.values()) == 1
    assert sum(tasks.values()) == run.counts["writeback"]["created"]
    assert len(open_findings) >= sum(tasks.values()) > 0
    second = run_sfsync("run", "--apply", env=org.env)
    assert second.exit_code == 0
    assert open_sfsync_tasks(org.org) == tasks
    runs = run_sfsync("runs", "--format", "json", env=org.env)
    assert runs.exit_code == 0
    assert '"kind": "run"' in runs.stdout


def test_run_ends_with_a_summary_of_rows_findings_and_tasks(running_org: OrgFactory) -> None:
    """dbt-style: the last line says what the run did, so a terminal user needs no query."""
    org = running_org(300)
    outcome = run_cli("run", "--apply", env=org.env)
    assert outcome.exit_code == 0, outcome.output
    warehouse = org.warehouse()
    with warehouse.session() as session:
        run = session.scalars(select(Run).where(Run.kind == "run")).one()
    counts = run.counts
    synced = sum(o["upserted"] for o in counts["sync"]["objects"].values())
    audit = counts["audit"]
    open_total = sum(audit["open_by_severity"].values())
    created = counts["writeback"]["created"]
    last = outcome.stdout.strip().splitlines()[-1]
    assert last.startswith("Done."), outcome.stdout
    assert f"synced {synced:,} rows" in last
    assert f"findings open {open_total:,}" in last
    for severity, n in audit["open_by_severity"].items():
        assert f"{severity} {n:,}" in last
    assert f"Tasks created {created:,}" in last
    assert "completed 0" in last
    assert "failed 0" in last

    preview = run_cli("run", env=org.env)
    assert "Tasks to create" in preview.stdout.strip().splitlines()[-1]


def test_two_runs_at_once_one_runs_the_other_exits_6(running_org: OrgFactory) -> None:
    """Started together, one run takes the lock and completes; the other is refused."""
    org = running_org(300, faults=FaultSpec(latency_ms=300), extra={"sync": {"page_size": 200}})
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SFSYNC_")}, **org.env}
    # Logs go to files: a full pipe would block a process that nobody reads yet.
    logs = [org.tmp / f"run-{n}.err" for n in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "sfsync", "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
        )
        for log in logs
    ]
    outcomes = [(p.wait(timeout=180), log.read_text()) for p, log in zip(procs, logs, strict=True)]
    assert sorted(code for code, _ in outcomes) == [0, 6], outcomes
    refused = next(err for code, err in outcomes if code == 6)
    assert "another sfsync run holds the warehouse lock" in refused
    warehouse = org.warehouse()
    with warehouse.engine.connect() as conn:
        assert conn.execute(select(RunLock)).first() is None  # released by the winner
    org.server.set_faults(FaultSpec())
    assert run_sfsync("run", env=org.env).exit_code == 0


def test_budget_stop_skips_the_write_back_and_exits_4(running_org: OrgFactory) -> None:
    org = running_org(
        1500, api_limit=10, extra={"sync": {"page_size": 200, "max_api_share": 1.0, "api_floor": 0}}
    )
    outcome = run_sfsync("run", "--apply", env=org.env)
    assert outcome.exit_code == 4, outcome.stderr
    assert "writeback skipped (sync was partial)" in outcome.stdout
    assert open_sfsync_tasks(org.org) == Counter()
    warehouse = org.warehouse()
    with warehouse.session() as session:
        run = session.scalars(select(Run).where(Run.kind == "run")).one()
    assert run.status == "partial"


def test_a_killed_run_is_marked_interrupted_by_the_next(
    running_org: OrgFactory, tmp_path: Path
) -> None:
    """SIGKILL while the run syncs (held on its first Opportunity page): the next run says so."""
    org = running_org(600)
    gate = Gate(
        org.server, lambda req: "FROM+Opportunity" in req.raw_query or "/query/01g" in req.path
    )
    code = gate.kill_when_held(sfsync_process("run", env=org.env, log=tmp_path / "run.log"))
    assert code == KILLED
    warehouse = org.warehouse()
    outcome = run_sfsync("run", env=org.env)
    assert outcome.exit_code == 0, outcome.stderr
    with warehouse.session() as session:
        statuses = [r.status for r in session.scalars(select(Run).order_by(Run.id))]
    assert statuses == ["interrupted", "ok"]


def test_demo_runs_everything_on_embedded_defaults(tmp_path: Path) -> None:
    outcome = run_cli("demo", "--dir", str(tmp_path / "demo"), "--opportunities", "250")
    assert outcome.exit_code == 0, outcome.output
    for name in ("org.json", "org-after.json", "warehouse.db", "sfsync.yaml", "report.html"):
        assert (tmp_path / "demo" / name).exists(), name
    assert "[7/7] Writing the HTML report" in outcome.stdout
    assert "Tasks created" in outcome.stdout
    findings = run_cli(
        "findings",
        "--format",
        "json",
        env={"SFSYNC_CONFIG": str(tmp_path / "demo" / "sfsync.yaml")},
    )
    assert findings.exit_code == 0
    assert findings.stdout.lstrip().startswith("[")


def test_a_refused_plan_ends_the_run_at_error_level_not_info(
    running_org: OrgFactory, log_events: list[EventDict]
) -> None:
    """An operator's alert fires on level: a run the write-back refused is not `info`."""
    org = running_org(100)
    reconfigure(
        org,
        fallback_owner_id=org.org.integration_user_id,
        max_tasks_per_run=1,
        over_cap="refuse",
    )
    warehouse = org.warehouse()
    with pytest.raises(WritebackRefused):
        run_once(warehouse, org.settings, apply=True)
    [done] = [e for e in log_events if e["event"] == "run.done"]
    assert done["log_level"] == "error"
    assert done["status"] == "failed"
    assert "max_tasks_per_run = 1" in done["error"]
