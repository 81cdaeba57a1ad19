"""Start-up (issue 17): what ``sfsync runs`` imports, and the shortcuts that spare the rest.

Each shortcut is checked against the long way it replaces: the head revision
against Alembic's script directory, the Core read of the ``run`` table against
the ORM model. How long start-up takes is a figure for
tests/bench/bench_startup.py, never asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from sfsync.config import DatabaseSettings
from sfsync.warehouse import head_revision, open_warehouse, upgrade

# What `sfsync runs` never needs: Alembic (and its Mako), the ORM recording of runs,
# Salesforce and the work a run does.
RUNS_NEVER = (
    "alembic",
    "mako",
    "sfsync.warehouse.runs",
    "sfsync.warehouse.lock",
    "sfsync.context",
    "sfsync.salesforce",
    "sfsync.extract",
    "sfsync.writeback",
    "sfsync.report",
    "sfsync.runner",
    "sfsync.scheduler",
    "sfsync.devorg",
    "httpx",
    "requests",
    "simple_salesforce",
)


def python(
    code: str, *, env: dict[str, str] | None = None, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in a fresh process, without the developer's SFSYNC_ settings."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SFSYNC_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=full_env,
        cwd=cwd,
    )


def sfsync_modules(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str, set[str]]:
    """Exit code, stdout, stderr and ``sys.modules`` of a fresh ``sfsync ARGS`` process."""
    probe = (
        "import json, sys\n"
        "from sfsync.cli import main\n"
        f"sys.argv = ['sfsync', *{list(args)!r}]\n"
        "code = 0\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    code = done.code or 0\n"
        "sys.stdout.flush()\n"
        "sys.stderr.write('\\nMODULES ' + json.dumps(sorted(sys.modules)) + '\\n')\n"
        "sys.exit(code)\n"
    )
    done = python(probe, env=env, cwd=cwd)
    stderr, _, modules = done.stderr.rpartition("\nMODULES ")
    return done.returncode, done.stdout, stderr, set(json.loads(modules))


def imported(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    """The ``packages`` of which ``modules`` holds the package itself or a submodule."""
    return sorted(
        p for p in packages if p in modules or any(m.startswith(p + ".") for m in modules)
    )


def warehouse_at_head(tmp_path: Path, url: str | None = None) -> str:
    """A warehouse (SQLite unless ``url``) at this sfsync's head with three recorded runs."""
    from sfsync.warehouse.counts import AuditCounts, RuleTally, SyncCounts
    from sfsync.warehouse.runs import finish_run, record_counts, start_run

    url = url or f"sqlite:///{tmp_path / 'warehouse.db'}"
    warehouse = open_warehouse(DatabaseSettings(url=url), require_head=False, create=True)
    try:
        with warehouse.engine.begin() as conn:
            upgrade(conn)
        first = start_run(warehouse, "sync")
        record_counts(warehouse, first, SyncCounts(status="ok"))
        finish_run(warehouse, first, "ok", api_calls=12)
        second = start_run(warehouse, "audit", as_of=date(2025, 3, 14))
        record_counts(
            warehouse, second, AuditCounts(rules={"close_date_past": RuleTally(open=3, new=1)})
        )
        finish_run(warehouse, second, "failed", error="PartialFailure: 1 write failed")
        start_run(warehouse, "run")  # still running: no end, no counts
    finally:
        warehouse.dispose()
    return url


# --------------------------------------------------------------------------- imports


def test_runs_lists_the_runs_without_alembic_or_the_work(tmp_path: Path) -> None:
    url = warehouse_at_head(tmp_path)
    code, stdout, stderr, modules = sfsync_modules(
        "runs", env={"SFSYNC_DATABASE_URL": url}, cwd=tmp_path
    )
    assert code == 0, stderr
    assert stdout.splitlines()[0] == "last 3 runs"
    assert imported(modules, RUNS_NEVER) == []


# --------------------------------------------------------------------------- the schema check


def test_head_revision_is_the_newest_migration() -> None:
    """HEAD_REVISION, which `sfsync runs` compares with, is the script directory's only head.

    A new migration must change it: otherwise a warehouse one migration behind would
    pass the check.
    """
    from alembic.script import ScriptDirectory

    from sfsync.warehouse.migrate import HEAD_REVISION, alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [HEAD_REVISION]
    assert head_revision() == HEAD_REVISION


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (None, "the database has no sfsync schema yet: run `sfsync db upgrade` to create it"),
        ([], "the database has no sfsync schema yet: run `sfsync db upgrade` to create it"),
        (
            ["ffff9999"],
            "the database is at revision 'ffff9999', which this sfsync does not know",
        ),
    ],
    ids=["no-version-table", "empty-version-table", "unknown-revision"],
)
def test_runs_refuses_a_warehouse_not_at_head_as_before(
    tmp_path: Path, rows: list[str] | None, message: str
) -> None:
    """Only a version table holding exactly the head skips Alembic; the rest takes the long way."""
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    warehouse = open_warehouse(DatabaseSettings(url=url), require_head=False, create=True)
    try:
        if rows is not None:
            with warehouse.engine.begin() as conn:
                conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
                for row in rows:
                    conn.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": row})
    finally:
        warehouse.dispose()
    code, stdout, stderr, _ = sfsync_modules(
        "--log-format", "console", "runs", env={"SFSYNC_DATABASE_URL": url}, cwd=tmp_path
    )
    assert code == 2
    assert stdout == ""
    assert stderr.startswith(f"error: {message}")


# --------------------------------------------------------------------------- the run rows


def test_the_core_run_table_is_the_models(tmp_path: Path) -> None:
    """sfsync.warehouse.recent reads what the ORM model maps: same columns, same types."""
    from sfsync.warehouse.models import Run
    from sfsync.warehouse.recent import RUN

    mapped = {c.name: type(c.type) for c in Run.__table__.columns}
    assert {c.name: type(c.type) for c in RUN.columns} == mapped


def test_recent_runs_read_as_the_orm_reads_them(tmp_path: Path, db_url: str) -> None:
    from sqlalchemy import select

    from sfsync.warehouse.models import Run
    from sfsync.warehouse.recent import RUN, recent_runs

    warehouse = open_warehouse(DatabaseSettings(url=warehouse_at_head(tmp_path, db_url)))
    try:
        with warehouse.session() as session:
            expected = list(session.scalars(select(Run).order_by(Run.id.desc()).limit(2)))
        rows = recent_runs(warehouse, 2)
        assert [r.id for r in rows] == [3, 2]
        for row, run in zip(rows, expected, strict=True):
            for name in RUN.columns.keys():  # noqa: SIM118 - a ColumnCollection
                assert getattr(row, name) == getattr(run, name), name
        assert rows[1].as_of == date(2025, 3, 14)
        assert rows[1].started_at.tzinfo == UTC
        assert rows[1].started_at <= datetime.now(UTC)
        assert rows[1].counts["audit"]["rules"]["close_date_past"]["open"] == 3
    finally:
        warehouse.dispose()
