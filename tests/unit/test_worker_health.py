"""The worker's health file says what the worker is doing, whichever thread writes first."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from sfsync.config import DatabaseSettings, ScheduleSettings, Settings
from sfsync.scheduler import Worker
from sfsync.warehouse import open_warehouse, upgrade

WAIT_S = 30


def test_a_run_started_at_once_is_still_running_in_the_health_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``worker --now``: the run's thread may say ``running`` before the main thread has
    finished starting; the start must not then overwrite it with ``idle``.

    The order is forced, not left to the machine: the main thread goes on from
    ``scheduler.start()`` only once the run is inside ``runner.run``, and the run reads
    the health file only once the main thread waits in its health loop.
    """
    from sfsync import runner

    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    warehouse = open_warehouse(DatabaseSettings(url=url), require_head=False, create=True)
    with warehouse.engine.begin() as conn:
        upgrade(conn)
    warehouse.dispose()
    health = tmp_path / "health.json"
    settings = Settings(
        database=DatabaseSettings(url=url),
        schedule=ScheduleSettings(cron="0 2 * * *", health_file=health),
    )
    worker = Worker(settings, run_now=True)
    monkeypatch.setattr(worker, "_install_signals", lambda: None)
    in_run, main_waits = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    start = worker.scheduler.start

    def start_then_let_the_run_go_first(*args: Any, **kwargs: Any) -> None:
        start(*args, **kwargs)
        assert in_run.wait(WAIT_S), "the run never started"

    monkeypatch.setattr(worker.scheduler, "start", start_then_let_the_run_go_first)
    wait = worker.stop.wait

    def main_waits_in_its_loop(seconds: float) -> bool:
        main_waits.set()
        return wait(seconds)

    monkeypatch.setattr(worker.stop, "wait", main_waits_in_its_loop)

    class Outcome:
        run_id, status, exit_code = 1, "ok", 0

    def run(*_args: Any, **_kwargs: Any) -> Outcome:
        in_run.set()
        assert main_waits.wait(WAIT_S), "the worker never reached its health loop"
        seen["status"] = json.loads(health.read_text())["status"]
        worker.stop.request("test")
        return Outcome()

    monkeypatch.setattr(runner, "run", run)
    assert worker.serve() == 0
    assert seen == {"status": "running"}
    assert json.loads(health.read_text())["status"] == "stopped"


def test_the_health_file_is_written_from_the_snapshot_no_other_write_can_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two threads write the file (the health loop, the run). Each takes a snapshot of the
    state and writes it; were another thread's newer snapshot written in between, the older
    one would land last (a loaded CI machine showed ``idle`` during a run). So the snapshot
    and the write happen under one lock that every writer takes."""
    import sfsync.scheduler as scheduler

    settings = Settings(
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'warehouse.db'}"),
        schedule=ScheduleSettings(cron="0 2 * * *", health_file=tmp_path / "health.json"),
    )
    worker = Worker(settings)
    held: list[bool] = []
    atomic = scheduler.atomic_text_file

    def watched(*args: Any, **kwargs: Any) -> Any:
        held.append(worker._health_lock.locked())
        return atomic(*args, **kwargs)

    monkeypatch.setattr(scheduler, "atomic_text_file", watched)
    worker._write_health()
    worker._set(status="running")
    assert held == [True, True]
    assert json.loads((tmp_path / "health.json").read_text())["status"] == "running"
