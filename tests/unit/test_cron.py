"""schedule.cron keeps crontab's meaning (Sunday = 0), whatever APScheduler numbers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from sfsync.config import load_settings
from sfsync.cron import cron_trigger
from sfsync.errors import ConfigError

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


# --------------------------------------------------------------------------- crontab semantics
# Every case: an expression, a time zone, a fixed start (local time there) and the next fire
# times (local times there), computed the way the scheduler asks the trigger. Weekdays of the
# dates below: 2026-11-28 is a Saturday, 2026-12-01 a Tuesday, 2027-01-01 a Friday,
# 2027-02-01 a Monday, 2028-02-29 a Tuesday.

SAT = "2026-11-28 12:00:00"

CRONTAB_CASES = [
    ("0 2 * * *", "UTC", SAT, ["2026-11-29 02:00", "2026-11-30 02:00", "2026-12-01 02:00"]),
    (
        "0 2 * * 1-5",  # Monday to Friday
        "UTC",
        SAT,
        [
            "2026-11-30 02:00",
            "2026-12-01 02:00",
            "2026-12-02 02:00",
            "2026-12-03 02:00",
            "2026-12-04 02:00",
            "2026-12-07 02:00",
        ],
    ),
    ("0 2 * * 0", "UTC", SAT, ["2026-11-29 02:00", "2026-12-06 02:00", "2026-12-13 02:00"]),
    ("0 2 * * 7", "UTC", SAT, ["2026-11-29 02:00", "2026-12-06 02:00", "2026-12-13 02:00"]),
    ("0 2 * * 7-7", "UTC", SAT, ["2026-11-29 02:00", "2026-12-06 02:00", "2026-12-13 02:00"]),
    ("0 2 * * sun", "UTC", SAT, ["2026-11-29 02:00", "2026-12-06 02:00", "2026-12-13 02:00"]),
    (
        "0 2 * * 5-7",  # Friday to Sunday
        "UTC",
        SAT,
        [
            "2026-11-29 02:00",
            "2026-12-04 02:00",
            "2026-12-05 02:00",
            "2026-12-06 02:00",
            "2026-12-11 02:00",
        ],
    ),
    ("0 2 * * 0-7", "UTC", SAT, ["2026-11-29 02:00", "2026-11-30 02:00", "2026-12-01 02:00"]),
    ("0 2 * * sun-sat", "UTC", SAT, ["2026-11-29 02:00", "2026-11-30 02:00", "2026-12-01 02:00"]),
    (
        "0 2 * * */2",  # 0,2,4,6: Sunday, Tuesday, Thursday, Saturday
        "UTC",
        SAT,
        [
            "2026-11-29 02:00",
            "2026-12-01 02:00",
            "2026-12-03 02:00",
            "2026-12-05 02:00",
            "2026-12-06 02:00",
        ],
    ),
    (
        "0 2 * * 1-7/2",  # 1,3,5,7: Monday, Wednesday, Friday, Sunday
        "UTC",
        SAT,
        [
            "2026-11-29 02:00",
            "2026-11-30 02:00",
            "2026-12-02 02:00",
            "2026-12-04 02:00",
            "2026-12-06 02:00",
        ],
    ),
    (
        "0 2 * * mon,wed,fri",
        "UTC",
        SAT,
        ["2026-11-30 02:00", "2026-12-02 02:00", "2026-12-04 02:00", "2026-12-07 02:00"],
    ),
    (
        "30 4 1,15 * 5",  # both day fields restricted: the 1st, the 15th OR any Friday
        "UTC",
        SAT,
        [
            "2026-12-01 04:30",
            "2026-12-04 04:30",
            "2026-12-11 04:30",
            "2026-12-15 04:30",
            "2026-12-18 04:30",
            "2026-12-25 04:30",
            "2027-01-01 04:30",
            "2027-01-08 04:30",
            "2027-01-15 04:30",
        ],
    ),
    (
        "0 2 1 * 1",  # the 1st OR any Monday
        "UTC",
        SAT,
        [
            "2026-11-30 02:00",
            "2026-12-01 02:00",
            "2026-12-07 02:00",
            "2026-12-14 02:00",
            "2026-12-21 02:00",
            "2026-12-28 02:00",
            "2027-01-01 02:00",
            "2027-01-04 02:00",
        ],
    ),
    (
        "0 2 1 * 1",
        "Europe/Berlin",
        SAT,
        ["2026-11-30 02:00", "2026-12-01 02:00", "2026-12-07 02:00"],
    ),
    (
        "0 2 */2 * 1",  # day of month starts with "*": AND, so Mondays on odd days of the month
        "UTC",
        SAT,
        [
            "2026-12-07 02:00",
            "2026-12-21 02:00",
            "2027-01-11 02:00",
            "2027-01-25 02:00",
            "2027-02-01 02:00",
        ],
    ),
    (
        "0 0 30 2 1",  # OR, and there is no 30 February: Mondays in February
        "UTC",
        SAT,
        [
            "2027-02-01 00:00",
            "2027-02-08 00:00",
            "2027-02-15 00:00",
            "2027-02-22 00:00",
            "2028-02-07 00:00",
        ],
    ),
    ("0 0 29 2 *", "UTC", SAT, ["2028-02-29 00:00", "2032-02-29 00:00", "2036-02-29 00:00"]),
    (
        "0 3 * * 7-7",  # across the switch to summer time (28 March 2027)
        "Europe/Berlin",
        "2027-03-20 12:00:00",
        ["2027-03-21 03:00", "2027-03-28 03:00", "2027-04-04 03:00"],
    ),
    (
        "*/10 * * * * *",
        "Europe/Berlin",
        SAT,
        ["2026-11-28 12:00:00", "2026-11-28 12:00:10", "2026-11-28 12:00:20"],
    ),
]


def _local(text: str, zone: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


def next_fire_times(expression: str, zone: str, start: str, count: int) -> list[datetime]:
    """Ask the trigger as APScheduler does: each time from the previous fire time."""
    trigger = cron_trigger(expression, zone)
    out: list[datetime] = []
    previous, now = None, _local(start, zone)
    for _ in range(count):
        nxt = trigger.get_next_fire_time(previous, now)
        assert nxt is not None, f"{expression} stopped firing after {out}"
        out.append(nxt)
        previous = now = nxt
    return out


@pytest.mark.parametrize(
    ("expression", "zone", "start", "expected"),
    CRONTAB_CASES,
    ids=[f"{case[0]} ({case[1]})" for case in CRONTAB_CASES],
)
def test_crontab_semantics(expression: str, zone: str, start: str, expected: list[str]) -> None:
    got = next_fire_times(expression, zone, start, len(expected))
    local = [fire.astimezone(ZoneInfo(zone)).isoformat() for fire in got]
    assert local == [_local(text, zone).isoformat() for text in expected]


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 30 2 *",
        "0 0 31 2 *",
        "0 0 31 4 *",
        "0 0 31 4,6,9,11 *",
        "0 0 30,31 feb *",
        "0 0 31 2 */2",
        "*/10 0 0 31 4 *",
    ],
)
def test_schedules_that_never_fire_are_refused(expression: str) -> None:
    with pytest.raises(ValueError, match="never fires") as exc:
        cron_trigger(expression, "Europe/Berlin")
    assert expression in str(exc.value)


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ("0 2 * * 8", "'8'"),
        ("0 2 * * 1,8", "'8'"),
        ("0 2 * * mon-fri/0", "mon-fri/0"),
        ("0 2 * * 1-5/x", "1-5/x"),
        ("0 2 * * 5-1", "5-1"),
        ("0 2 * * fri-mon", "fri-mon"),
        ("0 2 * * monxyz", "monxyz"),
        ("0 2 * * 1,,2", "1,,2"),
        ("*/0 2 * * *", "*/0"),
        ("0 2 9-3 * *", "9-3"),
        ("61 * * * *", "61"),
        ("0 24 * * *", "24"),
        ("0 2 32 * *", "32"),
        ("0 2 * 13 *", "13"),
        ("* * * *", "'* * * *'"),
        ("* * * * * * *", "'* * * * * * *'"),
    ],
)
def test_bad_expressions_name_the_bad_token(bad: str, named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        cron_trigger(bad, "UTC")


def test_the_or_trigger_schedules_a_job() -> None:
    scheduler = BackgroundScheduler(timezone="Europe/Berlin")
    job = scheduler.add_job(print, cron_trigger("0 2 1 * 1", "Europe/Berlin"), id="or")
    scheduler.start(paused=True)
    try:
        nxt = job.next_run_time
        assert nxt is not None
        assert (nxt.hour, nxt.minute) == (2, 0)
        assert nxt.day == 1 or nxt.weekday() == 0  # the 1st or a Monday
    finally:
        scheduler.shutdown(wait=False)


def test_the_config_loader_refuses_a_schedule_that_never_fires(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:  # exit 2
        load_settings(None, environ={"SFSYNC_SCHEDULE__CRON": "0 0 30 2 *"}, cwd=tmp_path)
    assert exc.value.exit_code == 2
    assert "schedule.cron" in str(exc.value)
    assert "never fires" in str(exc.value)
