"""Idempotency keys: stable names for every write sfsync intends.

A Task's key is ``sfsync:<rule>:<opportunity id>:<finding id>:<n>`` where ``n``
counts the Tasks created for that finding (0, then 1, 2... for renotifications).
It is stored in the ledger and on the Task (the external-id field, and the last
line of the description), so a crash between the call and the ledger commit is
resolved by asking Salesforce for the key, never by sending again blindly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["TaskKey", "complete_key", "flag_key", "parse_task_key", "task_key"]

_PREFIX = "sfsync"


@dataclass(frozen=True)
class TaskKey:
    rule: str
    opportunity_id: str
    finding_id: int
    n: int


def task_key(rule: str, opportunity_id: str, finding_id: int, n: int) -> str:
    return f"{_PREFIX}:{rule}:{opportunity_id}:{finding_id}:{n}"


def parse_task_key(key: str | None) -> TaskKey | None:
    """The parts of a Task key, or None for anything else (flags, completions, junk)."""
    if not key:
        return None
    parts = key.split(":")
    if len(parts) != 5 or parts[0] != _PREFIX or parts[1] in ("complete", "flags"):
        return None
    _, rule, opportunity_id, finding, n = parts
    if not (finding.isdigit() and n.isdigit() and opportunity_id):
        return None
    return TaskKey(rule, opportunity_id, int(finding), int(n))


def complete_key(task_id: str) -> str:
    return f"{_PREFIX}:complete:{task_id}"


def flag_key(opportunity_id: str, fields: Mapping[str, Any]) -> str:
    """One key per (opportunity, values written): the same change is never sent twice."""
    digest = hashlib.sha256(
        json.dumps(dict(fields), sort_keys=True, default=str).encode()
    ).hexdigest()[:12]
    return f"{_PREFIX}:flags:{opportunity_id}:{digest}"
