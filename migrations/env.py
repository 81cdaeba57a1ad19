"""Alembic environment for the sfsync warehouse.

The database comes from (first match): a connection handed over by sfsync
(``sfsync db upgrade``), ``-x url=...`` on the alembic command line, or sfsync's
own configuration (``--config``/``SFSYNC_CONFIG``/``config/sfsync.yaml``/env), so
``alembic check`` and ``alembic upgrade head`` work from a checkout as is.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from sfsync.warehouse.migrate import begin_for_ddl
from sfsync.warehouse.models import Base

target_metadata = Base.metadata


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Render sfsync's own column types with an import the revision can use."""
    module = type(obj).__module__
    if type_ == "type" and module.startswith("sfsync."):
        autogen_context.imports.add(f"import {module}")  # type: ignore[attr-defined]
        return f"{module}.{type(obj).__name__}()"
    return False


def _for_dialect(dialect: str):  # type: ignore[no-untyped-def]
    """Leave out of the comparison what the models declare for another dialect only
    (``.ddl_if(dialect=...)``, e.g. finding's keys to run, kept on SQLite alone)."""

    def include(
        obj: object, _name: str | None, _type: str, reflected: bool, _other: object
    ) -> bool:
        only = getattr(getattr(obj, "_ddl_if", None), "dialect", None)
        return reflected or only is None or only == dialect

    return include


def _configure(connection: Connection) -> None:
    begin_for_ddl(connection)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=_render_item,
        include_object=_for_dialect(connection.dialect.name),
    )


def run_migrations_online() -> None:
    handed_over = context.config.attributes.get("connection")
    if handed_over is not None:
        _configure(handed_over)
        with context.begin_transaction():
            context.run_migrations()
        return

    from sfsync.config import DatabaseSettings, load_settings
    from sfsync.warehouse import create_warehouse_engine

    url = context.get_x_argument(as_dictionary=True).get("url")
    settings = DatabaseSettings(url=url) if url else load_settings().settings.database
    engine = create_warehouse_engine(settings)
    with engine.connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("sfsync's migrations run online only (they need a dialect to batch on SQLite)")
run_migrations_online()
