"""The deals behind each rule's open findings: listed, converted, totalled, linked, capped.

On the small warehouse of ``fill.py`` (SQLite and PostgreSQL): every opportunity is in
EUR, the organization's currency, and the org has no ``CurrencyType`` rows, so amounts
are taken as they are; one test adds rates and converts like the audit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from sfsync.audit._context import OPP, build_context
from sfsync.audit._expressions import converted_amount
from sfsync.config import Settings
from sfsync.report import ReportData, ReportLimits, RuleDeals, build_report, render_html
from sfsync.warehouse import Warehouse
from sfsync.warehouse.models import CurrencyType, Opportunity, table_of
from tests.unit.report.fill import (
    AS_OF,
    HOSTILE,
    HOSTILE_NAME,
    LOWER,
    MISSING,
    NOHIST,
    OWNER_ADA,
    OWNER_BOB,
    OWNER_CAROL,
    OXTED,
    fill_small_warehouse,
    new_warehouse,
)

NOW = datetime(2024, 8, 15, 9, 30, tzinfo=UTC)
INSTANCE = "acme.my.salesforce.com"
LIGHTNING = re.compile(r"^https://acme\.my\.salesforce\.com/lightning/r/Opportunity/(\w{18})/view$")


@pytest.fixture
def warehouse(db_url: str) -> Iterator[Warehouse]:
    warehouse = new_warehouse(db_url)
    fill_small_warehouse(warehouse)
    yield warehouse
    warehouse.dispose()


def _settings(url: str, **salesforce: Any) -> Settings:
    return Settings.model_validate({"database": {"url": url}, "salesforce": salesforce})


def _report(
    warehouse: Warehouse,
    url: str,
    *,
    limits: ReportLimits | None = None,
    salesforce: dict[str, str] | None = None,
) -> ReportData:
    settings = _settings(url, **(salesforce or {}))
    return build_report(warehouse, settings, as_of=AS_OF, now=NOW, limits=limits)


@pytest.fixture
def report(warehouse: Warehouse, db_url: str) -> ReportData:
    return _report(warehouse, db_url, salesforce={"instance_url": f"https://{INSTANCE}"})


def _by_rule(report: ReportData) -> dict[str, RuleDeals]:
    return {d.rule: d for d in report.deals}


# --------------------------------------------------------------------------- the lists


def test_each_rule_lists_the_deals_of_its_open_findings(report: ReportData) -> None:
    """Open findings only (Hostile's stale finding is waived), largest amount first."""
    lists = _by_rule(report)
    assert list(lists) == [
        "close_date_past",
        "stale_last_modified",
        "missing_rev_rec_terms",
        "close_date_slipping",
    ]
    listed = {rule: [d.opportunity_id for d in rd.deals] for rule, rd in lists.items()}
    assert listed == {
        # No amount (Nohist) and no opportunity (Missing) are both 0 at risk: by id.
        "close_date_past": [NOHIST, MISSING],
        "stale_last_modified": [LOWER, OXTED],  # 80,000 then 60,000
        "missing_rev_rec_terms": [HOSTILE],
        "close_date_slipping": [OXTED],
    }
    assert {rd.rule: rd.total for rd in lists.values()} == {
        rule.rule: rule.open for rule in report.rules
    }
    lower, oxted = lists["stale_last_modified"].deals
    assert (oxted.name, oxted.owner_id, oxted.owner_name) == (
        "Oxted Manufacturing - Q3 renewal",
        OWNER_ADA,
        "Ada Lovelace",
    )
    assert (oxted.stage, oxted.close_date) == ("Negotiate", date(2024, 8, 30))
    assert (lower.owner_id, lower.owner_name, lower.amount) == (OWNER_CAROL, "Carol Gone", 80_000)
    missing = lists["close_date_past"].deals[1]
    assert (missing.in_warehouse, missing.name, missing.owner_id) == (False, None, None)
    hostile = lists["missing_rev_rec_terms"].deals[0]
    assert (hostile.name, hostile.owner_name) == (HOSTILE_NAME, "Bob <b>Builder</b>")


def test_each_list_shows_the_values_behind_the_finding_from_its_details(
    report: ReportData,
) -> None:
    """The rule's own values, read through its details class; a row without details shows —."""

    def table(rule: str) -> list[dict[str, str]]:
        rd = _by_rule(report)[rule]
        return [
            {c.label: v.text for c, v in zip(rd.columns, d.values, strict=True)} for d in rd.deals
        ]

    assert table("stale_last_modified") == [
        {
            "Days since a person updated it": "—",
            "Limit (days)": "—",
            "Last update by a person": "—",
            "Big or instrument": "—",
        },
        {
            "Days since a person updated it": "44",
            "Limit (days)": "14",
            "Last update by a person": "2024-07-01",
            "Big or instrument": "big",
        },
    ]
    assert table("close_date_past")[0] == {
        "Days past the close date": "9",  # 2024-08-05 to the audit's day, 2024-08-14
        "Close-date quarter": "the current quarter",
        "Big or instrument": "instrument",
    }
    assert table("missing_rev_rec_terms") == [
        {
            "Rev Rec Terms field": "Rev_Rec_Terms__c",
            "Required from stage": "Prove",
            "Instrument": "yes",
        }
    ]
    slipping = _by_rule(report)["close_date_slipping"]
    assert table("close_date_slipping") == [
        {
            "Month extensions": "4",
            "Limit": "—",
            "Days since stage change": "100",
            "Days open": "237",
        }
    ]
    assert [c.numeric for c in slipping.columns] == [True, True, True, True]
    assert slipping.deals[0].values[0].sort == 4


# --------------------------------------------------------------------------- amounts


def test_pipeline_at_risk_is_the_sum_of_the_listed_amounts(report: ReportData) -> None:
    """Per rule and per owner, in the corporate currency (here the org's, EUR)."""
    pipeline = report.pipeline
    assert (pipeline.currency, pipeline.currency_source) == (
        "EUR",
        "Organization.DefaultCurrencyIsoCode",
    )
    lists = _by_rule(report)
    for rd in lists.values():
        assert not rd.capped
        assert rd.at_risk == rd.listed_at_risk
        assert rd.at_risk == sum((d.converted_amount or Decimal(0) for d in rd.deals), Decimal(0))
    assert {rule: rd.at_risk for rule, rd in lists.items()} == {
        "close_date_past": Decimal("0.00"),  # no amount, and no opportunity
        "stale_last_modified": Decimal("140000.00"),
        "missing_rev_rec_terms": Decimal("60000.00"),
        "close_date_slipping": Decimal("60000.00"),
    }
    # Each deal once, whatever the number of rules flagging it (Oxted: two).
    deals = {d.opportunity_id: d for rd in lists.values() for d in rd.deals}
    assert pipeline.deals == len(deals) == 5
    assert pipeline.total == sum((d.converted_amount or 0 for d in deals.values()), Decimal(0))
    assert pipeline.total == Decimal("200000.00")
    owners = {o.owner_id: o.at_risk for o in report.owners}
    assert owners == {
        OWNER_ADA: Decimal("60000.00"),  # Oxted; Nohist has no amount
        OWNER_BOB: Decimal("60000.00"),  # Hostile (its waived finding adds nothing)
        OWNER_CAROL: Decimal("80000.00"),
        None: Decimal("0.00"),
    }
    for owner, at_risk in owners.items():
        assert at_risk == sum(
            (d.converted_amount or Decimal(0) for d in deals.values() if d.owner_id == owner),
            Decimal(0),
        )


def test_amounts_are_converted_to_the_corporate_currency_like_the_audit(
    warehouse: Warehouse, db_url: str
) -> None:
    """Rates from CurrencyType: amount / rate(currency) * rate(corporate), as the audit's SQL."""
    rates = {"USD": 1.0, "EUR": 0.9, "GBP": 0.8, "JPY": 150.0}
    with warehouse.engine.begin() as conn:
        conn.execute(
            insert(table_of(CurrencyType)),
            [
                {
                    "id": f"01L00000000000{i}AAA",
                    "raw": {},
                    "synced_at": NOW,
                    "iso_code": code,
                    "conversion_rate": rate,
                    "is_corporate": code == "USD",
                }
                for i, (code, rate) in enumerate(rates.items())
            ],
        )
        opp = table_of(Opportunity)
        conn.execute(update(opp).where(opp.c.id == LOWER).values(currency_iso_code="GBP"))
        conn.execute(update(opp).where(opp.c.id == OXTED).values(currency_iso_code=None))
        conn.execute(update(opp).where(opp.c.id == HOSTILE).values(currency_iso_code="CHF"))
    settings = _settings(db_url)
    data = build_report(warehouse, settings, as_of=AS_OF, now=NOW)
    with warehouse.engine.connect() as conn:
        ctx = build_context(conn, settings.audit, as_of=AS_OF, rules=())
        audit = {row[0]: row[1] for row in conn.execute(select(OPP.c.id, converted_amount(ctx)))}
    assert (data.pipeline.currency, data.pipeline.currency_source) == (
        "USD",
        "CurrencyType.IsCorporate",
    )
    deals = [d for rd in data.deals for d in rd.deals if d.in_warehouse and d.amount is not None]
    assert {d.opportunity_id for d in deals} == {LOWER, OXTED, HOSTILE}
    for deal in deals:
        expected = audit[deal.opportunity_id]
        if expected is None:
            assert deal.converted_amount is None
        else:
            assert deal.converted_amount == Decimal(expected).quantize(Decimal("0.01"))
    by_id = {d.opportunity_id: d for d in deals}
    assert by_id[LOWER].converted_amount == Decimal("100000.00")  # 80,000 GBP at 0.8
    assert by_id[OXTED].converted_amount == Decimal("60000.00")  # no currency: USD
    assert by_id[HOSTILE].converted_amount is None  # CHF has no rate
    assert data.pipeline.without_rate == 1
    assert data.pipeline.total == Decimal("160000.00")
    assert any("without a conversion rate" in note for note in data.notes)


# --------------------------------------------------------------------------- links


def test_deals_link_to_their_lightning_record_page(report: ReportData) -> None:
    urls = {d.opportunity_id: d.url for rd in report.deals for d in rd.deals}
    assert urls[OXTED] == f"https://{INSTANCE}/lightning/r/Opportunity/{OXTED}/view"
    assert urls[MISSING] is None  # the warehouse no longer has it
    for opportunity_id, url in urls.items():
        if url is not None:
            match = LIGHTNING.match(url)
            assert match is not None, url
            assert match.group(1) == opportunity_id
    assert (report.links.host, report.links.source) == (INSTANCE, "salesforce.instance_url")


@pytest.mark.parametrize(
    ("salesforce", "host", "source"),
    [
        ({"login_url": "https://acme.my.salesforce.com"}, INSTANCE, "salesforce.login_url"),
        (
            {"instance_url": "https://127.0.0.1:8443", "login_url": "https://login.salesforce.com"},
            "127.0.0.1:8443",
            "salesforce.instance_url",
        ),
        ({"login_url": "https://test.salesforce.com"}, None, None),
        ({}, None, None),
    ],
)
def test_the_link_host_comes_from_the_instance_or_a_my_domain_login_url(
    warehouse: Warehouse,
    db_url: str,
    salesforce: dict[str, str],
    host: str | None,
    source: str | None,
) -> None:
    """The warehouse does not keep the instance; a generic login host cannot open records."""
    data = _report(warehouse, db_url, salesforce=salesforce)
    assert data.links.host == host
    oxted = next(d for d in _by_rule(data)["close_date_slipping"].deals)
    if host is None:
        assert oxted.url is None
        assert "salesforce.instance_url" in data.links.source
        assert any("not linked to Salesforce" in note for note in data.notes)
    else:
        assert data.links.source == source
        assert oxted.url == f"https://{host}/lightning/r/Opportunity/{OXTED}/view"


# --------------------------------------------------------------------------- caps


def test_a_capped_list_says_what_it_shows_and_where_the_rest_is(
    warehouse: Warehouse, db_url: str
) -> None:
    data = _report(warehouse, db_url, limits=ReportLimits(rule_rows=1))
    stale = _by_rule(data)["stale_last_modified"]
    assert [d.opportunity_id for d in stale.deals] == [LOWER]  # the largest
    assert (stale.total, stale.capped) == (2, True)
    assert stale.at_risk == Decimal("140000.00")  # every flagged deal
    assert stale.listed_at_risk == Decimal("80000.00")  # the listed one
    assert stale.cap_statement == (
        "showing 1 of 2 (the largest amounts; at most 1 per rule); the full list: "
        "`sfsync findings --rule stale_last_modified --format csv`"
    )
    assert _by_rule(data)["close_date_slipping"].cap_statement is None
    page = render_html(data)
    assert "Showing 1 of 2 (the largest amounts; at most 1 per rule); the full list: " in page
    assert "sfsync findings --rule stale_last_modified --format csv" in page
    assert data.pipeline.total == Decimal("200000.00")  # totals never capped


# --------------------------------------------------------------------------- the page


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[dict[str, str | None]] = []
        self.sticky_nav = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag == "a":
            self.links.append(values)
        if tag == "nav" and values.get("class") == "toc":
            self.sticky_nav = True


def test_the_page_lists_each_rules_deals_with_escaped_names_and_record_links(
    report: ReportData,
) -> None:
    page = render_html(report)
    assert "<script>alert" not in page
    assert "Bob <b>Builder" not in page
    assert "//" not in page  # the links' slashes are written as &#47; like any text
    parser = _Links()
    parser.feed(page)
    for rule in ("close_date_past", "stale_last_modified", "missing_rev_rec_terms"):
        assert f"rule-{rule}" in parser.ids
        assert f"deals-{rule}" in parser.ids
    outside = [a for a in parser.links if not str(a.get("href")).startswith("#")]
    linked = [LIGHTNING.fullmatch(str(a["href"])) for a in outside]
    assert sorted(m.group(1) for m in linked if m) == sorted([NOHIST, LOWER, OXTED, HOSTILE, OXTED])
    assert all(a.get("rel") == "noopener noreferrer" for a in outside)
    inside = [str(a["href"])[1:] for a in parser.links if str(a.get("href")).startswith("#")]
    assert set(inside) <= parser.ids
    assert {"totals", "rules", "owners", "slip", "trends", "runs", "settings"} <= set(inside)
    assert {f"rule-{rd.rule}" for rd in report.deals} <= set(inside)
    assert parser.sticky_nav
    assert "nav.toc { position: sticky; top: 0;" in page
    assert "Pipeline at risk (EUR)" in page
    assert "200,000.00 EUR" in page
