"""Log events README.md documents, emitted by their code paths: the cheap ones (no dev org).

tests/integration/test_log_events.py maps every documented event to its test and checks
that README.md names no event without one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import responses
from sqlalchemy import update
from structlog.typing import EventDict

from sfsync.config import DatabaseSettings, ScheduleSettings, Settings
from sfsync.scheduler import Worker
from sfsync.warehouse import Warehouse, open_warehouse, upgrade
from sfsync.warehouse.lock import acquire_run_lock
from sfsync.warehouse.models import RunLock
from sfsync.warehouse.runs import start_run
from tests.unit.salesforce.test_client import BASE, LIMIT, client


def named(events: list[EventDict], name: str) -> list[EventDict]:
    return [e for e in events if e["event"] == name]


def sqlite_warehouse(tmp_path: Path) -> Warehouse:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    warehouse = open_warehouse(DatabaseSettings(url=url), require_head=False, create=True)
    with warehouse.engine.begin() as conn:
        upgrade(conn)
    return warehouse


@responses.activate
def test_a_retried_call_logs_salesforce_retry(log_events: list[EventDict]) -> None:
    """README (Logs): a transient failure is retried, and each retry is a warning."""
    url = f"{BASE}/query/"
    responses.get(url, status=503, json=[{"message": "down", "errorCode": "SERVER_UNAVAILABLE"}])
    responses.get(url, json={"totalSize": 0, "done": True, "records": []}, headers=LIMIT)
    sf = client()
    assert sf.query_all("SELECT Id FROM Opportunity") == []
    [retry] = named(log_events, "salesforce.retry")
    assert retry["log_level"] == "warning"
    assert retry["attempt"] == 1
    assert retry["status"] == 503
    assert retry["reason"] == "SERVER_UNAVAILABLE"
    assert retry["delay_s"] >= 0
    assert "query" in retry["what"].lower()


def test_a_failed_health_write_logs_worker_health_not_written(
    tmp_path: Path, log_events: list[EventDict]
) -> None:
    """README (The nightly worker): a health file write failing later is a warning, once."""
    health = tmp_path / "gone" / "health.json"  # its directory disappeared after the start
    worker = Worker(Settings(schedule=ScheduleSettings(health_file=health)))
    worker._write_health()
    worker._write_health()  # still failing: not a second warning
    [warning] = named(log_events, "worker.health_not_written")
    assert warning["log_level"] == "warning"
    assert warning["path"] == str(health)
    assert warning["error"]
    assert not health.exists()


def test_a_stale_lock_taken_over_logs_lock_taken_over(
    tmp_path: Path, log_events: list[EventDict]
) -> None:
    """README (The nightly worker): a lock left by a dead holder is taken over (and logged)."""
    warehouse = sqlite_warehouse(tmp_path)
    stale = acquire_run_lock(warehouse)
    with warehouse.engine.begin() as conn:
        conn.execute(update(RunLock).values(hostname="elsewhere", pid=4242))
    taken = acquire_run_lock(warehouse, stale_after_s=0)
    [event] = named(log_events, "lock.taken_over")
    assert event["log_level"] == "warning"
    assert "pid 4242 on elsewhere" in event["previous"]
    taken.release()
    stale.release()
    warehouse.dispose()


def test_runs_left_running_log_run_interrupted_found(
    tmp_path: Path, log_events: list[EventDict]
) -> None:
    """README (The nightly worker): runs whose process died are marked interrupted."""
    warehouse = sqlite_warehouse(tmp_path)
    start_run(warehouse, "sync")  # its process "died": the row stays running
    start_run(warehouse, "audit")
    with acquire_run_lock(warehouse):
        pass
    [event] = named(log_events, "run.interrupted_found")
    assert event["log_level"] == "warning"
    assert event["runs"] == 2
    assert not named(log_events, "lock.taken_over")  # no holder was there to take over
    warehouse.dispose()


RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_after_each_run_the_worker_logs_worker_next_run_and_every_time_is_rfc3339_utc(
    tmp_path: Path, log_events: list[EventDict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """README (The nightly worker): one timestamp format (RFC 3339, UTC) in the health
    file and the events; after each run, when the next one is."""
    from sfsync import runner
    from sfsync.cron import cron_trigger

    warehouse = sqlite_warehouse(tmp_path)
    warehouse.dispose()
    health = tmp_path / "health.json"
    settings = Settings(
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'warehouse.db'}"),
        schedule=ScheduleSettings(cron="0 2 * * *", timezone="Europe/Paris", health_file=health),
    )

    class Outcome:
        run_id, status, exit_code = 1, "ok", 0

    monkeypatch.setattr(runner, "run", lambda *_a, **_k: Outcome())
    worker = Worker(settings)
    worker.scheduler.add_job(
        worker._run_job, cron_trigger("0 2 * * *", "Europe/Paris"), id="sfsync-run"
    )
    worker.scheduler.start(paused=True)
    try:
        worker._run_job()
    finally:
        worker.scheduler.shutdown(wait=False)
    [after] = named(log_events, "worker.next_run")
    assert RFC3339_UTC.match(after["next_run_at"]), after
    document = json.loads(health.read_text())
    for key in ("updated_at", "next_run_at", "run_started_at", "run_ended_at"):
        assert RFC3339_UTC.match(document[key]), (key, document[key])
    assert document["next_run_at"] == after["next_run_at"]
