"""The one place SOQL text is assembled: names checked, values quoted, LIKE escaped.

Every query sfsync sends is built here from API names (checked against
``^[A-Za-z][A-Za-z0-9_]*`` with dotted relationship paths) and conditions built
by these helpers, whose values go through :func:`~sfsync.formats.soql_quote`
or :func:`~sfsync.formats.soql_datetime`. Nothing else pastes text into a
query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime

from sfsync.formats import soql_datetime, soql_quote

__all__ = [
    "all_of",
    "any_of",
    "at_least",
    "before",
    "count",
    "equals",
    "is_not_null",
    "like_prefix",
    "name",
    "one_of",
    "select",
]

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")
_LIKE_ESCAPES = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})


def name(value: str) -> str:
    """An object or field API name (``Owner.Name`` paths too); anything else is a bug."""
    if not _NAME_RE.match(value):
        raise ValueError(f"{value!r} is not a Salesforce API name")
    return value


def equals(field: str, value: str) -> str:
    return f"{name(field)} = {soql_quote(value)}"


def one_of(field: str, values: Iterable[str]) -> str:
    quoted = ", ".join(soql_quote(v) for v in values)
    return f"{name(field)} IN ({quoted})"


def like_prefix(field: str, prefix: str) -> str:
    """``field`` starts with ``prefix`` (its ``%``, ``_`` and backslashes taken literally)."""
    return f"{name(field)} LIKE {soql_quote(prefix.translate(_LIKE_ESCAPES) + '%')}"


def is_not_null(field: str) -> str:
    return f"{name(field)} != null"


def at_least(field: str, moment: datetime) -> str:
    return f"{name(field)} >= {soql_datetime(moment)}"


def before(field: str, moment: datetime) -> str:
    return f"{name(field)} < {soql_datetime(moment)}"


def all_of(*conditions: str | None) -> str:
    """Conditions (built here) ANDed, each in parentheses; empty ones are left out."""
    return " AND ".join(f"({c})" for c in conditions if c)


def any_of(*conditions: str | None) -> str:
    kept = [c for c in conditions if c]
    return f"({' OR '.join(kept)})" if len(kept) > 1 else "".join(kept)


def select(
    fields: Sequence[str],
    sobject: str,
    *,
    where: Sequence[str | None] = (),
    order_by: Sequence[str] = (),
) -> str:
    """``SELECT fields FROM sobject [WHERE ...] [ORDER BY f ASC, ...]``."""
    text = f"SELECT {', '.join(name(f) for f in fields)} FROM {name(sobject)}"  # noqa: S608 - the one SOQL builder; names checked, values quoted
    condition = all_of(*where)
    if condition:
        text += f" WHERE {condition}"
    if order_by:
        text += " ORDER BY " + ", ".join(f"{name(f)} ASC" for f in order_by)
    return text


def count(sobject: str, *, where: Sequence[str | None] = ()) -> str:
    """``SELECT COUNT() FROM sobject [WHERE ...]``."""
    text = f"SELECT COUNT() FROM {name(sobject)}"  # noqa: S608 - see select()
    condition = all_of(*where)
    return f"{text} WHERE {condition}" if condition else text
