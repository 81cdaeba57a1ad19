"""The SQL rules agree with the pure-Python reference on random orgs (hypothesis)."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from sqlalchemy import select

from sfsync.audit import run_audit, slip_metrics
from sfsync.warehouse import Warehouse
from sfsync.warehouse.models import Finding
from tests.integration.audit.load import clear_warehouse, load_org, new_warehouse
from tests.unit.audit.reference import reference_audit, reference_slip_metrics
from tests.unit.audit.strategies import AuditCase, audit_cases


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def _check_case(warehouse: Warehouse, case: AuditCase) -> None:
    clear_warehouse(warehouse)
    load_org(warehouse, case.org, **case.load_kwargs)
    run_audit(warehouse, case.settings, as_of=case.as_of)
    with warehouse.session() as session:
        live = list(session.scalars(select(Finding).where(Finding.status == "open")))
    actual: dict[str, dict[str, Finding]] = {}
    for finding in live:
        actual.setdefault(finding.rule, {})[finding.opportunity_id] = finding
    expected = reference_audit(case.org, case.settings, case.as_of)
    for rule, matches in expected.items():
        got = actual.get(rule, {})
        assert set(got) == set(matches), (
            f"{rule}: SQL flags {sorted(set(got) - set(matches))} the reference does not, "
            f"misses {sorted(set(matches) - set(got))}"
        )
        for opp_id, want in matches.items():
            finding = got[opp_id]
            assert finding.profile == want.profile, (rule, opp_id)
            for key, value in want.values.items():
                assert _same(finding.details[key], value), (rule, opp_id, key, finding.details)
    metrics = {m.opportunity_id: m for m in slip_metrics(warehouse, case.settings, case.as_of)}
    reference = reference_slip_metrics(case.org, case.settings, case.as_of)
    assert set(metrics) == set(reference)
    for opp_id, want in reference.items():
        got_metrics = metrics[opp_id]
        assert got_metrics.month_extensions == want["month_extensions"], opp_id
        assert got_metrics.days_since_stage_change == want["days_since_stage_change"], opp_id
        assert got_metrics.days_open == want["days_open"], opp_id
        assert got_metrics.lower_bound == want["lower_bound"], opp_id


def test_sql_rules_match_the_reference_on_random_orgs(db_url: str) -> None:
    """Quarter edges, fiscal years, equal thresholds, currencies, history, zones, scopes."""
    warehouse = new_warehouse(db_url)
    examples = 40 if db_url.startswith("sqlite") else 12

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=True,
    )
    @given(case=audit_cases())
    def check(case: AuditCase) -> None:
        _check_case(warehouse, case)

    try:
        check()
    finally:
        warehouse.dispose()
