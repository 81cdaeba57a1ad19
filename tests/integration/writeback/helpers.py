"""Write-back against the dev org: sync/audit cycles, reading sfsync's Tasks back, configs."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select

from sfsync.audit import run_audit
from sfsync.audit.rules import all_rules
from sfsync.devorg import DevOrg, write_config
from sfsync.extract import run_sync
from sfsync.formats import soql_quote
from sfsync.warehouse import Warehouse
from sfsync.warehouse.models import Finding, WritebackLedger
from tests.integration.conftest import RunningOrg
from tests.integration.sync_helpers import settle

_RULE_BY_TITLE = {rule.title: rule.id for rule in all_rules()}

# A validation rule an admin might add: Tasks about slipping deals are refused.
NO_SLIPPING_TASKS = {
    "object": "Task",
    "name": "No_Slipping_Tasks",
    "condition": "Subject LIKE '%pushed month after month%'",
    "message": "Tasks about slipping deals go through the deal desk",
    "field": "Subject",
}


def reconfigure(org: RunningOrg, *, sync: dict[str, Any] | None = None, **writeback: Any) -> None:
    """Rewrite the org's sfsync config with these ``writeback`` (and ``sync``) settings."""
    sync = {
        "lag_s": 0,
        "lookback_s": 5,
        "backoff_base_s": 0.05,
        "backoff_max_s": 0.5,
        **(sync or {}),
    }
    write_config(
        org.config_path,
        org.server,
        database_url=org.database_url,
        extra={"sync": sync, "logging": {"format": "json"}, "writeback": writeback},
    )


def cycle(org: RunningOrg, warehouse: Warehouse, *, as_of: date | None = None) -> None:
    """Sync then audit, as a nightly run does before write-back."""
    settle()
    settings = org.settings
    assert run_sync(warehouse, settings).status == "ok"
    run_audit(warehouse, settings, as_of=as_of)


def rule_of(subject: str, prefix: str = "[sfsync]") -> str:
    title = subject.removeprefix(prefix + " ").split(": ", 1)[0]
    return _RULE_BY_TITLE[title]


def sfsync_tasks(
    org: DevOrg, *, open_only: bool = True, deleted: bool = False
) -> list[dict[str, Any]]:
    """sfsync's Tasks as the org has them (created by the integration user, prefixed)."""
    where = [
        "Subject LIKE '[sfsync]%'",
        f"CreatedById = {soql_quote(org.integration_user_id)}",
    ]
    if open_only:
        where.append("IsClosed = false")
    # SOQL for the dev org; the one value is quoted with soql_quote.
    columns = "Id, WhatId, OwnerId, Subject, Status, IsClosed, IsDeleted, ActivityDate, Priority"
    soql = f"SELECT {columns}, Description FROM Task WHERE {' AND '.join(where)}"
    return org.query(soql, include_deleted=deleted)


def open_task_pairs(org: DevOrg) -> Counter[tuple[str, str]]:
    """How many open sfsync Tasks each (opportunity, rule) has."""
    return Counter((t["WhatId"], rule_of(t["Subject"])) for t in sfsync_tasks(org))


def open_findings(warehouse: Warehouse) -> set[tuple[str, str]]:
    with warehouse.engine.connect() as conn:
        rows = conn.execute(
            select(Finding.opportunity_id, Finding.rule).where(Finding.status == "open")
        ).all()
    return {(str(r[0]), str(r[1])) for r in rows}


def ledger_rows(warehouse: Warehouse) -> list[Any]:
    with warehouse.engine.connect() as conn:
        return list(conn.execute(select(WritebackLedger.__table__)).all())


def org_data(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def without_key_field(data: dict[str, Any]) -> dict[str, Any]:
    """The same org without the ``Sfsync_Key__c`` external id on Task."""
    custom = dict(data.get("custom_fields", {}))
    task_fields = {k: v for k, v in custom.get("Task", {}).items() if k != "Sfsync_Key__c"}
    custom["Task"] = task_fields
    return {**data, "custom_fields": custom}
