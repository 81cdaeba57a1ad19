"""A crashed holder never locks the warehouse for ever (issue 12, items 10 and 11)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

from sfsync.warehouse.models import Run, RunLock
from tests.cli_helpers import run_sfsync
from tests.integration.conftest import OrgFactory, RunningOrg
from tests.reliability.kills import CRASHED, finish, sfsync_process

# The next process rewrites the dead holder's pid to its own before it starts sfsync
# (exec keeps the pid): what a container whose sfsync runs as PID 1 sees after a kill -9
# and a restart, on any machine.
AS_THE_SAME_PID = """
import os, sys
from sqlalchemy import update
from sfsync.config import load_settings
from sfsync.warehouse import open_warehouse
from sfsync.warehouse.models import RunLock
warehouse = open_warehouse(load_settings().settings.database)
with warehouse.engine.begin() as conn:
    conn.execute(update(RunLock).values(pid=os.getpid()))
warehouse.dispose()
os.execv(sys.executable, [sys.executable, "-m", "sfsync", *sys.argv[1:]])
"""


def _statuses(org: RunningOrg, kind: str) -> list[str]:
    warehouse = org.warehouse()
    with warehouse.session() as session:
        return [
            r.status for r in session.scalars(select(Run).where(Run.kind == kind).order_by(Run.id))
        ]


def test_a_run_killed_as_pid_1_is_taken_over_by_the_next_pid_1(
    running_org: OrgFactory, db_url: str, tmp_path: Path
) -> None:
    """kill -9 mid-run, restart with the same pid: the lock is taken over, the run interrupted."""
    org = running_org(300, database_url=db_url)
    log = tmp_path / "run.log"
    crashed = finish(sfsync_process("run", env=org.env, log=log, crash_at="sync.page_committed:1"))
    assert crashed == CRASHED
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFSYNC_")}
    env.update(org.env)
    again = subprocess.run(
        [sys.executable, "-c", AS_THE_SAME_PID, "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert _statuses(org, "run") == ["interrupted", "ok"]


def test_a_heartbeat_days_old_is_taken_over_whatever_the_pid(running_org: OrgFactory) -> None:
    """A lock row of a live pid on this host, not beaten for 3 days, no longer holds anything."""
    org = running_org(300)
    warehouse = org.warehouse()
    old = datetime.now(UTC) - timedelta(days=3)
    with warehouse.engine.begin() as conn:
        conn.execute(
            insert(RunLock).values(
                name="run",
                hostname=socket.gethostname(),
                pid=1,  # alive on every machine
                acquired_at=old,
                heartbeat_at=old,
            )
        )
    outcome = run_sfsync("run", env=org.env)
    assert outcome.exit_code == 0, outcome.stderr[-2000:]
    assert '"event": "lock.taken_over"' in outcome.stderr


def test_a_killed_sync_is_marked_interrupted_when_its_lock_is_taken_over(
    running_org: OrgFactory, tmp_path: Path
) -> None:
    org = running_org(300)
    log = tmp_path / "sync.log"
    assert (
        finish(sfsync_process("sync", env=org.env, log=log, crash_at="sync.page_committed:1"))
        == CRASHED
    )
    again = run_sfsync("sync", env=org.env)
    assert again.exit_code == 0, again.stderr[-2000:]
    assert _statuses(org, "sync") == ["interrupted", "ok"]
