"""The SQL that differs between SQLite and PostgreSQL, in one place.

The warehouse runs the same queries on both; where the two spell something
differently (an upsert, trimming, a JSON key test, a month of a date, the stored
form of a UTC datetime), the stages ask this module instead of branching on the
dialect's name themselves. What differs for speed rather than spelling (COPY on
PostgreSQL, temporary tables, JIT settings) stays beside the code it speeds up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, func, type_coerce
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

__all__ = [
    "POSTGRESQL",
    "SQLITE",
    "insert",
    "is_postgresql",
    "json_has_key",
    "month_key",
    "native_datetime",
    "sqlite_datetime",
    "trim",
]

POSTGRESQL = "postgresql"
SQLITE = "sqlite"


def is_postgresql(dialect: str) -> bool:
    return dialect == POSTGRESQL


def insert(table: Table, dialect: str) -> Any:
    """An INSERT that takes ``on_conflict_do_update``/``do_nothing`` on either database."""
    return postgresql.insert(table) if is_postgresql(dialect) else sqlite.insert(table)


def trim(column: ColumnElement[Any], characters: str, dialect: str) -> ColumnElement[Any]:
    """``column`` without leading and trailing ``characters``."""
    function = func.btrim if is_postgresql(dialect) else func.trim
    return function(column, characters)


def month_key(column: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """A value ordered like (year, month): later month, larger key; same month, equal.

    SQLite stores dates as ISO text (``YYYY-MM-DD``), so the first seven characters
    are the key; PostgreSQL truncates to the first of the month. Both are cheap per
    row, which matters over millions of history rows.
    """
    if is_postgresql(dialect):
        return func.date_trunc("month", column)
    return func.substr(column, 1, 7)


def json_has_key(column: ColumnElement[Any], key: str, dialect: str) -> ColumnElement[bool]:
    """The JSON document in ``column`` has ``key`` at its top level (its value may be null)."""
    if is_postgresql(dialect):
        has_key: ColumnElement[bool] = type_coerce(column, JSONB).has_key(key)
        return has_key
    return func.json_type(column, f'$."{key}"').is_not(None)


def sqlite_datetime(value: datetime) -> str:
    """SQLite's stored form of an aware datetime: fixed-width UTC text (sorts as it compares)."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%d %H:%M:%S.") + f"{utc.microsecond:06d}"


def native_datetime(dialect: str) -> Callable[[datetime], Any]:
    """How ``dialect`` stores an aware datetime (matching the warehouse's UtcDateTime)."""
    return sqlite_datetime if dialect == SQLITE else (lambda value: value.astimezone(UTC))
