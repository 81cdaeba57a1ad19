"""``close_date_past``: an open opportunity whose close date is before today.

- global: in a past fiscal quarter, or in the current one while big or with an
  instrument;
- europe: a sales opportunity, big or with an instrument.

A close date of today is not in the past.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select

from sfsync.audit.rules._base import (
    Explanation,
    Rule,
    RuleSettings,
    Severity,
    TaskDefaults,
    register,
)
from sfsync.audit.rules._common import (
    ValueDetails,
    by_profile,
    from_opportunity,
    value_columns,
    value_details,
    value_details_sql,
    value_filter_inputs,
)
from sfsync.audit.rules._text import amount_lines, quarter
from sfsync.warehouse.dialect import JsonField

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.engine import Row
    from sqlalchemy.sql.elements import ColumnElement

    from sfsync.audit._context import AuditContext, ProfileName


class CloseDatePastSettings(RuleSettings):
    severity: Severity = "error"


@dataclass(frozen=True)
class CloseDatePastDetails(ValueDetails):
    today: str | None = None


class CloseDatePast(Rule[CloseDatePastSettings, CloseDatePastDetails]):
    id = "close_date_past"
    title = "Close date in the past"
    order = 10
    settings_model = CloseDatePastSettings
    details_type = CloseDatePastDetails
    task = TaskDefaults(due_in_days=3, priority="High")
    uses_instrument = True

    def hash_inputs(self, ctx: AuditContext, profile: ProfileName) -> dict[str, Any]:
        return {
            **value_filter_inputs(ctx, profile),
            "fiscal_year_start_month": ctx.fiscal_year_start_month,
        }

    def query(self, ctx: AuditContext, dialect: str) -> Select[Any]:
        # The SQL over the warehouse's tables: imported here, not when the config is
        # validated (see sfsync.audit.rules._common).
        from sfsync.audit._context import OPP
        from sfsync.audit._expressions import (
            big,
            has_instrument,
            instrument_opportunities,
            live_open_opportunity,
            sales_opportunity,
        )

        instrument = instrument_opportunities(ctx)
        value_filter = or_(big(ctx), has_instrument(ctx, instrument))

        def condition(profile: ProfileName) -> ColumnElement[bool]:
            past = OPP.c.close_date < ctx.as_of
            if profile == "europe":
                return and_(sales_opportunity(ctx), past, value_filter)
            prior_quarter = OPP.c.close_date < ctx.quarter_start(0)
            return and_(past, or_(prior_quarter, value_filter))

        return (
            select(*value_columns(ctx, instrument))
            .select_from(from_opportunity(instrument))
            .where(live_open_opportunity(ctx), by_profile(ctx, condition))
        )

    def details(self, ctx: AuditContext, row: Row[Any]) -> CloseDatePastDetails:
        return CloseDatePastDetails(**value_details(ctx, row), today=ctx.as_of.isoformat())

    def details_sql(self, ctx: AuditContext, row: Any, dialect: str) -> list[JsonField]:
        return [*value_details_sql(ctx, row, dialect), JsonField("today", ctx.as_of.isoformat())]

    def explain(self, details: CloseDatePastDetails) -> Explanation:
        d = details
        return Explanation(
            what=(
                f"The close date {d.close_date or '(none)'} is in the past "
                f"(today is {d.today or 'later'}) but the opportunity is still open."
            ),
            values=[
                ("Stage", d.stage),
                ("Close date", d.close_date),
                ("Close date quarter", quarter(d.k)),
                *amount_lines(d),
            ],
            fix=(
                "Move the close date to when you now expect the deal to close, or close the "
                "opportunity as won or lost."
            ),
        )


register(CloseDatePast())
