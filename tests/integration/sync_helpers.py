"""Comparing the warehouse with the dev org, and changing the org like users do."""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from sfsync.config import SYNC_OBJECTS, Settings
from sfsync.devorg import DevOrg
from sfsync.extract import object_specs
from sfsync.formats import format_datetime
from sfsync.warehouse import Warehouse
from sfsync.warehouse.models import OBJECT_MODELS, table_of

COMPARED = tuple(name for name in SYNC_OBJECTS if name != "Organization")


@dataclass(frozen=True)
class Fingerprint:
    rows: int
    checksum: str


def _digest(pairs: list[tuple[str, str]]) -> Fingerprint:
    h = hashlib.sha256()
    for record_id, stamp in sorted(pairs):
        h.update(f"{record_id}|{stamp}\n".encode())
    return Fingerprint(len(pairs), h.hexdigest()[:16])


def org_fingerprints(org: DevOrg, settings: Settings) -> dict[str, Fingerprint]:
    """Per object: live rows (Id + SystemModstamp) that sfsync should have."""
    specs = object_specs(settings, integration_user_id=org.integration_user_id)
    result = {}
    for name in COMPARED:
        if name == "CurrencyType" and not org.is_multi_currency:
            continue
        where = specs[name].where
        if name == "Task" and settings.writeback.task_key_field:
            where = f"({settings.writeback.task_key_field} != null OR {where})"
        where_clause = f" WHERE {where}" if where else ""
        soql = f"SELECT Id, SystemModstamp FROM {name}{where_clause}"
        rows = org.query(soql)
        result[name] = _digest([(r["Id"], r["SystemModstamp"]) for r in rows])
    return result


def warehouse_fingerprints(warehouse: Warehouse, names: list[str]) -> dict[str, Fingerprint]:
    result = {}
    with warehouse.engine.connect() as conn:
        for name in names:
            table = table_of(OBJECT_MODELS[name])
            rows = conn.execute(
                select(table.c.id, table.c.system_modstamp).where(table.c.is_deleted.is_(False))
            ).all()
            result[name] = _digest([(r[0], format_datetime(r[1])) for r in rows])
    return result


def mismatches(org: DevOrg, settings: Settings, warehouse: Warehouse) -> dict[str, Any]:
    """Objects whose warehouse copy differs from the org: {} when they match exactly."""
    expected = org_fingerprints(org, settings)
    actual = warehouse_fingerprints(warehouse, list(expected))
    return {
        name: (expected[name], actual[name]) for name in expected if expected[name] != actual[name]
    }


def settle() -> None:
    """Let the clock pass the second of the last change.

    Stamps have second precision and windows are half-open (``< now - lag``); the
    tests run with ``lag_s: 0``, so a change made in the same second as the next
    sync starts belongs to the sync after it (as it would with the default lag).
    """
    time.sleep(1.05)


def random_changes(
    org: DevOrg,
    rng: random.Random,
    *,
    updates: int = 0,
    soft_deletes: int = 0,
    purges: int = 0,
    creates: int = 0,
    as_user: str | None = None,
) -> dict[str, int]:
    """Change opportunities the way users do: edits, deletes, purges, new deals."""
    live = [r["Id"] for r in org.query("SELECT Id FROM Opportunity")]
    rng.shuffle(live)
    template = org.query(
        "SELECT OwnerId, StageName, CloseDate FROM Opportunity ORDER BY Id LIMIT 1"
    )[0]
    done = {"updates": 0, "soft_deletes": 0, "purges": 0, "creates": 0}
    for record_id in live[:updates]:
        org.update(
            "Opportunity",
            record_id,
            {"Amount": float(rng.randrange(1_000, 200_000)), "Description": f"edit {rng.random()}"},
            as_user=as_user or template["OwnerId"],  # a person, not sfsync's integration user
        )
        done["updates"] += 1
    for record_id in live[updates : updates + soft_deletes]:
        org.soft_delete("Opportunity", record_id)
        done["soft_deletes"] += 1
    for record_id in live[updates + soft_deletes : updates + soft_deletes + purges]:
        org.hard_delete("Opportunity", record_id)
        done["purges"] += 1
    for n in range(creates):
        org.create(
            "Opportunity",
            {
                "Name": f"New deal {n} {rng.random():.6f}",
                "OwnerId": template["OwnerId"],
                "StageName": template["StageName"],
                "CloseDate": template["CloseDate"],
                "Amount": float(rng.randrange(1_000, 200_000)),
            },
            as_user=as_user or template["OwnerId"],
        )
        done["creates"] += 1
    return done
