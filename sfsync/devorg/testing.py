"""Small, hand-made dev org data for tests (the synthetic generator is for big orgs).

``sample_org_data()`` returns a complete, valid data file as a dict: a few users
(one inactive, one with a manager), the standard stages, two products, ``n``
opportunities with line items, history and a task, and the ``Sfsync_Key__c``
external id on Task. Ids are deterministic, so tests can name records.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sfsync.formats import format_datetime, id15_to_18

__all__ = ["INACTIVE_USER_ID", "INTEGRATION_USER_ID", "REP_USER_ID", "make_id", "sample_org_data"]


def make_id(prefix: str, n: int) -> str:
    """A deterministic 18-character id: ``make_id("006", 1)``."""
    return id15_to_18(f"{prefix}{n:012d}")


INTEGRATION_USER_ID = make_id("005", 1)
REP_USER_ID = make_id("005", 2)
INACTIVE_USER_ID = make_id("005", 3)
MANAGER_USER_ID = make_id("005", 4)

_STAGES = (
    ("Prospecting", 1, False, False, 10.0, "Pipeline", "Pipeline"),
    ("Qualify", 2, False, False, 20.0, "Pipeline", "Pipeline"),
    ("Prove", 3, False, False, 50.0, "BestCase", "Best Case"),
    ("Negotiate", 4, False, False, 80.0, "Forecast", "Commit"),
    ("Closed Won", 5, True, True, 100.0, "Closed", "Closed"),
    ("Closed Lost", 6, True, False, 0.0, "Omitted", "Omitted"),
)


def sample_org_data(
    opportunities: int = 20,
    *,
    now: datetime | None = None,
    multi_currency: bool = False,
    record_types: bool = False,
) -> dict[str, Any]:
    """A valid data file with ``opportunities`` opportunities, stamped before ``now``."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    created = now - timedelta(days=60)

    def stamp(offset_s: int) -> str:
        return format_datetime(created + timedelta(seconds=offset_s))

    users = [
        {
            "Id": INTEGRATION_USER_ID,
            "Username": "integration@example.com",
            "FirstName": "sfsync",
            "LastName": "Integration",
            "IsActive": True,
        },
        {
            "Id": REP_USER_ID,
            "Username": "rep@example.com",
            "FirstName": "Ann",
            "LastName": "Lee",
            "IsActive": True,
            "ManagerId": MANAGER_USER_ID,
        },
        {
            "Id": INACTIVE_USER_ID,
            "Username": "gone@example.com",
            "FirstName": "Bob",
            "LastName": "Gone",
            "IsActive": False,
            "ManagerId": MANAGER_USER_ID,
        },
        {
            "Id": MANAGER_USER_ID,
            "Username": "boss@example.com",
            "FirstName": "Cy",
            "LastName": "Boss",
            "IsActive": True,
        },
    ]
    for user in users:
        user.update(CreatedDate=stamp(0), LastModifiedDate=stamp(0), SystemModstamp=stamp(0))
    stages = [
        {
            "Id": make_id("01J", i),
            "MasterLabel": name,
            "ApiName": name,
            "SortOrder": order,
            "IsActive": True,
            "IsClosed": closed,
            "IsWon": won,
            "DefaultProbability": prob,
            "ForecastCategory": fc,
            "ForecastCategoryName": fcn,
        }
        for i, (name, order, closed, won, prob, fc, fcn) in enumerate(_STAGES, 1)
    ]
    products = [
        {
            "Id": make_id("01t", 1),
            "Name": "Analyzer X",
            "ProductCode": "INS-1",
            "Family": "Instrument",
            "IsActive": True,
        },
        {
            "Id": make_id("01t", 2),
            "Name": "Service Plan",
            "ProductCode": "SRV-1",
            "Family": "Service",
            "IsActive": True,
        },
    ]
    opps: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    today = now.date()
    for n in range(1, opportunities + 1):
        stage = _STAGES[n % len(_STAGES)]
        opp_id = make_id("006", n)
        stamp_s = 3600 + n * 7  # distinct, increasing SystemModstamps with some ties
        close = today + timedelta(days=(n % 90) - 30)
        amount = float(1000 * (n % 97) + 500)
        opp = {
            "Id": opp_id,
            "Name": f"Opportunity {n}",
            "OwnerId": INACTIVE_USER_ID if n % 10 == 0 else REP_USER_ID,
            "StageName": stage[0],
            "CloseDate": close.isoformat(),
            "Amount": amount,
            "Probability": stage[4],
            "CreatedDate": stamp(stamp_s - 3600),
            "LastModifiedDate": stamp(stamp_s),
            "SystemModstamp": stamp(stamp_s),
            "Rev_Rec_Terms__c": "Standard" if n % 3 else None,
        }
        if multi_currency:
            opp["CurrencyIsoCode"] = "EUR" if n % 4 == 0 else "USD"
        if record_types:
            opp["RecordTypeId"] = make_id("012", 1 + n % 2)
        opps.append(opp)
        if n % 2:
            items.append(
                {
                    "Id": make_id("00k", n),
                    "OpportunityId": opp_id,
                    "Product2Id": products[0]["Id"],
                    "Quantity": 1.0,
                    "UnitPrice": amount,
                    "TotalPrice": amount,
                    "CreatedDate": stamp(stamp_s),
                    "SystemModstamp": stamp(stamp_s),
                }
            )
        history.append(
            {
                "Id": make_id("008", n),
                "OpportunityId": opp_id,
                "StageName": stage[0],
                "CloseDate": close.isoformat(),
                "Amount": amount,
                "Probability": stage[4],
                "ForecastCategory": stage[5],
                "CreatedDate": stamp(stamp_s - 3600),
                "SystemModstamp": stamp(stamp_s - 3600),
            }
        )
        if n % 5 == 0:
            tasks.append(
                {
                    "Id": make_id("00T", n),
                    "Subject": f"Follow up {n}",
                    "WhatId": opp_id,
                    "OwnerId": REP_USER_ID,
                    "ActivityDate": date.isoformat(close),
                    "Status": "Not Started",
                    "Priority": "Normal",
                    "CreatedDate": stamp(stamp_s),
                    "SystemModstamp": stamp(stamp_s),
                }
            )
    records: dict[str, Any] = {
        "Organization": [
            {
                "Id": make_id("00D", 1),
                "Name": "Test Org",
                "FiscalYearStartMonth": 1,
                "TimeZoneSidKey": "GMT",
                "IsSandbox": True,
            }
        ],
        "User": users,
        "OpportunityStage": stages,
        "Product2": products,
        "Opportunity": opps,
        "OpportunityLineItem": items,
        "OpportunityHistory": history,
        "Task": tasks,
    }
    if multi_currency:
        records["CurrencyType"] = [
            {
                "Id": make_id("01L", 1),
                "IsoCode": "USD",
                "ConversionRate": 1.0,
                "DecimalPlaces": 2,
                "IsActive": True,
                "IsCorporate": True,
            },
            {
                "Id": make_id("01L", 2),
                "IsoCode": "EUR",
                "ConversionRate": 0.9,
                "DecimalPlaces": 2,
                "IsActive": True,
                "IsCorporate": False,
            },
        ]
    if record_types:
        records["RecordType"] = [
            {
                "Id": make_id("012", 1),
                "Name": "Direct Standard",
                "DeveloperName": "Direct_Standard",
                "SobjectType": "Opportunity",
                "IsActive": True,
            },
            {
                "Id": make_id("012", 2),
                "Name": "Renewal",
                "DeveloperName": "Renewal",
                "SobjectType": "Opportunity",
                "IsActive": True,
            },
        ]
    return {
        "integration_user_id": INTEGRATION_USER_ID,
        "custom_fields": {
            "Task": {
                "Sfsync_Key__c": {
                    "type": "string",
                    "length": 80,
                    "externalId": True,
                    "unique": True,
                }
            },
            "Opportunity": {
                "Rev_Rec_Terms__c": {"type": "picklist", "values": ["Standard", "Deferred"]}
            },
        },
        "records": records,
    }
