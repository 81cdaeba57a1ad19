"""The run context: a stage on its own takes the lock and records itself; inside a run it
does neither, and its counts go into the run's."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from sfsync.config import DatabaseSettings, Settings
from sfsync.context import RunContext, run_context
from sfsync.errors import LockHeld
from sfsync.warehouse import Warehouse, open_warehouse, upgrade
from sfsync.warehouse.counts import AuditCounts
from sfsync.warehouse.lock import acquire_run_lock
from sfsync.warehouse.models import Run, RunLock
from sfsync.warehouse.runs import run_counts


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'w.db'}"))
    warehouse = open_warehouse(settings.database, require_head=False, create=True)
    with warehouse.engine.begin() as conn:
        upgrade(conn)
    warehouse.dispose()
    return settings


def _runs(warehouse: Warehouse) -> list[Run]:
    with warehouse.session() as session:
        return list(session.scalars(select(Run).order_by(Run.id)))


def _counts(rules: int) -> AuditCounts:
    return AuditCounts(as_of=date(2024, 8, 15), open_by_severity={"warn": rules})


def test_a_stage_on_its_own_holds_the_lock_names_its_run_and_records_it(
    settings: Settings,
) -> None:
    with run_context(settings) as ctx:
        with ctx.stage("audit") as record:
            record.counts = lambda: _counts(3)
            with pytest.raises(LockHeld), acquire_run_lock(ctx.warehouse):
                pass
            with ctx.warehouse.session() as session:
                [lock] = session.scalars(select(RunLock))
            assert lock.run_id == record.id
        [run] = _runs(ctx.warehouse)
        assert (run.id, run.kind, run.status, run.error) == (record.id, "audit", "ok", None)
        assert run_counts(ctx.warehouse, run.id).audit == _counts(3)
        with acquire_run_lock(ctx.warehouse):  # released
            pass


def test_a_stage_inside_a_run_records_its_counts_into_that_run_and_takes_no_lock(
    settings: Settings,
) -> None:
    with run_context(settings) as ctx, ctx.stage("run") as whole:
        inside = RunContext(ctx.settings, ctx.warehouse, run_id=whole.id)
        with inside.stage("audit") as record:
            record.counts = lambda: _counts(1)
            assert record.id == whole.id
        assert [r.id for r in _runs(ctx.warehouse)] == [whole.id]
        assert run_counts(ctx.warehouse, whole.id).audit == _counts(1)


def test_a_stage_that_fails_keeps_its_counts_and_error_text(settings: Settings) -> None:
    with run_context(settings) as ctx:
        with pytest.raises(ZeroDivisionError), ctx.stage("sync") as record:  # noqa: PT012
            record.counts = lambda: _counts(2)
            raise ZeroDivisionError("a bug in the stage")
        [run] = _runs(ctx.warehouse)
        assert run.status == "failed"
        assert run.error is not None
        assert "ZeroDivisionError" in run.error
        assert run_counts(ctx.warehouse, run.id).audit == _counts(2)


def test_the_factory_disposes_only_the_warehouse_it_opened(settings: Settings) -> None:
    mine = open_warehouse(settings.database)
    with run_context(settings, warehouse=mine) as ctx:
        assert ctx.warehouse is mine
    assert _runs(mine) == []  # still usable: the caller's to dispose
    mine.dispose()
