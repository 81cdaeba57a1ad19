"""Render :class:`ReportData` as one self-contained HTML page.

The page needs nothing at view time: CSS and the table-sorting script are
inline, charts are inline SVG, fonts are the system's. Its
Content-Security-Policy allows exactly that inline CSS and script (by hash)
and nothing else, so even a value that slipped past escaping could not make
the browser fetch anything. The only links leaving the page are those to the
flagged deals in Salesforce (built by :class:`RecordLinks`, never from a record
value); following one is the reader's choice, and DNS prefetching is off.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from string import Template

from sfsync.audit.rules import rule_ids
from sfsync.report._data import (
    Histogram,
    OwnerRow,
    ReportData,
    RunRow,
    SlipRow,
)
from sfsync.report._deals import DealValue, FlaggedDeal, RuleDeals, ValueColumn
from sfsync.report._svg import PALETTE, Series, column_chart, esc, hbar_chart, line_chart

__all__ = ["render_html"]

_STYLE = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #d9dde5; --bg: #ffffff; --soft: #f4f6f9;
  --warn: #8a5a00; --warn-bg: #fff6e0; --accent: #0072B2; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: var(--bg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
.layout { display: grid; grid-template-columns: 220px minmax(0, 1fr); }
main { min-width: 0; max-width: 1220px; padding: 24px 28px 48px; }
section, header { scroll-margin-top: 8px; }
nav.toc { position: sticky; top: 0; align-self: start; max-height: 100vh; overflow-y: auto;
  padding: 24px 10px 24px 16px; border-right: 1px solid var(--line); background: var(--bg);
  font-size: 13px; z-index: 2; }
nav.toc .toc-title { margin: 0 0 6px 6px; color: var(--muted); font-size: 11.5px;
  font-weight: 650; letter-spacing: 0.04em; text-transform: uppercase; }
nav.toc ol { list-style: none; margin: 0; padding: 0; }
nav.toc ol ol { padding-left: 12px; }
nav.toc a { display: block; padding: 3px 6px; border-radius: 4px; color: var(--ink);
  text-decoration: none; overflow-wrap: anywhere; }
nav.toc a:hover, nav.toc a:focus-visible { background: var(--soft); }
nav.toc .count { color: var(--muted); font-variant-numeric: tabular-nums; }
@media (max-width: 1100px) {
  .layout { display: block; }
  nav.toc { max-height: none; overflow: visible; padding: 6px 12px; border-right: 0;
    border-bottom: 1px solid var(--line); box-shadow: 0 1px 3px rgba(0, 0, 0, 0.08); }
  nav.toc .toc-title { display: none; }
  nav.toc ol, nav.toc li { display: inline; }
  nav.toc ol ol { padding: 0; }
  nav.toc a { display: inline-block; padding: 1px 6px; }
  section, header { scroll-margin-top: 90px; }
  main { padding: 16px 14px 40px; }
  th, td { padding: 4px 5px; }
  .id { overflow-wrap: anywhere; }
  td.wrap { min-width: 7em; }
}
header h1 { margin: 0 0 4px; font-size: 26px; }
header .org { margin: 0 0 12px; color: var(--muted); font-size: 15px; }
h2 { margin: 36px 0 10px; padding-bottom: 6px; border-bottom: 2px solid var(--line);
  font-size: 20px; }
h3 { margin: 24px 0 8px; font-size: 16px; }
p.lead { color: var(--muted); max-width: 860px; margin: 4px 0 12px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; }
.notes p { background: var(--warn-bg); color: var(--warn); border-left: 4px solid #e6a700;
  padding: 8px 12px; margin: 12px 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 12px;
  margin-top: 20px; }
.card { background: var(--soft); border-radius: 8px; padding: 12px 14px; }
.card .n { font-size: 24px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .l { color: var(--muted); font-size: 12.5px; }
.card.money { grid-column: span 2; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 4px;
  font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 5px 7px; border-bottom: 1px solid var(--line);
  vertical-align: top; overflow-wrap: break-word; }
th { background: var(--soft); font-weight: 600; font-size: 12.5px; }
td.num, th.num { text-align: right; }
td.num, td.date { white-space: nowrap; }
td.num.words, tfoot td.num { white-space: normal; }
tfoot th, tfoot td { border-top: 2px solid var(--line); font-weight: 650; background: var(--bg); }
/* Wide tables wrap their text first; only a narrow screen scrolls them, inside this box. */
.table-wrap { overflow-x: auto; max-width: 100%; }
td.wrap { min-width: 9em; max-width: 420px; overflow-wrap: anywhere; }
td a { color: var(--accent); }
td a:visited { color: #5a3d99; }
caption { caption-side: bottom; text-align: left; color: var(--muted); font-size: 12.5px;
  padding-top: 6px; }
th button { all: inherit; cursor: pointer; padding: 0; }
th button::after { content: "\\00A0\\2195"; color: #9aa3b2; }
th[aria-sort="ascending"] button::after { content: "\\00A0\\25B2"; color: var(--accent); }
th[aria-sort="descending"] button::after { content: "\\00A0\\25BC"; color: var(--accent); }
th button:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
.id { color: var(--muted); font-size: 11.5px; display: block; }
.lb { color: var(--warn); font-weight: 600; }
.status-failed, .status-interrupted { color: #b3261e; font-weight: 600; }
.status-partial, .status-running { color: var(--warn); font-weight: 600; }
.muted { color: var(--muted); }
.charts { display: flex; flex-wrap: wrap; gap: 18px; margin: 8px 0; }
svg.chart { max-width: 100%; height: auto; background: var(--bg); }
svg.chart text { font: 12px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
  fill: var(--ink); }
svg.chart text.axis-title { fill: var(--muted); }
svg.chart line.grid { stroke: var(--line); stroke-width: 1; }
code { font-size: 12.5px; background: var(--soft); padding: 0 3px; border-radius: 3px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12.5px; }
footer ul { padding-left: 18px; }
@media print { th button::after { content: ""; } main { padding: 0; } nav.toc { display: none; }
  .layout { display: block; } }
"""

# Sorts any table.sortable by the clicked header: numbers by data-v, text otherwise.
_SCRIPT = """
(function () {
  "use strict";
  function key(row, index, numeric) {
    var cell = row.cells[index];
    if (!cell) { return numeric ? Number.NEGATIVE_INFINITY : ""; }
    var raw = cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent;
    if (numeric) {
      var n = parseFloat(raw);
      return isNaN(n) ? Number.NEGATIVE_INFINITY : n;
    }
    return raw.trim().toLowerCase();
  }
  function sortBy(table, th, index) {
    var numeric = th.getAttribute("data-type") === "num";
    var current = th.getAttribute("aria-sort");
    var ascending = current ? current === "descending" : !numeric;
    var body = table.tBodies[0];
    var items = Array.prototype.map.call(body.rows, function (row, i) {
      return { row: row, key: key(row, index, numeric), i: i };
    });
    items.sort(function (a, b) {
      if (a.key < b.key) { return ascending ? -1 : 1; }
      if (a.key > b.key) { return ascending ? 1 : -1; }
      return a.i - b.i;
    });
    items.forEach(function (item) { body.appendChild(item.row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      cell.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      var button = th.querySelector("button");
      if (button) {
        button.addEventListener("click", function () { sortBy(table, th, index); });
      }
    });
  });
})();
"""

_PAGE = Template(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="$csp">
<meta http-equiv="x-dns-prefetch-control" content="off">
<meta name="referrer" content="no-referrer">
<meta name="generator" content="sfsync $version">
<title>$title</title>
<style>$style</style>
</head>
<body>
<div class="layout">
$toc
<main>
$body
</main>
</div>
<script>$script</script>
</body>
</html>
"""
)


# Wide tables scroll sideways inside the page instead of overflowing it.
_WRAP = '<div class="table-wrap">'


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def _csp() -> str:
    return (
        "default-src 'none'; "
        f"style-src 'sha256-{_sha256(_STYLE)}'; "
        f"script-src 'sha256-{_sha256(_SCRIPT)}'; "
        "img-src 'none'; base-uri 'none'; form-action 'none'"
    )


def render_html(data: ReportData) -> str:
    """The whole page as one string (UTF-8 when written)."""
    title = "Pipeline hygiene report"
    if data.org.name:
        title += f": {data.org.name}"
    body = "\n".join(
        [
            _header(data),
            _notes(data.notes),
            _totals(data),
            _rules_section(data),
            *(_deals_section(data, deals) for deals in data.deals),
            _owners_section(data),
            _slip_section(data),
            _trends_section(data),
            _runs_section(data),
            _reassignments_section(data),
            _settings_section(data),
            _footer(data),
        ]
    )
    return _PAGE.substitute(
        csp=_csp(),
        version=esc(data.sfsync_version),
        title=esc(title),
        style=_STYLE,
        toc=_toc(data),
        body=body,
        script=_SCRIPT,
    )


# --------------------------------------------------------------------------- formatting


def _ts(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _day(value: date | None) -> str:
    return "—" if value is None else value.isoformat()


def _int(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _num_cell(value: int | float | None, text: str | None = None) -> str:
    sort = "" if value is None else f' data-v="{value}"'
    shown = text if text is not None else (_int(int(value)) if value is not None else "—")
    return f'<td class="num"{sort}>{shown}</td>'


def _th(label: str, *, numeric: bool = False, sortable: bool = False, sort: str = "") -> str:
    classes = ' class="num"' if numeric else ""
    kind = ' data-type="num"' if numeric else ""
    aria = f' aria-sort="{sort}"' if sort else ""
    inner = f'<button type="button">{esc(label)}</button>' if sortable else esc(label)
    return f'<th scope="col"{classes}{kind}{aria}>{inner}</th>'


def _rule_label(rule: str, title: str) -> str:
    return f'{esc(title)}<span class="id">{esc(rule)}</span>'


def _money(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def _code(data: ReportData) -> str:
    """The corporate currency's code, as headers and totals name it."""
    return data.pipeline.currency or "corporate currency"


def _money_cell(value: Decimal | None, extra: str = "") -> str:
    sort = "" if value is None else f' data-v="{value}"'
    return f'<td class="num"{sort}>{_money(value)}{extra}</td>'


def _deals_id(rule: str) -> str:
    return f"rule-{rule}"


# --------------------------------------------------------------------------- contents


def _toc(data: ReportData) -> str:
    rules = "".join(
        f'<li><a href="#{esc(_deals_id(d.rule))}">{esc(d.title)} '
        f'<span class="count">{d.total:,}</span></a></li>'
        for d in data.deals
    )
    entries = [
        '<li><a href="#totals">Totals</a></li>',
        f'<li><a href="#rules">Findings by rule</a><ol>{rules}</ol></li>',
        '<li><a href="#owners">Findings by owner</a></li>',
        '<li><a href="#slip">Close-date slips</a></li>',
        '<li><a href="#trends">Trends</a></li>',
        '<li><a href="#runs">Run log</a></li>',
        '<li><a href="#reassignments">Task reassignments</a></li>',
        '<li><a href="#settings">Settings used</a></li>',
    ]
    return (
        '<nav class="toc" aria-label="Contents"><p class="toc-title">Contents</p>'
        f"<ol>{''.join(entries)}</ol></nav>"
    )


# --------------------------------------------------------------------------- sections


def _header(data: ReportData) -> str:
    org = data.org
    who = [esc(org.name or "Organization not synced yet")]
    if org.org_id:
        who.append(f"org {esc(org.org_id)}")
    if org.is_sandbox is not None:
        who.append("sandbox" if org.is_sandbox else "production")
    if org.instance:
        who.append(f'{esc(org.instance)} <span class="muted">({esc(org.instance_source)})</span>')
    last = data.last_audit
    audit = (
        "none yet"
        if last is None
        else f"run {last.run_id} ({esc(last.kind)}, {esc(last.status)}), as of "
        f"{_day(last.as_of)}, started {_ts(last.started_at)}"
    )
    rows = [
        (
            "As of",
            f"{_day(data.as_of)} (business time zone {esc(_setting(data, 'audit.timezone'))})",
        ),
        ("Generated", _ts(data.generated_at)),
        ("Last sync", _ts(data.totals.last_sync_at)),
        ("Last audit", audit),
        ("Profile", esc(_setting(data, "audit.profile"))),
        (
            "Fiscal year starts",
            f"month {data.org.fiscal_year_start_month} ({esc(data.org.fiscal_year_source)})",
        ),
        ("Warehouse", esc(org.warehouse)),
        ("sfsync", esc(data.sfsync_version)),
    ]
    meta = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return (
        f'<header><h1>Pipeline hygiene report</h1><p class="org">{" · ".join(who)}</p>'
        f'<dl class="meta">{meta}</dl></header>'
    )


def _setting(data: ReportData, key: str) -> str:
    return dict(data.settings).get(key, "(not set)")


def _notes(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    return '<div class="notes">' + "".join(f"<p>{esc(n)}</p>" for n in notes) + "</div>"


def _totals(data: ReportData) -> str:
    t, s = data.totals, data.slip
    cards = [
        (t.opportunities, "opportunities in the warehouse"),
        (t.open_opportunities, f"open on {_day(data.as_of)}"),
        (t.open_findings, "open findings"),
        (t.waived_findings, "waived findings"),
        (t.opportunities_with_open_findings, "opportunities with an open finding"),
        (t.owners_with_live_findings, "owners with live findings"),
        (s.slipping, f"open with ≥ {s.min_extensions} month extensions"),
        (s.due_this_month, f"due to close in {s.month_start:%B %Y}"),
    ]
    inner = "".join(
        f'<div class="card"><div class="n">{n:,}</div><div class="l">{esc(label)}</div></div>'
        for n, label in cards
    )
    pipeline = data.pipeline
    at_risk = (
        f'<div class="card money" id="pipeline-at-risk"><div class="n" data-v="{pipeline.total}">'
        f"{_money(pipeline.total)} {esc(_code(data))}</div>"
        f'<div class="l">pipeline at risk: the converted amounts of the {pipeline.deals:,} '
        f"opportunities with an open finding, each once (currency from "
        f"{esc(pipeline.currency_source)})</div></div>"
    )
    return f'<section id="totals" class="cards" aria-label="Totals">{inner}{at_risk}</section>'


def _rules_section(data: ReportData) -> str:
    at_risk = {d.rule: d.at_risk for d in data.deals}
    rows = []
    for r in data.rules:
        state = "" if r.enabled else ' <span class="muted">(disabled)</span>'
        rows.append(
            f'<tr data-rule="{esc(r.rule)}">'
            f'<td><a href="#{esc(_deals_id(r.rule))}">{esc(r.title)}</a>'
            f'<span class="id">{esc(r.rule)}</span>{state}</td>'
            f"<td>{esc(r.severity)}</td>"
            f"{_num_cell(r.open)}{_num_cell(r.waived)}"
            f"{_money_cell(at_risk.get(r.rule))}"
            f"{_num_cell(r.new_last_audit)}{_num_cell(r.resolved_last_audit)}"
            f"{_num_cell(r.resolved_total)}"
            "</tr>"
        )
    head = "".join(
        [
            _th("Rule"),
            _th("Severity"),
            _th("Open", numeric=True),
            _th("Waived", numeric=True),
            _th(f"Pipeline at risk ({_code(data)})", numeric=True),
            _th("New (last audit of it)", numeric=True),
            _th("Resolved (last audit of it)", numeric=True),
            _th("Resolved (all time)", numeric=True),
        ]
    )
    chart = hbar_chart(
        "chart-rules",
        "Live findings by rule: open and waived",
        [r.title for r in data.rules],
        [
            Series("open", PALETTE[1], tuple(r.open for r in data.rules)),
            Series("waived", "#9aa3b2", tuple(r.waived for r in data.rules)),
        ],
    )
    lead = (
        "Live findings as the last audit left them. Waived findings are reported but "
        "never written back. Pipeline at risk: the amounts of the deals with an open finding "
        f"of the rule, converted to {_code(data)}; each rule's deals are listed below."
        if data.has_audit
        else "No audit has run yet: every count is zero."
    )
    return (
        '<section id="rules"><h2>Findings by rule</h2>'
        f'<p class="lead">{esc(lead)}</p>'
        f"{_WRAP}<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        f'<div class="charts">{chart}</div></section>'
    )


def _value_cell(value: DealValue, column: ValueColumn) -> str:
    if not column.numeric:
        return f"<td>{esc(value.text)}</td>"
    sort = "" if value.sort is None else f' data-v="{value.sort}"'
    if value.lower_bound:
        return (
            f'<td class="num lb"{sort} title="lower bound: the field history is incomplete">'
            f"{esc(value.text)}</td>"
        )
    classes = "num words" if column.words else "num"
    return f'<td class="{classes}"{sort}>{esc(value.text)}</td>'


def _deal_name(deal: FlaggedDeal) -> str:
    if not deal.in_warehouse:
        name = '<span class="muted">(not in the warehouse)</span>'
    else:
        name = esc(deal.name) if deal.name else '<span class="muted">(no name)</span>'
        if deal.deleted:
            name += ' <span class="muted">(deleted in Salesforce)</span>'
    if deal.url is not None:
        name = (
            f'<a href="{esc(deal.url)}" target="_blank" rel="noopener noreferrer" '
            f'title="open in Salesforce">{name}</a>'
        )
    return f'{name}<span class="id">{esc(deal.opportunity_id)}</span>'


def _deal_row(deal: FlaggedDeal, data: ReportData, columns: Sequence[ValueColumn]) -> str:
    original = ""
    if deal.amount is not None and deal.currency and deal.currency != data.pipeline.currency:
        original = f'<span class="id">{deal.amount:,.2f} {esc(deal.currency)}</span>'
    elif deal.amount is not None and deal.converted_amount is None:
        original = f'<span class="id">{deal.amount:,.2f}: no rate</span>'
    values = "".join(_value_cell(v, c) for v, c in zip(deal.values, columns, strict=True))
    return (
        f'<tr data-opportunity="{esc(deal.opportunity_id)}" '
        f'data-owner="{esc(deal.owner_id or "")}">'
        f'<td class="wrap">{_deal_name(deal)}</td>'
        f"<td>{_person(deal.owner_id, deal.owner_name)}</td>"
        f"<td>{esc(deal.stage or '—')}</td>"
        f'<td class="date" data-v="{_day(deal.close_date)}">{_day(deal.close_date)}</td>'
        f"{_money_cell(deal.converted_amount, original)}"
        f"{values}"
        "</tr>"
    )


def _deals_section(data: ReportData, deals: RuleDeals) -> str:
    """One rule's flagged deals: sortable, largest amount first, with a total row."""
    section_id = _deals_id(deals.rule)
    title = (
        f'<section id="{esc(section_id)}" class="deals" data-rule="{esc(deals.rule)}">'
        f"<h2>{_rule_label(deals.rule, deals.title)}</h2>"
    )
    if not deals.total:
        return f'{title}<p class="lead">No open finding.</p></section>'
    code = esc(_code(data))
    lead = (
        f"{deals.total:,} open finding{'s' if deals.total != 1 else ''}; pipeline at risk "
        f'<strong class="at-risk" data-v="{deals.at_risk}">{_money(deals.at_risk)} {code}'
        "</strong>. Amounts are the opportunities' current amounts converted to "
        f"{code}; the other columns are the values the audit recorded. Waived findings are "
        "not listed. Click a column header to sort"
        + ("; a name opens the deal in Salesforce." if data.links.host else ".")
    )
    if deals.without_rate:
        lead += (
            f" {deals.without_rate:,} of them have an amount in a currency without a rate: "
            "left out of the total."
        )
    head = "".join(
        [
            _th("Opportunity", sortable=True),
            _th("Owner", sortable=True),
            _th("Stage", sortable=True),
            _th("Close date", sortable=True),
            _th(f"Amount ({_code(data)})", numeric=True, sortable=True, sort="descending"),
            *(_th(c.label, numeric=c.numeric, sortable=True) for c in deals.columns),
        ]
    )
    rows = "".join(_deal_row(d, data, deals.columns) for d in deals.deals)
    shown = len(deals.deals)
    caption = (
        f"All {deals.total:,} deals with an open finding of this rule, largest amount first."
        if deals.cap_statement is None
        else deals.cap_statement[0].upper() + deals.cap_statement[1:] + "."
    )
    foot = (
        f'<tr><th scope="row" colspan="4">Total of the {shown:,} listed</th>'
        f'<td class="num total" data-v="{deals.listed_at_risk}">{_money(deals.listed_at_risk)} '
        f'{code}</td><td colspan="{len(deals.columns)}"></td></tr>'
    )
    return (
        f'{title}<p class="lead">{lead}</p>'
        f'{_WRAP}<table class="sortable deals" id="deals-{esc(deals.rule)}">'
        f"<caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{rows}</tbody><tfoot>{foot}</tfoot></table></div></section>"
    )


def _owner_name(row: OwnerRow) -> str:
    if row.owner_id is None:
        return '<span class="muted">(opportunity or owner not in the warehouse)</span>'
    name = esc(row.name) if row.name else '<span class="muted">(user not synced)</span>'
    return f'{name}<span class="id">{esc(row.owner_id)}</span>'


def _owners_section(data: ReportData) -> str:
    total = data.totals.owners_with_live_findings
    titles = {r.rule: r.title for r in data.rules}
    if not data.owners:
        return (
            '<section id="owners"><h2>Findings by owner</h2>'
            '<p class="lead">No live findings.</p></section>'
        )
    head = "".join(
        [
            _th("Owner", sortable=True),
            _th("Active", sortable=True),
            *(_th(titles.get(rule, rule), numeric=True, sortable=True) for rule in rule_ids()),
            _th("Open", numeric=True, sortable=True, sort="descending"),
            _th("Waived", numeric=True, sortable=True),
            _th(f"Pipeline at risk ({_code(data)})", numeric=True, sortable=True),
        ]
    )
    rows = []
    for o in data.owners:
        active = "—" if o.is_active is None else ("yes" if o.is_active else "no")
        cells = "".join(_num_cell(o.open_by_rule.get(rule, 0)) for rule in rule_ids())
        rows.append(
            f'<tr data-owner="{esc(o.owner_id or "")}"><td>{_owner_name(o)}</td><td>{active}</td>'
            f"{cells}{_num_cell(o.open)}{_num_cell(o.waived)}{_money_cell(o.at_risk)}</tr>"
        )
    shown = len(data.owners)
    caption = (
        f"All {total:,} owners with live findings."
        if shown >= total
        else f"The {shown:,} owners with the most open findings, of {total:,} owners with live "
        "findings (capped)."
    )
    return (
        '<section id="owners"><h2>Findings by owner</h2>'
        '<p class="lead">Open findings per rule of the opportunities each user owns, and '
        f"their pipeline at risk: the amounts of those opportunities in {esc(_code(data))}, "
        "each opportunity once however many rules flag it. Click a column header to sort.</p>"
        f'{_WRAP}<table class="sortable" id="owners-table"><caption>{esc(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _slip_table(
    table_id: str, rows: Sequence[SlipRow], caption: str, *, mark_due: bool = True
) -> str:
    head = "".join(
        [
            _th("Opportunity", sortable=True),
            _th("Owner", sortable=True),
            _th("Stage", sortable=True),
            _th("Close date", sortable=True),
            _th("Amount", numeric=True, sortable=True),
            _th("Month extensions", numeric=True, sortable=True, sort="descending"),
            _th("Days since stage change", numeric=True, sortable=True),
            _th("Days open", numeric=True, sortable=True),
            _th("Finding", sortable=True),
        ]
    )
    body = []
    for r in rows:
        if r.lower_bound:
            extensions = (
                f'<td class="num lb" data-v="{r.month_extensions}" title="lower bound: no '
                f'OpportunityHistory, counted from {esc(r.source)}">≥ {r.month_extensions:,}</td>'
            )
        else:
            extensions = _num_cell(r.month_extensions)
        amount = "—" if r.amount is None else f"{r.amount:,.0f} {esc(r.currency or '')}".strip()
        due = '<span class="id">this month</span>' if mark_due and r.due_this_month else ""
        body.append(
            "<tr>"
            f'<td class="wrap">{esc(r.name or "(no name)")}<span class="id">'
            f"{esc(r.opportunity_id)}</span></td>"
            f"<td>{esc(r.owner_name or '—')}</td>"
            f"<td>{esc(r.stage or '—')}</td>"
            f'<td class="date" data-v="{_day(r.close_date)}">{_day(r.close_date)}{due}</td>'
            f"{_num_cell(r.amount, amount)}"
            f"{extensions}"
            f"{_num_cell(r.days_since_stage_change)}"
            f"{_num_cell(r.days_open)}"
            f"<td>{esc(r.finding_status or '—')}</td>"
            "</tr>"
        )
    return (
        f'{_WRAP}<table class="sortable" id="{table_id}"><caption>{esc(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _histogram_chart(h: Histogram) -> str:
    return column_chart(
        f"chart-{h.metric}",
        f"{h.title}: open opportunities per bucket",
        h.labels,
        [
            Series("from history", PALETTE[0], h.exact),
            Series("lower bound", PALETTE[5], h.lower_bound),
        ],
        x_title=h.title,
    )


def _slip_section(data: ReportData) -> str:
    s = data.slip
    month = f"{s.month_start:%B %Y}"
    stats = []
    for h in s.histograms:
        line = f"{h.title}: median {_int(h.p50)}, 90th percentile {_int(h.p90)}"
        if h.unknown:
            line += f" ({h.unknown:,} unknown)"
        stats.append(f"<li>{esc(line)}</li>")
    lower = (
        f"{s.lower_bound:,} of {s.open_opportunities:,} open opportunities have no "
        "OpportunityHistory: their month extensions are counted from sfsync's own nightly "
        "snapshots, where there are any, and are a lower bound (marked ≥)."
        if s.lower_bound
        else "Every open opportunity has OpportunityHistory: the month extensions are exact."
    )
    due_caption = (
        f"All {s.due_this_month:,} open opportunities due to close in {month}, most extended first."
        if len(s.due) >= s.due_this_month
        else f"The {len(s.due):,} most extended of the {s.due_this_month:,} open opportunities "
        f"due to close in {month} (capped)."
    )
    top_caption = (
        f"All {s.open_opportunities:,} open opportunities, most extended first."
        if len(s.top) >= s.open_opportunities
        else f"The {len(s.top):,} most extended of {s.open_opportunities:,} open opportunities "
        f"(capped); {s.slipping:,} have at least {s.min_extensions} month extensions."
    )
    charts = "".join(_histogram_chart(h) for h in s.histograms)
    return (
        '<section id="slip"><h2>Pipeline quality: close-date slips</h2>'
        '<p class="lead">Three metrics, read together: how many times the close date moved to '
        "a later month, how long since the stage last changed, and how long the opportunity "
        "has been open. A deal that has slipped several times, sat in one stage for months "
        f"and been open far longer than usual is unlikely to close this month. As of "
        f"{_day(data.as_of)}; ties are broken by days since the last stage change, then days "
        "open.</p>"
        f"<ul>{''.join(stats)}</ul><p>{esc(lower)}</p>"
        f'<div class="charts">{charts}</div>'
        f"<h3>Due to close in {esc(month)}</h3>"
        f"{_slip_table('due-table', s.due, due_caption, mark_due=False)}"
        "<h3>Most extended open opportunities</h3>"
        f"{_slip_table('slip-table', s.top, top_caption)}"
        "</section>"
    )


def _trends_section(data: ReportData) -> str:
    points = data.trends
    if not points:
        return (
            '<section id="trends"><h2>Trends across audits</h2>'
            '<p class="lead">No audit has recorded counts yet.</p></section>'
        )
    labels = [p.label for p in points]
    names = [
        f"run {p.run_id} ({p.kind}), as of {_day(p.as_of)}, started {_ts(p.started_at)}"
        for p in points
    ]
    titles = {r.rule: r.title for r in data.rules}
    charts = []
    for i, rule in enumerate(rule_ids()):
        charts.append(
            line_chart(
                f"chart-trend-{rule}",
                f"{titles.get(rule, rule)}: live findings per audit",
                labels,
                [
                    Series("open", PALETTE[i % 4], tuple(p.open.get(rule) for p in points)),
                    Series("waived", "#9aa3b2", tuple(p.waived.get(rule) for p in points)),
                ],
                point_labels=names,
            )
        )
    blocks = "".join(
        f'<figure class="trend"><figcaption><strong>{_rule_label(rule, titles.get(rule, rule))}'
        f"</strong></figcaption>{chart}</figure>"
        for rule, chart in zip(rule_ids(), charts, strict=True)
    )
    return (
        '<section id="trends"><h2>Trends across audits</h2>'
        f'<p class="lead">Live findings after each of the last {len(points):,} audits, oldest '
        "first (at most "
        f"{data.limits.trend_audits:,}). A gap means the rule was not evaluated in that run. "
        "Audits are labelled by their day, and by their start time (UTC) where a day had "
        "several.</p>"
        f'<div class="charts">{blocks}</div></section>'
    )


def _run_stages(run: RunRow) -> str:
    if not run.stages:
        return "—"
    return "<br>".join(f"<strong>{esc(stage)}</strong>: {esc(text)}" for stage, text in run.stages)


def _runs_section(data: ReportData) -> str:
    if not data.runs:
        return (
            '<section id="runs"><h2>Run log</h2><p class="lead">No run recorded yet.</p></section>'
        )
    head = "".join(
        [
            _th("Run", numeric=True),
            _th("Kind"),
            _th("Status"),
            _th("Started"),
            _th("Duration", numeric=True),
            _th("As of"),
            _th("API calls", numeric=True),
            _th("Counts"),
            _th("Error"),
        ]
    )
    rows = []
    for r in data.runs:
        rows.append(
            "<tr>"
            f"{_num_cell(r.run_id)}<td>{esc(r.kind)}</td>"
            f'<td class="status-{esc(r.status)}">{esc(r.status)}</td>'
            f'<td class="date">{_ts(r.started_at)}</td>'
            f'<td class="num">{_duration(r.seconds)}</td>'
            f'<td class="date">{_day(r.as_of)}</td>{_num_cell(r.api_calls)}'
            f"<td>{_run_stages(r)}</td>"
            f'<td class="wrap">{esc(_clip(r.error)) if r.error else "—"}</td>'
            "</tr>"
        )
    shown = len(data.runs)
    caption = (
        f"All {data.runs_total:,} recorded runs, newest first."
        if shown >= data.runs_total
        else f"The newest {shown:,} of {data.runs_total:,} recorded runs (capped); "
        "`sfsync runs` lists more."
    )
    return (
        '<section id="runs"><h2>Run log</h2>'
        f"{_WRAP}<table><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _person(user_id: str | None, name: str | None) -> str:
    if user_id is None:
        return "—"
    shown = esc(name) if name else '<span class="muted">(user not synced)</span>'
    return f'{shown}<span class="id">{esc(user_id)}</span>'


def _reassignments_section(data: ReportData) -> str:
    title = '<section id="reassignments"><h2>Task reassignments</h2>'
    if not data.reassignments:
        return (
            f'{title}<p class="lead">No Task has been reassigned: every Task sfsync wrote '
            "went to the opportunity's owner.</p></section>"
        )
    head = "".join(
        [
            _th("Written"),
            _th("Run", numeric=True),
            _th("Rule"),
            _th("Opportunity"),
            _th("Owner"),
            _th("Task went to"),
            _th("Why"),
            _th("State"),
        ]
    )
    rows = []
    for r in data.reassignments:
        rows.append(
            "<tr>"
            f'<td class="date">{_ts(r.created_at)}</td>{_num_cell(r.run_id)}'
            f"<td>{esc(r.rule)}</td>"
            f'<td class="wrap">{esc(r.opportunity_name or "(not in the warehouse)")}'
            f'<span class="id">{esc(r.opportunity_id)}</span></td>'
            f"<td>{_person(r.from_id, r.from_name)}</td><td>{_person(r.to_id, r.to_name)}</td>"
            f'<td class="wrap">{esc(_clip(r.reason))}</td><td>{esc(r.state)}</td>'
            "</tr>"
        )
    shown, total = len(data.reassignments), data.reassignments_total
    caption = (
        f"All {total:,} reassigned Task writes, newest first."
        if shown >= total
        else f"The newest {shown:,} of {total:,} reassigned Task writes (capped)."
    )
    return (
        f'{title}<p class="lead">Tasks whose opportunity owner could not take them (inactive, '
        "or refused by Salesforce) go to the owner's manager, else to "
        "<code>writeback.fallback_owner_id</code>.</p>"
        f"{_WRAP}<table><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _clip(text: str | None, limit: int = 400) -> str:
    if text is None:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _settings_section(data: ReportData) -> str:
    rows = "".join(
        f"<tr><td><code>{esc(k)}</code></td><td>{esc(v)}</td></tr>" for k, v in data.settings
    )
    parts = [
        '<section id="settings"><h2>Settings used</h2>'
        '<p class="lead">The audit settings this report was made with (config file and '
        "SFSYNC_* environment). The pipeline-quality metrics use them directly; the findings "
        "were computed by the audits with the settings they recorded, below.</p>"
        f"{_WRAP}<table><thead><tr>{_th('Key')}{_th('Value')}</tr></thead><tbody>{rows}</tbody></table></div>"
    ]
    last = data.last_audit
    if last is not None and last.recorded_settings:
        recorded = "".join(
            f"<tr><td><code>{esc(k)}</code></td><td>{esc(v)}</td></tr>"
            for k, v in last.recorded_settings
        )
        parts.append(
            f"<h3>Recorded by the last audit (run {last.run_id})</h3>"
            f"{_WRAP}<table><thead><tr>{_th('Key')}{_th('Value')}</tr></thead>"
            f"<tbody>{recorded}</tbody></table></div>"
        )
    parts.append("</section>")
    return "".join(parts)


def _footer(data: ReportData) -> str:
    lim = data.limits
    caps = [
        f"Deals of each rule: the {lim.rule_rows:,} largest amounts per rule; "
        "`sfsync findings --rule RULE --format csv` lists them all.",
        f"Most extended open opportunities: at most {lim.slipping_rows:,} rows.",
        f"Opportunities due to close this month: at most {lim.due_rows:,} rows.",
        f"Owners: the {lim.owners:,} with the most open findings.",
        f"Run log: the newest {lim.runs:,} runs.",
        f"Task reassignments: the newest {lim.reassignments:,}.",
        f"Trends: the last {lim.trend_audits:,} audits among the newest {lim.runs_scanned:,} runs.",
        "Counts, distributions and percentiles always cover every opportunity and finding.",
        "Every finding is listed by `sfsync findings --format csv`.",
    ]
    items = "".join(f"<li>{esc(c)}</li>" for c in caps)
    return (
        f"<footer><p>Generated by sfsync {esc(data.sfsync_version)} on "
        f"{_ts(data.generated_at)}. This page is self-contained: it loads nothing from the "
        f"network.</p><p>What is capped:</p><ul>{items}</ul></footer>"
    )
