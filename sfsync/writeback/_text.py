"""What a Task says: subject, description (what is wrong, values seen, how to fix), notes.

Pure string building from a finding's details. Each rule says what its Task says
(``Rule.explain`` in ``sfsync/audit/rules/``); this module frames it with the key
line. Unknown or missing values are left out rather than printed as ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from sfsync.audit.rules import get_rule

__all__ = [
    "DESCRIPTION_MAX",
    "KEY_LINE_PREFIX",
    "SUBJECT_MAX",
    "completed_description",
    "completion_note",
    "key_from_description",
    "task_description",
    "task_subject",
    "waiver_note",
]

SUBJECT_MAX = 255
DESCRIPTION_MAX = 32_000
KEY_LINE_PREFIX = "sfsync key: "
_KEY_RE = re.compile(r"^sfsync key: (\S+)\s*$", re.MULTILINE)


def task_subject(prefix: str, rule: str, opportunity_name: str | None) -> str:
    """``"<prefix> <rule title>: <opportunity name>"``, cut to Salesforce's 255 characters."""
    head = f"{prefix} {_title(rule)}: "
    name = (opportunity_name or "").strip() or "(unnamed opportunity)"
    subject = head + name
    if len(subject) > SUBJECT_MAX:
        subject = subject[: SUBJECT_MAX - 1] + "…"
    return subject


def _title(rule_id: str) -> str:
    try:
        return get_rule(rule_id).title
    except KeyError:  # a finding of a rule no longer registered
        return rule_id


def _values(pairs: list[tuple[str, Any]]) -> str:
    shown = [f"- {label}: {value}" for label, value in pairs if value not in (None, "")]
    return "\n".join(shown)


def task_description(rule: str, details: Mapping[str, Any], key: str) -> str:
    """What is wrong, the values sfsync saw, how to fix it, and the idempotency key."""
    try:
        known = get_rule(rule)
    except KeyError:  # a finding of a rule no longer registered
        what, values, fix = f"Rule {rule} holds for this opportunity.", [], "See the rule."
    else:
        explanation = known.explain(known.parse_details(details))
        what, values, fix = explanation.what, explanation.values, explanation.fix
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


FOR_GOOD = date(9999, 12, 31)


def waiver_note(
    today: date, finding_id: int | None, *, by: str | None, reason: str, until: date
) -> str:
    """Why a Task is completed although the problem is still there: an admin waived it."""
    ref = f" (finding {finding_id})" if finding_id is not None else ""
    who = f"by {by}" if by else "by an admin"
    until_text = "for good" if until >= FOR_GOOD else f"until {until.isoformat()}"
    return (
        f"sfsync, {today.isoformat()}: waived {who} {until_text}{ref}. Reason: "
        f"{reason.strip()}. If the problem is still there when the waiver ends, "
        "a new Task follows."
    )


def completed_description(previous: str | None, note: str) -> str:
    """The description with the completion ``note`` appended (kept under 32,000 characters)."""
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
