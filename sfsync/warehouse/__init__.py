"""The SQL warehouse: schema, sessions, migrations."""

from sfsync.warehouse._engine import (
    Warehouse,
    create_warehouse_engine,
    database_failure,
    open_warehouse,
)
from sfsync.warehouse.migrate import current_revision, head_revision, upgrade

__all__ = [
    "Warehouse",
    "create_warehouse_engine",
    "current_revision",
    "database_failure",
    "head_revision",
    "open_warehouse",
    "upgrade",
]
