"""Every run is recorded the same way: a stage that dies of a bug says so in its run row."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from sfsync.warehouse import Warehouse
from sfsync.warehouse.counts import RunCounts
from sfsync.warehouse.models import Run
from tests.integration.conftest import OrgFactory, RunningOrg


class Boom(RuntimeError):
    """A bug inside a stage."""


def _explode(*_args: object, **_kwargs: object) -> None:
    raise Boom("the stage broke")


def _sync(org: RunningOrg, warehouse: Warehouse) -> None:
    from sfsync.extract import run_sync

    run_sync(warehouse, org.settings)


def _audit(org: RunningOrg, warehouse: Warehouse) -> None:
    from sfsync.audit import run_audit

    run_audit(warehouse, org.settings)


def _writeback(org: RunningOrg, warehouse: Warehouse) -> None:
    from sfsync.writeback import run_writeback

    run_writeback(warehouse, org.settings, apply=True, force=True)


def _run(org: RunningOrg, warehouse: Warehouse) -> None:
    from sfsync.runner import run_once

    run_once(warehouse, org.settings)


CASES: dict[str, tuple[str, Callable[[RunningOrg, Warehouse], None]]] = {
    "sync": ("sfsync.extract._sync._Syncer.run", _sync),
    "audit": ("sfsync.audit._api._audit", _audit),
    "writeback": ("sfsync.writeback._run.plan_writeback", _writeback),
    "run": ("sfsync.extract._sync._Syncer.run", _run),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_a_stage_that_raises_a_bug_is_recorded_failed_with_its_error_text(
    running_org: OrgFactory, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    org = running_org(50)
    warehouse = org.warehouse()
    if kind in ("audit", "writeback"):
        _sync(org, warehouse)
    target, call = CASES[kind]
    monkeypatch.setattr(target, _explode)
    with pytest.raises(Boom):
        call(org, warehouse)
    with warehouse.session() as session:
        run = session.scalars(select(Run).where(Run.kind == kind).order_by(Run.id.desc())).first()
    assert run is not None
    assert (run.status, run.error) == ("failed", "Boom: the stage broke")
    assert run.ended_at is not None
    if kind in ("sync", "run"):
        counts = RunCounts.of(run.counts)
        if kind == "sync":
            assert counts.sync is not None
            assert counts.sync.status == "failed"
        else:
            assert counts.stages == {}
