"""``close_date_slipping``: the close date pushed to a later month again and again.

A month extension is a change of ``CloseDate`` to a later (year, month) than the
value before it; an open opportunity with at least ``min_extensions`` is flagged,
in both profiles. Each finding carries the companion metrics: days since the last
stage change and days open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field
from sqlalchemy import case, func, not_

from sfsync.audit._zone import local_date
from sfsync.audit.rules._base import Explanation, Rule, RuleSettings, TaskDefaults, register
from sfsync.audit.rules._common import iso
from sfsync.warehouse.dialect import JsonField, days_from, iso_date

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.engine import Row

    from sfsync.audit._context import AuditContext, ProfileName


class CloseDateSlippingSettings(RuleSettings):
    min_extensions: int = Field(default=3, ge=1)


@dataclass(frozen=True)
class CloseDateSlippingDetails:
    stage: str | None
    close_date: str | None
    month_extensions: int | None
    min_extensions: int | None
    lower_bound: bool | None
    close_date_source: str | None
    days_since_stage_change: int | None
    days_open: int | None


class CloseDateSlipping(Rule[CloseDateSlippingSettings, CloseDateSlippingDetails]):
    id = "close_date_slipping"
    title = "Close date pushed month after month"
    order = 40
    settings_model = CloseDateSlippingSettings
    details_type = CloseDateSlippingDetails
    task = TaskDefaults(due_in_days=14)

    def hash_inputs(self, ctx: AuditContext, profile: ProfileName) -> dict[str, Any]:
        return {"min_extensions": self.settings(ctx.settings).min_extensions}

    def query(self, ctx: AuditContext, dialect: str) -> Select[Any]:
        # The SQL over the warehouse's tables: imported here, not when the config is
        # validated (see sfsync.audit.rules._common).
        from sfsync.audit._slipping import slip_select

        minimum = self.settings(ctx.settings).min_extensions
        return slip_select(ctx, dialect, open_only=True, min_extensions=minimum)

    def details(self, ctx: AuditContext, row: Row[Any]) -> CloseDateSlippingDetails:
        from sfsync.audit._slipping import slip_values

        values = slip_values(ctx, row)
        return CloseDateSlippingDetails(
            stage=row.stage_name,
            close_date=iso(row.close_date),
            month_extensions=values.month_extensions,
            min_extensions=self.settings(ctx.settings).min_extensions,
            lower_bound=values.lower_bound,
            close_date_source=values.source,
            days_since_stage_change=values.days_since_stage_change,
            days_open=values.days_open,
        )

    def details_sql(self, ctx: AuditContext, row: Any, dialect: str) -> list[JsonField]:
        # slip_values in SQL, for the open opportunities this rule's query returns
        # (days open run to today).
        created = local_date(ctx, row.created_date, dialect)
        changed = case(
            (
                row.has_history,
                func.coalesce(local_date(ctx, row.stage_changed_at, dialect), created),
            ),
            else_=func.coalesce(row.stage_changed_on, created),
        )
        return [
            JsonField("stage", row.stage_name),
            JsonField("close_date", iso_date(row.close_date, dialect)),
            JsonField("month_extensions", func.coalesce(row.month_extensions, 0), "integer"),
            JsonField("min_extensions", self.settings(ctx.settings).min_extensions),
            JsonField("lower_bound", not_(row.has_history), "boolean"),
            JsonField(
                "close_date_source",
                case(
                    (row.has_history, "history"),
                    (row.has_snapshots, "snapshots"),
                    else_="none",
                ),
            ),
            JsonField("days_since_stage_change", days_from(changed, ctx.as_of, dialect), "integer"),
            JsonField("days_open", days_from(created, ctx.as_of, dialect), "integer"),
        ]

    def explain(self, details: CloseDateSlippingDetails) -> Explanation:
        d = details
        what = (
            f"The close date has been pushed to a later month {d.month_extensions} times "
            f"(the limit is {d.min_extensions})."
        )
        if d.lower_bound:
            what += " The count is a lower bound: the opportunity's field history is incomplete."
        return Explanation(
            what=what,
            values=[
                ("Stage", d.stage),
                ("Close date", d.close_date),
                ("Month extensions", d.month_extensions),
                ("Days open", d.days_open),
                ("Days since the last stage change", d.days_since_stage_change),
            ],
            fix=(
                "Agree a realistic close date with the customer and set it once; if the deal "
                "is no longer likely to close, close it as lost."
            ),
        )


register(CloseDateSlipping())
