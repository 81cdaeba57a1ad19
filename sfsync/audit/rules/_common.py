"""Pieces several rules share: the value columns and details, profile branches, cutoffs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, and_, case, false, literal, or_, true

from sfsync.audit._calendar import quarter_offset, shift_days, start_of_local_day
from sfsync.warehouse.dialect import JsonField, iso_date
from sfsync.warehouse.types import UtcDateTime

if TYPE_CHECKING:
    from sqlalchemy.engine import Row
    from sqlalchemy.sql.elements import ColumnElement

    from sfsync.audit._context import AuditContext, ProfileName

# The rules are imported when the config is validated, which needs their settings and
# metadata only: what builds their SQL over the warehouse's tables (sfsync.audit._context,
# _expressions and so the ORM models) is imported by the functions that build it.

__all__ = [
    "OMIT_IF_NONE",
    "ValueDetails",
    "by_profile",
    "cutoff",
    "from_opportunity",
    "iso",
    "value_columns",
    "value_details",
    "value_details_sql",
    "value_filter_inputs",
]

# Field metadata: leave the key out of the stored details when its value is None.
OMIT_IF_NONE = {"omit_if_none": True}


def iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def by_profile(
    ctx: AuditContext, condition: Callable[[ProfileName], ColumnElement[bool]]
) -> ColumnElement[bool]:
    """OR over the profiles in use of (opportunity has that profile AND its condition)."""
    branches = [and_(ctx.profile_predicate(p), condition(p)) for p in ctx.profiles()]
    return or_(*branches) if branches else false()


def from_opportunity(instrument: Any) -> Any:
    """``opportunity`` outer-joined to the instrument set (see instrument_opportunities)."""
    from sfsync.audit._context import OPP

    return OPP.outerjoin(instrument, instrument.c.opportunity_id == OPP.c.id)


def cutoff(ctx: AuditContext, days: int) -> Any:
    """Modified before this instant = more than ``days`` calendar days old on ``as_of``."""
    instant = start_of_local_day(shift_days(ctx.as_of, days), ctx.tz)
    return literal(instant, UtcDateTime())


def value_columns(ctx: AuditContext, instrument: Any) -> list[Any]:
    from sfsync.audit._context import OPP
    from sfsync.audit._expressions import converted_amount, has_instrument

    return [
        OPP.c.id,
        OPP.c.scope_value,
        OPP.c.stage_name,
        OPP.c.close_date,
        OPP.c.amount,
        OPP.c.currency_iso_code,
        converted_amount(ctx).label("converted_amount"),
        has_instrument(ctx, instrument).label("has_instrument"),
    ]


@dataclass(frozen=True)
class ValueDetails:
    """What the value-filtered rules (big or with an instrument) record of a deal."""

    stage: str | None
    close_date: str | None
    k: int | None
    amount: float | None
    currency: str | None
    converted_amount: float | None
    amount_threshold: float | None
    big: bool | None
    has_instrument: bool | None
    sales_opportunity: bool | None = field(default=None, metadata=OMIT_IF_NONE)


def value_details(ctx: AuditContext, row: Row[Any]) -> dict[str, Any]:
    """The :class:`ValueDetails` of a row, as keyword arguments."""
    converted = None if row.converted_amount is None else float(row.converted_amount)
    profile = ctx.profile_of(row.scope_value)
    return {
        "stage": row.stage_name,
        "close_date": iso(row.close_date),
        "k": (
            None
            if row.close_date is None
            else quarter_offset(row.close_date, ctx.as_of, ctx.fiscal_year_start_month)
        ),
        "amount": None if row.amount is None else float(row.amount),
        "currency": row.currency_iso_code,
        "converted_amount": converted,
        "amount_threshold": float(ctx.settings.amount_threshold),
        "big": converted is not None and converted > ctx.settings.amount_threshold,
        "has_instrument": bool(row.has_instrument),
        "sales_opportunity": True if profile == "europe" else None,
    }


def value_details_sql(ctx: AuditContext, row: Any, dialect: str) -> list[JsonField]:
    """:func:`value_details` in SQL, over the :func:`value_columns` of a rule's query."""
    from sfsync.audit._expressions import quarter_offset as quarter_offset_sql

    threshold = float(ctx.settings.amount_threshold)
    converted = row.converted_amount
    fields = [
        JsonField("stage", row.stage_name),
        JsonField("close_date", iso_date(row.close_date, dialect)),
        JsonField("k", quarter_offset_sql(ctx, row.close_date, dialect), "integer"),
        JsonField("amount", row.amount, "float"),
        JsonField("currency", row.currency_iso_code),
        JsonField("converted_amount", converted, "float"),
        JsonField("amount_threshold", threshold),
        JsonField(
            "big",
            and_(converted.is_not(None), converted > literal(threshold, Float(precision=53))),
            "boolean",
        ),
        JsonField("has_instrument", row.has_instrument, "boolean"),
    ]
    profiles = ctx.profiles()
    if profiles == ("europe",):
        fields.append(JsonField("sales_opportunity", True))
    elif "europe" in profiles:
        europe = ctx.profile_column(row.scope_value) == "europe"
        fields.append(
            JsonField("sales_opportunity", case((europe, true())), "boolean", omit_if_null=True)
        )
    return fields


def value_filter_inputs(ctx: AuditContext, profile: ProfileName) -> dict[str, Any]:
    """The settings behind "big or with an instrument" (and "sales" under europe)."""
    s = ctx.settings
    inputs: dict[str, Any] = {
        "amount_threshold": s.amount_threshold,
        "corporate_currency": ctx.currency.corporate,
        "instrument_product_families": list(s.instrument.product_families),
        "instrument_field": s.instrument.field,
    }
    if profile == "europe":
        inputs["sales_record_types"] = list(s.sales_record_types)
    return inputs
