"""Alembic, driven from sfsync: where the migrations live, upgrade, and revision checks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, inspect, text

from sfsync.errors import SchemaError

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic (its script directory, migration context and operations: ~0.1 s to import,
# more to read every revision file) is imported by the functions that need it. The
# check every warehouse command makes, require_head_revision, does without it when
# the database is at HEAD_REVISION.

__all__ = [
    "HEAD_REVISION",
    "alembic_config",
    "begin_for_ddl",
    "current_revision",
    "head_revision",
    "migrations_dir",
    "require_head_revision",
    "unrecorded_schema",
    "upgrade",
]

# The newest revision in migrations/versions: the one head_revision() reads from the
# script directory. A new migration changes both (tests/unit/test_startup.py checks
# that they agree).
HEAD_REVISION = "0004"


def migrations_dir() -> Path:
    """``sfsync/_migrations`` in an installed wheel, ``migrations/`` in a source checkout."""
    packaged = Path(__file__).resolve().parents[1] / "_migrations"
    if (packaged / "env.py").is_file():
        return packaged
    source = Path(__file__).resolve().parents[2] / "migrations"
    if (source / "env.py").is_file():
        return source
    raise SchemaError("sfsync's Alembic migrations are missing from this installation")


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise SchemaError("sfsync's migrations have no head revision")
    return head


def current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _known(revision: str) -> bool:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    try:
        return script.get_revision(revision) is not None
    except Exception:  # alembic raises several types for unknown ids
        return False


def unrecorded_schema(conn: Connection) -> SchemaError | None:
    """The error for sfsync's tables without a recorded revision, else None.

    Without an ``alembic_version`` row an upgrade would run every migration from
    the first and fail on the tables that exist (``table currency_type already
    exists``); which migrations ran is unknowable, so nothing is guessed.
    """
    if current_revision(conn) is not None:
        return None
    from sfsync.warehouse.models import Base

    present = sorted(set(inspect(conn).get_table_names()) & set(Base.metadata.tables))
    if not present:
        return None
    shown = ", ".join(present[:3]) + (f" and {len(present) - 3} more" if len(present) > 3 else "")
    where = conn.engine.url.render_as_string(hide_password=True)
    head = head_revision()
    return SchemaError(
        f"the database {where!r} (database.url) has sfsync's tables ({shown}) but no "
        "recorded schema revision: its alembic_version table is missing or empty, so sfsync "
        "cannot tell which migrations have run. Nothing was changed. Restore the "
        "alembic_version row from a backup, or, if the schema is known to be this sfsync's "
        f"current one, record revision {head} with `alembic -c alembic.ini -x "
        f"url=<database.url> stamp {head}` in an sfsync checkout (it creates the table if it "
        "is gone); then run `sfsync db upgrade`"
    )


def _at_head(conn: Connection) -> bool:
    """Whether the version table holds exactly one row, :data:`HEAD_REVISION`.

    What Alembic's migration context reads, without Alembic: the table's presence
    checked first (a failed SELECT would abort a PostgreSQL transaction), then its
    rows. Any other answer (no table, no row, several, another revision) is left to
    :func:`require_head_revision`'s full check.
    """
    if not inspect(conn).has_table("alembic_version"):
        return False
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return rows == [HEAD_REVISION]


def require_head_revision(conn: Connection) -> None:
    """Raise :class:`SchemaError` unless the database is at this sfsync's head."""
    if _at_head(conn):
        return
    current = current_revision(conn)
    head = head_revision()
    if current == head:
        return
    if current is None:
        unrecorded = unrecorded_schema(conn)
        if unrecorded is not None:
            raise unrecorded
        raise SchemaError(
            "the database has no sfsync schema yet: run `sfsync db upgrade` to create it"
        )
    if not _known(current):
        raise SchemaError(
            f"the database is at revision {current!r}, which this sfsync does not know "
            f"(its newest is {head!r}): it was upgraded by a newer sfsync. Upgrade sfsync; "
            "nothing was written"
        )
    raise SchemaError(
        f"the database is at revision {current!r} but this sfsync needs {head!r}: "
        "run `sfsync db upgrade`"
    )


def upgrade(conn: Connection) -> tuple[str | None, str]:
    """Upgrade to head in ``conn``'s transaction; return (revision before, revision after).

    A database at a revision this sfsync does not know, or with sfsync's tables but
    no recorded revision, is refused untouched.
    """
    before = current_revision(conn)
    head = head_revision()
    if before is None:
        unrecorded = unrecorded_schema(conn)
        if unrecorded is not None:
            raise unrecorded
    if before is not None and not _known(before):
        raise SchemaError(
            f"the database is at revision {before!r}, which this sfsync does not know "
            f"(its newest is {head!r}): it was upgraded by a newer sfsync. "
            "Nothing was written"
        )
    if before == head:  # nothing to do: no write lock taken (see begin_for_ddl)
        return before, head
    from alembic import command

    command.upgrade(alembic_config(conn), "head")
    return before, head


def begin_for_ddl(conn: Connection) -> None:
    """Make SQLite's DDL part of ``conn``'s transaction.

    Python's sqlite3 driver opens a transaction only before INSERT, UPDATE or
    DELETE: the CREATE and DROP statements of a revision ran and committed one by
    one, so an upgrade killed half-way kept part of a revision and could not run
    again. An explicit BEGIN (IMMEDIATE: the write lock up front) makes the whole
    upgrade commit, or roll back, with the caller's transaction. Called by the
    migration environment before any revision runs, whoever started it.
    """
    if conn.dialect.name != "sqlite":
        return
    dbapi: Any = conn.connection.dbapi_connection
    if not dbapi.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
