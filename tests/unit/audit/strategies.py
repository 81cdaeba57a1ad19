"""Hypothesis strategies for random orgs that sit on the rules' edges.

Dates cluster around fiscal-quarter boundaries and ``as_of``; timestamps around
local midnights of the threshold days (a second either side); amounts around
the threshold after conversion; history sequences mix pull-ins, multi-month
jumps, same-month changes, timestamp ties and rows created after ``as_of``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from sfsync.config import AuditSettings
from tests.unit.audit.org import HUMAN, INTEGRATION_USER, PRODUCTS, RECORD_TYPES, STAGES, Org

__all__ = ["AuditCase", "audit_cases"]

ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Pacific/Chatham",
    "America/Santiago",
    "Asia/Kolkata",
    "Pacific/Kiritimati",
)
STAGE_NAMES = [name for name, *_ in STAGES] + ["Unranked Stage"]
OPEN_STAGES = [name for name, _, closed, _ in STAGES if not closed]
REV_REC_VALUES = (None, "", " ", "\t\n ", "\u00a0", "\u3000", "Net 30", " 50/50 ")
SCOPE_FIELD = "Region__c"
INSTRUMENT_FIELD = "Has_Instrument__c"


@dataclass
class AuditCase:
    org: Org
    settings: AuditSettings
    as_of: date

    @property
    def load_kwargs(self) -> dict[str, Any]:
        return {
            "instrument_field": self.settings.instrument.field,
            "scope_field": self.settings.scope.field,
        }


def _quarter_starts(as_of: date, start_month: int) -> list[date]:
    months = as_of.year * 12 + as_of.month - 1 - (start_month - 1)
    first = (months // 3) * 3 + (start_month - 1)
    return [date((first + 3 * k) // 12, (first + 3 * k) % 12 + 1, 1) for k in range(-2, 7)]


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


@st.composite
def _day_near(draw: st.DrawFn, anchors: list[date]) -> date:
    anchor = draw(st.sampled_from(anchors))
    return anchor + timedelta(days=draw(st.sampled_from([-1, 0, 1, -40, 75, -400])))


@st.composite
def _instant_near(draw: st.DrawFn, days: list[date], tz: ZoneInfo) -> datetime:
    day = draw(st.sampled_from(days))
    offset = draw(st.sampled_from([-1, 0, 1, 3600 * 5, -3600 * 7, 86399]))
    return _midnight(day, tz) + timedelta(seconds=offset)


@st.composite
def audit_cases(draw: st.DrawFn, max_opportunities: int = 12) -> AuditCase:
    tz_name = draw(st.sampled_from(ZONES))
    tz = ZoneInfo(tz_name)
    as_of = draw(st.dates(date(2023, 1, 1), date(2026, 12, 31)))
    config_month = draw(st.integers(1, 12))
    org_month = draw(st.none() | st.integers(1, 12))
    fiscal = org_month or config_month

    multi = draw(st.booleans())
    currencies = (
        {"USD": 1.0, "EUR": draw(st.sampled_from([0.9, 0.923, 1.25, 0.5])), "JPY": 151.37}
        if multi
        else None
    )
    corporate_config = draw(st.sampled_from([None, "EUR"])) if multi else None
    threshold = draw(st.sampled_from([50_000.0, 1_000.0, 0.0]))
    thresholds = {
        "global": draw(st.lists(st.integers(0, 120), min_size=1, max_size=5)),
        "europe": draw(st.lists(st.integers(0, 200), min_size=1, max_size=5)),
    }
    use_scope = draw(st.booleans())
    use_instrument_field = draw(st.booleans())
    settings = AuditSettings.model_validate(
        {
            "profile": draw(st.sampled_from(["global", "europe"])),
            "timezone": tz_name,
            "fiscal_year_start_month": config_month,
            "amount_threshold": threshold,
            "corporate_currency": corporate_config,
            "scope": (
                {"field": SCOPE_FIELD, "profiles": {"EU": "europe", "US": "global"}}
                if use_scope
                else {}
            ),
            "instrument": (
                {"product_families": ["Instrument"], "field": INSTRUMENT_FIELD}
                if use_instrument_field
                else {}
            ),
            "rules": {
                "stale_last_modified": {
                    "thresholds": thresholds,
                    "beyond_last_bucket": draw(st.sampled_from(["use_last", "ignore"])),
                },
                "close_date_slipping": {"min_extensions": draw(st.integers(1, 4))},
            },
        }
    )

    org = Org.standard(
        fiscal_year_start_month=org_month,
        currencies=currencies,
        custom_fields=("Rev_Rec_Terms__c", SCOPE_FIELD, INSTRUMENT_FIELD),
    )
    quarter_days = [*_quarter_starts(as_of, fiscal), as_of]
    cutoff_days = [as_of - timedelta(days=t) for ts in thresholds.values() for t in ts]
    cutoff_days += [as_of, as_of + timedelta(days=1), as_of - timedelta(days=300)]
    rate = (currencies or {}).get("EUR", 1.0)
    amounts = [None, threshold, threshold + 0.01, threshold - 0.01, threshold * rate, 60_000.0]

    for _ in range(draw(st.integers(1, max_opportunities))):
        stage = draw(st.sampled_from(STAGE_NAMES))
        created = draw(
            _instant_near([as_of - timedelta(days=500), as_of, as_of + timedelta(days=1)], tz)
        )
        history_rows = []
        for _ in range(draw(st.integers(0, 6))):
            days_later = draw(st.integers(0, (as_of - created.date()).days + 3))
            at = draw(st.sampled_from([created, created + timedelta(days=days_later)]))
            history_rows.append(
                (
                    at,
                    draw(_day_near(quarter_days)).isoformat(),
                    draw(st.sampled_from(STAGE_NAMES[:6])),
                )
            )
        snapshots = []
        if not history_rows:
            for day in sorted(set(draw(st.lists(_day_near([as_of]), max_size=4)))):
                snapshots.append(
                    (
                        day.isoformat(),
                        draw(_day_near(quarter_days)).isoformat(),
                        draw(st.sampled_from(STAGE_NAMES[:6])),
                    )
                )
        org.opportunity(
            stage=stage,
            close_date=draw(_day_near(quarter_days)).isoformat(),
            amount=draw(st.sampled_from(amounts)),
            currency=draw(st.sampled_from([None, "USD", "EUR", "JPY", "XXX"])) if multi else None,
            record_type=draw(st.sampled_from([None, *RECORD_TYPES])),
            created=created,
            last_modified=draw(_instant_near(cutoff_days, tz)),
            last_modified_by=draw(st.sampled_from([INTEGRATION_USER, HUMAN])),
            products=tuple(
                draw(st.lists(st.sampled_from(["instrument", "instrument", *PRODUCTS]), max_size=2))
            ),
            deleted_line_items=tuple(draw(st.lists(st.sampled_from(["instrument"]), max_size=1))),
            rev_rec_terms=draw(st.sampled_from(REV_REC_VALUES)),
            fields={
                SCOPE_FIELD: draw(st.sampled_from([None, "EU", "US", "APAC", "eu"])),
                INSTRUMENT_FIELD: draw(st.sampled_from([None, True, False])),
            },
            history=tuple(history_rows),
            snapshots=tuple(snapshots),
            deleted=draw(st.integers(0, 9)) == 0,
        )
    return AuditCase(org, settings, as_of)
