"""The worked examples of docs/rules.md (today = 2024-08-15, fiscal year = calendar year).

Pure data: each example is an opportunity described with :meth:`Org.opportunity`
arguments (so it can become dev-org records later), the rule, the profiles it
is checked under, whether it is flagged in each, and the details a finding
must carry. The current quarter is Jul-Sep 2024.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tests.unit.audit.org import Org

__all__ = ["EXAMPLES", "TODAY", "Example", "examples_org"]

TODAY = date(2024, 8, 15)

_LONG_AGO = "2024-01-02T10:00:00"
_UNTOUCHED_100_DAYS = "2024-05-07T12:00:00"  # 2024-08-15 minus 100 days


@dataclass(frozen=True)
class Example:
    number: int
    says: str
    rule: str
    flagged: dict[str, bool]
    opportunity: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)


EXAMPLES: tuple[Example, ...] = (
    Example(
        1,
        "open, CloseDate 2024-06-30, Amount 5,000, no instrument: prior quarter",
        "close_date_past",
        {"global": True},
        {"close_date": "2024-06-30", "amount": 5_000.0},
        {"k": -1, "close_date": "2024-06-30", "big": False, "has_instrument": False},
    ),
    Example(
        2,
        "same as 1 under europe: not big, no instrument",
        "close_date_past",
        {"europe": False},
        {"close_date": "2024-06-30", "amount": 5_000.0},
    ),
    Example(
        3,
        "open, CloseDate 2024-08-01, Amount 60,000",
        "close_date_past",
        {"global": True},
        {"close_date": "2024-08-01", "amount": 60_000.0},
        {"k": 0, "big": True, "converted_amount": 60_000.0, "amount_threshold": 50_000.0},
    ),
    Example(
        4,
        "open, CloseDate 2024-08-01, Amount 10,000, no instrument",
        "close_date_past",
        {"global": False},
        {"close_date": "2024-08-01", "amount": 10_000.0},
    ),
    Example(
        5,
        "open, CloseDate 2024-08-15: today is not past",
        "close_date_past",
        {"global": False, "europe": False},
        {"close_date": "2024-08-15", "amount": 60_000.0, "products": ("instrument",)},
    ),
    Example(
        6,
        "Qualify, 60,000, CloseDate 2024-09-20, last human change 2024-07-30 (16 days)",
        "stale_last_modified",
        {"global": True},
        {
            "stage": "Qualify",
            "amount": 60_000.0,
            "close_date": "2024-09-20",
            "last_modified": "2024-07-30T15:00:00",
        },
        {"k": 0, "days_since_last_human_modification": 16, "threshold_days": 14},
    ),
    Example(
        7,
        "Create stage, 60,000, untouched for 100 days: before Qualify",
        "stale_last_modified",
        {"global": False, "europe": False},
        {
            "stage": "Create",
            "amount": 60_000.0,
            "close_date": "2024-09-20",
            "last_modified": _UNTOUCHED_100_DAYS,
        },
    ),
    Example(
        8,
        "Qualify, 60,000, CloseDate 2025-05-10 (k = 3), untouched for 100 days",
        "stale_last_modified",
        {"global": True, "europe": False},
        {
            "stage": "Qualify",
            "amount": 60_000.0,
            "close_date": "2025-05-10",
            "last_modified": _UNTOUCHED_100_DAYS,
        },
        {"k": 3, "days_since_last_human_modification": 100, "threshold_days": 45},
    ),
    Example(
        9,
        "Qualify, 60,000, CloseDate in k = 1, untouched exactly 30 days: 30 is not > 30",
        "stale_last_modified",
        {"global": False, "europe": False},
        {
            "stage": "Qualify",
            "amount": 60_000.0,
            "close_date": "2024-11-15",
            "last_modified": "2024-07-16T23:59:59",
        },
    ),
    Example(
        10,
        "Prove, has instrument, Rev Rec Terms blank",
        "missing_rev_rec_terms",
        {"global": True, "europe": True},
        {"stage": "Prove", "products": ("instrument",), "rev_rec_terms": "  "},
        {"stage": "Prove", "has_instrument": True, "rev_rec_terms": "  "},
    ),
    Example(
        11,
        "Qualify, has instrument, blank",
        "missing_rev_rec_terms",
        {"global": False, "europe": False},
        {"stage": "Qualify", "products": ("instrument",), "rev_rec_terms": None},
    ),
    Example(
        12,
        "Prove, no instrument, blank",
        "missing_rev_rec_terms",
        {"global": False, "europe": False},
        {"stage": "Prove", "products": ("consumable",), "rev_rec_terms": ""},
    ),
    Example(
        13,
        "Closed Won, instrument, blank",
        "missing_rev_rec_terms",
        {"global": False, "europe": False},
        {"stage": "Closed Won", "products": ("instrument",), "rev_rec_terms": None},
    ),
    Example(
        14,
        "close dates 2017-03-15 > 03-30 > 05-10 > 04-20 > 06-01 > 2018-01-05: 3 extensions",
        "close_date_slipping",
        {"global": True, "europe": True},
        {
            "created": "2017-02-01T09:00:00",
            "close_date": "2018-01-05",
            "history": (
                ("2017-02-01T09:00:00", "2017-03-15", "Qualify"),
                ("2017-03-01T09:00:00", "2017-03-30", "Qualify"),
                ("2017-03-25T09:00:00", "2017-05-10", "Qualify"),
                ("2017-04-10T09:00:00", "2017-04-20", "Qualify"),
                ("2017-04-18T09:00:00", "2017-06-01", "Qualify"),
                ("2017-05-30T09:00:00", "2018-01-05", "Qualify"),
            ),
        },
        {"month_extensions": 3, "lower_bound": False},
    ),
    Example(
        15,
        "open 237 days, stage unchanged 100 days, 4 extensions",
        "close_date_slipping",
        {"global": True, "europe": True},
        {
            "created": "2023-12-22T08:30:00",
            "stage": "Qualify",
            "close_date": "2024-07-31",
            "history": (
                ("2023-12-22T08:30:00", "2024-01-31", "Create"),
                ("2024-02-10T10:00:00", "2024-03-15", "Create"),
                ("2024-03-20T10:00:00", "2024-04-30", "Create"),
                ("2024-05-07T16:45:00", "2024-06-30", "Qualify"),
                ("2024-06-20T11:00:00", "2024-07-31", "Qualify"),
            ),
        },
        {"month_extensions": 4, "days_since_stage_change": 100, "days_open": 237},
    ),
)


def examples_org(examples: tuple[Example, ...] = EXAMPLES) -> tuple[Org, dict[int, str]]:
    """One org holding every example's opportunity; example number -> opportunity id."""
    org = Org.standard()
    ids = {}
    for example in examples:
        kwargs = {"created": _LONG_AGO, **example.opportunity}
        kwargs["history"] = tuple(kwargs.get("history", ()))
        ids[example.number] = org.opportunity(name=f"Example {example.number}", **kwargs)
    return org, ids
