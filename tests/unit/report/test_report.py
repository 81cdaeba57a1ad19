"""The report's data and page, on a small warehouse filled directly (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sfsync.config import DatabaseSettings, Settings
from sfsync.errors import UsageError
from sfsync.report import (
    ReportData,
    ReportLimits,
    TrendPoint,
    build_report,
    render_html,
    write_report,
)
from sfsync.report._data import _labelled
from sfsync.warehouse import Warehouse
from tests.cli_helpers import run_cli
from tests.unit.report.fill import (
    AS_OF,
    HOSTILE,
    HOSTILE_NAME,
    LOWER,
    NOHIST,
    OWNER_ADA,
    OWNER_BOB,
    OWNER_CAROL,
    OXTED,
    fill_small_warehouse,
    new_warehouse,
)

NOW = datetime(2024, 8, 15, 9, 30, tzinfo=UTC)


@pytest.fixture
def warehouse(db_url: str) -> Iterator[Warehouse]:
    warehouse = new_warehouse(db_url)
    fill_small_warehouse(warehouse)
    yield warehouse
    warehouse.dispose()


def _settings(url: str) -> Settings:
    return Settings(database=DatabaseSettings(url=url))


@pytest.fixture
def report(warehouse: Warehouse, db_url: str) -> ReportData:
    return build_report(warehouse, _settings(db_url), as_of=AS_OF, now=NOW)


class _Checker(HTMLParser):
    """Collects text and tags, and fails on unbalanced or misnested elements."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "source", "wbr", "col"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.ids: list[str] = []
        self.doctype = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.ids += [v for k, v in attrs if k == "id" and v]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.ids += [v for k, v in attrs if k == "id" and v]

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    return checker


# --------------------------------------------------------------------------- data


def test_findings_are_counted_by_rule_with_the_last_audits_changes(report: ReportData) -> None:
    """Open/waived/resolved per rule come from the finding table; new/resolved from the audit."""
    by_rule = {r.rule: r for r in report.rules}
    assert [r.rule for r in report.rules] == [
        "close_date_past",
        "stale_last_modified",
        "missing_rev_rec_terms",
        "close_date_slipping",
    ]
    assert (by_rule["close_date_past"].open, by_rule["close_date_past"].resolved_total) == (2, 1)
    assert (by_rule["stale_last_modified"].open, by_rule["stale_last_modified"].waived) == (2, 1)
    assert by_rule["missing_rev_rec_terms"].open == 1
    assert by_rule["close_date_slipping"].open == 1
    # The last audit (run 5) evaluated close_date_slipping only.
    assert report.last_audit is not None
    assert report.last_audit.run_id == 5
    # ... so the other rules' changes come from the audit before it (run 3).
    assert by_rule["close_date_slipping"].new_last_audit == 0
    assert by_rule["close_date_past"].resolved_last_audit == 1
    assert by_rule["stale_last_modified"].new_last_audit == 0
    assert report.totals.open_findings == 6
    assert report.totals.waived_findings == 1
    assert report.totals.opportunities_with_open_findings == 5


def test_findings_are_grouped_by_owner_with_names_from_user(report: ReportData) -> None:
    """Live findings per owner, most open first; a vanished opportunity has no owner."""
    owners = {o.owner_id: o for o in report.owners}
    assert report.owners[0].owner_id == OWNER_ADA
    ada = owners[OWNER_ADA]
    assert (ada.name, ada.is_active, ada.open, ada.waived) == ("Ada Lovelace", True, 3, 0)
    assert ada.open_by_rule["stale_last_modified"] == 1
    assert (owners[OWNER_BOB].open, owners[OWNER_BOB].waived) == (1, 1)
    assert owners[OWNER_CAROL].is_active is False
    assert owners[None].open == 1
    assert report.totals.owners_with_live_findings == 4


def test_slip_metrics_reproduce_the_seed_example(report: ReportData) -> None:
    """Open 237 days, stage unchanged 100 days, 4 month extensions (seed 004, docs/rules.md #15)."""
    slip = report.slip
    assert slip.open_opportunities == 4  # won, deleted and created-later ones are left out
    first = slip.top[0]
    assert first.opportunity_id == OXTED
    assert (first.month_extensions, first.days_since_stage_change, first.days_open) == (4, 100, 237)
    assert not first.lower_bound
    assert first.due_this_month
    assert first.finding_status == "open"
    assert first.owner_name == "Ada Lovelace"
    assert first.stage == "Negotiate"
    rows = {r.opportunity_id: r for r in slip.top}
    assert set(rows) == {OXTED, HOSTILE, LOWER, NOHIST}
    assert (rows[LOWER].month_extensions, rows[LOWER].lower_bound) == (2, True)
    assert rows[LOWER].source == "snapshots"
    assert (rows[NOHIST].month_extensions, rows[NOHIST].lower_bound) == (0, True)
    assert rows[HOSTILE].month_extensions == 1
    assert rows[HOSTILE].name == HOSTILE_NAME
    assert (slip.slipping, slip.lower_bound, slip.min_extensions) == (1, 2, 3)
    assert (slip.due_this_month, {r.opportunity_id for r in slip.due}) == (2, {OXTED, NOHIST})


def test_distributions_cover_every_open_opportunity(report: ReportData) -> None:
    extensions, stage_days, open_days = report.slip.histograms
    assert sum(extensions.exact) + sum(extensions.lower_bound) == 4
    assert extensions.exact[4] == 1
    assert extensions.lower_bound[2] == 1
    assert sum(stage_days.exact) + sum(stage_days.lower_bound) + stage_days.unknown == 4
    assert sum(open_days.exact) + sum(open_days.lower_bound) + open_days.unknown == 4
    assert extensions.p90 == 4


def test_as_of_leaves_out_opportunities_created_later(warehouse: Warehouse, db_url: str) -> None:
    early = build_report(warehouse, _settings(db_url), as_of=date(2024, 5, 31), now=NOW)
    assert {r.opportunity_id for r in early.slip.top} == {OXTED}
    assert early.as_of == date(2024, 5, 31)
    assert any("as of 2024-05-31" in note for note in early.notes)


def test_trends_are_chronological_with_gaps_for_rules_not_evaluated(report: ReportData) -> None:
    assert [p.run_id for p in report.trends] == [2, 3, 5]
    assert [p.open["close_date_past"] for p in report.trends] == [3, 2, None]
    assert [p.open["close_date_slipping"] for p in report.trends] == [1, 1, 1]
    assert report.trends[1].waived["stale_last_modified"] == 1


def test_trend_labels_name_each_audit_once(report: ReportData) -> None:
    """Runs 3 and 5 both audited 2024-08-15: their start times (UTC) tell them apart."""
    assert [(p.run_id, p.label) for p in report.trends] == [
        (2, "2024-08-14"),
        (3, "2024-08-15 02:00"),
        (5, "2024-08-15 06:00"),
    ]
    page = render_html(report)
    for point in report.trends:
        assert f">{point.label}</text>" in page  # on the x-axis of the trend charts


def test_audits_started_in_the_same_minute_are_told_apart_by_run_id() -> None:
    def point(run_id: int, minute: int) -> TrendPoint:
        started = datetime(2024, 8, 15, 2, minute, 30, tzinfo=UTC)
        return TrendPoint(run_id, "audit", started, date(2024, 8, 15), {}, {})

    labels = [p.label for p in _labelled([point(7, 0), point(8, 0), point(9, 1)])]
    assert labels == ["2024-08-15 02:00 run 7", "2024-08-15 02:00 run 8", "2024-08-15 02:01"]


def test_run_log_is_newest_first_with_stage_counts_and_errors(report: ReportData) -> None:
    runs = {r.run_id: r for r in report.runs}
    assert [r.run_id for r in report.runs] == [6, 5, 4, 3, 2, 1]
    assert runs[6].status == "running"
    assert runs[6].seconds is None
    assert runs[3].seconds == 754.0
    assert runs[3].api_calls == 31
    stages = dict(runs[3].stages)
    assert stages["sync"] == "2 objects, 10 upserted, 1 deleted, 0 problems"
    assert stages["audit"] == "as of 2024-08-15: 6 open, 0 new, 1 resolved, 1 waived"
    assert stages["writeback"] == (
        "applied: 2 Tasks created, 0 completed, 0 flags set, 0 flags cleared, 1 reassigned, "
        "0 skipped, 0 failed, 0 to retry, 0 given up"
    )
    assert runs[4].error is not None
    assert "timed out" in runs[4].error
    assert report.totals.last_sync_at == runs[3].ended_at


def test_each_task_reassignment_is_listed(report: ReportData) -> None:
    """docs/rules.md: a Task for an inactive owner goes elsewhere, and the report lists it."""
    assert report.reassignments_total == 1
    (moved,) = report.reassignments
    assert (moved.opportunity_id, moved.opportunity_name) == (LOWER, "Lower Bound Ltd")
    assert (moved.from_id, moved.from_name) == (OWNER_CAROL, "Carol Gone")
    assert (moved.to_id, moved.to_name) == (OWNER_ADA, "Ada Lovelace")
    assert "inactive" in moved.reason
    assert moved.run_id == 3


def test_header_names_the_org_and_the_settings_without_secrets(
    warehouse: Warehouse, db_url: str
) -> None:
    settings = Settings.model_validate(
        {
            "database": {"url": db_url},
            "salesforce": {
                "instance_url": "https://acme.my.salesforce.com",
                "client_secret": "s3cr3t-value",
            },
            "audit": {"rules": {"close_date_slipping": {"min_extensions": 2}}},
        }
    )
    data = build_report(warehouse, settings, as_of=AS_OF, now=NOW)
    assert (data.org.name, data.org.instance) == ("Acme Instruments", "acme.my.salesforce.com")
    assert data.org.fiscal_year_source == "Organization.FiscalYearStartMonth"
    shown = dict(data.settings)
    assert shown["audit.rules.close_date_slipping.min_extensions"] == "2"
    assert shown["audit.rules.stale_last_modified.thresholds.global"] == "14, 30, 45, 45"
    assert shown["audit.profile"] == "global"
    assert data.slip.slipping == 2  # Oxted (4) and Lower Bound (2, a lower bound)
    page = render_html(data)
    assert "s3cr3t-value" not in page
    assert "acme.my.salesforce.com" in page


def test_caps_keep_the_full_counts_and_say_so(warehouse: Warehouse, db_url: str) -> None:
    limits = ReportLimits(slipping_rows=2, due_rows=1, owners=1, runs=2, trend_audits=1)
    data = build_report(warehouse, _settings(db_url), as_of=AS_OF, limits=limits, now=NOW)
    assert [r.opportunity_id for r in data.slip.top] == [OXTED, LOWER]
    assert len(data.slip.due) == 1
    assert data.slip.due_this_month == 2
    assert len(data.owners) == 1
    assert data.totals.owners_with_live_findings == 4
    assert [r.run_id for r in data.runs] == [6, 5]
    assert data.runs_total == 6
    assert [p.run_id for p in data.trends] == [5]
    page = render_html(data)
    assert "The 2 most extended of 4 open opportunities (capped)" in page
    assert "The 1 owners with the most open findings, of 4 owners" in page
    assert "The newest 2 of 6 recorded runs (capped)" in page


def test_a_warehouse_without_an_audit_still_renders_and_says_so(db_url: str) -> None:
    warehouse = new_warehouse(db_url)
    try:
        fill_small_warehouse(warehouse, with_audits=False)
        data = build_report(warehouse, _settings(db_url), as_of=AS_OF, now=NOW)
    finally:
        warehouse.dispose()
    assert data.last_audit is None
    assert data.trends == ()
    assert data.owners == ()
    assert data.slip.open_opportunities == 4
    assert any("No audit has run" in note for note in data.notes)
    checker = _parse(render_html(data))
    assert checker.problems == []
    assert checker.stack == []
    assert "No audit has run on this warehouse yet" in "".join(checker.text)


def test_an_empty_warehouse_renders(db_url: str) -> None:
    warehouse = new_warehouse(db_url)
    try:
        data = build_report(warehouse, _settings(db_url), now=NOW)
    finally:
        warehouse.dispose()
    assert data.as_of == NOW.date()
    assert data.totals.opportunities == 0
    assert data.slip.top == ()
    checker = _parse(render_html(data))
    assert checker.problems == []
    assert checker.stack == []
    assert "holds no opportunities yet" in "".join(checker.text)


def test_an_in_memory_warehouse_gets_the_same_report_as_a_file(sqlite_url: str) -> None:
    """SQLite in memory is one connection, so the slip metrics are read after the other
    figures rather than beside them, in a second thread: the report is the same."""
    reports = []
    for url in (sqlite_url, "sqlite://"):
        warehouse = new_warehouse(url)
        try:
            fill_small_warehouse(warehouse)
            reports.append(build_report(warehouse, _settings(url), as_of=AS_OF, now=NOW))
        finally:
            warehouse.dispose()
    from_file, in_memory = reports
    assert in_memory == from_file


# --------------------------------------------------------------------------- the page


def test_page_is_well_formed_html(report: ReportData) -> None:
    checker = _parse(render_html(report))
    assert checker.doctype
    assert checker.problems == []
    assert checker.stack == []
    assert len(checker.ids) == len(set(checker.ids)), "duplicate element ids"
    sections = ("totals", "rules", "owners", "slip", "trends", "runs", "reassignments", "settings")
    for section in sections:
        assert section in checker.ids
    charts = [attrs for tag, attrs in checker.tags if tag == "svg"]
    assert len(charts) == 1 + 3 + 4  # rules, three distributions, one trend per rule
    assert all(a.get("class") == "chart" and a.get("role") == "img" for a in charts)


def test_page_references_nothing_outside_itself(report: ReportData) -> None:
    """No URL anywhere, even though a run error and a name contain one; CSP forbids fetching.

    The only links are the contents' links to the page's own sections (with the generic
    login host of the default settings, the deals are not linked to Salesforce).
    """
    page = render_html(report)
    for needle in ("http://", "https://", "//", "url(", "@import"):
        assert needle not in page
    checker = _parse(page)
    for tag, attrs in checker.tags:
        forbidden = {"src", "style"} | {k for k in attrs if k.startswith("on")}
        assert not forbidden & set(attrs), tag
        if "href" in attrs:
            assert tag == "a"
            href = attrs["href"] or ""
            assert href.startswith("#"), href
            assert href[1:] in checker.ids, href
    csp = next(
        a["content"] for t, a in checker.tags if a.get("http-equiv") == "Content-Security-Policy"
    )
    assert csp is not None
    assert csp.startswith("default-src 'none';")
    # The error text is still shown, as text.
    assert "cannot connect to https://login.salesforce.com" in "".join(checker.text)


def test_hostile_names_are_shown_as_text(report: ReportData) -> None:
    page = render_html(report)
    assert "<script>alert" not in page
    assert "<img" not in page
    assert "<b>Builder" not in page
    checker = _parse(page)
    assert [tag for tag, _ in checker.tags].count("script") == 1  # the page's own sorter
    text = "".join(checker.text)
    assert HOSTILE_NAME in text
    assert "Bob <b>Builder</b>" in text


def test_slip_tables_are_sortable_with_numeric_keys(report: ReportData) -> None:
    checker = _parse(render_html(report))
    tables = {a.get("id"): a for t, a in checker.tags if t == "table"}
    for table_id in ("slip-table", "due-table", "owners-table"):
        assert tables[table_id].get("class") == "sortable"
    numeric = [a for t, a in checker.tags if t == "th" and a.get("data-type") == "num"]
    assert numeric, "numeric columns sort by number"
    lower_bound = [a for t, a in checker.tags if t == "td" and "lb" in (a.get("class") or "")]
    assert {a.get("data-v") for a in lower_bound} == {"2", "0"}


# --------------------------------------------------------------------------- writing


def test_write_report_replaces_the_file_atomically(
    warehouse: Warehouse, db_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    out.write_text("old")
    assert write_report(warehouse, _settings(db_url), out, as_of=AS_OF) == out
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_write_report_to_an_unwritable_place_names_it(
    warehouse: Warehouse, db_url: str, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match="no-such-dir"):
        write_report(warehouse, _settings(db_url), tmp_path / "no-such-dir" / "r.html")
    with pytest.raises(UsageError, match="is a directory"):
        write_report(warehouse, _settings(db_url), tmp_path)


# --------------------------------------------------------------------------- command line


def test_cli_writes_the_report(warehouse: Warehouse, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    outcome = run_cli(
        "--log-format",
        "json",
        "report",
        "--out",
        str(out),
        "--as-of",
        "2024-08-15",
        env={"SFSYNC_DATABASE_URL": db_url},
    )
    assert outcome.exit_code == 0, outcome.output
    assert f"wrote {out}" in outcome.stdout
    assert "Oxted Manufacturing" in out.read_text(encoding="utf-8")


def test_cli_rejects_a_bad_date_with_exit_2(
    warehouse: Warehouse, db_url: str, tmp_path: Path
) -> None:
    outcome = run_cli(
        "report",
        "--out",
        str(tmp_path / "r.html"),
        "--as-of",
        "15/08/2024",
        env={"SFSYNC_DATABASE_URL": db_url},
    )
    assert outcome.exit_code == 2
    assert "--as-of" in outcome.stderr
    assert "YYYY-MM-DD" in outcome.stderr
    assert not (tmp_path / "r.html").exists()


def test_cli_unwritable_out_is_exit_2_naming_the_path(
    warehouse: Warehouse, db_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "missing" / "r.html"
    outcome = run_cli("report", "--out", str(target), env={"SFSYNC_DATABASE_URL": db_url})
    assert outcome.exit_code == 2
    assert str(target) in outcome.stderr
    assert "Traceback" not in outcome.output
