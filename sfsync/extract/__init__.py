"""What to pull from Salesforce and how: object specs, windows, deletes, loaders."""

from sfsync.extract._sync import (
    ObjectResult,
    SyncInterrupted,
    SyncProgress,
    SyncResult,
    plan_objects,
    run,
    run_sync,
)
from sfsync.extract.specs import FieldSpec, ObjectPlan, ObjectSpec, object_specs, plan_object

__all__ = [
    "FieldSpec",
    "ObjectPlan",
    "ObjectResult",
    "ObjectSpec",
    "SyncInterrupted",
    "SyncProgress",
    "SyncResult",
    "object_specs",
    "plan_object",
    "plan_objects",
    "run",
    "run_sync",
]
