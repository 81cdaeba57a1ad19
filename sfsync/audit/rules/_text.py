"""Small helpers for the values a rule's Task lists."""

from __future__ import annotations

from typing import Any

from sfsync.audit.rules._common import ValueDetails

__all__ = ["amount_lines", "money", "quarter", "yes_no"]


def money(value: Any, currency: Any = None) -> str:
    if not isinstance(value, int | float):
        return ""
    text = f"{value:,.2f}"
    return f"{text} {currency}" if currency else text


def yes_no(value: Any) -> str:
    return "yes" if value else "no"


def quarter(k: Any) -> str:
    if not isinstance(k, int):
        return ""
    if k == 0:
        return "the current quarter"
    if k < 0:
        return f"{-k} quarter{'s' if k != -1 else ''} ago"
    return f"current quarter +{k}"


def amount_lines(d: ValueDetails) -> list[tuple[str, Any]]:
    amount = money(d.amount, d.currency)
    if d.converted_amount is not None and d.currency:
        amount = f"{amount} ({money(d.converted_amount)} in the corporate currency)"
    return [
        ("Amount", amount),
        ("Big deal threshold", money(d.amount_threshold)),
        ("Has an instrument", yes_no(d.has_instrument) if d.has_instrument is not None else None),
    ]
