"""Cron expressions for ``schedule.cron``: crontab syntax with crontab's meaning.

The meaning is that of ``man 5 crontab`` (Vixie/ISC cron), built on APScheduler 3 triggers:

* Five fields, ``minute hour day-of-month month day-of-week``, or six with a leading
  ``second`` field (``*/10 * * * * *``, for short test cycles). Each field takes ``*``,
  numbers, ranges ``a-b``, lists ``a,b`` and steps ``*/n`` or ``a-b/n``; months may also be
  named ``jan``-``dec``.
* Day of week: 0 and 7 are both Sunday, ``1-5`` is Monday to Friday, ``5-7`` Friday to
  Sunday, ``7-7`` Sunday only, ``0-7`` every day, ``*/2`` Sunday, Tuesday, Thursday and
  Saturday, ``1-7/2`` Monday, Wednesday, Friday and Sunday. Names (``sun``-``sat``, or in
  full) may stand wherever a day number can (``mon-fri``, ``sun-sat``). APScheduler numbers
  weekdays from Monday = 0, so this field is translated to weekday names before it sees it.
* Day of month and day of week: when NEITHER field starts with ``*``, a day matching
  EITHER runs the job: ``30 4 1,15 * 5`` runs on the 1st, the 15th and every Friday;
  ``0 2 1 * 1`` on the 1st and every Monday. When either field starts with ``*`` (``*``,
  ``*/2``) the two are ANDed, as in Vixie cron: with a plain ``*`` that just leaves the other
  field to decide (``0 2 * * 1`` is Mondays), but ``0 2 */2 * 1`` is Mondays falling on an
  odd day of the month. APScheduler always ANDs, so the OR case is an ``OrTrigger`` of two
  ``CronTrigger`` objects (one for the days of the month, one for the days of the week).
* A schedule that can never fire (``0 0 30 2 *``, ``0 0 31 4 *``) is refused with a
  ``ValueError`` rather than accepted for a worker that would wait forever. Without a year
  field a schedule repeats every 400 years (146097 days, exactly 20871 weeks), so looking 400
  years ahead from a fixed date decides it exactly, whatever today is. (APScheduler alone
  would scan to the year 9999 for Feb 30: 0.1-0.4 s, and on every fire-time question.)
  In the OR case a day-of-month half that can never match (``0 0 30 2 1``) is dropped: that
  schedule runs on Mondays in February.

The second, minute, hour, day-of-month and month fields are otherwise parsed by APScheduler
(which also takes its own extras, such as ``last`` for the day of the month); a bad field is
reported with its name and text (``minute field '*/0': ...``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

__all__ = ["cron_trigger"]

_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FULL_NAMES = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_LABELS = {
    "second": "second",
    "minute": "minute",
    "hour": "hour",
    "day": "day-of-month",
    "month": "month",
}
# The never-fires probe: one whole Gregorian cycle ahead of a fixed date (see the docstring).
_PROBE_FROM = datetime(2001, 1, 1, tzinfo=UTC)
_PROBE_TO = datetime(2401, 1, 2, tzinfo=UTC)


def _weekday(token: str) -> int:
    """0-7 (0 and 7 are Sunday) for a crontab weekday number or name."""
    word = token.lower()
    if word in _NAMES:
        return _NAMES.index(word)
    if word in _FULL_NAMES:
        return _FULL_NAMES.index(word)
    if word.isascii() and word.isdigit() and int(word) <= 7:
        return int(word)
    raise ValueError(f"{token!r} is not a weekday (0-7, where 0 and 7 are Sunday, or sun-sat)")


def _day_of_week(field: str) -> str:
    """A crontab day-of-week field as an explicit list of APScheduler weekday names."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        spec, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not (step_text.isascii() and step_text.isdigit()) or int(step_text) < 1:
                raise ValueError(f"the step in {part!r} must be a whole number of at least 1")
            step = int(step_text)
        if spec == "*":
            first, last = 0, 7
        elif "-" in spec:
            low, _, high = spec.partition("-")
            first, last = _weekday(low), _weekday(high)  # 7 stays 7 here: "5-7" is Fri-Sun
            if last < first:
                raise ValueError(f"the range {spec!r} runs backwards")
        elif slash:
            raise ValueError(f"a step needs '*' or a range before it, not {part!r}")
        else:
            first = last = _weekday(spec)
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_NAMES[day] for day in sorted(days))


def _fires(fields: dict[str, str], timezone: str) -> bool:
    """Whether these trigger fields match any time at all (see the module docstring)."""
    probe = CronTrigger(**fields, timezone=timezone, end_date=_PROBE_TO)
    return probe.get_next_fire_time(None, _PROBE_FROM) is not None


def cron_trigger(expression: str, timezone: str) -> BaseTrigger:
    """A trigger for a 5-field crontab expression (or 6 fields with seconds first).

    Raises ``ValueError`` naming the bad field, or the expression if it can never fire.
    """
    parts = expression.split()
    if len(parts) == 5:
        parts = ["0", *parts]
    elif len(parts) != 6:
        raise ValueError(
            f"{expression!r} has {len(parts)} fields; expected 5 "
            "(minute hour day-of-month month day-of-week) or 6 (a second field first)"
        )
    second, minute, hour, day, month, weekday = parts
    try:
        day_of_week = _day_of_week(weekday)
    except ValueError as exc:
        raise ValueError(f"day-of-week field {weekday!r}: {exc}") from None
    common = {"second": second, "minute": minute, "hour": hour, "month": month}
    for name, value in {**common, "day": day}.items():
        try:
            CronTrigger(**{name: value}, timezone=UTC)
        except ValueError as exc:
            raise ValueError(f"{_LABELS[name]} field {value!r}: {exc}") from None

    halves: list[dict[str, Any]]
    if day.startswith("*") or weekday.startswith("*") or weekday == "?":
        halves = [{**common, "day": day, "day_of_week": day_of_week}]  # AND, as APScheduler
    else:  # both restricted: crontab runs on a day matching either
        halves = [
            {**common, "day": day, "day_of_week": "*"},
            {**common, "day": "*", "day_of_week": day_of_week},
        ]
    live = [half for half in halves if _fires(half, timezone)]
    if not live:
        raise ValueError(
            f"{expression!r} never fires: no date has day-of-month {day!r} in month {month!r}"
            + ("" if day_of_week == "*" else f" on day-of-week {weekday!r}")
        )
    triggers = [CronTrigger(**half, timezone=timezone) for half in live]
    return triggers[0] if len(triggers) == 1 else OrTrigger(triggers)
