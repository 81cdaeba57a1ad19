"""docs/rules.md's worked examples 1-15, through ``run_audit``, on SQLite and PostgreSQL.

Once loaded straight into a warehouse (the audit alone), and once served by the
dev org and pulled by a real ``run_sync`` (the whole path a production org takes).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from sfsync.audit import run_audit
from sfsync.config import AuditSettings
from sfsync.extract import run_sync
from sfsync.warehouse import Warehouse
from sfsync.warehouse.models import Finding
from tests.integration.audit.load import load_org, new_warehouse
from tests.integration.conftest import OrgFactory
from tests.integration.sync_helpers import settle
from tests.unit.audit.examples import EXAMPLES, TODAY, examples_org
from tests.unit.audit.org import Org


def _live_findings(warehouse: Any) -> dict[tuple[str, str], Finding]:
    with warehouse.session() as session:
        rows = session.scalars(select(Finding).where(Finding.status.in_(("open", "waived"))))
        return {(f.rule, f.opportunity_id): f for f in rows}


def _example_problems(warehouse: Warehouse, ids: dict[int, str]) -> list[str]:
    """Audit under each profile; every way the findings differ from docs/rules.md's examples."""
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
            if finding.profile != profile:
                problems.append(f"#{example.number}: profile {finding.profile!r} not {profile!r}")
            for key, value in example.details.items():
                if finding.details.get(key) != value:
                    problems.append(
                        f"#{example.number} {example.rule}/{profile}: details[{key!r}] is "
                        f"{finding.details.get(key)!r}, expected {value!r}"
                    )
    return problems


def test_every_worked_example_under_each_profile(db_url: str) -> None:
    """Each example is flagged (with the details docs/rules.md names) exactly when it says so."""
    warehouse = new_warehouse(db_url)
    org, ids = examples_org()
    load_org(warehouse, org)
    problems = _example_problems(warehouse, ids)
    warehouse.dispose()
    assert not problems, "\n".join(problems)


def _devorg_data(org: Org) -> dict[str, Any]:
    """The hand-built org in the dev org's data file format (warehouse-only keys dropped)."""
    assert not org.snapshots, "snapshots exist only in a warehouse, not in an org"
    records = {
        sobject: [{k: v for k, v in record.items() if not k.startswith("_")} for record in rows]
        for sobject, rows in org.records.items()
    }
    return {"integration_user_id": org.integration_user_id, "records": records}


def test_every_worked_example_through_the_dev_org_and_a_real_sync(
    running_org: OrgFactory, db_url: str
) -> None:
    """Served by the dev org, pulled by ``run_sync``, audited: the same verdicts and details."""
    org, ids = examples_org()
    served = running_org(data=_devorg_data(org), database_url=db_url)
    warehouse = served.warehouse()
    settle()  # records the data file left unstamped are stamped "now", at second precision
    result = run_sync(warehouse, served.settings)
    assert result.status == "ok", result
    synced = {name: outcome.upserted for name, outcome in result.objects.items()}
    assert synced["Opportunity"] == len(EXAMPLES)
    for sobject in ("User", "Product2", "OpportunityLineItem", "OpportunityHistory"):
        assert synced[sobject] == len(org.get(sobject)), sobject
    problems = _example_problems(warehouse, ids)
    assert not problems, "\n".join(problems)
