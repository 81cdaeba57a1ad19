"""The report opened from disk in headless Chromium: it renders, sorts, and fetches nothing.

The browser is ``$SFSYNC_CHROMIUM``, else ``chromium`` / ``chromium-browser`` /
``google-chrome`` on PATH. Without one these tests skip, except in CI
(``CI=true``), where ``install_chromium.sh`` is expected to have installed it.
Screenshots go to each test's ``tmp_path``, and are copied to
``$REPORT_SCREENSHOT_DIR`` when it is set.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from sfsync.config import Settings
from sfsync.report import write_report
from tests.integration.report.browser import Page, find_chromium, open_page
from tests.integration.report.bulk import fill_bulk
from tests.unit.report.fill import AS_OF, HOSTILE_NAME, fill_small_warehouse, new_warehouse

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Read at import: the suite's autouse fixture hides SFSYNC_* variables from each test.
CHROMIUM = find_chromium()
# Where to keep a copy of the screenshot for people to look at (optional).
SCREENSHOT_DIR = os.environ.get("REPORT_SCREENSHOT_DIR")
# The org's My Domain, as salesforce.instance_url: the deals link to its Lightning pages.
INSTANCE = "acme.my.salesforce.com"
RECORD_LINK = re.compile(
    rf"^https://{re.escape(INSTANCE)}/lightning/r/Opportunity/([A-Za-z0-9]{{18}})/view$"
)


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
        settings = Settings.model_validate(
            {"database": {"url": url}, "salesforce": {"instance_url": f"https://{INSTANCE}"}}
        )
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


# --------------------------------------------------------------------------- the deals


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the demo-sized warehouse (3,000 opportunities), written once."""
    return _write(tmp_path_factory.mktemp("demo-report"), bulk=True)


def _warehouse_ids(report: Path) -> set[str]:
    with sqlite3.connect(report.with_name("warehouse.db")) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM opportunity")}


def _keep(shot: Path) -> Path:
    if SCREENSHOT_DIR:
        shutil.copy(shot, Path(SCREENSHOT_DIR) / shot.name)
    return shot


# Each rule's section as the page shows it; amounts in cents (integers: sums are exact).
_DEALS = """
(function () {
  function cents(cell) {
    var v = cell && cell.getAttribute("data-v");
    return v === null || v === undefined ? 0 : Math.round(parseFloat(v) * 100);
  }
  var summary = {};
  document.querySelectorAll("#rules tbody tr").forEach(function (r) {
    summary[r.getAttribute("data-rule")] = {open: parseInt(r.cells[2].getAttribute("data-v")),
                                            atRisk: cents(r.cells[4])};
  });
  var owners = {};
  document.querySelectorAll("#owners-table tbody tr").forEach(function (r) {
    owners[r.getAttribute("data-owner")] = cents(r.cells[r.cells.length - 1]);
  });
  var sections = Array.from(document.querySelectorAll("section.deals")).map(function (s) {
    var table = s.querySelector("table.deals");
    return {
      rule: s.getAttribute("data-rule"),
      atRisk: cents(s.querySelector(".at-risk")),
      footer: cents(table.querySelector("tfoot td.total")),
      caption: table.caption.textContent,
      rows: Array.from(table.tBodies[0].rows).map(function (r) {
        var a = r.cells[0].querySelector("a");
        return {id: r.getAttribute("data-opportunity"), owner: r.getAttribute("data-owner"),
                href: a && a.href, rel: a && a.rel, target: a && a.target,
                amount: cents(r.cells[4])};
      })
    };
  });
  return {summary: summary, owners: owners, sections: sections,
          pipeline: cents(document.querySelector("#pipeline-at-risk .n"))};
})()
"""


def test_every_rule_lists_its_deals_with_record_links_and_totals(
    chromium: str, demo_report: Path
) -> None:
    """Each deal links to its Lightning page; every total is the sum of the amounts listed."""
    uri = demo_report.resolve().as_uri()
    ids = _warehouse_ids(demo_report)
    with open_page(uri, executable=chromium, width=1400) as page:
        shown: dict[str, Any] = page.evaluate(_DEALS)
        assert page.errors() == []
        assert page.requests == [uri]
    sections = {s["rule"]: s for s in shown["sections"]}
    assert list(sections) == [
        "close_date_past",
        "stale_last_modified",
        "missing_rev_rec_terms",
        "close_date_slipping",
    ]
    deals: dict[str, tuple[str, int]] = {}
    for rule, section in sections.items():
        rows = section["rows"]
        # Under the cap of 200: every open finding is listed, so totals compare exactly.
        assert 0 < len(rows) == shown["summary"][rule]["open"] < 200, rule
        assert section["caption"].startswith(f"All {len(rows)} deals"), section["caption"]
        for row in rows:
            match = RECORD_LINK.fullmatch(row["href"] or "")
            assert match is not None, row
            assert match.group(1) == row["id"]
            assert row["id"] in ids
            assert (row["rel"], row["target"]) == ("noopener noreferrer", "_blank")
            deals[row["id"]] = (row["owner"], row["amount"])
        listed = sum(row["amount"] for row in rows)
        assert listed > 0
        assert section["footer"] == listed, rule
        assert section["atRisk"] == listed, rule
        assert shown["summary"][rule]["atRisk"] == listed, rule
        amounts = [row["amount"] for row in rows]
        assert amounts == sorted(amounts, reverse=True)  # largest first
    # The whole pipeline at risk and each owner's: every deal once, whatever its rules.
    assert shown["pipeline"] == sum(amount for _, amount in deals.values())
    per_owner: dict[str, int] = defaultdict(int)
    for owner, amount in deals.values():
        per_owner[owner] += amount
    assert shown["owners"]
    for owner, at_risk in shown["owners"].items():
        assert at_risk == per_owner[owner], owner


def test_a_deals_table_sorts_by_amount_and_the_contents_stay_in_view(
    chromium: str, demo_report: Path
) -> None:
    uri = demo_report.resolve().as_uri()
    with open_page(uri, executable=chromium, width=1400) as page:
        amounts = _column(page, "deals-stale_last_modified", 4)
        page.evaluate(
            "document.querySelectorAll('#deals-stale_last_modified thead th')[4]"
            ".querySelector('button').click()"
        )
        assert _column(page, "deals-stale_last_modified", 4) == sorted(amounts)
        targets = page.evaluate(
            "Array.from(document.querySelectorAll('nav.toc a')).map(function (a) {"
            "  var id = a.getAttribute('href').slice(1);"
            "  return [id, document.getElementById(id) !== null]; })"
        )
        assert len(targets) == 8 + 4
        assert all(found for _, found in targets), targets
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        nav = page.evaluate(
            "(function () { var nav = document.querySelector('nav.toc');"
            "  return [getComputedStyle(nav).position, nav.getBoundingClientRect().top,"
            "          window.scrollY]; })()"
        )
        assert nav[0] == "sticky"
        assert nav[2] > 10_000  # scrolled to the bottom of a long page...
        assert nav[1] == 0  # ...and the contents are still at the top of the window
        assert page.errors() == []


@pytest.mark.parametrize("width", [1400, 900])
def test_the_page_fits_the_window_without_horizontal_scrolling(
    chromium: str, demo_report: Path, tmp_path: Path, width: int
) -> None:
    """No horizontal overflow of the page; at 1400 px no table scrolls inside its box either."""
    uri = demo_report.resolve().as_uri()
    with open_page(uri, executable=chromium, width=width) as page:
        assert page.evaluate("window.innerWidth") == width
        scroll, client = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert scroll <= client == width
        clipped = page.evaluate(
            "Array.from(document.querySelectorAll('.table-wrap'))"
            ".filter(function (w) { return w.scrollWidth > w.clientWidth; })"
            ".map(function (w) { var t = w.querySelector('table');"
            "  return (t.id || w.parentNode.id) + ' ' + w.scrollWidth + '/' + w.clientWidth; })"
        )
        if width >= 1400:
            assert clipped == []
        shot = _keep(page.screenshot(tmp_path / f"report-{width}.png", width=width))
        assert page.errors() == []
        assert page.requests == [uri]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert int.from_bytes(data[16:20], "big") == width
    assert int.from_bytes(data[20:24], "big") > 10_000  # the whole page, not the window
