"""Alembic, driven from sfsync: where the migrations live, upgrade, and revision checks."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

from sfsync.errors import SchemaError

__all__ = [
    "alembic_config",
    "current_revision",
    "head_revision",
    "migrations_dir",
    "require_head_revision",
    "unrecorded_schema",
    "upgrade",
]


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
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise SchemaError("sfsync's migrations have no head revision")
    return head


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _known(revision: str) -> bool:
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


def require_head_revision(conn: Connection) -> None:
    """Raise :class:`SchemaError` unless the database is at this sfsync's head."""
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
    if before is None:
        unrecorded = unrecorded_schema(conn)
        if unrecorded is not None:
            raise unrecorded
    if before is not None and not _known(before):
        raise SchemaError(
            f"the database is at revision {before!r}, which this sfsync does not know "
            f"(its newest is {head_revision()!r}): it was upgraded by a newer sfsync. "
            "Nothing was written"
        )
    command.upgrade(alembic_config(conn), "head")
    return before, head_revision()
