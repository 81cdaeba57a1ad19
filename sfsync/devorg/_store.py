"""The dev org's indexed store: SQLite, one table per object, one column per field.

Why SQLite: a million opportunities with their history and line items do not fit
comfortably in Python objects, and a query like ``WHERE SystemModstamp >= :hwm
ORDER BY SystemModstamp, Id`` must not scan them. Values are stored in the form
the REST API returns them, so they sort and compare correctly as SQL values:
dates ``YYYY-MM-DD``, datetimes ``YYYY-MM-DDTHH:MM:SS.000+0000`` (always UTC,
fixed width), booleans 0/1, numbers as numbers. Columns are untyped so a value
is kept exactly as written.

Each table has a hidden ``_row INTEGER PRIMARY KEY``: for records loaded from a
data file it is the record's index in the file, so a validation query that finds
a bad row can name ``Opportunity[3]``.
"""

# SQL is assembled from catalogue identifiers (API names, validated) and "?" parameters.
# ruff: noqa: S608

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sfsync.devorg._catalog import FieldDef, SObjectDef

__all__ = ["Store", "json_value", "quote"]

# Reference fields worth an index: joins for parent paths and cascades use them.
_INDEXED_REFERENCES = (
    "OwnerId",
    "OpportunityId",
    "WhatId",
    "Product2Id",
    "ManagerId",
    "RecordTypeId",
)


def quote(name: str) -> str:
    """A SQL identifier; API names never contain quotes (validated before use)."""
    return '"' + name + '"'


def json_value(fdef: FieldDef, value: Any) -> Any:
    """A stored value as the REST API's JSON value."""
    if value is None:
        return None
    storage = fdef.storage
    if storage == "bool":
        return bool(value)
    if storage == "real":
        return float(value)
    if storage == "int":
        return int(value)
    if fdef.is_compound and isinstance(value, str):
        return json.loads(value)  # built by soql.compound_sql
    return value


class Store:
    """The SQLite database behind one dev org; callers serialise access with the org's lock."""

    def __init__(self, objects: Mapping[str, SObjectDef], path: str = ":memory:") -> None:
        self.path = path
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = MEMORY")
        self.conn.execute("PRAGMA synchronous = OFF")
        self.conn.execute("PRAGMA temp_store = MEMORY")
        self.conn.execute("PRAGMA cache_size = -262144")  # 256 MB of page cache
        self.conn.execute("PRAGMA threads = 2")  # index builds sort on both cores
        self.columns: dict[str, list[str]] = {}
        self.indexed = False
        for obj in objects.values():
            self.create_table(obj)
        self.conn.execute(
            "CREATE TABLE _deleted (sobject TEXT NOT NULL, id TEXT NOT NULL, "
            "deleted_date TEXT NOT NULL, hard INTEGER NOT NULL DEFAULT 0)"
        )
        self.conn.execute("CREATE INDEX _deleted_by_date ON _deleted (sobject, deleted_date)")
        self.conn.execute("CREATE INDEX _deleted_by_id ON _deleted (id)")

    def close(self) -> None:
        self.conn.close()

    def create_table(self, obj: SObjectDef) -> None:
        names = list(obj.fields)
        columns = ", ".join(quote(n) for n in names)
        self.conn.execute(f"CREATE TABLE {quote(obj.name)} (_row INTEGER PRIMARY KEY, {columns})")
        self.columns[obj.name] = names

    def add_column(self, sobject: str, fdef: FieldDef) -> None:
        if fdef.name in self.columns[sobject]:
            return
        self.conn.execute(f"ALTER TABLE {quote(sobject)} ADD COLUMN {quote(fdef.name)}")
        self.columns[sobject].append(fdef.name)
        if self.indexed and (fdef.unique or fdef.external_id):
            self._unique_index(sobject, fdef)

    def insert_rows(self, sobject: str, columns: list[str], rows: Iterable[Sequence[Any]]) -> None:
        """Bulk insert; ``columns`` starts with ``_row``."""
        marks = ", ".join("?" for _ in columns)
        names = ", ".join(quote(c) for c in columns)
        self.conn.executemany(f"INSERT INTO {quote(sobject)} ({names}) VALUES ({marks})", rows)

    def create_indexes(self, objects: Mapping[str, SObjectDef]) -> None:
        """Indexes are built once after a bulk load: far faster than maintaining them."""
        for obj in objects.values():
            table = quote(obj.name)
            cols = self.columns[obj.name]
            self.conn.execute(f"CREATE UNIQUE INDEX {quote(obj.name + '_id')} ON {table} (Id)")
            self.conn.execute(
                f"CREATE INDEX {quote(obj.name + '_modstamp')} ON {table} "
                "(SystemModstamp, Id, IsDeleted)"
            )
            self.conn.execute(
                f"CREATE INDEX {quote(obj.name + '_created')} ON {table} "
                "(CreatedDate, Id, IsDeleted)"
            )
            for ref in _INDEXED_REFERENCES:
                if ref in cols:
                    self.conn.execute(
                        f"CREATE INDEX {quote(obj.name + '_' + ref)} ON {table} ({quote(ref)})"
                    )
        # Statistics from a sample: a full ANALYZE reads every index of a big org.
        self.conn.execute("PRAGMA analysis_limit = 1000")
        self.conn.execute("ANALYZE")
        # External-id indexes come after ANALYZE: at load their keys are mostly null, and
        # statistics saying so would keep the planner scanning the table for every upsert
        # long after sfsync has filled the keys in.
        for obj in objects.values():
            for fdef in obj.fields.values():
                if fdef.custom and (fdef.unique or fdef.external_id):
                    self._unique_index(obj.name, fdef)
        self.indexed = True

    def _unique_index(self, sobject: str, fdef: FieldDef) -> None:
        # Not UNIQUE: soft-deleted rows may share a value; writes check duplicates themselves.
        name = quote(f"{sobject}_{fdef.name}")
        self.conn.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {quote(sobject)} "
            f"({quote(fdef.name)} COLLATE NOCASE)"
        )

    def duplicate_id(self, sobject: str) -> tuple[int, int, str] | None:
        """The first duplicated Id in a table: (first row, duplicate row, id)."""
        row = self.conn.execute(
            f"SELECT MIN(_row), MAX(_row), Id FROM {quote(sobject)} GROUP BY Id "
            "HAVING COUNT(*) > 1 ORDER BY MAX(_row) LIMIT 1"
        ).fetchone()
        return (int(row[0]), int(row[1]), str(row[2])) if row else None

    def scalar(self, sql: str, params: Iterable[Any] = ()) -> Any:
        row = self.conn.execute(sql, tuple(params)).fetchone()
        return row[0] if row else None
