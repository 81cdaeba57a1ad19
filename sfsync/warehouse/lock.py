"""The run lock: two sfsync runs never work on one warehouse at the same time.

PostgreSQL: a session-level advisory lock on a dedicated connection. The server
releases it when the holder's connection dies, so a killed run never blocks the
next one. The holder is also written to ``run_lock`` so the refusal can name it.

SQLite: a row in ``run_lock``, taken and taken over with compare-and-swap
updates. A row whose process is gone (same host, pid not running) or whose
heartbeat is older than ``stale_after_s`` (another host) is taken over, and
the takeover is logged: a crashed run must not lock the warehouse forever.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, text, update

from sfsync.errors import LockHeld
from sfsync.logging import get_logger
from sfsync.warehouse._engine import Warehouse
from sfsync.warehouse.models import RunLock

__all__ = ["RunLockHandle", "acquire_run_lock"]

log = get_logger()
LOCK_NAME = "run"
_ADVISORY_KEY = 0x5F5_1C  # "sfsync": any constant shared by every sfsync process
HEARTBEAT_S = 30.0


def _now() -> datetime:
    return datetime.now(UTC)


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
    """Take the run lock or raise :class:`LockHeld` (exit 6) naming the holder."""
    holder = _holder()
    if warehouse.dialect == "postgresql":
        return _acquire_postgres(warehouse, holder)
    return _acquire_row(warehouse, holder, stale_after_s)


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
            if not _stale(row, stale_after_s):
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


def _stale(row: Any, stale_after_s: float) -> bool:
    if row.hostname == socket.gethostname():
        return not _pid_alive(int(row.pid))
    heartbeat: datetime = row.heartbeat_at
    if heartbeat.tzinfo is None:
        heartbeat = heartbeat.replace(tzinfo=UTC)
    return _now() - heartbeat > timedelta(seconds=stale_after_s)
