"""The four rules of docs/rules.md: one set-based query each, plus the details of a match.

A rule is a SELECT over the warehouse returning the opportunities it flags
with the values it looked at. Python only touches the matching rows, to turn
them into finding details (quarter offset, day counts in the business time
zone): it never loops over all opportunities.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, case, false, literal, null, or_, select
from sqlalchemy.engine import Row
from sqlalchemy.sql.elements import ColumnElement

from sfsync.audit._calendar import (
    age_in_days,
    quarter_offset,
    shift_days,
    stale_buckets,
    stale_threshold,
    start_of_local_day,
)
from sfsync.audit._context import OPP, AuditContext, ProfileName
from sfsync.audit._expressions import (
    big,
    blank,
    converted_amount,
    has_instrument,
    instrument_opportunities,
    last_human_modified,
    live_open_opportunity,
    sales_opportunity,
    stage_at_least,
)
from sfsync.audit._slipping import slip_select, slip_values
from sfsync.warehouse.types import UtcDateTime

__all__ = ["RULES", "RuleMatch", "evaluate_rule", "rule_query"]


@dataclass(frozen=True)
class RuleMatch:
    """One opportunity a rule flags, with the profile used and the values seen."""

    rule: str
    opportunity_id: str
    profile: ProfileName
    details: dict[str, Any]


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _by_profile(
    ctx: AuditContext, condition: Callable[[ProfileName], ColumnElement[bool]]
) -> ColumnElement[bool]:
    """OR over the profiles in use of (opportunity has that profile AND its condition)."""
    branches = [and_(ctx.profile_predicate(p), condition(p)) for p in ctx.profiles()]
    return or_(*branches) if branches else false()


def _value_columns(ctx: AuditContext, instrument: Any) -> list[Any]:
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


def _value_details(ctx: AuditContext, row: Row[Any], profile: ProfileName) -> dict[str, Any]:
    converted = None if row.converted_amount is None else float(row.converted_amount)
    details: dict[str, Any] = {
        "stage": row.stage_name,
        "close_date": _iso(row.close_date),
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
    }
    if profile == "europe":
        details["sales_opportunity"] = True
    return details


# --------------------------------------------------------------------------- close_date_past


def _from_opportunity(instrument: Any) -> Any:
    """``opportunity`` outer-joined to the instrument set (see instrument_opportunities)."""
    return OPP.outerjoin(instrument, instrument.c.opportunity_id == OPP.c.id)


def _close_date_past(ctx: AuditContext) -> Select[Any]:
    instrument = instrument_opportunities(ctx)
    value_filter = or_(big(ctx), has_instrument(ctx, instrument))

    def condition(profile: ProfileName) -> ColumnElement[bool]:
        past = OPP.c.close_date < ctx.as_of
        if profile == "europe":
            return and_(sales_opportunity(ctx), past, value_filter)
        prior_quarter = OPP.c.close_date < ctx.quarter_start(0)
        return and_(past, or_(prior_quarter, value_filter))

    return (
        select(*_value_columns(ctx, instrument))
        .select_from(_from_opportunity(instrument))
        .where(live_open_opportunity(ctx), _by_profile(ctx, condition))
    )


def _close_date_past_details(ctx: AuditContext, row: Row[Any]) -> RuleMatch:
    profile = ctx.profile_of(row.scope_value)
    details = {**_value_details(ctx, row, profile), "today": ctx.as_of.isoformat()}
    return RuleMatch("close_date_past", row.id, profile, details)


# --------------------------------------------------------------------------- stale_last_modified


def _cutoff(ctx: AuditContext, days: int) -> Any:
    """Modified before this instant = more than ``days`` calendar days old on ``as_of``."""
    instant = start_of_local_day(shift_days(ctx.as_of, days), ctx.tz)
    return literal(instant, UtcDateTime())


def _stale_last_modified(ctx: AuditContext) -> Select[Any]:
    stale = ctx.settings.rules.stale_last_modified
    modified = last_human_modified()
    instrument = instrument_opportunities(ctx)

    def condition(profile: ProfileName) -> ColumnElement[bool]:
        buckets = stale_buckets(
            stale.thresholds[profile],
            stale.beyond_last_bucket,
            ctx.as_of,
            ctx.fiscal_year_start_month,
        )
        # One CASE picks the cutoff instant for the close date's bucket (buckets are
        # contiguous from the first, open-ended below); past the last bucket under
        # ``ignore`` the cutoff is NULL, which flags nothing.
        whens = [
            (OPP.c.close_date < b.close_to, _cutoff(ctx, b.days))
            for b in buckets
            if b.close_to is not None
        ]
        last = buckets[-1]
        otherwise = _cutoff(ctx, last.days) if last.close_to is None else null()
        cutoff = case(*whens, else_=otherwise) if whens else otherwise
        too_old = and_(OPP.c.close_date.is_not(None), modified < cutoff)
        filters = [
            or_(big(ctx), has_instrument(ctx, instrument)),
            stage_at_least(ctx, stale.min_stage),
            too_old,
        ]
        if profile == "europe":
            filters.insert(0, sales_opportunity(ctx))
        return and_(*filters)

    return (
        select(
            *_value_columns(ctx, instrument),
            OPP.c.last_human_modified_date,
            OPP.c.last_human_modified_by_id,
            OPP.c.last_human_assumed,
            modified.label("modified"),
        )
        .select_from(_from_opportunity(instrument))
        .where(live_open_opportunity(ctx), _by_profile(ctx, condition))
    )


def _stale_last_modified_details(ctx: AuditContext, row: Row[Any]) -> RuleMatch:
    stale = ctx.settings.rules.stale_last_modified
    profile = ctx.profile_of(row.scope_value)
    details = _value_details(ctx, row, profile)
    details.update(
        {
            "min_stage": stale.min_stage,
            "threshold_days": stale_threshold(
                stale.thresholds[profile], stale.beyond_last_bucket, details["k"]
            ),
            "days_since_last_human_modification": age_in_days(row.modified, ctx.as_of, ctx.tz),
            "last_human_modified_date": _iso(row.modified),
            "last_human_modified_by_id": row.last_human_modified_by_id,
            "last_human_assumed": bool(row.last_human_assumed)
            or row.last_human_modified_date is None,
        }
    )
    return RuleMatch("stale_last_modified", row.id, profile, details)


# --------------------------------------------------------------------------- missing_rev_rec_terms


def _missing_rev_rec_terms(ctx: AuditContext, dialect: str) -> Select[Any]:
    rule = ctx.settings.rules.missing_rev_rec_terms
    return select(
        OPP.c.id,
        OPP.c.scope_value,
        OPP.c.stage_name,
        OPP.c.rev_rec_terms,
    ).where(
        live_open_opportunity(ctx),
        has_instrument(ctx),
        stage_at_least(ctx, rule.min_stage),
        blank(OPP.c.rev_rec_terms, dialect),
    )


def _missing_rev_rec_terms_details(ctx: AuditContext, row: Row[Any]) -> RuleMatch:
    details = {
        "stage": row.stage_name,
        "min_stage": ctx.settings.rules.missing_rev_rec_terms.min_stage,
        "has_instrument": True,  # the rule matches only opportunities that have one
        "field": ctx.settings.fields.rev_rec_terms,
        "rev_rec_terms": row.rev_rec_terms,
    }
    return RuleMatch("missing_rev_rec_terms", row.id, ctx.profile_of(row.scope_value), details)


# --------------------------------------------------------------------------- close_date_slipping


def _close_date_slipping(ctx: AuditContext, dialect: str) -> Select[Any]:
    minimum = ctx.settings.rules.close_date_slipping.min_extensions
    return slip_select(ctx, dialect, open_only=True, min_extensions=minimum)


def _close_date_slipping_details(ctx: AuditContext, row: Row[Any]) -> RuleMatch:
    values = slip_values(ctx, row)
    details = {
        "stage": row.stage_name,
        "close_date": _iso(row.close_date),
        "month_extensions": values.month_extensions,
        "min_extensions": ctx.settings.rules.close_date_slipping.min_extensions,
        "lower_bound": values.lower_bound,
        "close_date_source": values.source,
        "days_since_stage_change": values.days_since_stage_change,
        "days_open": values.days_open,
    }
    return RuleMatch("close_date_slipping", row.id, ctx.profile_of(row.scope_value), details)


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class _Rule:
    query: Callable[[AuditContext, str], Select[Any]]
    details: Callable[[AuditContext, Row[Any]], RuleMatch]


RULES: dict[str, _Rule] = {
    "close_date_past": _Rule(lambda ctx, _d: _close_date_past(ctx), _close_date_past_details),
    "stale_last_modified": _Rule(
        lambda ctx, _d: _stale_last_modified(ctx), _stale_last_modified_details
    ),
    "missing_rev_rec_terms": _Rule(_missing_rev_rec_terms, _missing_rev_rec_terms_details),
    "close_date_slipping": _Rule(_close_date_slipping, _close_date_slipping_details),
}


def rule_query(ctx: AuditContext, rule: str, dialect: str) -> Select[Any]:
    """The SELECT for ``rule``: one row per flagged opportunity."""
    return RULES[rule].query(ctx, dialect)


def evaluate_rule(conn: Connection, ctx: AuditContext, rule: str) -> Iterator[RuleMatch]:
    """Run one rule and yield its matches (streamed; details built per matching row)."""
    spec = RULES[rule]
    query = spec.query(ctx, conn.dialect.name)
    result = conn.execute(query, execution_options={"yield_per": 5000})
    for row in result:
        yield spec.details(ctx, row)
