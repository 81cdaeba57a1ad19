"""Building blocks of the synthetic-org generator: ids, timestamps, fiscal calendar.

Timestamps are whole seconds since the Unix epoch (UTC) and dates are epoch days
(days since 1970-01-01): integers are cheap to compare, add and draw at random,
which matters when a million opportunities each get a dozen timestamps. They are
turned into Salesforce's REST strings only when a record is written.
"""

from __future__ import annotations

import calendar
import json
from datetime import UTC, date, datetime

from sfsync.devorg._catalog import DATA_FILE_OBJECTS
from sfsync.devorg._catalog import KEY_PREFIXES as CATALOGUE_PREFIXES
from sfsync.formats import format_date, format_datetime, id15_to_18

DAY = 86_400
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
# The two characters after the key prefix: in a real org they name the pod.
_POD = "8d"

# The objects a data file holds, with the catalogue's (Salesforce's) key prefixes.
KEY_PREFIXES = {name: CATALOGUE_PREFIXES[name] for name in DATA_FILE_OBJECTS}

# Every pair of base-62 digits with the case bits id15_to_18 computes for it.
_PAIRS = [(a + b, int(a.isupper()) | int(b.isupper()) << 1) for a in BASE62 for b in BASE62]

# Compact, ASCII-only JSON: the file is plain ASCII whatever a loader's locale.
ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, check_circular=False)
encode = ENCODER.encode


def to_base62(value: int, width: int) -> str:
    digits = []
    while value:
        value, rem = divmod(value, 62)
        digits.append(BASE62[rem])
    return "".join(reversed(digits)).rjust(width, "0")


class IdFactory:
    """Sequential 18-character ids: key prefix + pod + ``0`` + a 9-digit base-62 counter.

    Equivalent to ``id15_to_18(prefix + pod + "0" + to_base62(n, 9))`` but several
    times faster, because the first ten characters and their checksum letters are
    fixed for counters below 62**5.
    """

    _FAST_LIMIT = 62**5

    def __init__(self, prefix: str) -> None:
        if len(prefix) != 3:
            raise ValueError(f"a key prefix has 3 characters, got {prefix!r}")
        self._head = prefix + _POD + "0"
        template = id15_to_18(self._head + "0" * 9)
        self._fixed = template[:10]
        self._fixed_suffix = template[15:17]
        self._next = 1

    def new(self) -> str:
        """The next id of this object."""
        value = self._next
        self._next += 1
        return self.make(value)

    @property
    def issued(self) -> int:
        return self._next - 1

    def make(self, value: int) -> str:
        if value >= self._FAST_LIMIT:
            return id15_to_18(self._head + to_base62(value, 9))
        rest, low = divmod(value, 3844)
        high, mid = divmod(rest, 3844)
        high_char = BASE62[high]
        mid_chars, mid_bits = _PAIRS[mid]
        low_chars, low_bits = _PAIRS[low]
        bits = int(high_char.isupper()) | mid_bits << 1 | low_bits << 3
        return (
            self._fixed
            + high_char
            + mid_chars
            + low_chars
            + self._fixed_suffix
            + _SUFFIX_ALPHABET[bits]
        )


class Formatter:
    """REST strings for epoch days and epoch seconds, with the day part cached."""

    def __init__(self) -> None:
        self._days: dict[int, str] = {}
        # "THH:MM:SS.000+0000" for every second of a day (86,400 short strings, ~6 MB).
        self._clock = [
            f"T{h:02d}:{m:02d}:{s:02d}.000+0000"
            for h in range(24)
            for m in range(60)
            for s in range(60)
        ]

    def day(self, epoch_day: int) -> str:
        text = self._days.get(epoch_day)
        if text is None:
            text = format_date(from_epoch_day(epoch_day))
            self._days[epoch_day] = text
        return text

    def stamp(self, seconds: int) -> str:
        epoch_day, of_day = divmod(seconds, DAY)
        text = self._days.get(epoch_day)
        if text is None:
            text = self.day(epoch_day)
        return text + self._clock[of_day]


def stamp_reference(seconds: int) -> str:
    """The slow, obviously correct form of :meth:`Formatter.stamp` (for tests)."""
    return format_datetime(datetime.fromtimestamp(seconds, UTC))


def to_epoch_day(value: date) -> int:
    return value.toordinal() - EPOCH_ORDINAL


def from_epoch_day(epoch_day: int) -> date:
    return date.fromordinal(epoch_day + EPOCH_ORDINAL)


def add_months(epoch_day: int, months: int) -> int:
    """The same day of the month ``months`` later (clamped to the month's last day)."""
    d = from_epoch_day(epoch_day)
    total = d.year * 12 + d.month - 1 + months
    year, month0 = divmod(total, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return to_epoch_day(date(year, month0 + 1, min(d.day, last)))


def month_end(epoch_day: int) -> int:
    d = from_epoch_day(epoch_day)
    return to_epoch_day(d.replace(day=calendar.monthrange(d.year, d.month)[1]))


def month_key(epoch_day: int) -> int:
    d = from_epoch_day(epoch_day)
    return d.year * 12 + d.month - 1


class FiscalCalendar:
    """Fiscal quarters of a year starting in ``start_month`` (Organization.FiscalYearStartMonth)."""

    def __init__(self, start_month: int) -> None:
        if not 1 <= start_month <= 12:
            raise ValueError(f"a fiscal year starts in month 1..12, got {start_month}")
        self.start_month = start_month

    def quarter(self, epoch_day: int) -> int:
        """A running quarter number: consecutive quarters differ by one."""
        d = from_epoch_day(epoch_day)
        return (d.year * 12 + d.month - 1 - (self.start_month - 1)) // 3

    def quarter_start(self, quarter: int) -> int:
        months = quarter * 3 + self.start_month - 1
        return to_epoch_day(date(months // 12, months % 12 + 1, 1))

    def quarter_end(self, quarter: int) -> int:
        return self.quarter_start(quarter + 1) - 1
