"""The run context: what every stage of a run is given, built in one place.

A stage (``sfsync.extract.run``, ``sfsync.audit.run``, ``sfsync.writeback.run``)
takes a :class:`RunContext` and returns its result, whose ``counts()`` is the typed
record of :mod:`sfsync.warehouse.counts`. The context holds the settings, the open
warehouse, the stop token, the Salesforce client a whole run lends its stages, the
``run_id`` of the whole run a stage belongs to (``None``: the stage is a run of its
own) and the audit day. :func:`run_context` is the one factory: ``sfsync run``,
the worker, the demo and every single-stage command build their context with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING

from structlog.typing import FilteringBoundLogger

from sfsync.config import Settings
from sfsync.logging import get_logger
from sfsync.stop import ShouldStop, never
from sfsync.warehouse import Warehouse, open_warehouse
from sfsync.warehouse.lock import run_lock_held
from sfsync.warehouse.runs import RecordedRun, RunKind, recorded_run

if TYPE_CHECKING:
    from sfsync.salesforce import SalesforceClient

__all__ = ["RunContext", "run_context"]


@dataclass(frozen=True)
class RunContext:
    """Settings, warehouse, stop token, lent client, run id and day of one run or stage."""

    settings: Settings
    warehouse: Warehouse
    stop: ShouldStop = never
    run_id: int | None = None
    as_of: date | None = None
    client: SalesforceClient | None = field(default=None, repr=False)

    @property
    def log(self) -> FilteringBoundLogger:
        """The logger, bound to this run's id when there is one."""
        log = get_logger()
        return log.bind(run_id=self.run_id) if self.run_id is not None else log

    def salesforce(self) -> AbstractContextManager[SalesforceClient]:
        """The Salesforce client for a block: the one lent to this context, else a new one
        closed after the block. Either way the stop token reaches its waits."""
        from sfsync.salesforce import SalesforceClient

        return SalesforceClient.lease(
            self.settings.salesforce, self.settings.sync, client=self.client, should_stop=self.stop
        )

    @contextmanager
    def stage(
        self, kind: RunKind, *, lock: bool = True, as_of: date | None = None
    ) -> Iterator[RecordedRun]:
        """The recorded run a stage works in.

        Inside a whole run (``run_id`` set) that run's record: the runner holds the run
        lock and records the end. Otherwise the stage is a run of its own: it takes the
        run lock (when ``lock``; the lock row names the run) and records a ``kind`` run
        the way :func:`~sfsync.warehouse.runs.recorded_run` records every run.
        """
        own = self.run_id is None
        with (
            run_lock_held(self.warehouse, take=own and lock) as handle,
            recorded_run(
                self.warehouse, kind, run_id=self.run_id, as_of=as_of or self.as_of
            ) as record,
        ):
            if handle is not None:
                handle.set_run(record.id)
            yield record

    def within(self, run_id: int, client: SalesforceClient) -> RunContext:
        """This context for the stages of the whole run ``run_id``, lending them ``client``."""
        return replace(self, run_id=run_id, client=client)


@contextmanager
def run_context(
    settings: Settings,
    *,
    warehouse: Warehouse | None = None,
    stop: ShouldStop | None = None,
    as_of: date | None = None,
    client: SalesforceClient | None = None,
) -> Iterator[RunContext]:
    """The context for one command, job or run.

    Opens the warehouse of ``settings.database`` (checked to be at the schema head)
    and disposes of it at the end, unless the caller passes an open ``warehouse``,
    which stays the caller's.
    """
    own = warehouse is None
    opened = open_warehouse(settings.database) if warehouse is None else warehouse
    try:
        yield RunContext(settings, opened, stop or never, as_of=as_of, client=client)
    finally:
        if own:
            opened.dispose()
