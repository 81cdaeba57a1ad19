"""The run lock: two sfsync runs never work on one warehouse at the same time.

PostgreSQL: a session-level advisory lock on a dedicated connection. The server
releases it when the holder's connection dies, so a killed run never blocks the
next one. The holder is also written to ``run_lock`` so the refusal can name it.

SQLite: a row in ``run_lock``, taken and taken over with compare-and-swap
updates, beaten every 30 s while held. A row is taken over (and the takeover
logged) when its heartbeat is older than ``stale_after_s``, whatever its host and
pid, or, on this host, when its pid is gone or is this very process's (which does
not hold it: a container whose sfsync runs as PID 1 meets its own pid again after
a restart). A crashed run never locks the warehouse for ever.

Whoever takes the lock marks the runs still ``running`` as ``interrupted``: every
command that records a run holds the lock, so with the lock held, those runs'
processes are gone.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, text, update

from sfsync.errors import LockHeld
from sfsync.logging import get_logger
from sfsync.warehouse._engine import Warehouse
from sfsync.warehouse.models import RunLock
from sfsync.warehouse.runs import mark_interrupted_runs

__all__ = ["RunLockHandle", "acquire_run_lock", "run_lock_held"]

log = get_logger()
LOCK_NAME = "run"
_ADVISORY_KEY = 0x5F5_1C  # "sfsync": any constant shared by every sfsync process
HEARTBEAT_S = 30.0


# Locks this process holds: (database URL, acquired_at). A row naming our pid that is
# not among them was left by an earlier process that had the same pid.
_held: set[tuple[str, datetime]] = set()
_held_lock = threading.Lock()


def _now() -> datetime:
    return datetime.now(UTC)


def _key(warehouse: Warehouse, acquired_at: datetime) -> tuple[str, datetime]:
    if acquired_at.tzinfo is None:
        acquired_at = acquired_at.replace(tzinfo=UTC)
    return (warehouse.settings.display_url(), acquired_at)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLockHandle:
    """A held run lock; release it (or use as a context manager)."""

    def __init__(
        self, warehouse: Warehouse, holder: dict[str, Any], conn: Connection | None
    ) -> None:
        self.warehouse = warehouse
        self.holder = holder
        self._conn = conn  # PostgreSQL: the connection that owns the advisory lock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        with _held_lock:
            _held.add(_key(warehouse, holder["acquired_at"]))
        if conn is None:
            self._thread = threading.Thread(
                target=self._beat, name="sfsync-lock-heartbeat", daemon=True
            )
            self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(Exception), self.warehouse.engine.begin() as conn:
                conn.execute(update(RunLock).where(*self._mine()).values(heartbeat_at=_now()))

    def _mine(self) -> list[Any]:
        return [
            RunLock.name == LOCK_NAME,
            RunLock.pid == self.holder["pid"],
            RunLock.hostname == self.holder["hostname"],
            RunLock.acquired_at == self.holder["acquired_at"],
        ]

    def set_run(self, run_id: int) -> None:
        self.holder["run_id"] = run_id
        with self.warehouse.engine.begin() as conn:
            conn.execute(update(RunLock).where(*self._mine()).values(run_id=run_id))

    def release(self) -> None:
        self._stop.set()
        with _held_lock:
            _held.discard(_key(self.warehouse, self.holder["acquired_at"]))
        with contextlib.suppress(Exception), self.warehouse.engine.begin() as conn:
            conn.execute(delete(RunLock).where(*self._mine()))
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_KEY})
                self._conn.commit()
            self._conn.close()
            self._conn = None

    def __enter__(self) -> RunLockHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder() -> dict[str, Any]:
    now = _now()
    return {
        "name": LOCK_NAME,
        "run_id": None,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "acquired_at": now,
        "heartbeat_at": now,
    }


def _describe(row: Any) -> str:
    run = f", run {row.run_id}" if row.run_id else ""
    return f"pid {row.pid} on {row.hostname} since {row.acquired_at:%Y-%m-%d %H:%M:%S} UTC{run}"


def acquire_run_lock(warehouse: Warehouse, *, stale_after_s: float = 600.0) -> RunLockHandle:
    """Take the run lock or raise :class:`LockHeld` (exit 6) naming the holder.

    Runs left ``running`` by processes that died are marked ``interrupted``.
    """
    holder = _holder()
    if warehouse.dialect == "postgresql":
        handle = _acquire_postgres(warehouse, holder)
    else:
        handle = _acquire_row(warehouse, holder, stale_after_s)
    try:
        stale = mark_interrupted_runs(warehouse)
    except BaseException:
        handle.release()
        raise
    if stale:
        log.warning("run.interrupted_found", runs=stale)
    return handle


@contextlib.contextmanager
def run_lock_held(warehouse: Warehouse, *, take: bool) -> Iterator[RunLockHandle | None]:
    """The run lock for the block when ``take`` (a command's own run), else nothing.

    Inside a whole run (``sfsync run``), the runner already holds it for its stages.
    """
    if not take:
        yield None
        return
    with acquire_run_lock(warehouse) as handle:
        yield handle


def _acquire_postgres(warehouse: Warehouse, holder: dict[str, Any]) -> RunLockHandle:
    conn = warehouse.engine.connect()
    got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _ADVISORY_KEY}).scalar()
    conn.commit()
    if not got:
        with warehouse.engine.connect() as other:
            row = other.execute(select(RunLock).where(RunLock.name == LOCK_NAME)).first()
        conn.close()
        who = _describe(row) if row else "another sfsync process"
        raise LockHeld(f"another sfsync run holds the warehouse lock ({who}); try again later")
    with warehouse.engine.begin() as info:
        # The advisory lock is the truth; this row only says who holds it.
        info.execute(delete(RunLock).where(RunLock.name == LOCK_NAME))
        info.execute(insert(RunLock).values(**holder))
    return RunLockHandle(warehouse, holder, conn)


def _acquire_row(
    warehouse: Warehouse, holder: dict[str, Any], stale_after_s: float
) -> RunLockHandle:
    for _ in range(3):
        with warehouse.engine.begin() as conn:
            inserted = conn.execute(_insert_ignore(conn).values(**holder))
            if (getattr(inserted, "rowcount", 0) or 0) == 1:
                return RunLockHandle(warehouse, holder, None)
            row = conn.execute(select(RunLock).where(RunLock.name == LOCK_NAME)).first()
            if row is None:
                continue  # released between our insert and read: try again
            if not _stale(warehouse, row, stale_after_s):
                raise LockHeld(
                    f"another sfsync run holds the warehouse lock ({_describe(row)}); "
                    "try again later"
                )
            taken = conn.execute(
                update(RunLock)
                .where(
                    RunLock.name == LOCK_NAME,
                    RunLock.pid == row.pid,
                    RunLock.hostname == row.hostname,
                    RunLock.acquired_at == row.acquired_at,
                )
                .values(**{k: v for k, v in holder.items() if k != "name"})
            )
            if (getattr(taken, "rowcount", 0) or 0) == 1:
                log.warning("lock.taken_over", previous=_describe(row))
                return RunLockHandle(warehouse, holder, None)
    raise LockHeld("could not take the warehouse lock: other sfsync processes keep racing for it")


def _insert_ignore(conn: Connection) -> Any:
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(RunLock).on_conflict_do_nothing(index_elements=["name"])


def _stale(warehouse: Warehouse, row: Any, stale_after_s: float) -> bool:
    heartbeat: datetime = row.heartbeat_at
    if heartbeat.tzinfo is None:
        heartbeat = heartbeat.replace(tzinfo=UTC)
    if _now() - heartbeat > timedelta(seconds=stale_after_s):
        return True  # nobody has beaten it for that long, whatever its pid says
    if row.hostname != socket.gethostname():
        return False
    if int(row.pid) == os.getpid():
        with _held_lock:
            return _key(warehouse, row.acquired_at) not in _held
    return not _pid_alive(int(row.pid))
