"""Alembic, driven from sfsync: where the migrations live, upgrade, and revision checks."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from sfsync.errors import SchemaError

__all__ = [
    "alembic_config",
    "current_revision",
    "head_revision",
    "migrations_dir",
    "require_head_revision",
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


def require_head_revision(conn: Connection) -> None:
    """Raise :class:`SchemaError` unless the database is at this sfsync's head."""
    current = current_revision(conn)
    head = head_revision()
    if current == head:
        return
    if current is None:
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

    A database at a revision this sfsync does not know is refused untouched.
    """
    before = current_revision(conn)
    if before is not None and not _known(before):
        raise SchemaError(
            f"the database is at revision {before!r}, which this sfsync does not know "
            f"(its newest is {head_revision()!r}): it was upgraded by a newer sfsync. "
            "Nothing was written"
        )
    command.upgrade(alembic_config(conn), "head")
    return before, head_revision()
