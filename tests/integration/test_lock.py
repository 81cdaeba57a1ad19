"""The run lock: one run at a time per warehouse, and crashed holders never block forever."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from sqlalchemy import select, update

from sfsync.config import DatabaseSettings
from sfsync.errors import LockHeld
from sfsync.warehouse import open_warehouse, upgrade
from sfsync.warehouse.lock import acquire_run_lock
from sfsync.warehouse.models import Opportunity, RunLock
from tests.cli_helpers import run_sfsync
from tests.integration.conftest import OrgFactory


def ready(url: str):  # type: ignore[no-untyped-def]
    warehouse = open_warehouse(DatabaseSettings(url=url), require_head=False, create=True)
    with warehouse.engine.begin() as conn:
        upgrade(conn)
    return warehouse


def test_second_holder_is_refused_naming_the_first(db_url: str) -> None:
    warehouse = ready(db_url)
    first = acquire_run_lock(warehouse)
    first.set_run(7)
    with pytest.raises(LockHeld, match=r"pid \d+ on .*, run 7") as exc:
        acquire_run_lock(warehouse)
    assert exc.value.exit_code == 6
    first.release()
    acquire_run_lock(warehouse).release()
    warehouse.dispose()


def test_lock_of_a_dead_process_is_taken_over(db_url: str) -> None:
    """A holder that died without releasing (SIGKILL) does not block the next run."""
    warehouse = ready(db_url)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import time
                from sfsync.config import DatabaseSettings
                from sfsync.warehouse import open_warehouse
                from sfsync.warehouse.lock import acquire_run_lock
                acquire_run_lock(open_warehouse(DatabaseSettings(url={db_url!r})))
                print("held", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(LockHeld):
        acquire_run_lock(warehouse)
    holder.kill()
    holder.wait()
    deadline = time.monotonic() + 10
    while True:  # PostgreSQL notices the dead connection within moments
        try:
            acquire_run_lock(warehouse).release()
            break
        except LockHeld:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    warehouse.dispose()


def test_stale_heartbeat_from_another_host_is_taken_over(sqlite_url: str) -> None:
    warehouse = ready(sqlite_url)
    other = acquire_run_lock(warehouse)
    with warehouse.engine.begin() as conn:
        conn.execute(update(RunLock).values(hostname="elsewhere"))
    with pytest.raises(LockHeld, match="elsewhere"):
        acquire_run_lock(warehouse)
    taken = acquire_run_lock(warehouse, stale_after_s=0)
    with warehouse.engine.connect() as conn:
        row = conn.execute(select(RunLock)).one()
    assert row.hostname != "elsewhere"
    taken.release()
    other.release()
    warehouse.dispose()


def test_every_writer_command_exits_6_while_another_process_holds_the_lock(
    running_org: OrgFactory,
) -> None:
    """README: two runs never overlap. Every command that writes to the warehouse or to
    Salesforce takes the lock (exit 6 naming the holder); read-only commands do not."""
    org = running_org(30)
    warehouse = org.warehouse()
    assert run_sfsync("sync", env=org.env).exit_code == 0
    assert run_sfsync("audit", env=org.env).exit_code in (0, 1)
    with warehouse.engine.connect() as conn:
        opportunity = conn.execute(select(Opportunity.id).limit(1)).scalar()
    holder = acquire_run_lock(warehouse)
    holder.set_run(99)
    try:
        writers = {
            "sync": ["sync"],
            "audit": ["audit"],
            "writeback --apply": ["writeback", "--apply"],
            "waive": [
                "waive",
                "close_date_past",
                str(opportunity),
                "--reason",
                "r",
                "--until",
                "2999-01-01",
            ],
            "db upgrade": ["db", "upgrade"],
            "run": ["run"],
        }
        for name, args in writers.items():
            outcome = run_sfsync(*args, env=org.env)
            assert outcome.exit_code == 6, (name, outcome.output)
            assert "another sfsync run holds the warehouse lock" in outcome.stderr, name
            assert "run 99" in outcome.stderr, name
        for args in (["findings"], ["runs"], ["db", "current"], ["writeback"]):
            outcome = run_sfsync(*args, env=org.env)
            assert outcome.exit_code == 0, (args, outcome.output)
    finally:
        holder.release()
