"""schedule.cron keeps crontab's meaning (Sunday = 0), whatever APScheduler numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sfsync.cron import cron_trigger

SATURDAY_NOON = datetime(2026, 11, 28, 12, tzinfo=UTC)


def fires(expression: str, count: int = 7, start: datetime = SATURDAY_NOON) -> list[str]:
    trigger = cron_trigger(expression, "UTC")
    out, previous, now = [], None, start
    for _ in range(count):
        nxt = trigger.get_next_fire_time(previous, now)
        assert nxt is not None
        out.append(nxt.strftime("%a %H:%M:%S"))
        previous, now = nxt, nxt + timedelta(seconds=1)
    return out


def test_weekdays_are_monday_to_friday_as_in_crontab() -> None:
    assert fires("0 2 * * 1-5", 5) == [f"{d} 02:00:00" for d in ("Mon", "Tue", "Wed", "Thu", "Fri")]


@pytest.mark.parametrize(
    ("field", "days"),
    [
        ("0", ["Sun"]),
        ("7", ["Sun"]),
        ("5-7", ["Sat", "Sun", "Fri"]),
        ("sat,sun", ["Sun", "Sat"]),
        ("*/2", ["Sun", "Tue", "Thu", "Sat"]),
    ],
)
def test_day_of_week_forms(field: str, days: list[str]) -> None:
    got = [
        f.split()[0]
        for f in fires(f"0 3 * * {field}", len(days), SATURDAY_NOON + timedelta(hours=13))
    ]
    assert sorted(got) == sorted(days)


def test_six_fields_give_seconds() -> None:
    assert fires("*/10 * * * * *", 3) == ["Sat 12:00:00", "Sat 12:00:10", "Sat 12:00:20"]


@pytest.mark.parametrize("bad", ["every day", "* * * *", "0 2 * * 8", "0 2 * * 5-1", "61 * * * *"])
def test_bad_expressions_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is the library's or ours
        cron_trigger(bad, "UTC")


def test_time_zone_applies() -> None:
    trigger = cron_trigger("0 2 * * *", "Europe/Berlin")
    nxt = trigger.get_next_fire_time(None, SATURDAY_NOON)
    assert nxt is not None
    assert nxt.astimezone(UTC).hour == 1  # 02:00 in Berlin (CET) is 01:00 UTC
