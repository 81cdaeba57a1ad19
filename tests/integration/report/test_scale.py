"""A 100,000-opportunity warehouse: the report is made in seconds and stays small."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest

from sfsync.config import DatabaseSettings, Settings
from sfsync.report import build_report, write_report
from tests.integration.report.bulk import fill_bulk
from tests.unit.report.fill import new_warehouse

AS_OF = date(2025, 3, 14)


@pytest.mark.slow
def test_report_of_100k_opportunities_is_fast_and_small(
    db_url: str, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    warehouse = new_warehouse(db_url)
    try:
        started = time.perf_counter()
        org = fill_bulk(warehouse, opportunities=100_000, as_of=AS_OF, audits=8)
        filled = time.perf_counter() - started
        assert org.opportunities == 100_000
        assert 15_000 <= org.findings <= 30_000
        settings = Settings(database=DatabaseSettings(url=db_url))
        out = tmp_path / "report.html"
        started = time.perf_counter()
        write_report(warehouse, settings, out, as_of=AS_OF)
        seconds = time.perf_counter() - started
        data = build_report(warehouse, settings, as_of=AS_OF)
    finally:
        warehouse.dispose()
    size = out.stat().st_size
    dialect = db_url.split(":", 1)[0]
    record_property("report_seconds", round(seconds, 2))
    record_property("report_bytes", size)
    print(  # shown with -s: the figures the issue asks for
        f"\n[{dialect}] filled {org} in {filled:.1f}s; "
        f"write_report: {seconds:.2f}s, {size / 1024:.0f} KiB"
    )
    assert data.slip.open_opportunities == org.open_opportunities
    assert data.totals.open_findings + data.totals.waived_findings > 10_000
    assert len(data.slip.top) == data.limits.slipping_rows
    assert len(data.trends) == 8
    assert seconds < 30, f"the report took {seconds:.1f}s"
    assert size < 2 * 1024 * 1024, f"the report is {size:,} bytes"
