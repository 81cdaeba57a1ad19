"""The report opened from disk in headless Chromium: it renders, sorts, and fetches nothing.

The browser is ``$SFSYNC_CHROMIUM``, else ``chromium`` / ``chromium-browser`` /
``google-chrome`` on PATH. Without one these tests skip, except in CI
(``CI=true``), where ``install_chromium.sh`` is expected to have installed it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from sfsync.config import DatabaseSettings, Settings
from sfsync.report import write_report
from tests.integration.report.browser import Page, find_chromium, open_page
from tests.integration.report.bulk import fill_bulk
from tests.unit.report.fill import AS_OF, HOSTILE_NAME, fill_small_warehouse, new_warehouse

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Read at import: the suite's autouse fixture hides SFSYNC_* variables from each test.
CHROMIUM = find_chromium()
# Where to keep a copy of the screenshot for people to look at (optional).
SCREENSHOT_DIR = os.environ.get("REPORT_SCREENSHOT_DIR")


@pytest.fixture(scope="module")
def chromium() -> str:
    if CHROMIUM is None:
        message = (
            "no Chromium found ($SFSYNC_CHROMIUM, chromium, chromium-browser, google-chrome); "
            "run tests/integration/report/install_chromium.sh"
        )
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return CHROMIUM


def _write(tmp_path: Path, *, bulk: bool) -> Path:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    warehouse = new_warehouse(url)
    try:
        if bulk:
            fill_bulk(warehouse, opportunities=3_000, as_of=date(2025, 3, 14), owners=60)
            as_of = date(2025, 3, 14)
        else:
            fill_small_warehouse(warehouse)
            as_of = AS_OF
        settings = Settings(database=DatabaseSettings(url=url))
        return write_report(warehouse, settings, tmp_path / "report.html", as_of=as_of)
    finally:
        warehouse.dispose()


@pytest.fixture
def bulk_page(chromium: str, tmp_path: Path) -> Iterator[Page]:
    report = _write(tmp_path, bulk=True)
    with open_page(report.resolve().as_uri(), executable=chromium) as page:
        yield page


def _column(page: Page, table: str, index: int) -> list[float]:
    return list(
        page.evaluate(
            f"Array.from(document.querySelectorAll('#{table} tbody tr'))"
            f".map(function (r) {{ return parseFloat(r.cells[{index}].getAttribute('data-v')); }})"
        )
    )


def test_the_report_renders_without_errors_or_requests(bulk_page: Page, tmp_path: Path) -> None:
    """No console error, no exception, no request but the file itself; every chart drawn."""
    page = bulk_page
    assert page.errors() == []
    assert page.requests == [(tmp_path / "report.html").resolve().as_uri()]
    charts = page.evaluate(
        "Array.from(document.querySelectorAll('svg.chart')).map(function (svg) {"
        "  var box = svg.getBoundingClientRect();"
        "  return {id: svg.id, width: box.width, height: box.height,"
        "          marks: svg.querySelectorAll('rect, polyline, circle').length,"
        "          lines: svg.querySelectorAll('polyline').length};"
        "})"
    )
    assert [c["id"] for c in charts] == [
        "chart-rules",
        "chart-month_extensions",
        "chart-days_since_stage_change",
        "chart-days_open",
        "chart-trend-close_date_past",
        "chart-trend-stale_last_modified",
        "chart-trend-missing_rev_rec_terms",
        "chart-trend-close_date_slipping",
    ]
    for chart in charts:
        assert chart["width"] > 200, chart
        assert chart["height"] > 100, chart
        assert chart["marks"] > 3, chart
    assert all(c["lines"] == 2 for c in charts if c["id"].startswith("chart-trend-"))
    shots = {
        "report.png": page.screenshot(tmp_path / "report.png"),
        "report-rules.png": page.screenshot(tmp_path / "report-rules.png", selector="#rules"),
        "report-slip.png": page.screenshot(tmp_path / "report-slip.png", selector="#slip .charts"),
        "report-trends.png": page.screenshot(tmp_path / "report-trends.png", selector="#trends"),
    }
    for name, shot in shots.items():
        data = shot.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n"), name
        assert int.from_bytes(data[16:20], "big") >= 700, name  # width
        assert int.from_bytes(data[20:24], "big") >= 300, name  # height
        if SCREENSHOT_DIR:
            shutil.copy(shot, Path(SCREENSHOT_DIR) / name)


def test_clicking_a_header_sorts_the_table(bulk_page: Page) -> None:
    page = bulk_page
    extensions = _column(page, "slip-table", 5)
    assert extensions == sorted(extensions, reverse=True)  # as rendered
    click = "document.querySelectorAll('#slip-table thead th')[7].querySelector('button').click()"
    page.evaluate(click)  # "Days open": numbers first sort descending
    days_open = _column(page, "slip-table", 7)
    assert days_open == sorted(days_open, reverse=True)
    assert days_open != extensions
    page.evaluate(click)
    assert _column(page, "slip-table", 7) == sorted(days_open)
    state = page.evaluate(
        "Array.from(document.querySelectorAll('#slip-table thead th'))"
        ".map(function (th) { return th.getAttribute('aria-sort'); })"
    )
    assert state[7] == "ascending"
    assert state.count(None) == len(state) - 1
    assert page.errors() == []


def test_hostile_names_stay_text_in_the_browser(chromium: str, tmp_path: Path) -> None:
    report = _write(tmp_path, bulk=False)
    with open_page(report.resolve().as_uri(), executable=chromium) as page:
        assert page.evaluate("document.scripts.length") == 1
        assert page.evaluate("document.querySelectorAll('main img, main b').length") == 0
        assert HOSTILE_NAME in page.evaluate("document.getElementById('slip-table').innerText")
        assert page.errors() == []
        assert page.events("Page.javascriptDialogOpening") == []  # no alert() ran
