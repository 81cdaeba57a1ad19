"""``close_date_slipping``: the close date pushed to a later month again and again.

A month extension is a change of ``CloseDate`` to a later (year, month) than the
value before it; an open opportunity with at least ``min_extensions`` is flagged,
in both profiles. Each finding carries the companion metrics: days since the last
stage change and days open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field
from sqlalchemy import Select
from sqlalchemy.engine import Row

from sfsync.audit._context import AuditContext, ProfileName
from sfsync.audit._slipping import slip_select, slip_values
from sfsync.audit.rules._base import Explanation, Rule, RuleSettings, TaskDefaults, register
from sfsync.audit.rules._common import iso


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
        minimum = self.settings(ctx.settings).min_extensions
        return slip_select(ctx, dialect, open_only=True, min_extensions=minimum)

    def details(self, ctx: AuditContext, row: Row[Any]) -> CloseDateSlippingDetails:
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
