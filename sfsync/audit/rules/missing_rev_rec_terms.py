"""``missing_rev_rec_terms``: Rev Rec Terms blank on an instrument deal at Prove or later.

Open, with an instrument, at ``min_stage`` or later, and the Rev Rec Terms field
(``audit.fields.rev_rec_terms``) blank. The same in both profiles; closed deals are
never flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from sfsync.audit.rules._base import Explanation, Rule, RuleSettings, register
from sfsync.audit.rules._text import yes_no
from sfsync.config import AuditSettings
from sfsync.warehouse.dialect import JsonField

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.engine import Row

    from sfsync.audit._context import AuditContext, ProfileName


class MissingRevRecTermsSettings(RuleSettings):
    min_stage: str = "Prove"


@dataclass(frozen=True)
class MissingRevRecTermsDetails:
    stage: str | None
    min_stage: str | None
    has_instrument: bool | None
    field: str | None
    rev_rec_terms: str | None


class MissingRevRecTerms(Rule[MissingRevRecTermsSettings, MissingRevRecTermsDetails]):
    id = "missing_rev_rec_terms"
    title = "Rev Rec Terms not entered"
    order = 30
    settings_model = MissingRevRecTermsSettings
    details_type = MissingRevRecTermsDetails
    uses_instrument = True

    def required_fields(self, audit: AuditSettings) -> list[tuple[str, str]]:
        return [("audit.fields.rev_rec_terms", audit.fields.rev_rec_terms)]

    def hash_inputs(self, ctx: AuditContext, profile: ProfileName) -> dict[str, Any]:
        s = ctx.settings
        return {
            "instrument_product_families": list(s.instrument.product_families),
            "instrument_field": s.instrument.field,
            "min_stage": self.settings(s).min_stage,
            "stages": s.stages,
            "rev_rec_terms_field": s.fields.rev_rec_terms,
        }

    def query(self, ctx: AuditContext, dialect: str) -> Select[Any]:
        # The SQL over the warehouse's tables: imported here, not when the config is
        # validated (see sfsync.audit.rules._common).
        from sfsync.audit._context import OPP
        from sfsync.audit._expressions import (
            blank,
            has_instrument,
            live_open_opportunity,
            stage_at_least,
        )

        return select(
            OPP.c.id,
            OPP.c.scope_value,
            OPP.c.stage_name,
            OPP.c.rev_rec_terms,
        ).where(
            live_open_opportunity(ctx),
            has_instrument(ctx),
            stage_at_least(ctx, self.settings(ctx.settings).min_stage),
            blank(OPP.c.rev_rec_terms, dialect),
        )

    def details(self, ctx: AuditContext, row: Row[Any]) -> MissingRevRecTermsDetails:
        return MissingRevRecTermsDetails(
            stage=row.stage_name,
            min_stage=self.settings(ctx.settings).min_stage,
            has_instrument=True,  # the rule matches only opportunities that have one
            field=ctx.settings.fields.rev_rec_terms,
            rev_rec_terms=row.rev_rec_terms,
        )

    def details_sql(self, ctx: AuditContext, row: Any, dialect: str) -> list[JsonField]:
        return [
            JsonField("stage", row.stage_name),
            JsonField("min_stage", self.settings(ctx.settings).min_stage),
            JsonField("has_instrument", True),
            JsonField("field", ctx.settings.fields.rev_rec_terms),
            JsonField("rev_rec_terms", row.rev_rec_terms),
        ]

    def explain(self, details: MissingRevRecTermsDetails) -> Explanation:
        d = details
        return Explanation(
            what=(
                "Rev Rec Terms is blank on an opportunity with an instrument at stage "
                f"{d.stage or '?'}."
            ),
            values=[
                ("Stage", d.stage),
                ("Rev Rec Terms field", d.field),
                ("Rev Rec Terms value", repr(d.rev_rec_terms or "")),
                ("Has an instrument", yes_no(d.has_instrument)),
            ],
            fix=(
                f"Rev Rec Terms must be entered before the {d.min_stage or 'Prove'} stage can "
                "be completed."
            ),
        )


register(MissingRevRecTerms())
