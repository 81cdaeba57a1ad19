"""The warehouse schema on SQLite and a real PostgreSQL: upgrade, revisions, drift."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, event, func, insert, inspect, select, text, update
from sqlalchemy.exc import IntegrityError

from sfsync.config import DatabaseSettings
from sfsync.errors import DatabaseUnreachable, SchemaError
from sfsync.extract._load import record_snapshots
from sfsync.warehouse import head_revision, open_warehouse, upgrade
from sfsync.warehouse.migrate import alembic_config, current_revision
from sfsync.warehouse.models import (
    Base,
    Finding,
    Opportunity,
    OpportunitySnapshot,
    Run,
    live_rows,
    table_of,
)
from tests.cli_helpers import run_cli


def upgraded(url: str):  # type: ignore[no-untyped-def]
    warehouse = open_warehouse(DatabaseSettings(url=url), require_head=False, create=True)
    with warehouse.engine.begin() as conn:
        upgrade(conn)
    return warehouse


def test_upgrade_creates_every_table_and_second_run_is_a_no_op(db_url: str) -> None:
    warehouse = open_warehouse(DatabaseSettings(url=db_url), require_head=False, create=True)
    with warehouse.engine.begin() as conn:
        assert upgrade(conn) == (None, head_revision())
    with warehouse.engine.begin() as conn:
        assert upgrade(conn) == (head_revision(), head_revision())
        tables = set(conn.dialect.get_table_names(conn))
    assert set(Base.metadata.tables) <= tables
    warehouse.dispose()


def test_alembic_check_finds_no_drift(db_url: str) -> None:
    """The models and the migrations describe the same schema (alembic check)."""
    warehouse = upgraded(db_url)
    with warehouse.engine.connect() as conn:
        command.check(alembic_config(conn))
    warehouse.dispose()


def test_a_warehouse_at_0001_upgrades_keeping_its_rows_and_counts_them_from_its_indexes(
    db_url: str,
) -> None:
    """0002 adds the partial indexes of rows marked deleted to a warehouse that has rows;
    the live rows counted from the indexes are the rows not marked deleted; and it goes
    back down to 0001 cleanly."""
    warehouse = open_warehouse(DatabaseSettings(url=db_url), require_head=False, create=True)
    stamp = datetime(2024, 8, 1, tzinfo=UTC)
    with warehouse.engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
        conn.execute(
            insert(table_of(Opportunity)),
            [
                {
                    "id": f"006{n:015d}",
                    "raw": {"Id": f"006{n:015d}"},
                    "is_deleted": n % 7 == 0,
                    "synced_at": stamp,
                }
                for n in range(50)
            ],
        )
    with warehouse.engine.begin() as conn:
        assert upgrade(conn) == ("0001", head_revision())
        indexes = {i["name"] for i in inspect(conn).get_indexes("opportunity_history")}
        assert "ix_opportunity_history_deleted" in indexes
        assert conn.execute(live_rows(table_of(Opportunity))).scalar_one() == 50 - 8
    with warehouse.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0001")
        assert current_revision(conn) == "0001"
        indexes = {i["name"] for i in inspect(conn).get_indexes("opportunity_history")}
        assert "ix_opportunity_history_deleted" not in indexes
    warehouse.dispose()


def test_an_upgrade_that_dies_half_way_leaves_the_schema_as_it_was(db_url: str) -> None:
    """A container killed during `sfsync db upgrade` (0002 builds its indexes for about
    12 s at 1,000,000 opportunities) must leave the revision it started from, whole:
    on SQLite the DDL ran outside any transaction, so the indexes built before the
    kill stayed, the revision did not move, and every later upgrade failed on an index
    that already exists."""
    warehouse = open_warehouse(DatabaseSettings(url=db_url), require_head=False, create=True)
    with warehouse.engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
    built: list[str] = []

    def die_on_the_third_index(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("CREATE INDEX ix_") and "_deleted" in statement:
            built.append(statement)
            if len(built) == 3:
                raise KeyboardInterrupt("killed")

    event.listen(warehouse.engine, "before_cursor_execute", die_on_the_third_index)
    try:
        with pytest.raises(KeyboardInterrupt), warehouse.engine.begin() as conn:
            upgrade(conn)
    finally:
        event.remove(warehouse.engine, "before_cursor_execute", die_on_the_third_index)
    with warehouse.engine.begin() as conn:
        assert current_revision(conn) == "0001"
        indexes = {i["name"] for i in inspect(conn).get_indexes("organization")}
        assert "ix_organization_deleted" not in indexes
    with warehouse.engine.begin() as conn:
        assert upgrade(conn) == ("0001", head_revision())
    warehouse.dispose()


def test_an_upgrade_at_head_waits_for_no_writer(tmp_path: Path) -> None:
    """The deployment examples run `sfsync db upgrade` before every run. At head it has
    nothing to do, and must not wait for the write lock that a running audit holds for
    its whole transaction (on SQLite a revision's DDL takes that lock up front)."""
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    warehouse = upgraded(url)
    with warehouse.engine.connect() as writer:
        writer.exec_driver_sql("BEGIN IMMEDIATE")
        with warehouse.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA busy_timeout = 100")
            conn.commit()
            with conn.begin():
                assert upgrade(conn) == (head_revision(), head_revision())
        writer.rollback()
    warehouse.dispose()


def test_0003_leaves_room_on_the_finding_pages_of_postgresql_and_goes_back_down(
    db_url: str,
) -> None:
    """0003 sets finding's fillfactor on PostgreSQL (SQLite has no such setting, and the
    revision changes nothing there); its downgrade resets it."""

    def fillfactor(conn: Connection) -> list[str]:
        if conn.dialect.name != "postgresql":
            return []
        options = conn.exec_driver_sql(
            "SELECT reloptions FROM pg_class WHERE oid = 'finding'::regclass"
        ).scalar_one()
        return [o for o in options or [] if o.startswith("fillfactor=")]

    warehouse = upgraded(db_url)
    postgresql = warehouse.engine.dialect.name == "postgresql"
    with warehouse.engine.begin() as conn:
        assert fillfactor(conn) == (["fillfactor=70"] if postgresql else [])
        command.downgrade(alembic_config(conn), "0002")
        assert current_revision(conn) == "0002"
        assert fillfactor(conn) == []
    with warehouse.engine.begin() as conn:
        assert upgrade(conn) == ("0002", head_revision())
        assert fillfactor(conn) == (["fillfactor=70"] if postgresql else [])
    warehouse.dispose()


def test_0004_drops_the_keys_of_finding_to_run_on_postgresql_and_goes_back_down(
    db_url: str,
) -> None:
    """0004 drops finding's three foreign keys to run on PostgreSQL, where each is a
    trigger per row written; SQLite keeps them (their check costs nothing measurable
    there). The downgrade puts them back, and the rows written meanwhile satisfy them."""

    def keys(conn: Connection) -> set[str]:
        return {
            str(fk["name"])
            for fk in inspect(conn).get_foreign_keys("finding")
            if fk["referred_table"] == "run"
        }

    every = {
        f"fk_finding_{c}_run" for c in ("opened_run_id", "resolved_run_id", "last_seen_run_id")
    }
    warehouse = upgraded(db_url)
    postgresql = warehouse.engine.dialect.name == "postgresql"
    with warehouse.engine.begin() as conn:
        assert keys(conn) == (set() if postgresql else every)
        run_id = conn.execute(
            insert(table_of(Run))
            .values(kind="audit", status="ok", started_at=datetime.now(UTC), counts={})
            .returning(table_of(Run).c.id)
        ).scalar_one()
        conn.execute(
            insert(table_of(Finding)).values(
                rule="close_date_past",
                opportunity_id="006000000000000001",
                status="open",
                profile="global",
                severity="error",
                details={},
                settings_hash="h",
                opened_run_id=run_id,
                last_seen_run_id=run_id,
                opened_at=datetime.now(UTC),
            )
        )
        command.downgrade(alembic_config(conn), "0003")
        assert current_revision(conn) == "0003"
        assert keys(conn) == every
    with warehouse.engine.begin() as conn:
        assert upgrade(conn) == ("0003", head_revision())
        assert keys(conn) == (set() if postgresql else every)
    warehouse.dispose()


def test_datetimes_round_trip_as_aware_utc(db_url: str) -> None:
    warehouse = upgraded(db_url)
    berlin = timezone(timedelta(hours=2))
    stamp = datetime(2024, 8, 1, 12, 30, 5, tzinfo=berlin)
    with warehouse.session() as session:
        session.add(
            Opportunity(
                id="0065g00000AbCdEAAV",
                raw={"Id": "0065g00000AbCdEAAV"},
                system_modstamp=stamp,
                synced_at=stamp,
                close_date=date(2024, 8, 1),
                amount=50000.0,
            )
        )
    with warehouse.session() as session:
        row = session.scalars(select(Opportunity)).one()
    assert row.system_modstamp == stamp
    assert row.system_modstamp is not None
    assert row.system_modstamp.tzinfo is not None
    assert row.system_modstamp.utcoffset() == timedelta(0)
    assert row.raw == {"Id": "0065g00000AbCdEAAV"}
    assert row.is_deleted is False
    warehouse.dispose()


def test_at_most_one_live_finding_per_rule_and_opportunity(db_url: str) -> None:
    """The partial unique index refuses a second open finding but allows history."""
    warehouse = upgraded(db_url)
    now = datetime.now(UTC)
    with warehouse.session() as session:
        session.execute(
            insert(Run).values(id=1, kind="audit", status="ok", started_at=now, counts={})
        )

    def finding(status: str) -> dict[str, object]:
        return {
            "rule": "close_date_past",
            "opportunity_id": "0065g00000AbCdEAAV",
            "status": status,
            "profile": "global",
            "severity": "error",
            "details": {},
            "settings_hash": "h",
            "opened_at": now,
        }

    with warehouse.session() as session:
        session.execute(
            insert(Finding), [finding("resolved"), finding("resolved"), finding("open")]
        )
    with pytest.raises(IntegrityError), warehouse.session() as session:
        session.execute(insert(Finding).values(**finding("waived")))
    warehouse.dispose()


def test_newer_revision_is_refused_and_nothing_written(db_url: str) -> None:
    """A database upgraded by a newer sfsync is not touched: exit 2 naming the revision."""
    warehouse = upgraded(db_url)
    with warehouse.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff9999'"))
    with pytest.raises(SchemaError, match="'ffff9999'"):
        open_warehouse(DatabaseSettings(url=db_url))
    with warehouse.engine.begin() as conn, pytest.raises(SchemaError, match="newer sfsync"):
        upgrade(conn)
    outcome = run_cli("db", "upgrade", env={"SFSYNC_DATABASE_URL": db_url})
    assert outcome.exit_code == 2
    assert "ffff9999" in outcome.stderr
    with warehouse.engine.connect() as conn:
        assert current_revision(conn) == "ffff9999"
    warehouse.dispose()


def test_cli_db_upgrade_then_check_passes(db_url: str) -> None:
    env = {"SFSYNC_DATABASE_URL": db_url}
    first = run_cli("db", "upgrade", env=env)
    assert first.exit_code == 0, first.output
    assert "upgraded from empty" in first.stdout
    second = run_cli("db", "upgrade", env=env)
    assert "already at revision" in second.stdout
    check = run_cli("check", env=env)
    assert "[  ok] schema: at head revision" in check.stdout
    # Salesforce is not configured here: check says so (exit 2) rather than passing.
    assert check.exit_code == 2
    assert "salesforce: not configured for auth client_credentials" in check.stdout
    current = run_cli("db", "current", env=env)
    assert "up to date" in current.stdout


def test_empty_database_needs_upgrade(db_url: str) -> None:
    with pytest.raises(SchemaError, match="sfsync db upgrade"):
        open_warehouse(DatabaseSettings(url=db_url), create=True)


@pytest.mark.postgres
def test_unreachable_postgres_exits_3_without_leaking_the_password() -> None:
    url = "postgresql://sfsync:pw-do-not-print@127.0.0.1:1/nowhere"
    with pytest.raises(DatabaseUnreachable) as exc:
        open_warehouse(DatabaseSettings(url=url))
    assert "pw-do-not-print" not in str(exc.value)
    outcome = run_cli("check", env={"SFSYNC_DATABASE_URL": url})
    assert outcome.exit_code == 3
    assert "pw-do-not-print" not in outcome.output


@pytest.mark.postgres
def test_unknown_postgres_database_exits_3(postgres_server_url: str) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(postgres_server_url).set(database="no_such_database_here")
    outcome = run_cli("check", env={"SFSYNC_DATABASE_URL": url.render_as_string(False)})
    assert outcome.exit_code == 3
    assert 'database "no_such_database_here" does not exist' in outcome.output


def test_sqlite_parent_directory_is_created_by_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'w.db'}"
    outcome = run_cli("db", "upgrade", env={"SFSYNC_DATABASE_URL": url})
    assert outcome.exit_code == 0, outcome.output
    assert (tmp_path / "nested" / "dir" / "w.db").exists()


def test_snapshots_are_a_change_log_and_report_their_count(db_url: str) -> None:
    """One row per open opportunity per day, only when close date or stage moved."""
    warehouse = upgraded(db_url)
    since = datetime(2024, 8, 1, tzinfo=UTC)
    synced = datetime(2024, 8, 2, tzinfo=UTC)

    def opportunity(
        number: int, close: date, stage: str, closed: bool = False
    ) -> dict[str, object]:
        return {
            "id": f"0065g00000AbC{number:02d}AAV",
            "raw": {},
            "is_deleted": False,
            "synced_at": synced,
            "close_date": close,
            "stage_name": stage,
            "is_closed": closed,
        }

    with warehouse.session() as session:
        session.execute(
            insert(Opportunity),
            [
                opportunity(1, date(2024, 9, 30), "Qualify"),
                opportunity(2, date(2024, 9, 30), "Prove"),
                opportunity(3, date(2024, 9, 30), "Closed Won", closed=True),
            ],
        )
    with warehouse.session() as session:
        assert record_snapshots(session, date(2024, 8, 2), synced, since) == 2
    with warehouse.session() as session:
        assert record_snapshots(session, date(2024, 8, 3), synced, since) == 0  # nothing moved
        session.execute(
            update(Opportunity)
            .where(Opportunity.id == "0065g00000AbC01AAV")
            .values(close_date=date(2024, 10, 31))
        )
    with warehouse.session() as session:
        assert record_snapshots(session, date(2024, 8, 3), synced, since) == 1
        assert session.scalar(select(func.count()).select_from(OpportunitySnapshot)) == 3
    warehouse.dispose()


def test_db_current_exits_non_zero_when_an_upgrade_is_needed(db_url: str) -> None:
    """A deployment gate: `sfsync db current` fails (exit 2) until `db upgrade` ran."""
    env = {"SFSYNC_DATABASE_URL": db_url}
    open_warehouse(DatabaseSettings(url=db_url), require_head=False, create=True).dispose()
    empty = run_cli("db", "current", env=env)
    assert empty.exit_code == 2, empty.output
    assert "needs `sfsync db upgrade`" in empty.stdout
    assert run_cli("db", "upgrade", env=env).exit_code == 0
    current = run_cli("db", "current", env=env)
    assert current.exit_code == 0, current.output
    assert "up to date" in current.stdout
