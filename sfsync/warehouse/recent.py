"""The newest ``run`` rows, read with SQLAlchemy Core: what ``sfsync runs`` lists.

:mod:`sfsync.warehouse.runs` records runs through the ORM; listing them needs
neither the ORM nor the declarative models of every table (a third of
``sfsync runs``'s start-up). The columns here are those of
:class:`sfsync.warehouse.models.Run`, with the same types (tests/unit/test_startup.py
checks that they agree).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Date, Integer, Row, String, Text, column, select, table

from sfsync.warehouse._engine import Warehouse
from sfsync.warehouse.types import JsonDocument, UtcDateTime

__all__ = ["RUN", "recent_runs"]

RUN = table(
    "run",
    column("id", Integer()),
    column("kind", String(16)),
    column("status", String(16)),
    column("started_at", UtcDateTime()),
    column("ended_at", UtcDateTime()),
    column("as_of", Date()),
    column("api_calls", Integer()),
    column("counts", JsonDocument()),
    column("error", Text()),
    column("hostname", String(255)),
    column("pid", Integer()),
)
"""The ``run`` table as a Core table clause (no metadata, no mapper)."""


def recent_runs(warehouse: Warehouse, limit: int = 20) -> Sequence[Row[Any]]:
    """The ``limit`` newest runs, newest first; each row has ``Run``'s attributes."""
    query = select(RUN).order_by(RUN.c.id.desc()).limit(limit)
    with warehouse.engine.connect() as conn:
        return conn.execute(query).all()
