"""Fiscal quarters, business-time-zone day counts and stale buckets: pure arithmetic."""

from __future__ import annotations

import bisect
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfsync.audit._calendar import (
    StaleBucket,
    age_in_days,
    local_date,
    quarter_offset,
    quarter_start,
    shift_days,
    stale_buckets,
    stale_threshold,
    start_of_local_day,
    utc_offsets,
)
from tests.unit.audit.reference import quarter_offset as reference_quarter_offset

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("close", "today", "start", "k"),
    [
        (date(2024, 6, 30), date(2024, 8, 15), 1, -1),
        (date(2024, 7, 1), date(2024, 8, 15), 1, 0),
        (date(2024, 9, 30), date(2024, 8, 15), 1, 0),
        (date(2024, 10, 1), date(2024, 8, 15), 1, 1),
        (date(2025, 5, 10), date(2024, 8, 15), 1, 3),
        # Fiscal year from February: Nov-Jan is one quarter, across the calendar year end.
        (date(2025, 1, 31), date(2024, 11, 1), 2, 0),
        (date(2025, 2, 1), date(2024, 12, 31), 2, 1),
        (date(2024, 1, 31), date(2024, 2, 1), 2, -1),
    ],
)
def test_quarter_offset(close: date, today: date, start: int, k: int) -> None:
    assert quarter_offset(close, today, start) == k


@given(
    close=st.dates(date(1990, 1, 1), date(2060, 12, 31)),
    today=st.dates(date(1990, 1, 1), date(2060, 12, 31)),
    start=st.integers(1, 12),
)
def test_quarter_offset_matches_the_fiscal_year_definition(
    close: date, today: date, start: int
) -> None:
    assert quarter_offset(close, today, start) == reference_quarter_offset(close, today, start)


@given(
    today=st.dates(date(1990, 1, 1), date(2060, 12, 31)),
    start=st.integers(1, 12),
    k=st.integers(-8, 8),
)
def test_quarter_start_is_the_first_day_with_that_offset(today: date, start: int, k: int) -> None:
    first = quarter_start(today, start, k)
    assert first.day == 1
    assert quarter_offset(first, today, start) == k
    assert quarter_offset(first - timedelta(days=1), today, start) == k - 1


def test_age_counts_calendar_days_in_the_business_time_zone() -> None:
    """A change at any time on 2025-02-05 is 15 days old on 2025-02-20."""
    for hour in (0, 12, 23):
        stamp = datetime(2025, 2, 5, hour, 59, tzinfo=BERLIN).astimezone(UTC)
        assert age_in_days(stamp, date(2025, 2, 20), BERLIN) == 15
    # 23:30 UTC on the 4th is already the 5th in Berlin.
    assert age_in_days(datetime(2025, 2, 4, 23, 30, tzinfo=UTC), date(2025, 2, 20), BERLIN) == 15
    assert (
        age_in_days(datetime(2025, 2, 4, 23, 30, tzinfo=UTC), date(2025, 2, 20), ZoneInfo("UTC"))
        == 16
    )


@pytest.mark.parametrize(
    "zone", ["UTC", "Europe/Berlin", "America/Santiago", "Pacific/Chatham", "Asia/Beirut"]
)
@given(day=st.dates(date(2000, 1, 2), date(2040, 12, 31)))
def test_start_of_local_day_splits_the_dates_exactly(zone: str, day: date) -> None:
    """local_date(t) < day  <=>  t < start_of_local_day(day), including DST-at-midnight zones."""
    tz = ZoneInfo(zone)
    start = start_of_local_day(day, tz)
    assert local_date(start, tz) == day
    assert local_date(start - timedelta(microseconds=1), tz) < day


def test_shift_days_clamps_instead_of_overflowing() -> None:
    assert shift_days(date(2024, 8, 15), 10**7) == date.min
    assert start_of_local_day(date.min, BERLIN) < datetime(1900, 1, 1, tzinfo=UTC)


def test_stale_buckets_follow_the_table_of_rules_md() -> None:
    today = date(2024, 8, 15)
    assert stale_buckets([14, 30, 45, 45], "use_last", today, 1) == [
        StaleBucket(None, date(2024, 10, 1), 14),
        StaleBucket(date(2024, 10, 1), date(2025, 1, 1), 30),
        StaleBucket(date(2025, 1, 1), None, 45),
    ]
    assert stale_buckets([14, 30, 45, 180], "ignore", today, 1) == [
        StaleBucket(None, date(2024, 10, 1), 14),
        StaleBucket(date(2024, 10, 1), date(2025, 1, 1), 30),
        StaleBucket(date(2025, 1, 1), date(2025, 4, 1), 45),
        StaleBucket(date(2025, 4, 1), date(2025, 7, 1), 180),
    ]
    assert stale_buckets([7], "use_last", today, 1) == [StaleBucket(None, None, 7)]


@pytest.mark.parametrize(
    ("k", "use_last", "ignore"),
    [(-3, 14, 14), (0, 14, 14), (1, 30, 30), (3, 180, 180), (4, 180, None), (9, 180, None)],
)
def test_stale_threshold(k: int, use_last: int, ignore: int | None) -> None:
    europe = [14, 30, 45, 180]
    assert stale_threshold(europe, "use_last", k) == use_last
    assert stale_threshold(europe, "ignore", k) == ignore


_ZONES = ("UTC", "Europe/Berlin", "America/Santiago", "Pacific/Chatham", "Africa/Freetown")


@pytest.mark.parametrize("zone", _ZONES)
@given(
    at=st.datetimes(datetime(1850, 1, 1), datetime(2150, 1, 1), timezones=st.just(UTC)),
    near=st.booleans(),
    seconds=st.integers(-90_000, 90_000),
)
def test_the_utc_offsets_give_every_instants_local_date(
    zone: str, at: datetime, near: bool, seconds: int
) -> None:
    """The date of an instant plus the offset in force at it is its local date: how SQL,
    which knows no time zones, finds local dates (also a few seconds around each change)."""
    offsets = utc_offsets(zone)
    starts = [start for start, _ in offsets]
    if near and len(offsets) > 1:
        at = offsets[1 + seconds % (len(offsets) - 1)][0] + timedelta(seconds=seconds)
    offset = offsets[bisect.bisect_right(starts, at) - 1][1]
    assert (at + timedelta(seconds=offset)).date() == local_date(at, ZoneInfo(zone))
