"""Reading, validating and writing the dev org's data file (docs/contracts.md, "Dev org data file").

A 1,000,000-opportunity org is a multi-gigabyte file, so it is read as a stream:
the stdlib's C JSON decoder (``raw_decode``) parses one record at a time out of a
sliding text buffer, and records go to SQLite in batches. This measured about
three times faster than an event-by-event ``ijson.parse`` loop (the per-event
Python work dominates there), while memory stays flat. Every problem is a
:class:`~sfsync.errors.DataFileError` naming the file, object, record index
(from 0) and field, or the line and column for malformed JSON.
"""

# SQL is assembled from catalogue identifiers (API names, validated) and "?" parameters.
# ruff: noqa: S608

from __future__ import annotations

import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

from sfsync.devorg._catalog import (
    DATA_FILE_OBJECTS,
    FORECAST_CATEGORIES,
    KEY_PREFIXES,
    TASK_PRIORITIES,
    TASK_STATUSES,
    FieldDef,
    SObjectDef,
    custom_field,
)
from sfsync.devorg._store import Store, json_value, quote
from sfsync.errors import DataFileError
from sfsync.files import atomic_text_file
from sfsync.formats import format_datetime, id15_to_18, parse_datetime

__all__ = ["OrgData", "ValidationRule", "load_data", "save_data"]

_WS = re.compile(r"[ \t\n\r]*")
_WS_CHARS = frozenset(" \t\n\r")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_CANON_DT_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000\Z")
_ID_RE = re.compile(r"[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?\Z")
_API_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_CHUNK = 1 << 22
_LOOKAHEAD = 1 << 16
_BATCH = 5000
# Fields that may need a default or a derived value after the load: the loader notes
# which of them were ever missing, so the fix-up UPDATEs only scan tables that need it.
_WATCHED = (
    "CreatedById",
    "LastModifiedById",
    "CurrencyIsoCode",
    "IsClosed",
    "IsWon",
    "ForecastCategoryName",
    "ForecastCategory",
    "HasOpportunityLineItem",
    "ExpectedRevenue",
    "Status",
    "Priority",
    "IsHighPriority",
    "Name",
    "IsActive",
    "IsCorporate",
    "IsSandbox",
)
_KNOWN_TOP_KEYS = {
    "integration_user_id",
    "records",
    "custom_fields",
    "validation_rules",
    "api_limit",
    "credentials",
    "deleted",
}


@dataclass(frozen=True, slots=True)
class ValidationRule:
    """A data-file validation rule: ``condition`` is a SOQL WHERE expression."""

    sobject: str
    name: str
    condition: str
    message: str
    field: str | None = None


@dataclass(slots=True)
class OrgData:
    """What a data file holds besides the records (which are in ``store``)."""

    store: Store
    objects: dict[str, SObjectDef]
    integration_user_id: str
    custom_fields: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    validation_rules: list[ValidationRule] = field(default_factory=list)
    api_limit: int | None = None
    credentials: dict[str, str] = field(default_factory=dict)


# --- streaming JSON ------------------------------------------------------------------------


class _Reader:
    """A sliding-window JSON reader: structural characters by hand, values by the C decoder."""

    def __init__(self, stream: IO[str], source: str) -> None:
        self.stream = stream
        self.source = source
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.line_base = 1
        self.col_base = 0
        self.decoder = json.JSONDecoder()

    def _fill(self, need: int = _LOOKAHEAD) -> None:
        if self.eof or len(self.buf) - self.pos >= need:
            return
        if self.pos:
            dropped = self.buf[: self.pos]
            newlines = dropped.count("\n")
            if newlines:
                self.line_base += newlines
                self.col_base = len(dropped) - dropped.rfind("\n") - 1
            else:
                self.col_base += len(dropped)
            self.buf = self.buf[self.pos :]
            self.pos = 0
        while len(self.buf) < need and not self.eof:
            chunk = self.stream.read(max(_CHUNK, need))
            if not chunk:
                self.eof = True
            self.buf += chunk

    def location(self, pos: int) -> tuple[int, int]:
        head = self.buf[:pos]
        newlines = head.count("\n")
        if newlines:
            return self.line_base + newlines, pos - head.rfind("\n")
        return self.line_base, self.col_base + pos + 1

    def error(self, message: str, pos: int | None = None) -> DataFileError:
        line, column = self.location(self.pos if pos is None else pos)
        return DataFileError(
            f"{self.source}: not valid JSON at line {line} column {column}: {message}"
        )

    def peek(self) -> str:
        self._fill()
        self.pos = _WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]
        if self.pos >= len(self.buf):
            self._fill(1)
            if self.pos >= len(self.buf):
                return ""
        return self.buf[self.pos]

    def expect(self, char: str) -> None:
        got = self.peek()
        if got != char:
            shown = repr(got) if got else "end of file"
            raise self.error(f"expected {char!r}, got {shown}")
        self.pos += 1

    def value(self) -> Any:
        self.peek()
        need = _LOOKAHEAD
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self.eof:
                    raise self.error(exc.msg, exc.pos) from None
                need *= 4
                self._fill(need)
                continue
            self.pos = end
            return value

    def string(self) -> str:
        if self.peek() != '"':
            raise self.error("expected a string key")
        value = self.value()
        assert isinstance(value, str)
        return value


def _iter_array(reader: _Reader) -> Iterator[Any]:
    """The values of a JSON array; the hot loop of a load, so it works on the buffer directly."""
    reader.expect("[")
    if reader.peek() == "]":
        reader.pos += 1
        return
    decode = reader.decoder.raw_decode
    skip = _WS.match
    while True:
        buf, pos = reader.buf, reader.pos
        if len(buf) - pos < _LOOKAHEAD and not reader.eof:
            reader._fill()
            buf, pos = reader.buf, reader.pos
        if buf[pos : pos + 1] in _WS_CHARS:
            pos = skip(buf, pos).end()  # type: ignore[union-attr]
        try:
            value, pos = decode(buf, pos)
        except json.JSONDecodeError:
            reader.pos = pos
            value = reader.value()  # refills and retries, or reports line and column
            buf, pos = reader.buf, reader.pos
        yield value
        char = buf[pos : pos + 1]
        if char and char in _WS_CHARS:
            pos = skip(buf, pos).end()  # type: ignore[union-attr]
            char = buf[pos : pos + 1]
        if char == ",":
            reader.pos = pos + 1
            continue
        reader.pos = pos
        char = reader.peek()
        reader.pos += 1
        if char == "]":
            return
        if char != ",":
            raise reader.error(f"expected ',' or ']' in an array, got {char!r}", reader.pos - 1)


def _iter_object(reader: _Reader) -> Iterator[str]:
    """Yields each key; the caller must consume the value before asking for the next key."""
    reader.expect("{")
    if reader.peek() == "}":
        reader.pos += 1
        return
    while True:
        key = reader.string()
        reader.expect(":")
        yield key
        char = reader.peek()
        reader.pos += 1
        if char == "}":
            return
        if char != ",":
            raise reader.error(f"expected ',' or '}}' in an object, got {char!r}", reader.pos - 1)


# --- value conversion ----------------------------------------------------------------------

Converter = Callable[[Any], Any]


def _conv_text(value: Any) -> Any:
    if type(value) is str:
        return value
    raise ValueError(f"expected a string, got {value!r}")


def _conv_id(value: Any) -> Any:
    # Fast path first: almost every id in a file is already 18 ASCII alphanumerics.
    if type(value) is str and value.isascii() and value.isalnum():
        if len(value) == 18:
            return value
        if len(value) == 15:
            return id15_to_18(value)
    raise ValueError(f"expected a 15- or 18-character Salesforce id, got {value!r}")


def _conv_bool(value: Any) -> Any:
    if value is True:
        return 1
    if value is False:
        return 0
    raise ValueError(f"expected true or false, got {value!r}")


def _conv_int(value: Any) -> Any:
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    raise ValueError(f"expected an integer, got {value!r}")


def _conv_real(value: Any) -> Any:
    if type(value) is float or type(value) is int:
        return value
    raise ValueError(f"expected a number, got {value!r}")


def _conv_date(value: Any) -> Any:
    if type(value) is str and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            date.fromisoformat(value)
        except ValueError:
            pass
        else:
            return value
    raise ValueError(f"expected a date YYYY-MM-DD, got {value!r}")


def _conv_datetime(value: Any) -> Any:
    if type(value) is str:
        if len(value) == 28 and value[10] == "T" and value.endswith(".000+0000"):
            try:
                datetime.fromisoformat(value)
            except ValueError:
                pass
            else:
                return value
        elif "T" in value:
            try:
                return format_datetime(parse_datetime(value))
            except ValueError:
                pass
    raise ValueError(f"expected a datetime YYYY-MM-DDTHH:MM:SS.000+0000, got {value!r}")


def converter_for(fdef: FieldDef) -> Converter:
    """The function that checks and normalises one data-file value of ``fdef``."""
    if fdef.type in ("id", "reference"):
        return _conv_id
    if fdef.type == "date":
        return _conv_date
    if fdef.type == "datetime":
        return _conv_datetime
    storage = fdef.storage
    if storage == "bool":
        return _conv_bool
    if storage == "int":
        return _conv_int
    if storage == "real":
        return _conv_real
    return _conv_text


def _infer_custom(name: str, value: Any) -> FieldDef:
    if isinstance(value, bool):
        type_ = "boolean"
    elif isinstance(value, int | float):
        type_ = "double"
    elif isinstance(value, str) and _DATE_RE.match(value):
        type_ = "date"
    elif isinstance(value, str) and _CANON_DT_RE.match(value):
        type_ = "datetime"
    else:
        type_ = "string"
    return custom_field(name, {"type": type_})


# --- loading -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Plan:
    """How records with one exact key sequence map to columns (one INSERT statement).

    ``accepts`` holds, per position, the Python types (from JSON) the field takes;
    ``seen`` the tuples of value types already checked against it, so a record is
    type-checked by one tuple lookup.
    """

    columns: list[str]
    drop: tuple[int, ...]
    accepts: list[tuple[type, ...]]
    seen: set[tuple[type, ...]] = field(default_factory=set)
    rows: list[tuple[Any, ...]] = field(default_factory=list)


# The JSON value types each storage class takes (ints are fine for real numbers).
_ACCEPTED: dict[str, tuple[type, ...]] = {
    "text": (str,),
    "bool": (bool,),
    "int": (int, float),  # integral floats are normalised, others refused in SQL
    "real": (int, float),
}


class _ObjectLoader:
    """Batches one object's records into its table, as fast as Python allows.

    Records of one object nearly always share their key sequence, so each distinct
    key tuple is resolved once (a :class:`_Plan`) and a record costs one tuple
    build. Values are checked afterwards, in SQL, by :func:`_check_rows`.
    """

    def __init__(self, loader: _Loader, obj: SObjectDef) -> None:
        self.loader = loader
        self.obj = obj
        self.store = loader.store
        self.plans: dict[tuple[str, ...], _Plan] = {}
        self.count = 0

    def where(self, idx: int, fname: str | None = None) -> str:
        text = f"{self.loader.source}: {self.obj.name}[{idx}]"
        return f"{text}.{fname}" if fname else text

    def add(self, idx: int, record: Any) -> None:
        if type(record) is not dict:
            raise DataFileError(f"{self.where(idx)}: expected a JSON object, got {record!r}")
        keys = tuple(record)
        plan = self.plans.get(keys)
        if plan is None:
            plan = self._plan(idx, keys, record)
        values = record.values()
        if plan.drop:
            values = [v for i, v in enumerate(values) if i not in plan.drop]  # type: ignore[assignment]
        types = tuple(map(type, values))
        if types not in plan.seen:
            self._check_types(idx, plan, types, list(values))
        plan.rows.append((idx, *values))
        self.count += 1
        if len(plan.rows) >= _BATCH:
            self._flush(plan)

    def _plan(self, idx: int, keys: tuple[str, ...], record: dict[str, Any]) -> _Plan:
        columns = ["_row"]
        drop = []
        for i, key in enumerate(keys):
            if key == "attributes":
                drop.append(i)
                continue
            name = self.obj.canonical(key)
            if name is None:
                name = self._new_field(idx, key, record[key])
            elif self.obj.fields[name].is_compound:
                parts = ", ".join(self.obj.fields[name].components)
                raise DataFileError(
                    f"{self.where(idx, name)}: a compound field has no value of its own; "
                    f"set its components ({parts})"
                )
            if name in columns:
                raise DataFileError(f"{self.where(idx, name)}: the field is given twice")
            columns.append(name)
        if "Id" not in columns:
            raise DataFileError(f"{self.where(idx, 'Id')}: every record needs an Id")
        accepts = [_ACCEPTED[self.obj.fields[name].storage] for name in columns[1:]]
        plan = _Plan(columns, tuple(drop), accepts)
        self.plans[keys] = plan
        return plan

    def _check_types(
        self, idx: int, plan: _Plan, types: tuple[type, ...], values: list[Any]
    ) -> None:
        for name, accepted, kind, value in zip(
            plan.columns[1:], plan.accepts, types, values, strict=True
        ):
            if kind is not type(None) and kind not in accepted:
                fdef = self.obj.fields[name]
                try:
                    converter_for(fdef)(value)
                except ValueError as exc:
                    raise DataFileError(f"{self.where(idx, name)}: {exc}") from None
                raise DataFileError(f"{self.where(idx, name)}: invalid value {value!r}")
        plan.seen.add(types)

    def _new_field(self, idx: int, key: str, value: Any) -> str:
        if not key.endswith("__c") or not _API_NAME_RE.match(key):
            raise DataFileError(
                f"{self.where(idx, key)}: unknown field {key!r} on {self.obj.name} "
                "(custom fields end in __c)"
            )
        declared = self.loader.declared.get(self.obj.name, {}).get(key)
        fdef = custom_field(key, declared) if declared else _infer_custom(key, value)
        self.loader.add_field(self.obj.name, fdef)
        return key

    def _flush(self, plan: _Plan) -> None:
        if not plan.rows:
            return
        try:
            self.store.insert_rows(self.obj.name, plan.columns, plan.rows)
        except (sqlite3.Error, OverflowError):
            self._locate_bad_value(plan)
            raise
        plan.rows = []

    def _locate_bad_value(self, plan: _Plan) -> None:
        for row in plan.rows:
            for name, value in zip(plan.columns[1:], row[1:], strict=True):
                bad = isinstance(value, dict | list) or (
                    isinstance(value, int) and not -(2**63) <= value < 2**63
                )
                if bad:
                    raise DataFileError(
                        f"{self.where(row[0], name)}: expected a single value, got {value!r}"
                    ) from None

    def flush(self) -> None:
        for plan in self.plans.values():
            self._flush(plan)


class _Loader:
    def __init__(self, source: str, store: Store, objects: dict[str, SObjectDef]) -> None:
        self.source = source
        self.store = store
        self.objects = objects
        self.now = format_datetime(datetime.now(UTC).replace(microsecond=0))
        self.declared: dict[str, dict[str, dict[str, Any]]] = {}
        self.inferred: set[tuple[str, str]] = set()
        self.meta: dict[str, Any] = {}
        self.seen_objects: set[str] = set()
        self.loaders: dict[str, _ObjectLoader] = {}

    def add_field(self, sobject: str, fdef: FieldDef) -> None:
        self.objects[sobject].add(fdef)
        self.store.add_column(sobject, fdef)
        if sobject not in self.declared or fdef.name not in self.declared[sobject]:
            self.inferred.add((sobject, fdef.name))

    def declare(self, value: Any) -> None:
        if not isinstance(value, dict):
            raise DataFileError(f"{self.source}: custom_fields: expected an object")
        for sobject, fields in value.items():
            if sobject not in self.objects:
                raise DataFileError(f"{self.source}: custom_fields.{sobject}: unknown object")
            if not isinstance(fields, dict):
                raise DataFileError(f"{self.source}: custom_fields.{sobject}: expected an object")
            for name, spec in fields.items():
                where = f"{self.source}: custom_fields.{sobject}.{name}"
                if not name.endswith("__c") or not _API_NAME_RE.match(name):
                    raise DataFileError(f"{where}: custom field names end in __c")
                if not isinstance(spec, dict):
                    raise DataFileError(f'{where}: expected an object like {{"type": ...}}')
                fdef = custom_field(name, spec)
                if fdef.type not in _CUSTOM_TYPES:
                    raise DataFileError(f"{where}: unsupported type {fdef.type!r}")
                self.declared.setdefault(sobject, {})[name] = spec
                # Declared after records that used it: the declaration wins; values are
                # checked against it after the load like every other column.
                self.objects[sobject].add(fdef)
                self.store.add_column(sobject, fdef)
                self.inferred.discard((sobject, name))

    def read(self, reader: _Reader) -> None:
        for key in _iter_object(reader):
            if key == "records":
                self._read_records(reader)
            elif key == "custom_fields":
                self.declare(reader.value())
            else:
                self.meta[key] = reader.value()
        if reader.peek():
            raise reader.error("unexpected data after the top-level object")

    def _read_records(self, reader: _Reader) -> None:
        for name in _iter_object(reader):
            obj = self.objects.get(name)
            if obj is None or not obj.in_data_file:
                known = ", ".join(DATA_FILE_OBJECTS)
                raise DataFileError(
                    f"{self.source}: records.{name}: unknown object {name!r} (known: {known})"
                )
            if name in self.seen_objects:
                raise DataFileError(f"{self.source}: records.{name}: listed twice")
            self.seen_objects.add(name)
            loader = _ObjectLoader(self, obj)
            self.loaders[name] = loader
            if reader.peek() != "[":
                raise DataFileError(f"{self.source}: records.{name}: expected a JSON array")
            for idx, record in enumerate(_iter_array(reader)):
                loader.add(idx, record)
            loader.flush()


_CUSTOM_TYPES = {
    "string",
    "textarea",
    "picklist",
    "multipicklist",
    "email",
    "phone",
    "url",
    "boolean",
    "currency",
    "percent",
    "double",
    "int",
    "date",
    "datetime",
    "reference",
}


def _open(path: Path) -> IO[str]:
    try:
        return path.open(encoding="utf-8")
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read the data file: {exc.strerror}") from None


def load_data(path: Path, objects: dict[str, SObjectDef]) -> OrgData:
    """Load and validate a data file into a fresh store (a temp file for big orgs)."""
    source = path.name
    size = path.stat().st_size if path.exists() else 0
    db_path = ":memory:"
    if size > 64 * 1024 * 1024:
        handle, db_path = tempfile.mkstemp(prefix="sfsync-devorg-", suffix=".sqlite")
        os.close(handle)
    store = Store(objects, db_path)
    if db_path != ":memory:":
        Path(db_path).unlink()  # the open connection keeps it; nothing is left behind on exit
    try:
        loader = _Loader(source, store, objects)
        store.conn.execute("BEGIN")
        with _open(path) as stream:
            try:
                loader.read(_Reader(stream, source))
            except UnicodeDecodeError as exc:
                raise DataFileError(f"{source}: not UTF-8 text: {exc.reason}") from None
        data = _finish(loader)
        store.conn.execute("COMMIT")
        return data
    except BaseException:
        store.close()
        raise


def load_dict(data: dict[str, Any], objects: dict[str, SObjectDef], source: str) -> OrgData:
    """Load an in-memory data file (tests and small orgs) through the same validation."""
    import io

    store = Store(objects)
    try:
        loader = _Loader(source, store, objects)
        store.conn.execute("BEGIN")
        loader.read(_Reader(io.StringIO(json.dumps(data)), source))
        result = _finish(loader)
        store.conn.execute("COMMIT")
        return result
    except BaseException:
        store.close()
        raise


# --- after the records: defaults, references, consistency -------------------------------------

_DEFAULT_STAGES = (
    # ApiName, SortOrder, IsClosed, IsWon, DefaultProbability, ForecastCategoryName
    ("Prospecting", 1, False, False, 10.0, "Pipeline"),
    ("Qualification", 2, False, False, 10.0, "Pipeline"),
    ("Needs Analysis", 3, False, False, 20.0, "Pipeline"),
    ("Value Proposition", 4, False, False, 50.0, "Pipeline"),
    ("Proposal/Price Quote", 5, False, False, 75.0, "Pipeline"),
    ("Negotiation/Review", 6, False, False, 90.0, "Pipeline"),
    ("Closed Won", 7, True, True, 100.0, "Closed"),
    ("Closed Lost", 8, True, False, 0.0, "Omitted"),
)


def _first_error_row(store: Store, sql: str, params: tuple[Any, ...] = ()) -> Any:
    return store.conn.execute(sql, params).fetchone()


def _integration_user(loader: _Loader) -> str:
    source = loader.source
    users = {r[0]: r[1] for r in loader.store.conn.execute('SELECT Id, _row FROM "User"')}
    integration = loader.meta.get("integration_user_id")
    if integration is None:
        first = loader.store.scalar('SELECT Id FROM "User" ORDER BY _row LIMIT 1')
        if first is None:
            raise DataFileError(f"{source}: integration_user_id: the org has no User records")
        return str(first)
    if not isinstance(integration, str) or not _ID_RE.match(integration):
        raise DataFileError(
            f"{source}: integration_user_id: expected a User id, got {integration!r}"
        )
    integration = id15_to_18(integration) if len(integration) == 15 else integration
    if integration not in users:
        raise DataFileError(f"{source}: integration_user_id: no User record has Id {integration!r}")
    return integration


def _finish(loader: _Loader) -> OrgData:
    """Everything after the records: normalise, index, check, default, derive."""
    store, objects, source, meta = loader.store, loader.objects, loader.source, loader.meta
    conn = store.conn
    # Other top-level keys (a generator's summary...) are ignored on purpose.
    loaded = [objects[name] for name in loader.loaders]
    for obj in loaded:
        _normalize(store, obj)

    # Ids: unique per object (the key prefix already keeps objects apart). The unique
    # index finds a duplicate for free; only then is it looked for, to name it.
    try:
        store.create_indexes(objects)
    except sqlite3.IntegrityError:
        for name in objects:
            dup = store.duplicate_id(name)
            if dup:
                first, second, dup_id = dup
                raise DataFileError(
                    f"{source}: {name}[{second}].Id: duplicate Id {dup_id!r} (also {name}[{first}])"
                ) from None
        raise

    integration = _integration_user(loader)
    _default_setup_rows(loader, integration)
    codes = [r[0] for r in conn.execute('SELECT IsoCode FROM "CurrencyType"')]
    for obj in loaded:
        _check_rows(store, objects, obj, source, codes)

    nulls: dict[str, set[str]] = {}
    for obj in loaded:
        missing, any_deleted = _null_stats(store, obj)
        nulls[obj.name] = missing
        _system_defaults(store, obj, missing, integration, loader.now)
        if any_deleted:
            conn.execute(
                "INSERT INTO _deleted (sobject, id, deleted_date) "
                f"SELECT ?, Id, SystemModstamp FROM {quote(obj.name)} WHERE IsDeleted = 1",
                (obj.name,),
            )
    if codes:
        corporate = store.scalar('SELECT IsoCode FROM "CurrencyType" WHERE IsCorporate = 1')
        for name, missing in nulls.items():
            if "CurrencyIsoCode" in missing:
                conn.execute(
                    f"UPDATE {quote(name)} SET CurrencyIsoCode = ? WHERE CurrencyIsoCode IS NULL",
                    (corporate or codes[0],),
                )
    _derive(store, nulls)
    _read_deleted_log(store, objects, source, meta.get("deleted"))

    rules = _read_rules(meta.get("validation_rules"), objects, source)
    limit = meta.get("api_limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise DataFileError(f"{source}: api_limit: expected a positive integer, got {limit!r}")
    creds = meta.get("credentials") or {}
    if not isinstance(creds, dict) or not all(isinstance(v, str) for v in creds.values()):
        raise DataFileError(f"{source}: credentials: expected an object of strings")
    declared = loader.declared
    for sobject, name in loader.inferred:
        fdef = objects[sobject].fields[name]
        declared.setdefault(sobject, {})[name] = {"type": fdef.type}
    return OrgData(store, objects, integration, declared, rules, limit, dict(creds))


def _normalize(store: Store, obj: SObjectDef) -> None:
    """Rewrite the rare values that are valid but not in canonical form (15-char ids,
    datetimes with ``Z`` or an offset, integral floats in int fields)."""
    candidates: list[tuple[str, str]] = []
    for name in store.columns[obj.name]:
        fdef = obj.fields[name]
        col = quote(name)
        if fdef.type in ("id", "reference"):
            candidates.append((name, f"(typeof({col}) = 'text' AND length({col}) = 15)"))
        elif fdef.type == "datetime":
            candidates.append(
                (
                    name,
                    f"(typeof({col}) = 'text' AND (length({col}) != 28 OR "
                    f"substr({col}, 24) != '+0000'))",
                )
            )
        elif fdef.storage == "int":
            candidates.append((name, f"typeof({col}) = 'real'"))
    if not candidates:
        return
    cols = ", ".join(quote(name) for name, _ in candidates)
    where = " OR ".join(cond for _, cond in candidates)
    table = quote(obj.name)
    updates: dict[str, list[tuple[Any, int]]] = {name: [] for name, _ in candidates}
    converters = [converter_for(obj.fields[name]) for name, _ in candidates]
    for row in store.conn.execute(f"SELECT _row, {cols} FROM {table} WHERE {where}"):
        for (name, _), convert, value in zip(candidates, converters, row[1:], strict=True):
            if value is None:
                continue
            try:
                fixed = convert(value)
            except ValueError:
                continue  # reported by _check_rows, with the record's index
            if fixed != value or type(fixed) is not type(value):
                updates[name].append((fixed, row[0]))
    for name, pairs in updates.items():
        if pairs:
            store.conn.executemany(f"UPDATE {table} SET {quote(name)} = ? WHERE _row = ?", pairs)


def _null_stats(store: Store, obj: SObjectDef) -> tuple[set[str], bool]:
    """Which defaultable fields are missing somewhere, and whether any row is deleted."""
    names = [n for n in (*_SYSTEM_DEFAULTED, *_WATCHED) if n in store.columns[obj.name]]
    names = list(dict.fromkeys(names))
    aggregates = ", ".join(f"MAX({quote(n)} IS NULL)" for n in names)
    row = store.conn.execute(
        f"SELECT {aggregates}, MAX(IsDeleted = 1) FROM {quote(obj.name)}"
    ).fetchone()
    missing = {n for n, flag in zip(names, row[:-1], strict=True) if flag}
    return missing, bool(row[-1])


_SYSTEM_DEFAULTED = (
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
    "CreatedById",
    "LastModifiedById",
    "IsDeleted",
)


def _system_defaults(
    store: Store, obj: SObjectDef, missing: set[str], integration: str, now: str
) -> None:
    """One UPDATE for every missing system field (right-hand sides see the old row)."""
    if not missing & set(_SYSTEM_DEFAULTED):
        return
    has_lm = "LastModifiedDate" in store.columns[obj.name]
    lm = "LastModifiedDate, " if has_lm else ""
    sets = [
        f"CreatedDate = COALESCE(CreatedDate, {lm}SystemModstamp, :now)",
        f"SystemModstamp = COALESCE(SystemModstamp, {lm}CreatedDate, :now)",
        "CreatedById = COALESCE(CreatedById, :user)",
        "IsDeleted = COALESCE(IsDeleted, 0)",
    ]
    if has_lm:
        sets += [
            "LastModifiedDate = COALESCE(LastModifiedDate, CreatedDate, SystemModstamp, :now)",
            "LastModifiedById = COALESCE(LastModifiedById, CreatedById, :user)",
        ]
    where = " OR ".join(f"{n} IS NULL" for n in _SYSTEM_DEFAULTED if n in store.columns[obj.name])
    store.conn.execute(
        f"UPDATE {quote(obj.name)} SET {', '.join(sets)} WHERE {where}",
        {"now": now, "user": integration},
    )


def _default_setup_rows(loader: _Loader, integration: str) -> None:
    """A data file may leave out the org and its stages; a usable org has both."""
    store, now = loader.store, loader.now
    conn = store.conn
    stamps = (now, integration, now, integration, now)
    system = (
        "IsDeleted, CreatedDate, CreatedById, LastModifiedDate, LastModifiedById, SystemModstamp"
    )
    if not store.scalar('SELECT COUNT(*) FROM "Organization"'):
        conn.execute(
            'INSERT INTO "Organization" (Id, Name, FiscalYearStartMonth, '
            "UsesStartDateAsFiscalYearName, TimeZoneSidKey, DefaultLocaleSidKey, "
            f"LanguageLocaleKey, OrganizationType, IsSandbox, InstanceName, {system}) "
            "VALUES (?, 'sfsync dev org', 1, 0, 'GMT', 'en_US', 'en_US', 'Developer Edition', "
            "0, 'DEV1', 0, ?, ?, ?, ?, ?)",
            (id15_to_18("00D000000000001"), *stamps),
        )
    # Both are PicklistMaster rows (prefix 01J, as stages): "DVS"/"DVP" keep their Ids
    # apart from a data file's stages.
    for table, marker, values, flag in (
        ("TaskStatus", "DVS", TASK_STATUSES, "IsClosed"),
        ("TaskPriority", "DVP", TASK_PRIORITIES, "IsHighPriority"),
    ):
        prefix = KEY_PREFIXES[table] + marker
        for i, value in enumerate(values, 1):
            conn.execute(
                f'INSERT INTO "{table}" (Id, MasterLabel, ApiName, SortOrder, IsDefault, {flag}, '
                f"{system}) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
                (
                    id15_to_18(f"{prefix}{i:09d}"),
                    value.label,
                    value.label,
                    value.sort_order,
                    int(value.default),
                    int(value.closed_or_high),
                    *stamps,
                ),
            )
    if not store.scalar('SELECT COUNT(*) FROM "OpportunityStage"'):
        for i, (api, order, closed, won, prob, fc) in enumerate(_DEFAULT_STAGES, 1):
            conn.execute(
                'INSERT INTO "OpportunityStage" (Id, MasterLabel, ApiName, SortOrder, IsActive, '
                f"IsClosed, IsWon, DefaultProbability, ForecastCategory, ForecastCategoryName, "
                f"{system}) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
                (
                    id15_to_18(f"01J{i:012d}"),
                    api,
                    api,
                    order,
                    int(closed),
                    int(won),
                    prob,
                    FORECAST_CATEGORIES[fc],
                    fc,
                    *stamps,
                ),
            )


@dataclass(frozen=True, slots=True)
class _Check:
    """One consistency rule on a table: a SQL condition on alias ``c`` that marks a bad row."""

    field: str
    sql: str
    params: tuple[Any, ...]
    problem: Callable[[Any], str]


def _not_an_id_of(target: str) -> Callable[[Any], str]:
    return lambda value: f"{value!r} is not the Id of a {target} in this file"


def _rejected_by(fdef: FieldDef) -> Callable[[Any], str]:
    convert = converter_for(fdef)

    def problem(value: Any) -> str:
        if fdef.storage == "bool" and value in (0, 1) and not isinstance(value, str):
            value = bool(value)
        try:
            convert(value)
        except ValueError as exc:
            return str(exc)
        return f"invalid value {value!r}"

    return problem


def _value_condition(fdef: FieldDef) -> str:
    """SQL that is true for a stored value the field's type does not accept.

    Only cheap tests (``typeof``, ``length``, ``substr``): ``GLOB`` and ``date()``
    cost microseconds per value, which is minutes on a million-opportunity org.
    Shapes and month/day/hour ranges are checked; a day past its month's end
    (``2024-02-30``) is not.
    """
    col = f"c.{quote(fdef.name)}"
    if fdef.type in ("id", "reference"):
        return f"{col} IS NOT NULL AND length({col}) != 18"
    if fdef.type in ("date", "datetime"):
        parts = [
            f"length({col}) != {10 if fdef.type == 'date' else 28}",
            f"substr({col}, 5, 1) != '-'",
            f"substr({col}, 8, 1) != '-'",
            f"substr({col}, 6, 2) NOT BETWEEN '01' AND '12'",
            f"substr({col}, 9, 2) NOT BETWEEN '01' AND '31'",
        ]
        if fdef.type == "datetime":
            parts += [
                f"substr({col}, 11, 1) != 'T'",
                f"substr({col}, 12, 2) > '23'",
                f"substr({col}, 24) != '+0000'",
            ]
        return f"{col} IS NOT NULL AND ({' OR '.join(parts)})"
    if fdef.storage == "int":
        return f"typeof({col}) = 'real'"
    return ""  # other JSON types were checked as the records were read


def _checks(obj: SObjectDef, objects: dict[str, SObjectDef], codes: list[str]) -> list[_Check]:
    checks: list[_Check] = [
        _Check("Id", "c.Id IS NULL", (), lambda _v: "every record needs an Id"),
        _Check("Id", _value_condition(obj.fields["Id"]), (), _rejected_by(obj.fields["Id"])),
        _Check(
            "Id",
            "substr(c.Id, 1, 3) IS NOT ?",
            (obj.key_prefix,),
            lambda v: f"{v!r} does not start with {obj.key_prefix!r}, the key prefix of {obj.name}",
        ),
    ]
    for fdef in obj.fields.values():
        condition = _value_condition(fdef)
        if fdef.name != "Id" and condition:
            checks.append(_Check(fdef.name, condition, (), _rejected_by(fdef)))
    for fdef in obj.fields.values():
        if fdef.type != "reference":
            continue
        col = f"c.{quote(fdef.name)}"
        for target_name in fdef.reference_to:
            target = objects.get(target_name)
            if target is None:
                continue  # Account, Profile...: not part of a dev org
            prefix_sql, params = "", tuple[str, ...]()
            if len(fdef.reference_to) > 1:
                prefix_sql, params = f" AND substr({col}, 1, 3) = ?", (target.key_prefix,)
            checks.append(
                _Check(
                    fdef.name,
                    f"{col} IS NOT NULL{prefix_sql} AND NOT EXISTS (SELECT 1 FROM "
                    f"{quote(target.name)} p WHERE p.Id = {col})",
                    params,
                    _not_an_id_of(target.name),
                )
            )
    if obj.name == "Opportunity":
        checks.append(
            _Check(
                "RecordTypeId",
                'EXISTS (SELECT 1 FROM "RecordType" r WHERE r.Id = c.RecordTypeId '
                "AND r.SobjectType IS NOT 'Opportunity')",
                (),
                lambda v: f"{v!r} is not an Opportunity record type",
            )
        )
        checks.append(
            _Check(
                "StageName",
                'c.StageName IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "OpportunityStage" s '
                "WHERE s.ApiName = c.StageName)",
                (),
                lambda v: f"{v!r} is not the ApiName of an OpportunityStage",
            )
        )
        for name in ("Name", "StageName", "CloseDate"):
            checks.append(_Check(name, f"c.{name} IS NULL", (), lambda _v: "required"))
    if "CurrencyIsoCode" in obj.fields:
        if not codes:
            checks.append(
                _Check(
                    "CurrencyIsoCode",
                    "c.CurrencyIsoCode IS NOT NULL",
                    (),
                    lambda _v: "the org is not multi-currency (no CurrencyType records)",
                )
            )
        else:
            marks = ", ".join("?" for _ in codes)
            checks.append(
                _Check(
                    "CurrencyIsoCode",
                    f"c.CurrencyIsoCode IS NOT NULL AND c.CurrencyIsoCode NOT IN ({marks})",
                    tuple(codes),
                    lambda v: f"{v!r} is not the IsoCode of a CurrencyType",
                )
            )
    return checks


def _check_rows(
    store: Store, objects: dict[str, SObjectDef], obj: SObjectDef, source: str, codes: list[str]
) -> None:
    """All of a table's consistency rules in one scan; on a hit, find which rule it broke."""
    checks = _checks(obj, objects, codes)
    if not checks:
        return
    table = quote(obj.name)
    where = " OR ".join(f"({c.sql})" for c in checks)
    params = tuple(p for c in checks for p in c.params)
    row = _first_error_row(
        store, f"SELECT c._row FROM {table} c WHERE {where} ORDER BY c._row LIMIT 1", params
    )
    if row is None:
        return
    for check in checks:
        hit = _first_error_row(
            store,
            f"SELECT c.{quote(check.field)} FROM {table} c WHERE c._row = ? AND ({check.sql})",
            (row[0], *check.params),
        )
        if hit is not None:
            raise DataFileError(
                f"{source}: {obj.name}[{row[0]}].{check.field}: {check.problem(hit[0])}"
            )


def _derive(store: Store, nulls: dict[str, set[str]]) -> None:
    """Fill read-only derived fields the file left out, the way Salesforce computes them."""
    conn = store.conn
    opp = nulls.get("Opportunity", set())
    if opp & {"IsClosed", "IsWon", "ForecastCategoryName"}:
        conn.execute(
            'UPDATE "Opportunity" SET '
            "IsClosed = COALESCE(IsClosed, (SELECT s.IsClosed FROM OpportunityStage s "
            "  WHERE s.ApiName = Opportunity.StageName)), "
            "IsWon = COALESCE(IsWon, (SELECT s.IsWon FROM OpportunityStage s "
            "  WHERE s.ApiName = Opportunity.StageName)), "
            "ForecastCategoryName = COALESCE(ForecastCategoryName, (SELECT "
            "  s.ForecastCategoryName FROM OpportunityStage s "
            "  WHERE s.ApiName = Opportunity.StageName)) "
            "WHERE IsClosed IS NULL OR IsWon IS NULL OR ForecastCategoryName IS NULL"
        )
    if opp & {"ForecastCategory", "ForecastCategoryName"}:
        cases = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in FORECAST_CATEGORIES.items())
        conn.execute(
            f'UPDATE "Opportunity" SET ForecastCategory = CASE ForecastCategoryName {cases} END '
            "WHERE ForecastCategory IS NULL"
        )
    if "HasOpportunityLineItem" in opp:
        conn.execute(
            'UPDATE "Opportunity" SET HasOpportunityLineItem = EXISTS (SELECT 1 FROM '
            '"OpportunityLineItem" li WHERE li.OpportunityId = Opportunity.Id AND '
            "li.IsDeleted = 0) WHERE HasOpportunityLineItem IS NULL"
        )
    if "ExpectedRevenue" in opp:
        conn.execute(
            'UPDATE "Opportunity" SET ExpectedRevenue = Amount * Probability / 100.0 '
            "WHERE ExpectedRevenue IS NULL AND Amount IS NOT NULL AND Probability IS NOT NULL"
        )
    task = nulls.get("Task", set())
    if task & {"Status", "Priority", "IsClosed", "IsHighPriority"}:
        closed = ", ".join(f"'{s.label}'" for s in TASK_STATUSES if s.closed_or_high)
        conn.execute(
            "UPDATE \"Task\" SET Status = COALESCE(Status, 'Not Started'), "
            "Priority = COALESCE(Priority, 'Normal') WHERE Status IS NULL OR Priority IS NULL"
        )
        conn.execute(f'UPDATE "Task" SET IsClosed = (Status IN ({closed})) WHERE IsClosed IS NULL')
        conn.execute(
            "UPDATE \"Task\" SET IsHighPriority = (Priority = 'High') WHERE IsHighPriority IS NULL"
        )
    if "Name" in nulls.get("User", set()):
        conn.execute(
            "UPDATE \"User\" SET Name = TRIM(COALESCE(FirstName, '') || ' ' || "
            "COALESCE(LastName, '')) WHERE Name IS NULL"
        )
    for table, col, value in (
        ("User", "IsActive", 1),
        ("RecordType", "IsActive", 1),
        ("OpportunityStage", "IsActive", 1),
        ("CurrencyType", "IsActive", 1),
        ("Product2", "IsActive", 1),
        ("OpportunityStage", "IsClosed", 0),
        ("OpportunityStage", "IsWon", 0),
        ("CurrencyType", "IsCorporate", 0),
        ("Organization", "IsSandbox", 0),
    ):
        if col in nulls.get(table, set()):
            conn.execute(f'UPDATE "{table}" SET {col} = ? WHERE {col} IS NULL', (value,))


def _read_deleted_log(
    store: Store, objects: dict[str, SObjectDef], source: str, entries: Any
) -> None:
    if entries is None:
        return
    if not isinstance(entries, list):
        raise DataFileError(f"{source}: deleted: expected an array")
    rows = []
    for i, entry in enumerate(entries):
        where = f"{source}: deleted[{i}]"
        if not isinstance(entry, dict) or not {"type", "id", "deletedDate"} <= set(entry):
            raise DataFileError(f'{where}: expected {{"type", "id", "deletedDate"}}')
        if entry["type"] not in objects:
            raise DataFileError(f"{where}.type: unknown object {entry['type']!r}")
        try:
            rows.append(
                (entry["type"], _conv_id(entry["id"]), _conv_datetime(entry["deletedDate"]))
            )
        except ValueError as exc:
            raise DataFileError(f"{where}: {exc}") from None
    store.conn.executemany(
        "INSERT INTO _deleted (sobject, id, deleted_date, hard) VALUES (?, ?, ?, 1)", rows
    )


def _read_rules(value: Any, objects: dict[str, SObjectDef], source: str) -> list[ValidationRule]:
    from sfsync.devorg.soql import SoqlError, parse_condition

    if value is None:
        return []
    if not isinstance(value, list):
        raise DataFileError(f"{source}: validation_rules: expected an array")
    rules = []
    for i, spec in enumerate(value):
        where = f"{source}: validation_rules[{i}]"
        if not isinstance(spec, dict):
            raise DataFileError(f"{where}: expected an object")
        missing = [k for k in ("object", "name", "condition", "message") if k not in spec]
        if missing:
            raise DataFileError(f"{where}: missing {', '.join(missing)}")
        if spec["object"] not in objects:
            raise DataFileError(f"{where}.object: unknown object {spec['object']!r}")
        try:
            parse_condition(str(spec["condition"]))
        except SoqlError as exc:
            raise DataFileError(f"{where}.condition: {exc.message}") from None
        rules.append(
            ValidationRule(
                str(spec["object"]),
                str(spec["name"]),
                str(spec["condition"]),
                str(spec["message"]),
                spec.get("field"),
            )
        )
    return rules


# --- saving --------------------------------------------------------------------------------


def save_data(
    path: Path,
    store: Store,
    objects: dict[str, SObjectDef],
    *,
    integration_user_id: str,
    custom_fields: dict[str, dict[str, dict[str, Any]]],
    validation_rules: list[ValidationRule],
    api_limit: int | None,
    credentials: dict[str, str],
) -> None:
    """Write the whole state (soft-deleted rows included) atomically: temp file + rename."""
    encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    path = Path(path)
    # The org's records, and maybe its credentials: only the owner may read the file.
    with atomic_text_file(path, mode=0o600) as out:
        out.write("{" + f'"integration_user_id":{encode(integration_user_id)},\n')
        if custom_fields:
            out.write(f'"custom_fields":{encode(custom_fields)},\n')
        if validation_rules:
            rules = [
                {
                    "object": r.sobject,
                    "name": r.name,
                    "condition": r.condition,
                    "message": r.message,
                    **({"field": r.field} if r.field else {}),
                }
                for r in validation_rules
            ]
            out.write(f'"validation_rules":{encode(rules)},\n')
        if api_limit is not None:
            out.write(f'"api_limit":{api_limit},\n')
        if credentials:
            out.write(f'"credentials":{encode(credentials)},\n')
        hard = store.conn.execute(
            "SELECT sobject, id, deleted_date FROM _deleted WHERE hard = 1 ORDER BY rowid"
        ).fetchall()
        if hard:
            entries = [{"type": t, "id": i, "deletedDate": d} for t, i, d in hard]
            out.write(f'"deleted":{encode(entries)},\n')
        out.write('"records":{')
        first_object = True
        for name in DATA_FILE_OBJECTS:
            obj = objects[name]
            cols = store.columns[name]
            fdefs = [obj.fields[c] for c in cols]
            out.write(("" if first_object else ",") + f"\n{encode(name)}:[")
            first_object = False
            cursor = store.conn.execute(
                f"SELECT {', '.join(quote(c) for c in cols)} FROM {quote(name)} ORDER BY _row"
            )
            first = True
            while rows := cursor.fetchmany(2000):
                parts = []
                for row in rows:
                    record = {
                        f.name: json_value(f, v)
                        for f, v in zip(fdefs, row, strict=True)
                        if v is not None
                    }
                    parts.append(encode(record))
                out.write(("\n" if first else ",\n") + ",\n".join(parts))
                first = False
            out.write("]")
        out.write("\n}}\n")
