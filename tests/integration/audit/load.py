"""Write a hand-built :class:`Org` into a warehouse the way the sync would leave it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, insert

from sfsync.config import DatabaseSettings
from sfsync.warehouse import Warehouse, open_warehouse, upgrade
from sfsync.warehouse.models import (
    CurrencyType,
    Finding,
    Opportunity,
    OpportunityHistory,
    OpportunityLineItem,
    OpportunitySnapshot,
    OpportunityStage,
    Organization,
    Product2,
    RecordType,
    Run,
    User,
    Waiver,
)
from tests.unit.audit.org import Org, parse_sf_datetime

__all__ = ["clear_warehouse", "load_org", "new_warehouse"]

SYNCED_AT = datetime(2024, 8, 16, 3, 0, tzinfo=UTC)


def new_warehouse(url: str) -> Warehouse:
    """An empty warehouse at the current schema head."""
    warehouse = open_warehouse(DatabaseSettings(url=url), require_head=False, create=True)
    with warehouse.engine.begin() as conn:
        upgrade(conn)
    return warehouse


def _dt(value: str | None) -> datetime | None:
    return None if value is None else parse_sf_datetime(value)


def _d(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _common(record: dict[str, Any]) -> dict[str, Any]:
    raw = {k: v for k, v in record.items() if not k.startswith("_")}
    return {
        "id": record["Id"],
        "raw": raw,
        "is_deleted": bool(record.get("IsDeleted", False)),
        "system_modstamp": _dt(record.get("LastModifiedDate")),
        "synced_at": SYNCED_AT,
    }


def _opportunity(org: Org, record: dict[str, Any], settings: dict[str, str | None]) -> dict:  # type: ignore[type-arg]
    def custom(key: str | None) -> Any:
        return None if key is None else record.get(key)

    instrument = custom(settings.get("instrument_field"))
    return {
        **_common(record),
        "name": record.get("Name"),
        "owner_id": record.get("OwnerId"),
        "record_type_id": record.get("RecordTypeId"),
        "stage_name": record.get("StageName"),
        "close_date": _d(record.get("CloseDate")),
        "amount": record.get("Amount"),
        "currency_iso_code": record.get("CurrencyIsoCode"),
        "is_closed": record.get("IsClosed"),
        "is_won": record.get("IsWon"),
        "created_date": _dt(record.get("CreatedDate")),
        "created_by_id": record.get("CreatedById"),
        "last_modified_date": _dt(record.get("LastModifiedDate")),
        "last_modified_by_id": record.get("LastModifiedById"),
        "rev_rec_terms": custom(settings.get("rev_rec_terms")),
        "instrument_flag": None if instrument is None else bool(instrument),
        "scope_value": custom(settings.get("scope_field")),
        "last_human_modified_date": _dt(record.get("_last_human_modified_date")),
        "last_human_modified_by_id": None
        if record.get("_last_human_assumed")
        else record.get("LastModifiedById"),
        "last_human_assumed": bool(record.get("_last_human_assumed", False)),
    }


def load_org(
    warehouse: Warehouse,
    org: Org,
    *,
    rev_rec_terms: str = "Rev_Rec_Terms__c",
    instrument_field: str | None = None,
    scope_field: str | None = None,
) -> None:
    """Insert every record of ``org``; the custom-field names say which raw keys feed columns."""
    fields = {
        "rev_rec_terms": rev_rec_terms,
        "instrument_field": instrument_field,
        "scope_field": scope_field,
    }
    rows: list[tuple[Any, list[dict[str, Any]]]] = [
        (
            Organization,
            [
                {
                    **_common(r),
                    "name": r.get("Name"),
                    "fiscal_year_start_month": r.get("FiscalYearStartMonth"),
                }
                for r in org.get("Organization")
            ],
        ),
        (
            User,
            [
                {**_common(r), "name": r.get("Name"), "is_active": r.get("IsActive")}
                for r in org.get("User")
            ],
        ),
        (
            OpportunityStage,
            [
                {
                    **_common(r),
                    "api_name": r["ApiName"],
                    "master_label": r.get("MasterLabel"),
                    "sort_order": r.get("SortOrder"),
                    "is_closed": r.get("IsClosed"),
                    "is_won": r.get("IsWon"),
                    "is_active": r.get("IsActive"),
                }
                for r in org.get("OpportunityStage")
            ],
        ),
        (
            RecordType,
            [
                {
                    **_common(r),
                    "developer_name": r.get("DeveloperName"),
                    "name": r.get("Name"),
                    "sobject_type": r.get("SobjectType"),
                }
                for r in org.get("RecordType")
            ],
        ),
        (
            Product2,
            [
                {**_common(r), "name": r.get("Name"), "family": r.get("Family")}
                for r in org.get("Product2")
            ],
        ),
        (
            CurrencyType,
            [
                {
                    **_common(r),
                    "iso_code": r["IsoCode"],
                    "conversion_rate": r.get("ConversionRate"),
                    "is_corporate": r.get("IsCorporate"),
                    "is_active": r.get("IsActive"),
                }
                for r in org.get("CurrencyType")
            ],
        ),
        (Opportunity, [_opportunity(org, r, fields) for r in org.get("Opportunity")]),
        (
            OpportunityLineItem,
            [
                {
                    **_common(r),
                    "opportunity_id": r["OpportunityId"],
                    "product2_id": r.get("Product2Id"),
                }
                for r in org.get("OpportunityLineItem")
            ],
        ),
        (
            OpportunityHistory,
            [
                {
                    **_common(r),
                    "opportunity_id": r["OpportunityId"],
                    "stage_name": r.get("StageName"),
                    "close_date": _d(r.get("CloseDate")),
                    "created_date": _dt(r.get("CreatedDate")),
                    "created_by_id": r.get("CreatedById"),
                }
                for r in org.get("OpportunityHistory")
            ],
        ),
        (
            OpportunitySnapshot,
            [
                {
                    "opportunity_id": s["opportunity_id"],
                    "captured_on": _d(s["captured_on"]),
                    "close_date": _d(s.get("close_date")),
                    "stage_name": s.get("stage_name"),
                    "amount": s.get("amount"),
                    "is_closed": s.get("is_closed"),
                    "captured_at": datetime.combine(
                        _d(s["captured_on"]) or date.min, datetime.min.time(), UTC
                    ),
                }
                for s in org.snapshots
            ],
        ),
    ]
    with warehouse.engine.begin() as conn:
        for model, values in rows:
            if values:
                conn.execute(insert(model.__table__), values)


def clear_warehouse(warehouse: Warehouse) -> None:
    """Delete every row the audit reads or writes (for property tests reusing one database)."""
    models: list[Any] = [
        Finding,
        Waiver,
        Run,
        OpportunitySnapshot,
        OpportunityHistory,
        OpportunityLineItem,
        Opportunity,
        CurrencyType,
        Product2,
        RecordType,
        OpportunityStage,
        User,
        Organization,
    ]
    with warehouse.engine.begin() as conn:
        for model in models:
            conn.execute(delete(model.__table__))
