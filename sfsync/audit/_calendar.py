"""Fiscal-calendar, time-zone and day-count arithmetic: pure functions, no database.

The rules push all of this into bound parameters (quarter boundary dates, UTC
instants of local midnights) so the SQL stays plain comparisons on indexed
columns and gives the same answer on SQLite, which knows no time zones, and on
PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

__all__ = [
    "StaleBucket",
    "age_in_days",
    "local_date",
    "quarter_index",
    "quarter_offset",
    "quarter_start",
    "shift_days",
    "stale_buckets",
    "stale_threshold",
    "start_of_local_day",
    "today_in",
    "utc_offsets",
]

_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def quarter_index(day: date, fiscal_year_start_month: int) -> int:
    """A running number of the fiscal quarter holding ``day``.

    Consecutive quarters get consecutive numbers across year ends, so the
    offset between two quarters is a subtraction whatever month the fiscal
    year starts in.
    """
    months = day.year * 12 + (day.month - 1) - (fiscal_year_start_month - 1)
    return months // 3


def quarter_offset(close_date: date, today: date, fiscal_year_start_month: int) -> int:
    """``k = FQ(close_date) - FQ(today)``: 0 = current quarter, negative = a prior one."""
    return quarter_index(close_date, fiscal_year_start_month) - quarter_index(
        today, fiscal_year_start_month
    )


def quarter_start(today: date, fiscal_year_start_month: int, k: int) -> date:
    """The first day of the fiscal quarter ``k`` quarters after the one holding ``today``."""
    months = (quarter_index(today, fiscal_year_start_month) + k) * 3 + (fiscal_year_start_month - 1)
    return date(months // 12, months % 12 + 1, 1)


def today_in(tz: ZoneInfo, now: datetime | None = None) -> date:
    """Today's date in the business time zone."""
    return (now or datetime.now(UTC)).astimezone(tz).date()


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    """The calendar date of an aware instant in the business time zone."""
    return instant.astimezone(tz).date()


def start_of_local_day(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which ``day`` begins in ``tz``.

    ``local_date(t) < day`` exactly when ``t < start_of_local_day(day)``, so a
    day-count condition becomes an index-friendly timestamp comparison. Where a
    DST change skips midnight, the day begins at the end of the gap (``fold=0``
    resolves a missing 00:00 to that instant).
    """
    try:
        start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    except OverflowError:
        return _EARLIEST if day.year < 2 else _LATEST
    before = (start - timedelta(microseconds=1)).astimezone(tz).date()
    if before >= day:  # a zone whose midnight is repeated or skipped oddly: step to the change
        start = _first_instant_of(day, tz, start)
    return start


def _first_instant_of(day: date, tz: ZoneInfo, guess: datetime) -> datetime:
    low, high = guess - timedelta(days=1), guess
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).date() < day:
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0)


def shift_days(day: date, days: int) -> date:
    """``day - days``, clamped to the calendar's range (huge thresholds flag nothing)."""
    try:
        return day - timedelta(days=days)
    except OverflowError:
        return date.min if days > 0 else date.max


def age_in_days(instant: datetime, today: date, tz: ZoneInfo) -> int:
    """Today minus the instant's calendar date in ``tz`` (docs/rules.md, "days").

    Not elapsed 24-hour periods: a change at any time on 2025-02-05 is 15 days
    old on 2025-02-20.
    """
    return (today - local_date(instant, tz)).days


@dataclass(frozen=True)
class StaleBucket:
    """Close dates in ``[close_from, close_to)`` (None = unbounded) are stale after ``days``."""

    close_from: date | None
    close_to: date | None
    days: int


def stale_threshold(thresholds: list[int], beyond_last_bucket: str, k: int) -> int | None:
    """The day threshold for quarter offset ``k`` (``k <= 0`` uses the first bucket).

    ``None`` when ``k`` is beyond the last bucket and the setting says ``ignore``.
    """
    index = max(k, 0)
    if index < len(thresholds):
        return thresholds[index]
    return thresholds[-1] if beyond_last_bucket == "use_last" else None


def stale_buckets(
    thresholds: list[int], beyond_last_bucket: str, today: date, fiscal_year_start_month: int
) -> list[StaleBucket]:
    """Close-date ranges with their threshold, adjacent equal thresholds merged.

    Bucket ``i`` covers quarter offset ``k = i`` (``k <= 0`` for the first, and
    every ``k`` past the end for the last when ``use_last``).
    """
    buckets: list[StaleBucket] = []
    last = len(thresholds) - 1
    for index, days in enumerate(thresholds):
        lower = None if index == 0 else quarter_start(today, fiscal_year_start_month, index)
        upper: date | None = quarter_start(today, fiscal_year_start_month, index + 1)
        if index == last and beyond_last_bucket == "use_last":
            upper = None
        if buckets and buckets[-1].days == days and buckets[-1].close_to == lower:
            buckets[-1] = StaleBucket(buckets[-1].close_from, upper, days)
        else:
            buckets.append(StaleBucket(lower, upper, days))
    return buckets


# The span over which utc_offsets follows a zone's changes; outside it, the offset at
# the nearer edge holds (no recorded change predates 1800; past 2200 is not audited).
_OFFSETS_FROM = datetime(1800, 1, 1, tzinfo=UTC)
_OFFSETS_TO = datetime(2200, 1, 1, tzinfo=UTC)
_PROBE = timedelta(days=3)
# Zones with one offset for all time, known without probing.
_FIXED = frozenset({"UTC", "UCT", "GMT", "Zulu", "Universal", "Greenwich"})


@cache
def utc_offsets(zone: str) -> tuple[tuple[datetime, int], ...]:
    """The UTC offsets of ``zone`` as (from this UTC instant on, seconds), in time order.

    The first entry starts at the earliest instant there is; a zone with one offset
    (UTC, a fixed zone) has one entry. ``local_date(t)`` is the date of ``t`` plus the
    offset of the last entry at or before ``t``: how SQL finds a local date without
    knowing time zones. Changes less than three days apart are not told apart (no zone
    has had any).
    """
    tz = ZoneInfo(zone)
    if zone in _FIXED or zone.startswith("Etc/"):
        return ((datetime.min.replace(tzinfo=UTC), _offset_seconds(tz, _OFFSETS_FROM)),)

    def offset(at: datetime) -> int:
        return _offset_seconds(tz, at)

    changes = [(datetime.min.replace(tzinfo=UTC), offset(_OFFSETS_FROM))]
    at = _OFFSETS_FROM
    while at < _OFFSETS_TO:
        nxt = at + _PROBE
        if offset(nxt) != offset(at):
            low, high = at, nxt  # offset(low) is the old one, offset(high) the new one
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                middle = middle.replace(microsecond=0)
                if middle <= low:
                    break
                if offset(middle) == offset(low):
                    low = middle
                else:
                    high = middle
            changes.append((high, offset(high)))
        at = nxt
    return tuple(changes)


def _offset_seconds(tz: ZoneInfo, at: datetime) -> int:
    delta = at.astimezone(tz).utcoffset()
    return 0 if delta is None else int(delta.total_seconds())
