"""RULES.md's worked examples 1-15, through ``run_audit``, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from sfsync.audit import run_audit
from sfsync.config import AuditSettings
from sfsync.warehouse.models import Finding
from tests.integration.audit.load import load_org, new_warehouse
from tests.unit.audit.examples import EXAMPLES, TODAY, examples_org


def _live_findings(warehouse: Any) -> dict[tuple[str, str], Finding]:
    with warehouse.session() as session:
        rows = session.scalars(select(Finding).where(Finding.status.in_(("open", "waived"))))
        return {(f.rule, f.opportunity_id): f for f in rows}


def test_every_worked_example_under_each_profile(db_url: str) -> None:
    """Each example is flagged (with the details RULES.md names) exactly when it says so."""
    warehouse = new_warehouse(db_url)
    org, ids = examples_org()
    load_org(warehouse, org)
    problems: list[str] = []
    for profile in ("global", "europe"):
        run_audit(warehouse, AuditSettings(profile=profile), as_of=TODAY)
        live = _live_findings(warehouse)
        for example in EXAMPLES:
            if profile not in example.flagged:
                continue
            finding = live.get((example.rule, ids[example.number]))
            expected = example.flagged[profile]
            if (finding is not None) != expected:
                problems.append(
                    f"#{example.number} {example.rule}/{profile}: expected "
                    f"{'flagged' if expected else 'not flagged'} ({example.says})"
                )
                continue
            if finding is None:
                continue
            assert finding.profile == profile
            for key, value in example.details.items():
                if finding.details.get(key) != value:
                    problems.append(
                        f"#{example.number} {example.rule}/{profile}: details[{key!r}] is "
                        f"{finding.details.get(key)!r}, expected {value!r}"
                    )
    warehouse.dispose()
    assert not problems, "\n".join(problems)
