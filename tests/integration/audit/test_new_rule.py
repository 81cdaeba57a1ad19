"""A new rule is one module: registered from here, it reaches every part of sfsync.

``TinyDeal`` is a test-only rule. Nothing outside this file names it, yet once it is
registered the settings validate its keys, the audit evaluates it, ``findings``
lists it, the write-back plans its Tasks (with its own text) and the report shows it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field
from sqlalchemy import Select, func, select
from sqlalchemy.engine import Row

from sfsync.audit import run_audit
from sfsync.audit._context import OPP, AuditContext, ProfileName
from sfsync.audit._expressions import live_open_opportunity
from sfsync.audit.rules import Explanation, Rule, TaskDefaults, registered
from sfsync.config import RuleSettings
from sfsync.extract import run_sync
from sfsync.report import build_report, render_html
from sfsync.writeback import run_writeback
from tests.cli_helpers import run_cli
from tests.integration.conftest import OrgFactory, RunningOrg


class TinyDealSettings(RuleSettings):
    max_amount: float = Field(default=5_000, ge=0)


@dataclass(frozen=True)
class TinyDealDetails:
    amount: float | None
    max_amount: float | None


class TinyDeal(Rule[TinyDealSettings, TinyDealDetails]):
    id = "tiny_deal"
    title = "Deal too small to track"
    order = 50
    settings_model = TinyDealSettings
    details_type = TinyDealDetails
    task = TaskDefaults(due_in_days=30, priority="Low")

    def query(self, ctx: AuditContext, dialect: str) -> Select[Any]:
        limit = self.settings(ctx.settings).max_amount
        return select(OPP.c.id, OPP.c.scope_value, OPP.c.amount).where(
            live_open_opportunity(ctx), func.coalesce(OPP.c.amount, 0) < limit
        )

    def details(self, ctx: AuditContext, row: Row[Any]) -> TinyDealDetails:
        amount = None if row.amount is None else float(row.amount)
        return TinyDealDetails(amount, self.settings(ctx.settings).max_amount)

    def hash_inputs(self, ctx: AuditContext, profile: ProfileName) -> dict[str, Any]:
        return {"max_amount": self.settings(ctx.settings).max_amount}

    def explain(self, details: TinyDealDetails) -> Explanation:
        return Explanation(
            what=f"The amount {details.amount} is below {details.max_amount}.",
            values=[("Amount", details.amount)],
            fix="Merge it into a bigger deal or close it.",
        )


@pytest.fixture
def tiny_deal() -> Iterator[TinyDeal]:
    with registered(TinyDeal()) as rule:
        yield rule  # type: ignore[misc]


def _configure(org: RunningOrg, max_amount: int) -> None:
    text = org.config_path.read_text(encoding="utf-8")
    text += f"audit:\n  rules:\n    tiny_deal:\n      max_amount: {max_amount}\n"
    org.config_path.write_text(text, encoding="utf-8")


def test_a_rule_registered_from_outside_reaches_every_stage(
    running_org: OrgFactory, tiny_deal: TinyDeal, tmp_path: Path
) -> None:
    org = running_org(300)
    warehouse = org.warehouse()
    run_sync(warehouse, org.settings)
    small = org.org.query(
        "SELECT COUNT() FROM Opportunity WHERE IsClosed = false AND Amount < 20000"
    )
    assert small[0]["expr0"] > 0
    _configure(org, 20_000)
    settings = org.settings
    assert settings.audit.rule("tiny_deal").model_dump()["max_amount"] == 20_000

    summary = run_audit(warehouse, settings)
    tally = {c.rule: c for c in summary.rules}["tiny_deal"]
    assert tally.open > 0
    assert tally.title == "Deal too small to track"

    listed = run_cli("findings", "--rule", "tiny_deal", "--format", "json", env=org.env)
    assert listed.exit_code == 0, listed.output
    assert '"rule": "tiny_deal"' in listed.stdout

    plan = run_writeback(warehouse, settings).plan
    tasks = [a for a in plan.actions if a.rule == "tiny_deal" and a.action == "create_task"]
    assert tasks
    assert tasks[0].subject is not None
    assert tasks[0].subject.startswith("[sfsync] Deal too small to track: ")
    assert tasks[0].priority == "Low"
    assert tasks[0].description is not None
    assert "Merge it into a bigger deal" in tasks[0].description

    report = build_report(warehouse, settings)
    assert "tiny_deal" in {r.rule for r in report.rules}
    assert "Deal too small to track" in render_html(report)


def test_a_new_rules_settings_are_validated_like_any_other(
    running_org: OrgFactory, tiny_deal: TinyDeal
) -> None:
    org = running_org(20)
    text = org.config_path.read_text(encoding="utf-8")
    org.config_path.write_text(
        text + "audit:\n  rules:\n    tiny_deal:\n      max_amont: 1\n", encoding="utf-8"
    )
    outcome = run_cli("audit", env=org.env)
    assert outcome.exit_code == 2
    assert "audit.rules.tiny_deal.max_amont: unknown key (did you mean 'max_amount'?)" in (
        outcome.stderr
    )
