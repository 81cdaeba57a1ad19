"""The scheduled worker: SIGTERM mid-run stops cleanly; a restart completes; nothing duplicated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from sfsync.devorg import FaultSpec
from sfsync.extract import run_sync
from sfsync.warehouse import Warehouse
from sfsync.warehouse.models import Run, WritebackLedger
from tests.integration.conftest import OrgFactory, RunningOrg
from tests.integration.sync_helpers import mismatches, settle
from tests.integration.test_run import open_sfsync_tasks


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def start_worker(org: RunningOrg, health: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFSYNC_")}
    env.update(
        org.env,
        SFSYNC_SCHEDULE__CRON="*/2 * * * * *",
        SFSYNC_SCHEDULE__APPLY="true",
        SFSYNC_SCHEDULE__HEALTH_FILE=str(health),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "sfsync", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def runs(warehouse: Warehouse) -> list[Run]:
    with warehouse.session() as session:
        return list(session.scalars(select(Run).where(Run.kind == "run").order_by(Run.id)))


def test_worker_survives_sigterm_mid_run_and_restarts_consistently(
    running_org: OrgFactory, tmp_path: Path
) -> None:
    org = running_org(400, faults=FaultSpec(latency_ms=120))
    warehouse = org.warehouse()
    health = tmp_path / "health.json"

    worker = start_worker(org, health)
    wait_for(lambda: any(r.status == "running" for r in runs(warehouse)), 60, "a run to start")
    time.sleep(0.5)  # somewhere inside the run: sync pages or write-back batches
    worker.send_signal(signal.SIGTERM)
    _out, err = worker.communicate(timeout=90)
    assert worker.returncode == 0, err
    assert '"event": "worker.stopped"' in err
    first = runs(warehouse)
    assert first
    assert all(r.status != "running" for r in first)  # the interrupted run is marked, not left open
    assert json.loads(health.read_text())["status"] == "stopped"

    org.server.set_faults(FaultSpec())
    worker = start_worker(org, health)
    wait_for(
        lambda: any(r.status == "ok" for r in runs(warehouse)[len(first) :]),
        90,
        "a run to complete",
    )
    worker.send_signal(signal.SIGTERM)
    _out, err = worker.communicate(timeout=90)
    assert worker.returncode == 0, err

    tasks = open_sfsync_tasks(org.org)
    assert tasks, "the completed run wrote Tasks"
    assert max(tasks.values()) == 1, "no (opportunity, rule) has two open sfsync Tasks"
    with warehouse.session() as session:
        stuck = session.scalars(
            select(WritebackLedger).where(WritebackLedger.state.in_(("planned", "sent")))
        ).all()
    assert stuck == []
    settle()
    run_sync(warehouse, org.settings)
    assert mismatches(org.org, org.settings, warehouse) == {}


def test_worker_refuses_a_bad_schedule_at_start(running_org: OrgFactory) -> None:
    org = running_org(20)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFSYNC_")}
    env.update(
        org.env, SFSYNC_SCHEDULE__CRON="every night", SFSYNC_SCHEDULE__TIMEZONE="Mars/Olympus"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "sfsync", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "schedule.timezone" in proc.stderr


def test_a_database_that_fills_up_during_a_scheduled_run_is_reported_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker logs worker.run_failed (exit 3, naming the database), not a bug's traceback."""
    import sqlite3

    from sqlalchemy.exc import OperationalError
    from structlog.testing import capture_logs

    from sfsync.config import Settings
    from sfsync.scheduler import Worker
    from sfsync.warehouse import open_warehouse, upgrade

    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    settings = Settings.model_validate({"database": {"url": url}})
    warehouse = open_warehouse(settings.database, require_head=False, create=True)
    with warehouse.engine.begin() as conn:
        upgrade(conn)
    warehouse.dispose()
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]

    def run(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("INSERT INTO run ...", {}, full)

    monkeypatch.setattr("sfsync.runner.run", run)
    worker = Worker(settings)
    with capture_logs() as events:
        worker._run_job()
    failed = [e for e in events if e["event"] == "worker.run_failed"]
    assert [e["exit_code"] for e in failed] == [3]
    assert "warehouse.db" in failed[0]["message"]
    assert not [e for e in events if e["event"] == "worker.run_crashed"]
    assert worker.state["last_status"] == "failed"
