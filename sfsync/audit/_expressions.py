"""The vocabulary of docs/rules.md as SQL expressions over the ``opportunity`` table.

Each function turns one term ("open", "big", "has instrument", "sales
opportunity", "blank"...) into a SQLAlchemy Core expression whose inputs are
bound parameters from :class:`AuditContext`; the rule queries are built from
them, and the same expression is selected for a finding's details as is used
in its WHERE clause, so the two cannot disagree.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Float,
    and_,
    case,
    exists,
    false,
    literal,
    null,
    or_,
    select,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import func

from sfsync.audit._calendar import quarter_index
from sfsync.audit._context import OPP, AuditContext
from sfsync.warehouse import dialect as dialect_sql
from sfsync.warehouse.dialect import month_key, month_number
from sfsync.warehouse.models import OpportunityLineItem, Product2, table_of

__all__ = [
    "WHITESPACE",
    "big",
    "blank",
    "converted_amount",
    "has_instrument",
    "instrument_opportunities",
    "last_human_modified",
    "live_open_opportunity",
    "month_key",
    "quarter_offset",
    "sales_opportunity",
    "stage_at_least",
]

_LINE_ITEM = table_of(OpportunityLineItem)
_PRODUCT = table_of(Product2)

# "Blank" is null, empty or only white space; white space is what Python's
# str.isspace() says it is (Unicode, not just ASCII), so the pure reference and
# the SQL agree character for character.
WHITESPACE = "".join(chr(code) for code in range(0x10000) if chr(code).isspace())


def live_open_opportunity(ctx: AuditContext) -> ColumnElement[bool]:
    """Not deleted, open (``IsClosed = false``) and created on or before ``as_of``."""
    return and_(
        OPP.c.is_deleted.is_(False),
        OPP.c.is_closed == false(),
        OPP.c.created_date < ctx.created_before,
    )


def converted_amount(ctx: AuditContext) -> ColumnElement[Any]:
    """``coalesce(Amount, 0) / rate(currency) * rate(corporate)``, unrounded.

    A single-currency org (no CurrencyType rows) uses the amount as it is. An
    opportunity without a currency is in the corporate one; one whose currency
    has no rate gets NULL, which is never big.
    """
    amount = func.coalesce(OPP.c.amount, literal(0.0, Float(precision=53)))
    rates = ctx.currency.rates
    if not rates:
        return amount
    corporate = literal(ctx.currency.corporate_rate, Float(precision=53))
    rate = case(
        (OPP.c.currency_iso_code.is_(None), corporate),
        *[
            (OPP.c.currency_iso_code == code, literal(value, Float(precision=53)))
            for code, value in sorted(rates.items())
        ],
        else_=null(),
    )
    return amount / rate * corporate


def big(ctx: AuditContext) -> ColumnElement[bool]:
    """Converted amount strictly greater than ``amount_threshold``."""
    threshold = literal(float(ctx.settings.amount_threshold), Float(precision=53))
    return converted_amount(ctx) > threshold


def instrument_opportunities(ctx: AuditContext) -> Any:
    """The ids of opportunities with a live line item of a listed product family, once.

    Joined (LEFT OUTER) instead of a correlated EXISTS, so a rule that both
    filters on and reports "has instrument" computes the set a single time.
    """
    return (
        select(_LINE_ITEM.c.opportunity_id)
        .select_from(_LINE_ITEM.join(_PRODUCT, _PRODUCT.c.id == _LINE_ITEM.c.product2_id))
        .where(
            _LINE_ITEM.c.is_deleted.is_(False),
            _PRODUCT.c.is_deleted.is_(False),
            _PRODUCT.c.family.in_(list(ctx.settings.instrument.product_families)),
        )
        .distinct()
        .subquery("instrument")
    )


def has_instrument(ctx: AuditContext, instrument: Any = None) -> ColumnElement[bool]:
    """A live line item of a listed product family, or the configured checkbox is true.

    With ``instrument`` (from :func:`instrument_opportunities`, outer-joined by
    the caller) the line-item test is a NULL check on the join; without it, a
    correlated EXISTS.
    """
    settings = ctx.settings.instrument
    parts: list[ColumnElement[bool]] = []
    if settings.product_families:
        if instrument is not None:
            parts.append(instrument.c.opportunity_id.is_not(None))
        else:
            line_item = (
                select(literal(1))
                .select_from(_LINE_ITEM.join(_PRODUCT, _PRODUCT.c.id == _LINE_ITEM.c.product2_id))
                .where(
                    _LINE_ITEM.c.opportunity_id == OPP.c.id,
                    _LINE_ITEM.c.is_deleted.is_(False),
                    _PRODUCT.c.is_deleted.is_(False),
                    _PRODUCT.c.family.in_(list(settings.product_families)),
                )
            )
            parts.append(exists(line_item))
    if settings.field is not None:
        parts.append(OPP.c.instrument_flag.is_(True))
    return or_(*parts) if parts else false()


def sales_opportunity(ctx: AuditContext) -> ColumnElement[bool]:
    """Record type (DeveloperName or Name) in ``sales_record_types``; ids resolved up front."""
    ids = list(ctx.sales_record_type_ids)
    return OPP.c.record_type_id.in_(ids) if ids else false()


def stage_at_least(ctx: AuditContext, stage: str) -> ColumnElement[bool]:
    """Stage ranked at or after ``stage``; an unranked stage never qualifies."""
    return OPP.c.stage_name.in_(ctx.stages_at_least(stage))


def blank(column: ColumnElement[Any], dialect: str) -> ColumnElement[bool]:
    """Null, empty, or only white space."""
    return or_(column.is_(None), dialect_sql.trim(column, WHITESPACE, dialect) == "")


def last_human_modified() -> ColumnElement[Any]:
    """The last modification by a human; the plain LastModifiedDate if the sync kept none."""
    return func.coalesce(OPP.c.last_human_modified_date, OPP.c.last_modified_date)


def quarter_offset(ctx: AuditContext, close_date: ColumnElement[Any], dialect: str) -> Any:
    """The quarter offset *k* of a close date (NULL for none), as ``_calendar.quarter_offset``.

    ``year * 12 + month - start month`` is positive for any date, so SQL's integer
    division (which truncates) is the floor division of ``quarter_index``.
    """
    month = ctx.fiscal_year_start_month
    today = quarter_index(ctx.as_of, month)
    return (month_number(close_date, dialect) - month) // 3 - today
