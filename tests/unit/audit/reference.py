"""docs/rules.md in plain Python, one opportunity at a time: the oracle for the SQL rules.

Written to be obviously correct rather than fast, and deliberately
independent of ``sfsync.audit``: its own fiscal-quarter arithmetic, its own
day counts, its own close-date sequence. Property tests compare the two on
random orgs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sfsync.config import AuditSettings
from tests.unit.audit.org import Org, parse_sf_datetime

__all__ = ["Expected", "reference_audit", "reference_slip_metrics"]


@dataclass(frozen=True)
class Expected:
    """What the reference says about one (rule, opportunity) match."""

    profile: str
    values: dict[str, Any]


def fiscal_quarter(day: date, start_month: int) -> tuple[int, int]:
    """(fiscal year, quarter 1-4); the fiscal year is named after the year it starts in."""
    year = day.year if day.month >= start_month else day.year - 1
    quarter = ((day.month - start_month) % 12) // 3 + 1
    return year, quarter


def quarter_offset(close: date, today: date, start_month: int) -> int:
    cy, cq = fiscal_quarter(close, start_month)
    ty, tq = fiscal_quarter(today, start_month)
    return (cy * 4 + cq) - (ty * 4 + tq)


def days_old(stamp: datetime, today: date, tz: ZoneInfo) -> int:
    return (today - stamp.astimezone(tz).date()).days


def blank(value: Any) -> bool:
    return value is None or str(value).strip() == ""


class _Org:
    """Lookups over the org's records, with deleted rows and as-of exclusions applied."""

    def __init__(self, org: Org, settings: AuditSettings, as_of: date) -> None:
        self.org = org
        self.settings = settings
        self.as_of = as_of
        self.tz = ZoneInfo(settings.timezone)
        live = [r for r in org.get("Organization") if not r.get("IsDeleted")]
        synced_month = live[0].get("FiscalYearStartMonth") if live else None
        self.fiscal_month = synced_month or settings.fiscal_year_start_month
        stages = [s for s in org.get("OpportunityStage") if not s.get("IsDeleted")]
        if settings.stages is not None:
            self.rank = {name: i for i, name in enumerate(settings.stages)}
        else:
            self.rank = {s["ApiName"]: s["SortOrder"] for s in stages}
        self.closed_stages = {s["ApiName"] for s in stages if s.get("IsClosed")}
        currencies = [c for c in org.get("CurrencyType") if not c.get("IsDeleted")]
        self.rates = {c["IsoCode"]: c["ConversionRate"] for c in currencies}
        corporate = settings.corporate_currency or next(
            (c["IsoCode"] for c in currencies if c.get("IsCorporate")), None
        )
        self.corporate_rate = self.rates.get(corporate, 1.0) if corporate else 1.0
        products = {p["Id"]: p for p in org.get("Product2") if not p.get("IsDeleted")}
        self.instrument_opps = {
            li["OpportunityId"]
            for li in org.get("OpportunityLineItem")
            if not li.get("IsDeleted")
            and li.get("Product2Id") in products
            and products[li["Product2Id"]].get("Family") in settings.instrument.product_families
        }
        names = set(settings.sales_record_types)
        self.sales_types = {
            rt["Id"]
            for rt in org.get("RecordType")
            if not rt.get("IsDeleted")
            and (rt.get("DeveloperName") in names or rt.get("Name") in names)
        }

    def created_on_or_before_as_of(self, stamp: str) -> bool:
        return parse_sf_datetime(stamp).astimezone(self.tz).date() <= self.as_of

    def opportunities(self) -> list[dict[str, Any]]:
        return [
            o
            for o in self.org.get("Opportunity")
            if not o.get("IsDeleted") and self.created_on_or_before_as_of(o["CreatedDate"])
        ]

    def converted(self, opp: dict[str, Any]) -> float | None:
        amount = opp.get("Amount") or 0.0
        if not self.rates:
            return float(amount)
        currency = opp.get("CurrencyIsoCode")
        rate = self.corporate_rate if currency is None else self.rates.get(currency)
        if rate is None:
            return None
        return float(amount) / rate * self.corporate_rate

    def big(self, opp: dict[str, Any]) -> bool:
        value = self.converted(opp)
        return value is not None and value > self.settings.amount_threshold

    def has_instrument(self, opp: dict[str, Any]) -> bool:
        if opp["Id"] in self.instrument_opps:
            return True
        field = self.settings.instrument.field
        return field is not None and opp.get(field) is True

    def profile(self, opp: dict[str, Any]) -> str:
        scope = self.settings.scope
        if scope.field is None:
            return self.settings.profile
        return scope.profiles.get(opp.get(scope.field), self.settings.profile)

    def at_least(self, opp: dict[str, Any], stage: str) -> bool:
        rank = self.rank.get(opp.get("StageName"))
        return rank is not None and rank >= self.rank[stage]

    def k(self, opp: dict[str, Any]) -> int:
        return quarter_offset(date.fromisoformat(opp["CloseDate"]), self.as_of, self.fiscal_month)

    def history(self, opp_id: str) -> list[dict[str, Any]]:
        rows = [
            h
            for h in self.org.get("OpportunityHistory")
            if h["OpportunityId"] == opp_id
            and not h.get("IsDeleted")
            and self.created_on_or_before_as_of(h["CreatedDate"])
        ]
        return sorted(rows, key=lambda h: (parse_sf_datetime(h["CreatedDate"]), h["Id"]))

    def snapshots(self, opp_id: str) -> list[dict[str, Any]]:
        rows = [
            s
            for s in self.org.snapshots
            if s["opportunity_id"] == opp_id and date.fromisoformat(s["captured_on"]) <= self.as_of
        ]
        return sorted(rows, key=lambda s: s["captured_on"])


def _month(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    day = date.fromisoformat(value)
    return day.year, day.month


def count_extensions(close_dates: list[str | None]) -> int:
    """Changes to a later (year, month) than the value just before (None never counts)."""
    months = [_month(v) for v in close_dates]
    return sum(
        1
        for before, after in itertools.pairwise(months)
        if before is not None and after is not None and after > before
    )


def reference_slip_metrics(
    org: Org, settings: AuditSettings, as_of: date
) -> dict[str, dict[str, Any]]:
    """Month extensions and companion metrics of every open opportunity, by id."""
    o = _Org(org, settings, as_of)
    result: dict[str, dict[str, Any]] = {}
    for opp in o.opportunities():
        if opp.get("IsClosed"):
            continue
        result[opp["Id"]] = _slip(o, opp)
    return result


def _slip(o: _Org, opp: dict[str, Any]) -> dict[str, Any]:
    created = parse_sf_datetime(opp["CreatedDate"]).astimezone(o.tz).date()
    history = o.history(opp["Id"])
    changed: date = created
    if history:
        sequence = [h.get("CloseDate") for h in history] + [opp.get("CloseDate")]
        for before, after in itertools.pairwise(history):
            if (
                before.get("StageName") is not None
                and after.get("StageName") is not None
                and after["StageName"] != before["StageName"]
            ):
                changed = parse_sf_datetime(after["CreatedDate"]).astimezone(o.tz).date()
        lower_bound = False
    else:
        snaps = o.snapshots(opp["Id"])
        sequence = [s.get("close_date") for s in snaps] + [opp.get("CloseDate")]
        for before, after in itertools.pairwise(snaps):
            if (
                before.get("stage_name") is not None
                and after.get("stage_name") is not None
                and after["stage_name"] != before["stage_name"]
            ):
                changed = date.fromisoformat(after["captured_on"])
        lower_bound = True
    return {
        "month_extensions": count_extensions(sequence),
        "days_since_stage_change": (o.as_of - changed).days,
        "days_open": (o.as_of - created).days,
        "lower_bound": lower_bound,
    }


def reference_audit(
    org: Org, settings: AuditSettings, as_of: date
) -> dict[str, dict[str, Expected]]:
    """rule id -> opportunity id -> what the rule should report."""
    o = _Org(org, settings, as_of)
    result: dict[str, dict[str, Expected]] = {
        "close_date_past": {},
        "stale_last_modified": {},
        "missing_rev_rec_terms": {},
        "close_date_slipping": {},
    }
    for opp in o.opportunities():
        if opp.get("IsClosed"):
            continue  # every rule is about open opportunities
        profile = o.profile(opp)
        europe = profile == "europe"
        sales = opp.get("RecordTypeId") in o.sales_types
        big = o.big(opp)
        instrument = o.has_instrument(opp)
        close = opp.get("CloseDate")
        k = o.k(opp) if close is not None else None

        # close_date_past
        if close is not None and date.fromisoformat(close) < as_of and k is not None:
            if europe:
                hit = sales and (big or instrument)
            else:
                hit = k < 0 or (k == 0 and (big or instrument))
            if hit:
                result["close_date_past"][opp["Id"]] = Expected(
                    profile,
                    {"k": k, "converted_amount": o.converted(opp), "has_instrument": instrument},
                )

        # stale_last_modified
        stale = settings.rule("stale_last_modified")
        modified_text = opp.get("_last_human_modified_date") or opp.get("LastModifiedDate")
        if (
            k is not None
            and modified_text is not None
            and (big or instrument)
            and o.at_least(opp, stale.min_stage)
            and (sales or not europe)
        ):
            buckets = stale.thresholds[profile]
            index = max(k, 0)
            threshold: int | None
            if index < len(buckets):
                threshold = buckets[index]
            elif stale.beyond_last_bucket == "use_last":
                threshold = buckets[-1]
            else:
                threshold = None
            days = days_old(parse_sf_datetime(modified_text), as_of, o.tz)
            if threshold is not None and days > threshold:
                result["stale_last_modified"][opp["Id"]] = Expected(
                    profile,
                    {
                        "k": k,
                        "threshold_days": threshold,
                        "days_since_last_human_modification": days,
                        "last_human_assumed": bool(opp.get("_last_human_assumed")),
                    },
                )

        # missing_rev_rec_terms (same in both profiles)
        missing = settings.rule("missing_rev_rec_terms")
        if (
            instrument
            and o.at_least(opp, missing.min_stage)
            and blank(opp.get(settings.fields.rev_rec_terms))
        ):
            result["missing_rev_rec_terms"][opp["Id"]] = Expected(profile, {"has_instrument": True})

        # close_date_slipping (same in both profiles)
        metrics = _slip(o, opp)
        if metrics["month_extensions"] >= settings.rule("close_date_slipping").min_extensions:
            result["close_date_slipping"][opp["Id"]] = Expected(profile, metrics)
    return result
