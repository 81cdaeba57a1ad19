"""Turning Salesforce records (REST JSON or Bulk CSV) into warehouse rows.

A value that does not fit its column (a bad date, a string longer than the
column) does not stop the sync: the column is left null, the record stays whole
in ``raw``, and the problem is reported with the record's Id and the field.

Rows come out *database-native* for the target dialect (what SQLAlchemy's own
bind processors would produce: on SQLite, datetimes as
``YYYY-MM-DD HH:MM:SS.ffffff`` text and JSON as text), so the loader can hand
them straight to the driver's ``executemany``. This is the sync's inner loop:
each column gets one precompiled caster, chosen once per object.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import String

from sfsync.extract.specs import ObjectPlan
from sfsync.formats import parse_datetime
from sfsync.warehouse.dialect import native_datetime, sqlite_datetime
from sfsync.warehouse.models import table_of

__all__ = [
    "ConvertedBatch",
    "RowConverter",
    "csv_records",
    "native_datetime",
    "parse_native_datetime",
]

Caster = Callable[[Any], Any]


# --------------------------------------------------------------------------- Bulk CSV -> JSON


def _csv_bool(text: str) -> Any:
    return text.lower() == "true"


def _csv_int(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return text


def _csv_float(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


_CSV_CASTERS: dict[str, Caster] = {
    "boolean": _csv_bool,
    "int": _csv_int,
    "long": _csv_int,
    "double": _csv_float,
    "currency": _csv_float,
    "percent": _csv_float,
}


def csv_records(
    header: Sequence[str], rows: Iterable[Sequence[str]], field_types: dict[str, str]
) -> list[dict[str, Any]]:
    """Bulk CSV rows as the REST API would have sent them (null for "", typed scalars).

    Bulk CSV cannot tell null from empty; REST sends null for both, so does this.
    """
    casters = [_CSV_CASTERS.get(field_types.get(name, "string")) for name in header]
    width = len(header)
    records = []
    for row in rows:
        record: dict[str, Any] = {}
        for name, caster, text in zip(header, casters, row[:width], strict=False):
            if text == "":
                record[name] = None
            elif caster is None:
                record[name] = text
            else:
                record[name] = caster(text)
        records.append(record)
    return records


# --------------------------------------------------------------------------- native values


def _sqlite_from_salesforce(value: Any) -> str:
    """``2024-07-30T09:12:44.000+0000`` -> ``2024-07-30 09:12:44.000000`` without parsing."""
    if isinstance(value, datetime):
        return sqlite_datetime(value)
    text = str(value)
    if len(text) == 28 and text[10] == "T" and text.endswith("+0000") and text[19] == ".":
        return f"{text[:10]} {text[11:19]}.{text[20:23]}000"
    if len(text) == 24 and text[10] == "T" and text[23] == "Z" and text[19] == ".":  # Bulk CSV
        return f"{text[:10]} {text[11:19]}.{text[20:23]}000"
    return sqlite_datetime(parse_datetime(text))


def _postgres_from_salesforce(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    try:
        parsed = datetime.fromisoformat(str(value))  # C-fast; Python 3.11 reads "+0000"
    except ValueError:
        return parse_datetime(str(value))
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed


def parse_native_datetime(value: Any) -> datetime:
    """Back from the native form (for watermarks)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _date(sqlite: bool) -> Caster:
    def cast(value: Any) -> Any:
        if isinstance(value, date):
            parsed = value
        elif isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
            parsed = date.fromisoformat(value)  # ValueError for 2024-13-45 names the value
        else:
            raise ValueError(f"expected a date YYYY-MM-DD, got {value!r}")
        return parsed.isoformat() if sqlite else parsed

    return cast


def _text(max_length: int | None) -> Caster:
    def cast(value: Any) -> Any:
        text = value if isinstance(value, str) else str(value)
        if max_length is not None and len(text) > max_length:
            raise ValueError(f"{len(text)} characters do not fit the column's {max_length}")
        return text

    return cast


def _boolean(value: Any) -> Any:
    if value is True or value is False:
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"expected a boolean, got {value!r}")


def _integer(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"expected a whole number, got {value!r}")
    return int(number)


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


# --------------------------------------------------------------------------- rows


@dataclass
class ConvertedBatch:
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (id, field, problem)
    last_native_stamp: Any = None

    @property
    def last_stamp(self) -> datetime | None:
        """The highest watermark value in the batch below the converter's ceiling."""
        if self.last_native_stamp is None:
            return None
        return parse_native_datetime(self.last_native_stamp)


class RowConverter:
    """Records of one object to rows of its table, for one dialect."""

    def __init__(
        self,
        plan: ObjectPlan,
        *,
        integration_user_id: str | None,
        dialect: str = "sqlite",
        stamp_ceiling: datetime | None = None,
    ) -> None:
        """``stamp_ceiling``: the window's upper bound. A row stamped at or after it was
        changed while the pull ran and arrives at its *old* position in the cursor, ahead
        of rows not yet read; its stamp must never become the watermark.
        """
        self.integration_user_id = integration_user_id
        sqlite = dialect == "sqlite"
        moment = _sqlite_from_salesforce if sqlite else _postgres_from_salesforce
        self._native_now = native_datetime(dialect)
        self._ceiling = None if stamp_ceiling is None else self._native_now(stamp_ceiling)
        table = table_of(plan.spec.model)
        by_kind: dict[str, Caster] = {
            "bool": _boolean,
            "int": _integer,
            "float": _number,
            "date": _date(sqlite),
            "datetime": moment,
        }
        # (column, field, caster); the stamp first, so later fields may read it.
        self.columns: list[tuple[str, str, Caster]] = [
            ("system_modstamp", "SystemModstamp", moment)
        ]
        for spec in plan.fields:
            if spec.column is None or spec.column == "id":
                continue
            column_type = table.c[spec.column].type
            length = column_type.length if isinstance(column_type, String) else None
            caster = _text(length) if spec.kind == "str" else by_kind[spec.kind]
            self.columns.append((spec.column, spec.name, caster))
        watermark = plan.watermark_field or "SystemModstamp"
        mapped = {name: column for column, name, _ in self.columns}
        # The watermark's value comes from its column, or (unmapped) is cast on the side.
        self.watermark_column = mapped.get(watermark)
        self.watermark_field = watermark
        self._moment = moment
        self.is_opportunity = plan.name == "Opportunity"

    def convert(self, records: Iterable[dict[str, Any]], synced_at: datetime) -> ConvertedBatch:
        batch = ConvertedBatch()
        problems = batch.problems
        synced = self._native_now(synced_at)
        columns = self.columns
        watermark_column = self.watermark_column
        ceiling = self._ceiling
        dumps = json.dumps
        highest = None
        for record in records:
            record.pop("attributes", None)
            record_id = record.get("Id")
            if not isinstance(record_id, str) or len(record_id) != 18:
                problems.append(
                    (str(record_id or "?"), "Id", f"not an 18-character id: {record_id!r}")
                )
                continue
            row: dict[str, Any] = {
                "id": record_id,
                "raw": dumps(record),
                "is_deleted": record.get("IsDeleted") is True,
                "synced_at": synced,
            }
            for column, name, caster in columns:
                value = record.get(name)
                if value is not None:
                    try:
                        value = caster(value)
                    except (ValueError, TypeError) as exc:
                        problems.append((record_id, name, str(exc)))
                        value = None
                row[column] = value
            if watermark_column is not None:
                stamp = row[watermark_column]
            else:
                stamp = self._side_watermark(record, record_id, problems)
            if row["system_modstamp"] is None:
                row["system_modstamp"] = stamp  # objects without SystemModstamp sync on CreatedDate
            # Native stamps of one dialect compare correctly (fixed-width UTC text, or datetimes).
            if (
                stamp is not None
                and (highest is None or stamp > highest)
                and (ceiling is None or stamp < ceiling)
            ):
                highest = stamp
            if self.is_opportunity:
                self._last_human(row)
            batch.rows.append(row)
        batch.last_native_stamp = highest
        return batch

    def _side_watermark(
        self, record: dict[str, Any], record_id: str, problems: list[tuple[str, str, str]]
    ) -> Any:
        value = record.get(self.watermark_field)
        if value is None:
            return None
        try:
            return self._moment(value)
        except (ValueError, TypeError) as exc:
            problems.append((record_id, self.watermark_field, str(exc)))
            return None

    def _last_human(self, row: dict[str, Any]) -> None:
        """Candidate values; the upsert keeps the stored human value when sfsync wrote last."""
        row["last_human_modified_date"] = row.get("last_modified_date")
        row["last_human_modified_by_id"] = row.get("last_modified_by_id")
        row["last_human_assumed"] = (
            self.integration_user_id is not None
            and row.get("last_modified_by_id") == self.integration_user_id
        )
