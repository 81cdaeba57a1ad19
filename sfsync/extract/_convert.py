"""Turning Salesforce records (REST JSON or Bulk CSV) into warehouse rows.

A value that does not fit its column (a bad date, a string longer than the
column) does not stop the sync: the column is left null, the record stays whole
in ``raw``, and the problem is reported with the record's Id and the field.

Rows come out *database-native* for the target dialect (what SQLAlchemy's own
bind processors would produce: on SQLite, datetimes as
``YYYY-MM-DD HH:MM:SS.ffffff`` text and JSON as text), so the loader can hand
them straight to the driver's ``executemany``: at 2,000-row pages the per-value
type machinery would otherwise cost more than the inserts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import String

from sfsync.extract.specs import ObjectPlan
from sfsync.salesforce.formats import parse_date, parse_datetime
from sfsync.warehouse.models import table_of

__all__ = [
    "ConvertedBatch",
    "RowConverter",
    "csv_to_json",
    "native_datetime",
    "parse_native_datetime",
]

_NUMERIC = frozenset({"double", "currency", "percent"})
_INTEGER = frozenset({"int", "long"})


def csv_to_json(row: dict[str, str], field_types: dict[str, str]) -> dict[str, Any]:
    """A Bulk CSV row as the REST API would have sent it (null for "", typed scalars).

    Bulk CSV cannot tell null from empty; REST sends null for both, so does this.
    """
    record: dict[str, Any] = {}
    for name, text in row.items():
        if name is None:  # extra cells: csv.DictReader files them under None
            continue
        if text == "":
            record[name] = None
            continue
        sf_type = field_types.get(name, "string")
        if sf_type == "boolean":
            record[name] = text.lower() == "true"
        elif sf_type in _INTEGER:
            try:
                record[name] = int(text)
            except ValueError:
                record[name] = text
        elif sf_type in _NUMERIC:
            try:
                record[name] = float(text)
            except ValueError:
                record[name] = text
        else:
            record[name] = text
    return record


def _sqlite_datetime(value: datetime) -> str:
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%d %H:%M:%S.") + f"{utc.microsecond:06d}"


def _sqlite_from_salesforce(text: str) -> str:
    """``2024-07-30T09:12:44.000+0000`` -> ``2024-07-30 09:12:44.000000`` without parsing."""
    if len(text) == 28 and text[10] == "T" and text.endswith("+0000"):
        return f"{text[:10]} {text[11:19]}.{text[20:23]}000"
    if len(text) == 24 and text[10] == "T" and text[23] == "Z":  # Bulk CSV's form
        return f"{text[:10]} {text[11:19]}.{text[20:23]}000"
    return _sqlite_datetime(parse_datetime(text))


def _postgres_from_salesforce(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)  # C-fast; Python 3.11 reads "+0000"
    except ValueError:
        return parse_datetime(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed


def native_datetime(dialect: str) -> Callable[[datetime], Any]:
    """How ``dialect`` stores an aware datetime (matching SQLAlchemy's UtcDateTime)."""
    return _sqlite_datetime if dialect == "sqlite" else (lambda value: value.astimezone(UTC))


def parse_native_datetime(value: Any) -> datetime:
    """Back from the native form (for watermarks)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


@dataclass
class ConvertedBatch:
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (id, field, problem)
    last_native_stamp: Any = None

    @property
    def last_stamp(self) -> datetime | None:
        """The highest watermark value in the batch, as an aware datetime."""
        if self.last_native_stamp is None:
            return None
        return parse_native_datetime(self.last_native_stamp)


@dataclass(frozen=True)
class _Column:
    field: str
    column: str
    kind: str
    max_length: int | None


class RowConverter:
    def __init__(
        self, plan: ObjectPlan, *, integration_user_id: str | None, dialect: str = "sqlite"
    ) -> None:
        self.plan = plan
        self.integration_user_id = integration_user_id
        self.sqlite = dialect == "sqlite"
        self._datetime = _sqlite_from_salesforce if self.sqlite else _postgres_from_salesforce
        self._native_now = native_datetime(dialect)
        table = table_of(plan.spec.model)
        self.columns: list[_Column] = []
        for spec in plan.fields:
            if spec.column is None or spec.column == "id":
                continue
            column_type = table.c[spec.column].type
            length = column_type.length if isinstance(column_type, String) else None
            self.columns.append(_Column(spec.name, spec.column, spec.kind, length))
        self.watermark_field = plan.watermark_field or "SystemModstamp"
        self.is_opportunity = plan.name == "Opportunity"

    def convert(self, records: Iterable[dict[str, Any]], synced_at: datetime) -> ConvertedBatch:
        batch = ConvertedBatch()
        synced = self._native_now(synced_at)
        watermark_field = self.watermark_field
        highest = None
        for record in records:
            record.pop("attributes", None)
            record_id = str(record.get("Id") or "")
            if len(record_id) != 18:
                batch.problems.append(
                    (record_id or "?", "Id", f"not an 18-character id: {record_id!r}")
                )
                continue
            row: dict[str, Any] = {
                "id": record_id,
                "raw": json.dumps(record),
                "is_deleted": bool(record.get("IsDeleted") or False),
                "synced_at": synced,
            }
            stamp = self._value(record, "SystemModstamp", "datetime", None, batch, record_id)
            if stamp is None and watermark_field != "SystemModstamp":
                stamp = self._value(record, watermark_field, "datetime", None, batch, record_id)
            row["system_modstamp"] = stamp
            for column in self.columns:
                row[column.column] = self._value(
                    record, column.field, column.kind, column.max_length, batch, record_id
                )
            if self.is_opportunity:
                self._last_human(row)
            watermark = (
                stamp
                if watermark_field == "SystemModstamp"
                else self._value(record, watermark_field, "datetime", None, batch, record_id)
            )
            # Native stamps of one dialect compare correctly (fixed-width UTC text, or datetimes).
            if watermark is not None and (highest is None or watermark > highest):
                highest = watermark
            batch.rows.append(row)
        batch.last_native_stamp = highest
        return batch

    def _last_human(self, row: dict[str, Any]) -> None:
        """Candidate values; the upsert keeps the stored human value when sfsync wrote last."""
        by_integration = (
            self.integration_user_id is not None
            and row.get("last_modified_by_id") == self.integration_user_id
        )
        row["last_human_modified_date"] = row.get("last_modified_date")
        row["last_human_modified_by_id"] = row.get("last_modified_by_id")
        row["last_human_assumed"] = by_integration

    def _value(
        self,
        record: dict[str, Any],
        name: str,
        kind: str,
        max_length: int | None,
        batch: ConvertedBatch,
        record_id: str,
    ) -> Any:
        value = record.get(name)
        if value is None:
            return None
        try:
            if kind == "datetime" and isinstance(value, str):
                return self._datetime(value)
            if kind == "date" and self.sqlite and isinstance(value, str):
                return parse_date(value).isoformat()
            return _coerce(value, kind, max_length)
        except (ValueError, TypeError) as exc:
            batch.problems.append((record_id, name, str(exc)))
            return None


def _coerce(value: Any, kind: str, max_length: int | None) -> Any:
    if kind == "str":
        text = value if isinstance(value, str) else str(value)
        if max_length is not None and len(text) > max_length:
            raise ValueError(f"{len(text)} characters do not fit the column's {max_length}")
        return text
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError(f"expected a boolean, got {value!r}")
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        number = float(value)
        if not number.is_integer():
            raise ValueError(f"expected a whole number, got {value!r}")
        return int(number)
    if kind == "float":
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        return float(value)
    if kind == "date":
        if isinstance(value, date):
            return value
        return parse_date(str(value))
    if kind == "datetime":
        if isinstance(value, datetime):
            return value
        return parse_datetime(str(value))
    raise AssertionError(f"unknown kind {kind}")
