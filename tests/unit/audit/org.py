"""Hand-built orgs as pure data: Salesforce-shaped records, the way the dev org holds them.

An :class:`Org` is what a sync would leave behind, described with Salesforce
field API names and REST JSON values (dates ``YYYY-MM-DD``, datetimes
``YYYY-MM-DDTHH:MM:SS.000+0000``), plus the two things only the warehouse
knows: the nightly ``opportunity_snapshot`` rows and the last human
modification kept across syncs. The pure reference (``reference.py``) reads it
directly; ``tests/integration/audit/load.py`` writes it into a warehouse. The
same records can later be fed to the dev org to test through a real sync.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sfsync.formats import id15_to_18

__all__ = [
    "HUMAN",
    "INTEGRATION_USER",
    "RECORD_TYPES",
    "STAGES",
    "Org",
    "sf_datetime",
    "sfid",
]


def sfid(prefix: str, number: int) -> str:
    """A valid 18-character Salesforce id: ``prefix`` (3 chars) and a running number."""
    return id15_to_18(f"{prefix}{number:012d}")


def sf_datetime(value: datetime | str) -> str:
    """A Salesforce REST datetime; strings ``YYYY-MM-DD[THH:MM[:SS]]`` are taken as UTC."""
    if isinstance(value, str):
        text = value if "T" in value else f"{value}T00:00:00"
        if len(text) == 16:
            text += ":00"
        value = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def parse_sf_datetime(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.000+0000").replace(tzinfo=UTC)


INTEGRATION_USER = sfid("005", 1)
HUMAN = sfid("005", 2)

# (ApiName, SortOrder, IsClosed, IsWon): the dev org's stages.
STAGES: tuple[tuple[str, int, bool, bool], ...] = (
    ("Create", 1, False, False),
    ("Qualify", 2, False, False),
    ("Develop", 3, False, False),
    ("Prove", 4, False, False),
    ("Negotiate", 5, False, False),
    ("Closed Won", 6, True, True),
    ("Closed Lost", 7, True, False),
    ("Closed Abandoned", 8, True, False),
)
CLOSED_STAGES = frozenset(name for name, _, closed, _ in STAGES if closed)

# (Id, DeveloperName, Name)
RECORD_TYPES: dict[str, tuple[str, str, str]] = {
    "direct": (sfid("012", 1), "Direct_Standard", "Direct Standard"),
    "indirect_fs": (sfid("012", 2), "Indirect_Field_Services", "Indirect Field Services"),
    "renewal": (sfid("012", 3), "Renewal", "Renewal"),
    # A DeveloperName that matches a sales record type's Name: matches by DeveloperName.
    "by_devname": (sfid("012", 4), "Direct Standard", "Direct (legacy)"),
    # Case matters: "direct standard" is not "Direct Standard".
    "lowercase": (sfid("012", 5), "direct_standard", "direct standard"),
}

# Family of each product; "instrument " (trailing space) and "instrument" are not "Instrument".
PRODUCTS: dict[str, tuple[str, str | None]] = {
    "instrument": (sfid("01t", 1), "Instrument"),
    "consumable": (sfid("01t", 2), "Consumables"),
    "service": (sfid("01t", 3), "Service"),
    "lower": (sfid("01t", 4), "instrument"),
    "nofamily": (sfid("01t", 5), None),
    "deleted_instrument": (sfid("01t", 6), "Instrument"),
}


@dataclass
class Org:
    """Records by object name, snapshots, and warehouse-only opportunity state."""

    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    integration_user_id: str = INTEGRATION_USER
    custom_fields: tuple[str, ...] = ("Rev_Rec_Terms__c",)
    _next: dict[str, int] = field(default_factory=dict)

    def add(self, sobject: str, record: dict[str, Any]) -> dict[str, Any]:
        self.records.setdefault(sobject, []).append(record)
        return record

    def new_id(self, prefix: str) -> str:
        self._next[prefix] = self._next.get(prefix, 100) + 1
        return sfid(prefix, self._next[prefix])

    @classmethod
    def standard(
        cls,
        *,
        fiscal_year_start_month: int | None = 1,
        currencies: dict[str, float] | None = None,
        corporate: str | None = "USD",
        custom_fields: tuple[str, ...] = ("Rev_Rec_Terms__c",),
    ) -> Org:
        """Users, stages, record types, products, an organization and optional currencies."""
        org = cls(custom_fields=custom_fields)
        org.add("User", {"Id": INTEGRATION_USER, "Name": "sfsync integration", "IsActive": True})
        org.add("User", {"Id": HUMAN, "Name": "Rita Rep", "IsActive": True})
        org.add(
            "Organization",
            {
                "Id": sfid("00D", 1),
                "Name": "Test org",
                "FiscalYearStartMonth": fiscal_year_start_month,
            },
        )
        for number, (api_name, order, closed, won) in enumerate(STAGES, start=1):
            org.add(
                "OpportunityStage",
                {
                    "Id": sfid("01J", number),
                    "ApiName": api_name,
                    "MasterLabel": api_name,
                    "SortOrder": order,
                    "IsClosed": closed,
                    "IsWon": won,
                    "IsActive": True,
                },
            )
        for record_id, developer_name, name in RECORD_TYPES.values():
            org.add(
                "RecordType",
                {
                    "Id": record_id,
                    "DeveloperName": developer_name,
                    "Name": name,
                    "SobjectType": "Opportunity",
                },
            )
        for key, (product_id, family) in PRODUCTS.items():
            org.add(
                "Product2",
                {
                    "Id": product_id,
                    "Name": key,
                    "Family": family,
                    "IsDeleted": key == "deleted_instrument",
                },
            )
        for number, (code, rate) in enumerate(sorted((currencies or {}).items()), start=1):
            org.add(
                "CurrencyType",
                {
                    "Id": sfid("01L", number),
                    "IsoCode": code,
                    "ConversionRate": rate,
                    "IsCorporate": code == corporate,
                    "IsActive": True,
                },
            )
        return org

    def opportunity(
        self,
        *,
        stage: str = "Qualify",
        close_date: date | str = "2024-09-30",
        amount: float | None = 10_000.0,
        currency: str | None = None,
        record_type: str | None = "direct",
        created: datetime | str = "2024-01-02T10:00:00",
        last_modified: datetime | str | None = None,
        last_modified_by: str = HUMAN,
        last_human_modified: datetime | str | None = None,
        last_human_assumed: bool = False,
        products: tuple[str, ...] = (),
        deleted_line_items: tuple[str, ...] = (),
        rev_rec_terms: str | None = None,
        fields: dict[str, Any] | None = None,
        history: tuple[tuple[datetime | str, date | str | None, str | None], ...] = (),
        snapshots: tuple[tuple[date | str, date | str | None, str | None], ...] = (),
        deleted: bool = False,
        name: str | None = None,
        opportunity_id: str | None = None,
    ) -> str:
        """Add an opportunity (plus line items, history and snapshots); return its Id.

        ``last_human_modified`` is the warehouse's kept value; when omitted it is
        ``last_modified`` if a human made it, else assumed (``last_human_assumed``)
        from ``last_modified`` like the sync does on a first sync.
        ``history`` rows are (CreatedDate, CloseDate, StageName).
        """
        opp_id = opportunity_id or self.new_id("006")
        modified = sf_datetime(last_modified if last_modified is not None else created)
        closed = stage in CLOSED_STAGES
        record: dict[str, Any] = {
            "Id": opp_id,
            "Name": name or f"Opportunity {opp_id[-6:]}",
            "OwnerId": HUMAN,
            "RecordTypeId": None if record_type is None else RECORD_TYPES[record_type][0],
            "StageName": stage,
            "CloseDate": str(close_date),
            "Amount": amount,
            "IsClosed": closed,
            "IsWon": stage == "Closed Won",
            "CreatedDate": sf_datetime(created),
            "CreatedById": HUMAN,
            "LastModifiedDate": modified,
            "LastModifiedById": last_modified_by,
            "IsDeleted": deleted,
        }
        if currency is not None or "CurrencyType" in self.records:
            record["CurrencyIsoCode"] = currency
        for custom in self.custom_fields:
            record[custom] = None
        if "Rev_Rec_Terms__c" in self.custom_fields:
            record["Rev_Rec_Terms__c"] = rev_rec_terms
        record.update(fields or {})
        if last_human_modified is not None:
            record["_last_human_modified_date"] = sf_datetime(last_human_modified)
            record["_last_human_assumed"] = last_human_assumed
        elif last_modified_by != self.integration_user_id:
            record["_last_human_modified_date"] = modified
            record["_last_human_assumed"] = False
        else:
            record["_last_human_modified_date"] = modified
            record["_last_human_assumed"] = True
        self.add("Opportunity", record)
        for product in products:
            self._line_item(opp_id, product, deleted=False)
        for product in deleted_line_items:
            self._line_item(opp_id, product, deleted=True)
        for created_at, close, hist_stage in history:
            self.add(
                "OpportunityHistory",
                {
                    "Id": self.new_id("008"),
                    "OpportunityId": opp_id,
                    "StageName": hist_stage,
                    "CloseDate": None if close is None else str(close),
                    "CreatedDate": sf_datetime(created_at),
                    "CreatedById": HUMAN,
                },
            )
        for captured_on, close, snap_stage in snapshots:
            self.snapshots.append(
                {
                    "opportunity_id": opp_id,
                    "captured_on": str(captured_on),
                    "close_date": None if close is None else str(close),
                    "stage_name": snap_stage,
                    "is_closed": snap_stage in CLOSED_STAGES,
                }
            )
        return opp_id

    def _line_item(self, opp_id: str, product: str, *, deleted: bool) -> None:
        self.add(
            "OpportunityLineItem",
            {
                "Id": self.new_id("00k"),
                "OpportunityId": opp_id,
                "Product2Id": PRODUCTS[product][0],
                "IsDeleted": deleted,
            },
        )

    def get(self, sobject: str) -> list[dict[str, Any]]:
        return self.records.get(sobject, [])
