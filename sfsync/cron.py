"""Cron expressions for ``schedule.cron``, with crontab's own weekday numbering.

APScheduler 3 numbers weekdays from Monday = 0, while crontab (and every ops
person) uses Sunday = 0 (and 7): ``0 2 * * 1-5`` must mean Monday to Friday. So
the day-of-week field is translated to weekday names before APScheduler sees it.
A sixth, leading field gives seconds (``*/10 * * * * *``), for short test cycles.
"""

from __future__ import annotations

from apscheduler.triggers.cron import CronTrigger

__all__ = ["cron_trigger"]

_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _day(token: str) -> int:
    token = token.strip().lower()
    if token[:3] in _NAMES and not token.isdigit():
        return _NAMES.index(token[:3])
    value = int(token)  # ValueError names the token
    if not 0 <= value <= 7:
        raise ValueError(f"day of week {token!r} is not 0-7")
    return value % 7


def _day_of_week(field: str) -> str:
    """A crontab day-of-week field as an explicit list of APScheduler weekday names."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        spec, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step {step_text!r} must be at least 1")
        if spec == "*":
            first, last = 0, 6
        elif "-" in spec:
            low, high = spec.split("-", 1)
            first, last = _day(low), _day(high)
            if high.strip() == "7":
                last = 7  # "5-7" is Friday to Sunday
            if last < first:
                raise ValueError(f"range {spec!r} runs backwards")
        else:
            first = last = _day(spec)
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(_NAMES[d] for d in sorted(days))


def cron_trigger(expression: str, timezone: str) -> CronTrigger:
    """A trigger for a 5-field crontab expression (or 6 fields with seconds first)."""
    fields = expression.split()
    if len(fields) == 5:
        second = "0"
    elif len(fields) == 6:
        second, fields = fields[0], fields[1:]
    else:
        raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(fields)}")
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        second=second,
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_day_of_week(weekday),
        timezone=timezone,
    )
