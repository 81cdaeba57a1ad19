"""What a Task says: subject, description (what is wrong, values seen, how to fix), notes.

Pure string building from a finding's details (see ``sfsync/audit/_rules.py`` for
the keys each rule records). Unknown or missing values are left out rather than
printed as ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

__all__ = [
    "DESCRIPTION_MAX",
    "KEY_LINE_PREFIX",
    "RULE_TITLES",
    "SUBJECT_MAX",
    "completed_description",
    "completion_note",
    "key_from_description",
    "task_description",
    "task_subject",
]

SUBJECT_MAX = 255
DESCRIPTION_MAX = 32_000
KEY_LINE_PREFIX = "sfsync key: "
_KEY_RE = re.compile(r"^sfsync key: (\S+)\s*$", re.MULTILINE)

# The same titles as sfsync.audit.RULE_TITLES (kept here so the planner imports nothing
# with I/O); a unit test checks they agree.
RULE_TITLES: dict[str, str] = {
    "close_date_past": "Close date in the past",
    "stale_last_modified": "Not updated for too long",
    "missing_rev_rec_terms": "Rev Rec Terms not entered",
    "close_date_slipping": "Close date pushed month after month",
}


def task_subject(prefix: str, rule: str, opportunity_name: str | None) -> str:
    """``"<prefix> <rule title>: <opportunity name>"``, cut to Salesforce's 255 characters."""
    head = f"{prefix} {RULE_TITLES.get(rule, rule)}: "
    name = (opportunity_name or "").strip() or "(unnamed opportunity)"
    subject = head + name
    if len(subject) > SUBJECT_MAX:
        subject = subject[: SUBJECT_MAX - 1] + "…"
    return subject


def _money(value: Any, currency: Any = None) -> str:
    if not isinstance(value, int | float):
        return ""
    text = f"{value:,.2f}"
    return f"{text} {currency}" if currency else text


def _yes_no(value: Any) -> str:
    return "yes" if value else "no"


def _quarter(k: Any) -> str:
    if not isinstance(k, int):
        return ""
    if k == 0:
        return "the current quarter"
    if k < 0:
        return f"{-k} quarter{'s' if k != -1 else ''} ago"
    return f"current quarter +{k}"


def _values(pairs: list[tuple[str, Any]]) -> str:
    shown = [f"- {label}: {value}" for label, value in pairs if value not in (None, "")]
    return "\n".join(shown)


def _amount_lines(d: Mapping[str, Any]) -> list[tuple[str, Any]]:
    converted = d.get("converted_amount")
    amount = _money(d.get("amount"), d.get("currency"))
    if converted is not None and d.get("currency"):
        amount = f"{amount} ({_money(converted)} in the corporate currency)"
    return [
        ("Amount", amount),
        ("Big deal threshold", _money(d.get("amount_threshold"))),
        ("Has an instrument", _yes_no(d.get("has_instrument")) if "has_instrument" in d else None),
    ]


def _close_date_past(d: Mapping[str, Any]) -> tuple[str, list[tuple[str, Any]], str]:
    what = (
        f"The close date {d.get('close_date') or '(none)'} is in the past "
        f"(today is {d.get('today') or 'later'}) but the opportunity is still open."
    )
    values = [
        ("Stage", d.get("stage")),
        ("Close date", d.get("close_date")),
        ("Close date quarter", _quarter(d.get("k"))),
        *_amount_lines(d),
    ]
    fix = (
        "Move the close date to when you now expect the deal to close, or close the "
        "opportunity as won or lost."
    )
    return what, values, fix


def _stale_last_modified(d: Mapping[str, Any]) -> tuple[str, list[tuple[str, Any]], str]:
    days = d.get("days_since_last_human_modification")
    threshold = d.get("threshold_days")
    what = (
        f"Nobody has updated this opportunity for {days} days; for a close date in "
        f"{_quarter(d.get('k')) or 'its quarter'} the limit is {threshold} days."
    )
    assumed = " (first sync: the current value was taken)" if d.get("last_human_assumed") else ""
    values = [
        ("Stage", d.get("stage")),
        ("Close date", d.get("close_date")),
        ("Last update by a person", f"{d.get('last_human_modified_date') or '?'}{assumed}"),
        ("Days since then", days),
        ("Limit (days)", threshold),
        *_amount_lines(d),
    ]
    fix = (
        "Review the opportunity and bring it up to date: next step, stage, close date and "
        "amount. Any edit by you resets the clock."
    )
    return what, values, fix


def _missing_rev_rec_terms(d: Mapping[str, Any]) -> tuple[str, list[tuple[str, Any]], str]:
    stage = d.get("min_stage") or "Prove"
    what = (
        f"Rev Rec Terms is blank on an opportunity with an instrument at stage "
        f"{d.get('stage') or '?'}."
    )
    values = [
        ("Stage", d.get("stage")),
        ("Rev Rec Terms field", d.get("field")),
        ("Rev Rec Terms value", repr(d.get("rev_rec_terms") or "")),
        ("Has an instrument", _yes_no(d.get("has_instrument"))),
    ]
    fix = f"Rev Rec Terms must be entered before the {stage} stage can be completed."
    return what, values, fix


def _close_date_slipping(d: Mapping[str, Any]) -> tuple[str, list[tuple[str, Any]], str]:
    n = d.get("month_extensions")
    what = (
        f"The close date has been pushed to a later month {n} times "
        f"(the limit is {d.get('min_extensions')})."
    )
    if d.get("lower_bound"):
        what += " The count is a lower bound: the opportunity's field history is incomplete."
    values = [
        ("Stage", d.get("stage")),
        ("Close date", d.get("close_date")),
        ("Month extensions", n),
        ("Days open", d.get("days_open")),
        ("Days since the last stage change", d.get("days_since_stage_change")),
    ]
    fix = (
        "Agree a realistic close date with the customer and set it once; if the deal is no "
        "longer likely to close, close it as lost."
    )
    return what, values, fix


_EXPLAIN: dict[str, Callable[[Mapping[str, Any]], tuple[str, list[tuple[str, Any]], str]]] = {
    "close_date_past": _close_date_past,
    "stale_last_modified": _stale_last_modified,
    "missing_rev_rec_terms": _missing_rev_rec_terms,
    "close_date_slipping": _close_date_slipping,
}


def task_description(rule: str, details: Mapping[str, Any], key: str) -> str:
    """What is wrong, the values sfsync saw, how to fix it, and the idempotency key."""
    explain = _EXPLAIN.get(rule)
    values: list[tuple[str, Any]] = []
    if explain is None:
        what, fix = f"Rule {rule} holds for this opportunity.", "See the rule."
    else:
        what, values, fix = explain(details)
    seen = _values(values)
    parts = [
        f"What is wrong: {what}",
        f"Values seen:\n{seen}" if seen else "",
        f"How to fix: {fix}",
        "This Task was created by sfsync and completes itself once the problem is fixed.",
        f"{KEY_LINE_PREFIX}{key}",
    ]
    text = "\n\n".join(p for p in parts if p)
    return _fit(text, key)


def completion_note(today: date, finding_id: int | None) -> str:
    ref = f" (finding {finding_id})" if finding_id is not None else ""
    return f"sfsync, {today.isoformat()}: resolved, the problem is no longer present{ref}."


def completed_description(previous: str | None, today: date, finding_id: int | None) -> str:
    """The description with the completion note appended (kept under 32,000 characters)."""
    note = completion_note(today, finding_id)
    base = (previous or "").rstrip()
    text = f"{base}\n\n{note}" if base else note
    if len(text) > DESCRIPTION_MAX:
        text = base[: DESCRIPTION_MAX - len(note) - 3] + "…\n\n" + note
    return text


def key_from_description(description: str | None) -> str | None:
    """The idempotency key written in a description (the fallback when no key field)."""
    if not description:
        return None
    match = _KEY_RE.search(description)
    return match.group(1) if match else None


def _fit(text: str, key: str) -> str:
    if len(text) <= DESCRIPTION_MAX:
        return text
    tail = f"\n\n{KEY_LINE_PREFIX}{key}"
    return text[: DESCRIPTION_MAX - len(tail) - 1] + "…" + tail
