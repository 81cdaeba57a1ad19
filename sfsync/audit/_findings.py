"""Listing findings: what ``sfsync findings`` shows and exports (and a what-if audit lists).

A finding is listed with its opportunity as the warehouse has it now (name, the
owner's name from ``User``, stage, close date, and the amount converted to the
corporate currency exactly as the audit converts it) and with the values its rule
recorded: the fields of the rule's typed details class, in the order it declares
them. :func:`finding_columns` lays them out flat, one column per value, for the
CSV and JSON exports.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, case, null, select
from sqlalchemy.sql.elements import ColumnElement

from sfsync.audit._context import OPP, SEVERITY_RANK, AuditContext, audit_settings, build_context
from sfsync.audit._expressions import converted_amount
from sfsync.audit._ids import record_id
from sfsync.audit._lifecycle import FINDING
from sfsync.audit.rules import check_rule_ids, get_rule, rule_ids
from sfsync.config import AuditSettings, Settings
from sfsync.errors import UsageError
from sfsync.formats import is_salesforce_id
from sfsync.warehouse._engine import Warehouse
from sfsync.warehouse.models import User, table_of

__all__ = [
    "COMMON_COLUMNS",
    "FINDING_SORT_KEYS",
    "FINDING_STATUSES",
    "FindingColumn",
    "FindingRecord",
    "finding_columns",
    "list_findings",
]

FINDING_STATUSES = ("open", "resolved", "waived", "all")

# What every finding has, whatever its rule: the first columns of the exports.
COMMON_COLUMNS = (
    "rule",
    "opportunity_id",
    "opportunity_name",
    "owner_id",
    "owner_name",
    "stage",
    "close_date",
    "amount",
    "amount_currency",
    "status",
    "profile",
    "severity",
    "opened_at",
    "resolved_at",
)

_USER = table_of(User)


@dataclass(frozen=True)
class FindingRecord:
    """A finding with its opportunity as it is now and the values its rule recorded.

    ``amount`` is the opportunity's amount converted to ``amount_currency`` (the
    corporate currency; in a single-currency org, the amount as it is);
    ``details`` is what the rule stored, :meth:`values` its declared values.
    """

    id: int
    rule: str
    opportunity_id: str
    opportunity_name: str | None
    owner_id: str | None
    status: str
    profile: str
    severity: str
    opened_at: datetime
    resolved_at: datetime | None
    details: dict[str, Any]
    owner_name: str | None = None
    stage: str | None = None
    close_date: date | None = None
    amount: float | None = None
    amount_currency: str | None = None

    def values(self) -> dict[str, Any]:
        """The rule's values: its details class's fields in order (None where not stored).

        A finding of a rule that is no longer registered has what it stored, by key.
        """
        names = _value_names(self.rule)
        if names is None:
            return {key: self.details[key] for key in sorted(self.details)}
        return {name: self.details.get(name) for name in names}

    def common(self) -> dict[str, Any]:
        """The :data:`COMMON_COLUMNS`, as JSON values (dates ISO, instants in UTC with Z)."""
        return {
            "rule": self.rule,
            "opportunity_id": self.opportunity_id,
            "opportunity_name": self.opportunity_name,
            "owner_id": self.owner_id,
            "owner_name": self.owner_name,
            "stage": self.stage,
            "close_date": None if self.close_date is None else self.close_date.isoformat(),
            "amount": self.amount,
            "amount_currency": self.amount_currency,
            "status": self.status,
            "profile": self.profile,
            "severity": self.severity,
            "opened_at": _iso_utc(self.opened_at),
            "resolved_at": None if self.resolved_at is None else _iso_utc(self.resolved_at),
        }

    def as_dict(self) -> dict[str, Any]:
        """:meth:`common` plus ``values`` (a dict): the finding for a Python caller."""
        return {**self.common(), "values": self.values()}

    def exported(self, columns: Sequence[FindingColumn]) -> dict[str, Any]:
        """The common columns and this finding's rule's columns of ``columns``, by name."""
        common = self.common()
        values = self.values()
        return {
            column.name: common.get(column.key) if column.rule is None else values.get(column.key)
            for column in columns
            if column.rule is None or column.rule == self.rule
        }


def _iso_utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _value_names(rule_id: str) -> tuple[str, ...] | None:
    """The fields of a rule's details class, in order; None for a rule not registered."""
    try:
        rule = get_rule(rule_id)
    except KeyError:
        return None
    return tuple(field.name for field in dataclasses.fields(rule.details_type))


# --------------------------------------------------------------------------- the export layout


@dataclass(frozen=True)
class FindingColumn:
    """One export column: a common one (``rule`` None) or one value of one rule."""

    name: str
    rule: str | None
    key: str


def finding_columns(
    rules: Sequence[str] | None = None, records: Sequence[FindingRecord] = ()
) -> tuple[FindingColumn, ...]:
    """The export's columns: the common ones, then one per value of each rule listed.

    The rules listed are ``rules`` (default: every registered rule) and any rule of
    ``records`` that is no longer registered. A value column is named as the field
    when only one listed rule has a field of that name and no common column is so
    named; otherwise ``<rule>.<field>`` (``close_date_slipping.stage``: the stage the
    rule saw, beside ``stage``, the opportunity's stage now). The header depends only
    on the rules listed, never on the rows.
    """
    wanted = set(check_rule_ids(rules) if rules else rule_ids())
    stored: dict[str, set[str]] = {}
    for record in records:
        if _value_names(record.rule) is None:
            stored.setdefault(record.rule, set()).update(record.details)
        else:
            wanted.add(record.rule)
    listed = [r for r in rule_ids() if r in wanted]  # the registry's order
    names: dict[str, tuple[str, ...]] = {}
    for rule in listed:
        names[rule] = _value_names(rule) or ()
    for rule in sorted(stored):
        names[rule] = tuple(sorted(stored[rule]))
    seen = Counter(name for fields in names.values() for name in fields)
    columns = [FindingColumn(name, None, name) for name in COMMON_COLUMNS]
    for rule, fields in names.items():
        for name in fields:
            plain = seen[name] == 1 and name not in COMMON_COLUMNS
            columns.append(FindingColumn(name if plain else f"{rule}.{name}", rule, name))
    return tuple(columns)


# --------------------------------------------------------------------------- sorting

SortKey = Callable[[FindingRecord], Any]

_SORT_KEYS: dict[str, SortKey] = {
    "amount": lambda r: r.amount,
    "close_date": lambda r: r.close_date,
    "name": lambda r: r.opportunity_name,
    "opened": lambda r: r.opened_at,
    "owner": lambda r: r.owner_name or r.owner_id,
    "resolved": lambda r: r.resolved_at,
    "rule": lambda r: r.rule,
    "severity": lambda r: SEVERITY_RANK.get(r.severity),
    "stage": lambda r: r.stage,
    "status": lambda r: r.status,
}
FINDING_SORT_KEYS = tuple(sorted(_SORT_KEYS))
# The export's column names work too.
_SORT_KEYS.update(
    {
        "opportunity_name": _SORT_KEYS["name"],
        "owner_name": _SORT_KEYS["owner"],
        "opened_at": _SORT_KEYS["opened"],
        "resolved_at": _SORT_KEYS["resolved"],
    }
)


def _sort_key(sort: str) -> tuple[SortKey, bool]:
    """``KEY`` or ``-KEY`` (descending): a sort key or the name of a rule's value."""
    name = sort.strip()
    descending = name.startswith("-")
    name = name.removeprefix("-")
    if name in _SORT_KEYS:
        return _SORT_KEYS[name], descending
    value_names = sorted({n for rule in rule_ids() for n in _value_names(rule) or ()})
    if name in value_names:
        return (lambda r: r.values().get(name)), descending
    close = difflib.get_close_matches(name, [*FINDING_SORT_KEYS, *value_names], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UsageError(
        f"--sort: {sort!r} is not a sort key{hint}; sort by {', '.join(FINDING_SORT_KEYS)} "
        "or by a rule's value (such as month_extensions); -KEY sorts descending"
    )


def _comparable(value: Any) -> tuple[int, Any]:
    """Numbers before text, so that values of different types still sort."""
    if isinstance(value, bool | int | float):
        return (0, float(value))
    if isinstance(value, datetime):
        return (1, value.astimezone(UTC).isoformat())
    if isinstance(value, date):
        return (1, value.isoformat())
    return (1, str(value).casefold())


def _sorted(records: list[FindingRecord], key: SortKey, descending: bool) -> list[FindingRecord]:
    """Sorted by ``key`` (stable: ties keep the listing's order); missing values last."""
    present = [(key(r), r) for r in records]
    known = [(v, r) for v, r in present if v is not None]
    known.sort(key=lambda pair: _comparable(pair[0]), reverse=descending)
    return [r for _, r in known] + [r for v, r in present if v is None]


# --------------------------------------------------------------------------- owners


def _owner_id(conn: Connection, owner: str) -> str:
    """A user id as it is, or the one user with this name (case and spacing aside)."""
    text = owner.strip()
    if is_salesforce_id(text):
        return record_id(text, "--owner")
    if not text:
        raise UsageError("--owner: give a user id (15 or 18 characters) or a user's name")
    users = [
        (row.id, row.name)
        for row in conn.execute(
            select(_USER.c.id, _USER.c.name)
            .where(_USER.c.is_deleted.is_(False), _USER.c.name.is_not(None))
            .order_by(_USER.c.name, _USER.c.id)
        )
    ]
    wanted = _folded(text)
    matches = [(uid, name) for uid, name in users if _folded(name) == wanted]
    if len(matches) == 1:
        return str(matches[0][0])
    if matches:
        listed = "; ".join(f"{name} ({uid})" for uid, name in matches)
        raise UsageError(
            f"--owner: {len(matches)} users are named {owner!r}: {listed}. "
            "Give the id of the one you mean."
        )
    if not users:
        raise UsageError(
            f"--owner: no user is named {owner!r}: no User is synced "
            "(run `sfsync sync`, or give the user id)"
        )
    by_fold: dict[str, list[tuple[str, str]]] = {}
    for uid, name in users:
        by_fold.setdefault(_folded(name), []).append((uid, name))
    near = [f for f in by_fold if wanted in f]
    close = difflib.get_close_matches(wanted, list(by_fold), n=3, cutoff=0.75)
    near += [f for f in close if f not in near]
    hints = [f"{name} ({uid})" for fold in near[:5] for uid, name in by_fold[fold]]
    hint = f" (did you mean {'; '.join(hints)}?)" if hints else ""
    raise UsageError(f"--owner: no user is named {owner!r}{hint}")


def _folded(name: str) -> str:
    return " ".join(name.split()).casefold()


# --------------------------------------------------------------------------- listing


@contextmanager
def _connected(source: Warehouse | Connection) -> Iterator[Connection]:
    if isinstance(source, Connection):
        yield source  # the caller's, in the caller's transaction: left open
        return
    with source.engine.connect() as conn:
        yield conn


def _amount(ctx: AuditContext) -> ColumnElement[Any]:
    """The audit's converted amount; NULL for an opportunity without an amount."""
    return case((OPP.c.amount.is_(None), null()), else_=converted_amount(ctx))


def list_findings(
    source: Warehouse | Connection,
    *,
    status: str = "open",
    rules: Sequence[str] | None = None,
    owner: str | None = None,
    settings: Settings | AuditSettings | None = None,
    sort: str | None = None,
    descending: bool = False,
) -> list[FindingRecord]:
    """Findings with their opportunity as it is now; by rule, oldest first, unless ``sort``.

    ``source`` is a warehouse, or an open connection (read inside the caller's
    transaction, which is left as it is: a what-if audit lists the findings it is
    about to roll back). ``owner`` is a user id (15 or 18 characters) or a user's
    name; a name that no user or several users have is a usage error (exit 2).
    ``settings`` give the corporate currency (default: the org's). ``sort`` is
    one of :data:`FINDING_SORT_KEYS` or the name of a rule's value, ``-KEY`` or
    ``descending`` for descending; findings without the value come last.
    """
    if status not in FINDING_STATUSES:
        raise UsageError(f"--status: {status!r} is not one of {', '.join(FINDING_STATUSES)}")
    chosen = check_rule_ids(rules) if rules else None
    order = None if sort is None else _sort_key(sort)
    if order is None and descending:
        raise UsageError("--desc: give the key to sort by with --sort")
    audit = audit_settings(settings) if settings is not None else AuditSettings()
    f = FINDING
    with _connected(source) as conn:
        owner_id = None if owner is None else _owner_id(conn, owner)
        if conn.execute(select(f.c.id).limit(1)).first() is None:
            return []  # nothing audited yet (the warehouse may even be empty: no context)
        ctx = build_context(conn, audit, as_of=None, rules=())
        query = (
            select(
                f.c.id,
                f.c.rule,
                f.c.opportunity_id,
                OPP.c.name.label("opportunity_name"),
                OPP.c.owner_id,
                _USER.c.name.label("owner_name"),
                OPP.c.stage_name,
                OPP.c.close_date,
                _amount(ctx).label("amount"),
                f.c.status,
                f.c.profile,
                f.c.severity,
                f.c.opened_at,
                f.c.resolved_at,
                f.c.details,
            )
            .select_from(
                f.outerjoin(OPP, OPP.c.id == f.c.opportunity_id).outerjoin(
                    _USER, _USER.c.id == OPP.c.owner_id
                )
            )
            .order_by(f.c.rule, f.c.opened_at, f.c.opportunity_id, f.c.id)
        )
        if status != "all":
            query = query.where(f.c.status == status)
        if chosen:
            query = query.where(f.c.rule.in_(chosen))
        if owner_id is not None:
            query = query.where(OPP.c.owner_id == owner_id)
        records = [
            FindingRecord(
                id=row.id,
                rule=row.rule,
                opportunity_id=row.opportunity_id,
                opportunity_name=row.opportunity_name,
                owner_id=row.owner_id,
                owner_name=row.owner_name,
                stage=row.stage_name,
                close_date=row.close_date,
                amount=None if row.amount is None else round(float(row.amount), 2),
                amount_currency=ctx.currency.corporate,
                status=row.status,
                profile=row.profile,
                severity=row.severity,
                opened_at=row.opened_at,
                resolved_at=row.resolved_at,
                details=dict(row.details or {}),
            )
            for row in conn.execute(query)
        ]
    if order is None:
        return records
    key, minus = order
    return _sorted(records, key, minus or descending)
