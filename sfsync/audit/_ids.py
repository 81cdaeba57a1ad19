"""Record ids typed by a user (``--owner``, ``OPP_ID``): checked and made 18 characters."""

from __future__ import annotations

from sfsync.errors import UsageError
from sfsync.formats import id15_to_18, is_salesforce_id

__all__ = ["record_id"]


def record_id(value: str, what: str) -> str:
    """``value`` as an 18-character id; anything else is a usage error naming ``what``."""
    text = value.strip()
    if not is_salesforce_id(text):
        raise UsageError(f"{what}: {value!r} is not a Salesforce record id (15 or 18 characters)")
    return id15_to_18(text)
