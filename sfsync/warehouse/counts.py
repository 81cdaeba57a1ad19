"""What a run records in ``run.counts``: one typed document per stage, versioned.

The sync, the audit and the write-back each produce one of these; ``sfsync runs``,
the report and the write-back's safety gate read them back with
:meth:`RunCounts.of`. A key renamed here is a type error everywhere it is used,
not a safety check that silently stops seeing its value. Rows written by older
versions parse too: unknown keys are ignored, missing ones take their defaults, and
a stage that no longer parses is dropped rather than breaking the reader.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "COUNTS_VERSION",
    "AuditCounts",
    "ObjectCounts",
    "RuleTally",
    "RunCounts",
    "RunStatus",
    "StageCounts",
    "SyncCounts",
    "WritebackCounts",
]

COUNTS_VERSION = 1
RunStatus = Literal["running", "ok", "partial", "failed", "interrupted"]


class _Counts(BaseModel):
    model_config = ConfigDict(extra="ignore")


# --------------------------------------------------------------------------- sync


class ObjectCounts(_Counts):
    """One object's part of a sync."""

    object: str
    mode: str = "rest"
    upserted: int = 0
    deleted: int = 0
    problems: int = 0
    api_calls: int = 0
    seconds: float = 0.0
    reconciled: bool = False


class SyncCounts(_Counts):
    stage: Literal["sync"] = "sync"
    status: RunStatus = "running"
    api_calls: int = 0
    seconds: float = 0.0
    objects: dict[str, ObjectCounts] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)

    @property
    def upserted(self) -> int:
        return sum(o.upserted for o in self.objects.values())


# --------------------------------------------------------------------------- audit


class RuleTally(_Counts):
    """One rule's findings after an audit: live open (not waived), new, resolved, waived."""

    open: int = 0
    new: int = 0
    resolved: int = 0
    waived: int = 0
    severity: str = "warn"


class AuditCounts(_Counts):
    stage: Literal["audit"] = "audit"
    as_of: date | None = None
    rules: dict[str, RuleTally] = Field(default_factory=dict)
    open_by_severity: dict[str, int] = Field(default_factory=dict)
    # The effective settings each rule ran with (shown by the report).
    settings: dict[str, Any] = Field(default_factory=dict)

    def total(self, key: Literal["open", "new", "resolved", "waived"]) -> int:
        return sum(getattr(tally, key) for tally in self.rules.values())


# --------------------------------------------------------------------------- write-back


class WritebackCounts(_Counts):
    stage: Literal["writeback"] = "writeback"
    status: str = "ok"
    applied: bool = False
    mode: str | None = None
    created: int = 0
    completed: int = 0
    flags_set: int = 0
    flags_cleared: int = 0
    failed: int = 0
    retry_later: int = 0
    gave_up: int = 0
    waiting: int = 0
    reassigned: int = 0
    reconciled: int = 0
    skipped: int = 0
    planned: dict[str, int] = Field(default_factory=dict)
    api_calls: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    budget_stop: str | None = None
    warnings: list[str] = Field(default_factory=list)


StageCounts = SyncCounts | AuditCounts | WritebackCounts


# --------------------------------------------------------------------------- a run


class RunCounts(_Counts):
    """The whole ``run.counts`` document."""

    version: int = COUNTS_VERSION
    sync: SyncCounts | None = None
    audit: AuditCounts | None = None
    writeback: WritebackCounts | None = None
    # Each stage's outcome in words ("ok", "skipped (sync was partial)"...), for ``runs``.
    stages: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def of(cls, raw: object) -> RunCounts:
        """Parse a stored document; what does not parse is left out, never raised."""
        if not isinstance(raw, Mapping):
            return cls()
        try:
            return cls.model_validate(raw)
        except ValidationError:
            parsed = cls()
            for name, model in (
                ("sync", SyncCounts),
                ("audit", AuditCounts),
                ("writeback", WritebackCounts),
            ):
                with contextlib.suppress(ValidationError):
                    setattr(parsed, name, model.model_validate(raw.get(name)))
            stages = raw.get("stages")
            if isinstance(stages, Mapping):
                parsed.stages = {str(k): str(v) for k, v in stages.items()}
            return parsed

    def with_stage(self, counts: StageCounts) -> RunCounts:
        return self.model_copy(update={counts.stage: counts})

    def document(self) -> dict[str, Any]:
        """The JSON stored in ``run.counts``."""
        return self.model_dump(mode="json", exclude_none=True)
