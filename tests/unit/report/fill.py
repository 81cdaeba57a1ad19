"""A small warehouse for report tests, written directly with Core inserts.

As of 2024-08-15 (fiscal year = calendar year). The opportunities cover what
the report has to tell apart:

- ``OXTED``: seed 004's example: open 237 days, stage unchanged for 100 days,
  close date moved to a later month 4 times (from OpportunityHistory); due
  to close this month.
- ``HOSTILE``: a name full of markup, quotes and a URL-ish ``//``.
- ``LOWER``: no history, two snapshots: 2 extensions, a lower bound; its owner
  is inactive.
- ``NOHIST``: no history and no snapshots: 0 extensions, a lower bound; due
  this month.
- ``WON`` (closed), ``GONE`` (deleted), ``LATER`` (created after the as-of
  date): none of them is an open opportunity on 2024-08-15.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from sfsync.config import DatabaseSettings
from sfsync.warehouse import Warehouse, open_warehouse, upgrade
from sfsync.warehouse.models import (
    Finding,
    Opportunity,
    OpportunityHistory,
    OpportunitySnapshot,
    OpportunityStage,
    Organization,
    Run,
    User,
    WritebackLedger,
    table_of,
)

__all__ = [
    "AS_OF",
    "GONE",
    "HOSTILE",
    "HOSTILE_NAME",
    "LATER",
    "LOWER",
    "MISSING",
    "NOHIST",
    "OWNER_ADA",
    "OWNER_BOB",
    "OWNER_CAROL",
    "OXTED",
    "WON",
    "fill_small_warehouse",
    "new_warehouse",
]

AS_OF = date(2024, 8, 15)
SYNCED_AT = datetime(2024, 8, 15, 3, 0, tzinfo=UTC)

ORG_ID = "00D000000000001EAA"
OWNER_ADA = "005000000000001AAA"
OWNER_BOB = "005000000000002AAA"
OWNER_CAROL = "005000000000003AAA"

OXTED = "006000000000001AAA"
HOSTILE = "006000000000002AAA"
LOWER = "006000000000003AAA"
NOHIST = "006000000000004AAA"
WON = "006000000000005AAA"
GONE = "006000000000006AAA"
LATER = "006000000000007AAA"
MISSING = "006000000000099AAA"  # a finding whose opportunity the warehouse no longer has

HOSTILE_NAME = "<script>alert(\"pwned\")</script> & 'Co' <img src=x onerror=alert(1)> //evil"
LOGIN_ERROR = "cannot connect to https://login.salesforce.com (salesforce.login_url): timed out"


def new_warehouse(url: str) -> Warehouse:
    """An empty warehouse at the current schema head."""
    warehouse = open_warehouse(DatabaseSettings(url=url), require_head=False, create=True)
    with warehouse.engine.begin() as conn:
        upgrade(conn)
    return warehouse


def _at(day: str, hour: int = 10) -> datetime:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC) + timedelta(
        hours=hour
    )


def _object(record_id: str, **values: Any) -> dict[str, Any]:
    return {
        "id": record_id,
        "raw": {"Id": record_id},
        "is_deleted": False,
        "system_modstamp": SYNCED_AT,
        "synced_at": SYNCED_AT,
        **values,
    }


def _opportunity(
    record_id: str,
    name: str,
    owner: str,
    stage: str,
    close: str,
    created: str,
    *,
    closed: bool = False,
    deleted: bool = False,
    amount: float | None = 60_000.0,
    touched: str = "2024-08-01",
) -> dict[str, Any]:
    return _object(
        record_id,
        is_deleted=deleted,
        name=name,
        owner_id=owner,
        stage_name=stage,
        close_date=date.fromisoformat(close),
        amount=amount,
        currency_iso_code="EUR",
        is_closed=closed,
        is_won=closed,
        created_date=_at(created),
        last_modified_date=_at(touched),
        last_human_modified_date=_at(touched),
    )


def _history(
    record_id: str, opportunity: str, created: str, stage: str, close: str
) -> dict[str, Any]:
    return _object(
        record_id,
        opportunity_id=opportunity,
        stage_name=stage,
        close_date=date.fromisoformat(close),
        created_date=_at(created),
    )


def _finding(
    rule: str,
    opportunity: str,
    status: str,
    *,
    opened_run: int,
    resolved_run: int | None = None,
    severity: str = "warn",
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "rule": rule,
        "opportunity_id": opportunity,
        "status": status,
        "profile": "global",
        "severity": severity,
        "details": details or {},
        "settings_hash": "0" * 64,
        "opened_run_id": opened_run,
        "resolved_run_id": resolved_run,
        "last_seen_run_id": opened_run,
        "opened_at": _at("2024-08-14", 4),
        "resolved_at": None if resolved_run is None else _at("2024-08-15", 4),
        "opened_as_of": date(2024, 8, 14),
        "resolved_as_of": None if resolved_run is None else AS_OF,
    }


def _audit_counts(as_of: str, rules: dict[str, tuple[int, int, int, int]]) -> dict[str, Any]:
    return {
        "as_of": as_of,
        "rules": {
            rule: {"open": o, "new": n, "resolved": r, "waived": w, "severity": "warn"}
            for rule, (o, n, r, w) in rules.items()
        },
        "open_by_severity": {"warn": sum(v[0] for v in rules.values())},
        "settings": {
            "profile": "global",
            "timezone": "UTC",
            "fiscal_year_start_month": 1,
            "fiscal_year_source": "organization",
            "stage_source": "OpportunityStage.SortOrder",
            "corporate_currency": None,
            "settings_hash": {rule: {"global": "a" * 64} for rule in rules},
        },
    }


_SYNC_COUNTS = {
    "status": "ok",
    "api_calls": 17,
    "seconds": 4.2,
    "objects": {
        "Opportunity": {
            "object": "Opportunity",
            "mode": "rest",
            "upserted": 7,
            "deleted": 1,
            "problems": 0,
            "api_calls": 2,
            "seconds": 1.1,
            "reconciled": False,
        },
        "User": {
            "object": "User",
            "mode": "rest",
            "upserted": 3,
            "deleted": 0,
            "problems": 0,
            "api_calls": 1,
            "seconds": 0.2,
            "reconciled": False,
        },
    },
    "warnings": [],
}


def _run(
    run_id: int,
    kind: str,
    status: str,
    started: datetime,
    seconds: float | None,
    counts: dict[str, Any],
    *,
    as_of: date | None = None,
    api_calls: int = 0,
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "id": run_id,
        "kind": kind,
        "status": status,
        "started_at": started,
        "ended_at": None if seconds is None else started + timedelta(seconds=seconds),
        "as_of": as_of,
        "api_calls": api_calls,
        "counts": counts,
        "error": error,
        "hostname": "worker-1",
        "pid": 4242,
    }


def fill_small_warehouse(warehouse: Warehouse, *, with_audits: bool = True) -> None:
    """Insert the org described in the module docstring (runs and findings if asked)."""
    organization = [
        _object(
            ORG_ID,
            name="Acme Instruments",
            fiscal_year_start_month=1,
            is_sandbox=False,
            default_currency_iso_code="EUR",
        )
    ]
    users = [
        _object(OWNER_ADA, name="Ada Lovelace", username="ada@acme.test", is_active=True),
        _object(OWNER_BOB, name="Bob <b>Builder</b>", username="bob@acme.test", is_active=True),
        _object(OWNER_CAROL, name="Carol Gone", username="carol@acme.test", is_active=False),
    ]
    stages = [
        _object(
            f"01J00000000000{i}AAA",
            api_name=name,
            master_label=name,
            sort_order=i,
            is_active=True,
            is_closed=name.startswith("Closed"),
            is_won=name == "Closed Won",
        )
        for i, name in enumerate(
            ["Create", "Qualify", "Prove", "Negotiate", "Closed Won", "Closed Lost"], start=1
        )
    ]
    opportunities = [
        # 2024-08-15 minus 237 days is 2023-12-22.
        _opportunity(
            OXTED,
            "Oxted Manufacturing - Q3 renewal",
            OWNER_ADA,
            "Negotiate",
            "2024-08-30",
            "2023-12-22",
            touched="2024-07-01",
        ),
        _opportunity(HOSTILE, HOSTILE_NAME, OWNER_BOB, "Prove", "2024-09-10", "2024-06-01"),
        _opportunity(
            LOWER,
            "Lower Bound Ltd",
            OWNER_CAROL,
            "Qualify",
            "2024-10-05",
            "2024-06-20",
            amount=80_000.0,
            touched="2024-07-10",
        ),
        _opportunity(
            NOHIST, "No History GmbH", OWNER_ADA, "Qualify", "2024-08-05", "2024-08-01", amount=None
        ),
        _opportunity(
            WON, "Won Deal", OWNER_ADA, "Closed Won", "2024-07-01", "2024-03-01", closed=True
        ),
        _opportunity(
            GONE, "Deleted Deal", OWNER_BOB, "Qualify", "2024-08-10", "2024-03-01", deleted=True
        ),
        _opportunity(LATER, "Created Later", OWNER_BOB, "Create", "2024-12-01", "2024-09-01"),
    ]
    history = [
        # Oxted: 4 month extensions; stage changes on 2024-02-01 and 2024-05-07 (100 days).
        _history("008000000000001AAA", OXTED, "2023-12-22", "Create", "2024-03-15"),
        _history("008000000000002AAA", OXTED, "2024-02-01", "Qualify", "2024-04-10"),
        _history("008000000000003AAA", OXTED, "2024-03-20", "Qualify", "2024-05-20"),
        _history("008000000000004AAA", OXTED, "2024-05-07", "Negotiate", "2024-06-30"),
        # Hostile: one row in August; the current close date in September is one extension.
        _history("008000000000005AAA", HOSTILE, "2024-06-01", "Prove", "2024-08-25"),
        _history("008000000000006AAA", WON, "2024-03-01", "Qualify", "2024-06-01"),
        _history("008000000000007AAA", WON, "2024-06-15", "Closed Won", "2024-07-01"),
    ]
    snapshots = [
        {
            "opportunity_id": LOWER,
            "captured_on": date(2024, 7, 1),
            "close_date": date(2024, 7, 31),
            "stage_name": "Qualify",
            "amount": None,
            "is_closed": False,
            "captured_at": _at("2024-07-01", 3),
        },
        {
            "opportunity_id": LOWER,
            "captured_on": date(2024, 7, 15),
            "close_date": date(2024, 8, 20),
            "stage_name": "Qualify",
            "amount": None,
            "is_closed": False,
            "captured_at": _at("2024-07-15", 3),
        },
    ]
    with warehouse.engine.begin() as conn:
        conn.execute(insert(table_of(Organization)), organization)
        conn.execute(insert(table_of(User)), users)
        conn.execute(insert(table_of(OpportunityStage)), stages)
        conn.execute(insert(table_of(Opportunity)), opportunities)
        conn.execute(insert(table_of(OpportunityHistory)), history)
        conn.execute(insert(table_of(OpportunitySnapshot)), snapshots)
        if with_audits:
            conn.execute(insert(table_of(Run)), _runs())
            conn.execute(insert(table_of(Finding)), _findings())
            conn.execute(insert(table_of(WritebackLedger)), _ledger())


def _runs() -> list[dict[str, Any]]:
    everything = {
        "close_date_past": (3, 3, 0, 0),
        "stale_last_modified": (3, 3, 0, 0),
        "missing_rev_rec_terms": (1, 1, 0, 0),
        "close_date_slipping": (1, 1, 0, 0),
    }
    later = {
        "close_date_past": (2, 0, 1, 0),
        "stale_last_modified": (2, 0, 0, 1),
        "missing_rev_rec_terms": (1, 0, 0, 0),
        "close_date_slipping": (1, 0, 0, 0),
    }
    return [
        _run(1, "sync", "ok", _at("2024-08-14", 2), 4.2, {"sync": _SYNC_COUNTS}, api_calls=17),
        _run(
            2,
            "audit",
            "ok",
            _at("2024-08-14", 4),
            0.8,
            {"audit": _audit_counts("2024-08-14", everything)},
            as_of=date(2024, 8, 14),
        ),
        _run(
            3,
            "run",
            "ok",
            _at("2024-08-15", 2),
            754.0,
            {
                "sync": _SYNC_COUNTS,
                "audit": _audit_counts("2024-08-15", later),
                "writeback": {
                    "status": "ok",
                    "applied": True,
                    "mode": "upsert",
                    "created": 2,
                    "completed": 0,
                    "reassigned": 1,
                    "skipped": 0,
                    "failed": 0,
                    "planned": {"create_task": 2, "skip": 0},
                },
            },
            as_of=AS_OF,
            api_calls=31,
        ),
        _run(4, "sync", "failed", _at("2024-08-15", 5), 180.0, {}, error=LOGIN_ERROR),
        _run(
            5,
            "audit",
            "ok",
            _at("2024-08-15", 6),
            0.3,
            {"audit": _audit_counts("2024-08-15", {"close_date_slipping": (1, 0, 0, 0)})},
            as_of=AS_OF,
        ),
        _run(6, "sync", "running", _at("2024-08-15", 7), None, {}),
    ]


def _findings() -> list[dict[str, Any]]:
    """Details as each rule's details class stores them; Lower Bound's stale finding has
    none (a row from before details were kept)."""
    slipping = {
        "month_extensions": 4,
        "days_since_stage_change": 100,
        "days_open": 237,
        "lower_bound": False,
    }
    values = {"k": 0, "currency": "EUR", "amount_threshold": 50_000.0}
    stale = {
        **values,
        "stage": "Negotiate",
        "close_date": "2024-08-30",
        "amount": 60_000.0,
        "converted_amount": 60_000.0,
        "big": True,
        "has_instrument": False,
        "min_stage": "Qualify",
        "threshold_days": 14,
        "days_since_last_human_modification": 44,
        "last_human_modified_date": "2024-07-01T10:00:00+00:00",
        "last_human_modified_by_id": None,
        "last_human_assumed": False,
    }
    past = {
        **values,
        "stage": "Qualify",
        "close_date": "2024-08-05",
        "amount": None,
        "converted_amount": 0.0,
        "big": False,
        "has_instrument": True,
        "today": "2024-08-14",
    }
    rev_rec = {
        "stage": "Prove",
        "min_stage": "Prove",
        "has_instrument": True,
        "field": "Rev_Rec_Terms__c",
        "rev_rec_terms": None,
    }
    return [
        _finding("close_date_slipping", OXTED, "open", opened_run=2, details=slipping),
        _finding("stale_last_modified", OXTED, "open", opened_run=2, details=stale),
        _finding("stale_last_modified", LOWER, "open", opened_run=2),
        _finding("stale_last_modified", HOSTILE, "waived", opened_run=2),
        _finding("missing_rev_rec_terms", HOSTILE, "open", opened_run=2, details=rev_rec),
        _finding("close_date_past", NOHIST, "open", opened_run=2, severity="error", details=past),
        _finding("close_date_past", MISSING, "open", opened_run=2, severity="error"),
        _finding(
            "close_date_past", LOWER, "resolved", opened_run=2, resolved_run=3, severity="error"
        ),
    ]


def _ledger() -> list[dict[str, Any]]:
    """Run 3 wrote two Tasks; Lower Bound's owner is inactive, so its Task went to Ada."""
    written = _at("2024-08-15", 2)

    def row(opportunity: str, rule: str, owner: str, **extra: Any) -> dict[str, Any]:
        return {
            "idempotency_key": f"sfsync:{rule}:{opportunity}:1",
            "run_id": 3,
            "rule": rule,
            "opportunity_id": opportunity,
            "action": "create_task",
            "state": "confirmed",
            "salesforce_id": "00T" + opportunity[3:],
            "owner_id": owner,
            "attempts": 1,
            "payload": {"Subject": "[sfsync] ..."},
            "created_at": written,
            "updated_at": written,
            "confirmed_at": written,
            # executemany takes its columns from the first row: every row names them all.
            "original_owner_id": None,
            "reassigned_reason": None,
            **extra,
        }

    return [
        row(OXTED, "close_date_slipping", OWNER_ADA),
        row(
            LOWER,
            "stale_last_modified",
            OWNER_ADA,
            original_owner_id=OWNER_CAROL,
            reassigned_reason=f"owner Carol Gone ({OWNER_CAROL}) is inactive: assigned to the "
            f"fallback user Ada Lovelace ({OWNER_ADA})",
        ),
    ]
