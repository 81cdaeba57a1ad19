"""``stale_last_modified``: nobody has updated an open opportunity for too long.

Open, big or with an instrument, at ``min_stage`` or later (europe: a sales
opportunity too), and the days since the last *human* modification strictly above
the threshold for the close date's fiscal-quarter offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator
from sqlalchemy import and_, case, false, func, literal, null, or_, select

from sfsync.audit._calendar import age_in_days, stale_buckets, stale_threshold
from sfsync.audit._zone import local_date
from sfsync.audit.rules._base import Explanation, Profile, Rule, RuleSettings, register
from sfsync.audit.rules._common import (
    ValueDetails,
    by_profile,
    cutoff,
    from_opportunity,
    iso,
    value_columns,
    value_details,
    value_details_sql,
    value_filter_inputs,
)
from sfsync.audit.rules._text import amount_lines, quarter
from sfsync.warehouse.dialect import JsonField, days_from, iso_instant

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.engine import Row
    from sqlalchemy.sql.elements import ColumnElement

    from sfsync.audit._context import AuditContext, ProfileName

_DEFAULT_THRESHOLDS: dict[Profile, list[int]] = {
    "global": [14, 30, 45, 45],
    "europe": [14, 30, 45, 180],
}


class StaleLastModifiedSettings(RuleSettings):
    min_stage: str = "Qualify"
    # Day thresholds by close-date quarter offset k = 0, 1, 2, 3 ... (k <= 0 uses the first).
    thresholds: dict[Profile, list[int]] = Field(
        default_factory=lambda: {p: list(days) for p, days in _DEFAULT_THRESHOLDS.items()}
    )
    beyond_last_bucket: Literal["use_last", "ignore"] = "use_last"

    @field_validator("thresholds")
    @classmethod
    def _buckets(cls, value: dict[Profile, list[int]]) -> dict[Profile, list[int]]:
        merged: dict[Profile, list[int]] = {**_DEFAULT_THRESHOLDS, **value}
        for profile, days in merged.items():
            if not days:
                raise ValueError(f"{profile}: needs at least one threshold")
            if any(d < 0 for d in days):
                raise ValueError(f"{profile}: thresholds are days and cannot be negative")
        return merged


@dataclass(frozen=True)
class StaleLastModifiedDetails(ValueDetails):
    min_stage: str | None = None
    threshold_days: int | None = None
    days_since_last_human_modification: int | None = None
    last_human_modified_date: str | None = None
    last_human_modified_by_id: str | None = None
    last_human_assumed: bool | None = None


class StaleLastModified(Rule[StaleLastModifiedSettings, StaleLastModifiedDetails]):
    id = "stale_last_modified"
    title = "Not updated for too long"
    order = 20
    settings_model = StaleLastModifiedSettings
    details_type = StaleLastModifiedDetails
    uses_instrument = True

    def hash_inputs(self, ctx: AuditContext, profile: ProfileName) -> dict[str, Any]:
        stale = self.settings(ctx.settings)
        return {
            **value_filter_inputs(ctx, profile),
            "fiscal_year_start_month": ctx.fiscal_year_start_month,
            "min_stage": stale.min_stage,
            "stages": ctx.settings.stages,
            "thresholds": list(stale.thresholds[profile]),
            "beyond_last_bucket": stale.beyond_last_bucket,
        }

    def query(self, ctx: AuditContext, dialect: str) -> Select[Any]:
        # The SQL over the warehouse's tables: imported here, not when the config is
        # validated (see sfsync.audit.rules._common).
        from sfsync.audit._context import OPP
        from sfsync.audit._expressions import (
            big,
            has_instrument,
            instrument_opportunities,
            last_human_modified,
            live_open_opportunity,
            sales_opportunity,
            stage_at_least,
        )

        stale = self.settings(ctx.settings)
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
                (OPP.c.close_date < b.close_to, cutoff(ctx, b.days))
                for b in buckets
                if b.close_to is not None
            ]
            last = buckets[-1]
            otherwise = cutoff(ctx, last.days) if last.close_to is None else null()
            limit = case(*whens, else_=otherwise) if whens else otherwise
            too_old = and_(OPP.c.close_date.is_not(None), modified < limit)
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
                *value_columns(ctx, instrument),
                OPP.c.last_human_modified_date,
                OPP.c.last_human_modified_by_id,
                OPP.c.last_human_assumed,
                modified.label("modified"),
            )
            .select_from(from_opportunity(instrument))
            .where(live_open_opportunity(ctx), by_profile(ctx, condition))
        )

    def details(self, ctx: AuditContext, row: Row[Any]) -> StaleLastModifiedDetails:
        stale = self.settings(ctx.settings)
        values = value_details(ctx, row)
        profile = ctx.profile_of(row.scope_value)
        return StaleLastModifiedDetails(
            **values,
            min_stage=stale.min_stage,
            threshold_days=stale_threshold(
                stale.thresholds[profile], stale.beyond_last_bucket, values["k"]
            ),
            days_since_last_human_modification=age_in_days(row.modified, ctx.as_of, ctx.tz),
            last_human_modified_date=iso(row.modified),
            last_human_modified_by_id=row.last_human_modified_by_id,
            last_human_assumed=bool(row.last_human_assumed) or row.last_human_modified_date is None,
        )

    def details_sql(self, ctx: AuditContext, row: Any, dialect: str) -> list[JsonField]:
        from sfsync.audit._expressions import quarter_offset

        stale = self.settings(ctx.settings)
        k = quarter_offset(ctx, row.close_date, dialect)

        def threshold(profile: ProfileName) -> Any:
            days = stale.thresholds[profile]
            whens = [(k <= 0, literal(days[0]))]
            whens += [(k == index, literal(value)) for index, value in enumerate(days) if index]
            beyond = literal(days[-1]) if stale.beyond_last_bucket == "use_last" else null()
            return case(*whens, else_=beyond)

        profiles = ctx.profiles()
        if len(profiles) == 1:
            threshold_days = threshold(profiles[0])
        else:
            profile = ctx.profile_column(row.scope_value)
            threshold_days = case(
                *[(profile == p, threshold(p)) for p in profiles[1:]],
                else_=threshold(profiles[0]),
            )
        assumed = or_(
            func.coalesce(row.last_human_assumed, false()),
            row.last_human_modified_date.is_(None),
        )
        return [
            *value_details_sql(ctx, row, dialect),
            JsonField("min_stage", stale.min_stage),
            JsonField("threshold_days", threshold_days, "integer"),
            JsonField(
                "days_since_last_human_modification",
                days_from(local_date(ctx, row.modified, dialect), ctx.as_of, dialect),
                "integer",
            ),
            JsonField("last_human_modified_date", iso_instant(row.modified, dialect)),
            JsonField("last_human_modified_by_id", row.last_human_modified_by_id),
            JsonField("last_human_assumed", assumed, "boolean"),
        ]

    def explain(self, details: StaleLastModifiedDetails) -> Explanation:
        d = details
        days, threshold = d.days_since_last_human_modification, d.threshold_days
        assumed = " (first sync: the current value was taken)" if d.last_human_assumed else ""
        return Explanation(
            what=(
                f"Nobody has updated this opportunity for {days} days; for a close date in "
                f"{quarter(d.k) or 'its quarter'} the limit is {threshold} days."
            ),
            values=[
                ("Stage", d.stage),
                ("Close date", d.close_date),
                ("Last update by a person", f"{d.last_human_modified_date or '?'}{assumed}"),
                ("Days since then", days),
                ("Limit (days)", threshold),
                *amount_lines(d),
            ],
            fix=(
                "Review the opportunity and bring it up to date: next step, stage, close date "
                "and amount. Any edit by you resets the clock."
            ),
        )


register(StaleLastModified())
