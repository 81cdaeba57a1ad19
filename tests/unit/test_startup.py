"""Start-up (issue 17): what ``sfsync runs`` imports, and the shortcuts that spare the rest.

Each shortcut is checked against the long way it replaces: the head revision
against Alembic's script directory, the Core read of the ``run`` table against
the ORM model, deferred logging against logging configured at once. How long
start-up takes is a figure for tests/bench/bench_startup.py, never asserted here.
"""

from __future__ import annotations

import gc
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from sfsync.cli._startup import START_UP_THRESHOLD, WORK_THRESHOLD
from sfsync.config import DatabaseSettings
from sfsync.warehouse import head_revision, open_warehouse, upgrade
from tests.cli_helpers import CLI_FRAME, imported, python, run_cli, sfsync_modules

# What the config's validation of the rules' settings never needs: the ORM models (and
# so sqlalchemy.orm), the PostgreSQL dialect, the SQL the rules build over the tables.
RULES_NEVER = (
    "sfsync.warehouse.models",
    "sqlalchemy.orm",
    "sqlalchemy.dialects.postgresql",
    "sfsync.audit._context",
    "sfsync.audit._expressions",
    "sfsync.audit._slipping",
)

# What `sfsync runs` never needs: Alembic (and its Mako), structlog unless something
# is logged, rich when stdout is not a terminal, the ORM recording of runs, the
# rules' SQL, Salesforce and the work a run does.
RUNS_NEVER = (
    *RULES_NEVER,
    "alembic",
    "mako",
    "structlog",
    "rich",
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


def test_runs_lists_the_runs_without_alembic_structlog_or_the_work(tmp_path: Path) -> None:
    url = warehouse_at_head(tmp_path)
    code, stdout, stderr, modules = sfsync_modules(
        "runs", env={"SFSYNC_DATABASE_URL": url}, cwd=tmp_path
    )
    assert code == 0, stderr
    assert stdout.splitlines()[0] == "last 3 runs"
    assert "sfsync.runs_view" in modules
    assert imported(modules, RUNS_NEVER) == []
    # No other command's module: only the frame and the module ``runs`` lives in.
    assert [
        m
        for m in modules
        if m.startswith("sfsync.cli.") and m not in (*CLI_FRAME, "sfsync.cli.run")
    ] == []


def test_runs_as_json_with_json_logs_imports_no_logging_library(tmp_path: Path) -> None:
    """A config file asking for JSON logs: nothing is logged, so structlog is not needed."""
    url = warehouse_at_head(tmp_path)
    config = tmp_path / "sfsync.yaml"
    config.write_text(f"database:\n  url: {url}\nlogging:\n  format: json\n", encoding="utf-8")
    code, stdout, stderr, modules = sfsync_modules(
        "runs", "--format", "json", env={"SFSYNC_CONFIG": str(config)}, cwd=tmp_path
    )
    assert code == 0, stderr
    assert [row["kind"] for row in json.loads(stdout)] == ["run", "audit", "sync"]
    assert stderr.strip() == ""
    assert imported(modules, RUNS_NEVER) == []


# --------------------------------------------------------------------------- the collector

# `sfsync runs` in a fresh process, reporting the collector's thresholds while the
# settings are read and after the command, and how many objects were frozen.
COLLECTOR_PROBE = """
import gc, json, sys
import sfsync.config
from sfsync.cli import main

default = gc.get_threshold()
during = []
read_settings = sfsync.config.load_settings

def load_settings(*args, **kwargs):
    during.append(gc.get_threshold())
    return read_settings(*args, **kwargs)

sfsync.config.load_settings = load_settings
sys.argv = ["sfsync", "runs"]
try:
    main()
except SystemExit as done:
    code = done.code
report = {"code": code, "default": default, "during": during,
          "after": gc.get_threshold(), "frozen": gc.get_freeze_count()}
print(json.dumps(report), file=sys.stderr)
"""


def test_the_console_process_collects_rarely_while_starting_then_at_the_working_threshold(
    tmp_path: Path,
) -> None:
    """The console entry point: rare collections until the settings are read, then the
    working threshold, with what start-up created frozen out of later collections."""
    url = warehouse_at_head(tmp_path)
    done = python(COLLECTOR_PROBE, env={"SFSYNC_DATABASE_URL": url}, cwd=tmp_path)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, done.stderr
    assert report["during"] == [[START_UP_THRESHOLD, *report["default"][1:]]]
    assert report["after"] == [WORK_THRESHOLD, *report["default"][1:]]
    assert report["frozen"] > 10_000  # the modules, classes and settings of start-up


def test_a_command_run_in_process_leaves_the_collector_as_it_is(tmp_path: Path) -> None:
    """A test or a Python caller invoking the CLI keeps its own collector: nothing frozen."""
    url = warehouse_at_head(tmp_path)
    before = (gc.get_threshold(), gc.get_freeze_count())
    outcome = run_cli("runs", env={"SFSYNC_DATABASE_URL": url})
    assert outcome.exit_code == 0, outcome.output
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


def test_a_config_warning_is_still_logged_as_json(tmp_path: Path) -> None:
    """No database.url: the warning is an event, as before structlog was imported lazily."""
    code, _, stderr, modules = sfsync_modules("--log-format", "json", "runs", env={}, cwd=tmp_path)
    events = [json.loads(line) for line in stderr.strip().splitlines()]
    assert [e["event"] for e in events] == ["config.warning", "error"]
    assert "no database is configured" in events[0]["message"]
    assert events[1]["message"].startswith("the warehouse 'sfsync.db' does not exist")
    assert code == events[1]["exit_code"] == 2
    assert "structlog" in modules


def test_the_rules_and_their_settings_load_without_the_orm_or_postgresql(tmp_path: Path) -> None:
    """The config validates audit.rules and writeback.rules through the rule registry,
    which needs each rule's id, settings model and metadata, not the SQL it builds."""
    config = tmp_path / "sfsync.yaml"
    config.write_text(
        "audit:\n"
        "  rules:\n"
        "    stale_last_modified: {min_stage: Prove, thresholds: {europe: [7]}}\n"
        "    close_date_slipping: {min_extensions: 2}\n"
        "writeback:\n"
        "  rules:\n"
        "    close_date_past: {due_in_days: 1}\n",
        encoding="utf-8",
    )
    probe = (
        "import json, sys\n"
        "import sfsync.audit.rules as rules\n"
        "after_rules = sorted(sys.modules)\n"
        "from sfsync.config import load_settings\n"
        f"settings = load_settings({str(config)!r}).settings\n"
        "stale = settings.audit.rule('stale_last_modified')\n"
        "print(json.dumps({\n"
        "    'rules': list(rules.rule_ids()),\n"
        "    'thresholds': stale.thresholds['europe'],\n"
        "    'min_extensions': settings.audit.rule('close_date_slipping').min_extensions,\n"
        "    'due': settings.writeback.rule('close_date_past').due_in_days,\n"
        "    'after_rules': after_rules,\n"
        "    'after_config': sorted(sys.modules),\n"
        "}))\n"
    )
    done = python(probe, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["rules"] == [
        "close_date_past",
        "stale_last_modified",
        "missing_rev_rec_terms",
        "close_date_slipping",
    ]
    assert (seen["thresholds"], seen["min_extensions"], seen["due"]) == ([7], 2, 1)
    assert imported(set(seen["after_rules"]), RULES_NEVER) == []
    assert imported(set(seen["after_config"]), RULES_NEVER) == []


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


# --------------------------------------------------------------------------- deferred logging


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_logging_configured_before_structlog_is_imported_logs_as_configured(
    tmp_path: Path, fmt: str
) -> None:
    """configure_logging leaves structlog for the first event; that event looks the same."""
    probe = (
        "import logging, sys\n"
        "from sfsync.logging import configure_logging, get_logger, register_secrets\n"
        f"configure_logging({fmt!r}, verbosity=2)\n"
        "register_secrets(['hush-hush-4242'])\n"
        "assert 'structlog' not in sys.modules\n"
        "logging.getLogger('alembic').info('stdlib first hush-hush-4242')\n"
        "assert 'structlog' in sys.modules\n"
        "get_logger().debug('own.event', password='pw')\n"
    )
    done = python(probe, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2, lines
    assert "hush-hush-4242" not in done.stderr
    if fmt == "json":
        stdlib, own = (json.loads(line) for line in lines)
        assert stdlib["event"] == "stdlib first [redacted]"
        assert stdlib["logger"] == "alembic"
        assert stdlib["level"] == "info"
        assert own["event"] == "own.event"
        assert own["password"] == "[redacted]"
        assert own["level"] == "debug"
    else:
        assert "stdlib first [redacted]" in lines[0]
        assert "alembic" in lines[0]
        assert "own.event" in lines[1]
        assert "[debug    ]" in lines[1]


def test_the_last_configuration_wins_when_deferred(tmp_path: Path) -> None:
    """Configured twice before any event (the CLI does): the second format and level hold."""
    probe = (
        "import sys\n"
        "from sfsync.logging import configure_logging, get_logger\n"
        "configure_logging('console')\n"
        "configure_logging('json', level='WARNING')\n"
        "assert 'structlog' not in sys.modules\n"
        "log = get_logger()\n"
        "log.info('dropped')\n"
        "log.warning('kept')\n"
    )
    done = python(probe, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["event"] for line in done.stderr.strip().splitlines()] == ["kept"]
