"""Salesforce wire formats: ids, dates, datetimes and SOQL literals.

Pure functions shared by the client, the extractors and the dev org. Salesforce
sends datetimes as ``2024-07-30T09:12:44.000+0000`` (always UTC, millisecond
precision) and dates as ``2024-07-30``; SOQL takes unquoted date/datetime
literals and single-quoted strings with backslash escapes.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

__all__ = [
    "format_date",
    "format_datetime",
    "id15_to_18",
    "is_salesforce_id",
    "parse_date",
    "parse_datetime",
    "rfc3339",
    "soql_datetime",
    "soql_quote",
]

_ID_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})?$"
)


def id15_to_18(id15: str) -> str:
    """The 18-character, case-insensitive-safe form of a 15-character record id."""
    if len(id15) == 18:
        return id15
    if len(id15) != 15:
        raise ValueError(f"a Salesforce id has 15 or 18 characters, got {id15!r}")
    suffix = ""
    for chunk in range(3):
        bits = 0
        for pos, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << pos
        suffix += _ID_SUFFIX_ALPHABET[bits]
    return id15 + suffix


def is_salesforce_id(value: str) -> bool:
    """Whether ``value`` looks like a 15- or 18-character record id (checksum included)."""
    if not _ID_RE.match(value):
        return False
    return len(value) == 15 or id15_to_18(value[:15]) == value


def parse_date(value: str) -> date:
    """Parse ``YYYY-MM-DD``; anything else is a ``ValueError`` naming the value."""
    if not _DATE_RE.match(value):
        raise ValueError(f"expected a date YYYY-MM-DD, got {value!r}")
    return date.fromisoformat(value)


def parse_datetime(value: str) -> datetime:
    """Parse a Salesforce datetime leniently into an aware UTC datetime.

    Accepts ``.000+0000``, ``Z``, ``+hh:mm``, 0-6 fraction digits; a missing zone
    means UTC (Bulk CSV sometimes omits it).
    """
    match = _DATETIME_RE.match(value.strip())
    if not match:
        raise ValueError(f"expected a datetime YYYY-MM-DDTHH:MM:SS[.fff]+0000, got {value!r}")
    day, clock, fraction, zone = match.groups()
    micro = (fraction or ".0")[1:].ljust(6, "0")
    if zone in (None, "Z"):
        zone = "+00:00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    parsed = datetime.fromisoformat(f"{day}T{clock}.{micro}{zone}")
    return parsed.astimezone(UTC)


def format_date(value: date) -> str:
    """``YYYY-MM-DD``."""
    return value.isoformat()


def format_datetime(value: datetime) -> str:
    """The REST response form: ``2024-07-30T09:12:44.000+0000`` (UTC, milliseconds)."""
    if value.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; pass an aware datetime")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def rfc3339(value: datetime) -> str:
    """How sfsync writes a time for people and collectors (health file, JSON output):
    RFC 3339 in UTC, to the second, ``2026-12-04T20:07:14Z``."""
    if value.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; pass an aware datetime")
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def soql_datetime(value: datetime) -> str:
    """A SOQL datetime literal (unquoted): ``2024-07-30T09:12:44Z``.

    Uses ``Z`` rather than ``+00:00`` because a raw ``+`` in a query string decodes
    to a space (``MALFORMED_QUERY``) when a caller forgets to URL-encode it.
    """
    if value.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; pass an aware datetime")
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond // 1000:03d}"
    return text + "Z"


_SOQL_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}


def soql_quote(value: str) -> str:
    """A single-quoted SOQL string literal with every special character escaped."""
    return "'" + "".join(_SOQL_ESCAPES.get(ch, ch) for ch in value) + "'"
