"""The built-in catalogue of the standard objects and fields the dev org knows.

Salesforce's describe is the source of truth for clients, so the dev org keeps
one static description of every standard field it serves (docs/salesforce-api.md,
Objects), and adds the org's custom fields to it when a data file is loaded. The
store, the SOQL translator, the write path and describe all read this one
catalogue, so a field exists everywhere or nowhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from sfsync.config import SYNC_OBJECTS

__all__ = [
    "BOOL_TYPES",
    "COMPOUND_TYPES",
    "CURRENCY_OBJECTS",
    "DATA_FILE_OBJECTS",
    "FORECAST_CATEGORIES",
    "KEY_PREFIXES",
    "MASTER_RECORD_TYPE_ID",
    "NUMBER_TYPES",
    "STRING_TYPES",
    "TASK_PRIORITIES",
    "TASK_STATUSES",
    "FieldDef",
    "SObjectDef",
    "TaskPicklistValue",
    "custom_field",
    "standard_objects",
]

STRING_TYPES = frozenset(
    {"string", "textarea", "picklist", "multipicklist", "combobox", "email", "phone", "url"}
)
NUMBER_TYPES = frozenset({"currency", "percent", "double", "int", "long"})
BOOL_TYPES = frozenset({"boolean"})
ID_TYPES = frozenset({"id", "reference"})

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "double": "xsd:double",
    "int": "xsd:int",
    "long": "xsd:long",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "address": "urn:address",
    "location": "urn:location",
}

#: Compound types: read-only fields whose value is an object of their components.
COMPOUND_TYPES = frozenset({"address", "location"})
#: The geocode accuracies Salesforce lists for an address's ``GeocodeAccuracy``.
GEOCODE_ACCURACIES = (
    "Address",
    "NearAddress",
    "Block",
    "Street",
    "ExtendedZip",
    "Zip",
    "Neighborhood",
    "City",
    "County",
    "State",
    "Unknown",
)

MASTER_RECORD_TYPE_ID = "012000000000000AAA"

#: Salesforce's key prefixes (an Id's first three characters) for the objects served here.
#: ``01J`` is PicklistMaster: stage, task status and task priority rows all carry it.
KEY_PREFIXES = {
    "Organization": "00D",
    "User": "005",
    "RecordType": "012",
    "OpportunityStage": "01J",
    "CurrencyType": "01L",
    "Product2": "01t",
    "Opportunity": "006",
    "OpportunityLineItem": "00k",
    "OpportunityHistory": "008",
    "Task": "00T",
    "TaskStatus": "01J",
    "TaskPriority": "01J",
}

# Opportunity forecast categories: the API value of ForecastCategoryName, and the
# ForecastCategory (RO) value Salesforce derives from it.
FORECAST_CATEGORIES = {
    "Omitted": "Omitted",
    "Pipeline": "Pipeline",
    "Best Case": "BestCase",
    "Commit": "Forecast",
    "Closed": "Closed",
}


@dataclass(frozen=True, slots=True)
class TaskPicklistValue:
    """One TaskStatus / TaskPriority row (a fixed catalogue, not part of the data file)."""

    label: str
    closed_or_high: bool
    default: bool
    sort_order: int


TASK_STATUSES = (
    TaskPicklistValue("Not Started", False, True, 1),
    TaskPicklistValue("In Progress", False, False, 2),
    TaskPicklistValue("Completed", True, False, 3),
    TaskPicklistValue("Waiting on someone else", False, False, 4),
    TaskPicklistValue("Deferred", False, False, 5),
)
TASK_PRIORITIES = (
    TaskPicklistValue("High", True, False, 1),
    TaskPicklistValue("Normal", False, True, 2),
    TaskPicklistValue("Low", False, False, 3),
)


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One field: enough to describe it, store it, filter on it and validate writes."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    calculated: bool = False
    external_id: bool = False
    unique: bool = False
    custom: bool = False
    defaulted_on_create: bool = False
    picklist_values: tuple[str, ...] = ()
    restricted_picklist: bool = False
    precision: int = 0
    scale: int = 0
    compound_name: str | None = None  # describe's compoundFieldName: the compound it is part of
    components: tuple[str, ...] = ()  # a compound field's parts (Street, City, ...)
    extra_type_info: str | None = None  # describe's extraTypeInfo (personname, plaintextarea)

    @property
    def soap_type(self) -> str:
        return _SOAP_TYPES.get(self.type, "xsd:string")

    @property
    def storage(self) -> str:
        """How the store keeps it: ``text`` (ids, strings, dates), ``bool``, ``int``, ``real``."""
        if self.type in BOOL_TYPES:
            return "bool"
        if self.type in ("int", "long"):
            return "int"
        if self.type in NUMBER_TYPES:
            return "real"
        return "text"

    @property
    def is_compound(self) -> bool:
        """An address or location: no value of its own, an object built from its components."""
        return bool(self.components)

    @property
    def is_text(self) -> bool:
        """A free-text or picklist value: compared case-insensitively in SOQL."""
        return self.type in STRING_TYPES


@dataclass
class SObjectDef:
    """One object: its fields in describe order plus the flags describe reports."""

    name: str
    key_prefix: str
    label: str
    label_plural: str
    fields: dict[str, FieldDef] = field(default_factory=dict)
    createable: bool = False
    updateable: bool = False
    deletable: bool = False
    bulk_supported: bool = True
    in_data_file: bool = True
    _lower: dict[str, str] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._lower = {name.lower(): name for name in self.fields}

    def add(self, fdef: FieldDef) -> None:
        self.fields[fdef.name] = fdef
        self._lower[fdef.name.lower()] = fdef.name

    def canonical(self, name: str) -> str | None:
        """The field's canonical API name for a case-insensitive spelling, or None."""
        return self._lower.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        """The reference field whose relationship name is ``name`` (case-insensitive)."""
        lowered = name.lower()
        for fdef in self.fields.values():
            if fdef.relationship_name and fdef.relationship_name.lower() == lowered:
                return fdef
        return None

    def copy(self) -> SObjectDef:
        return SObjectDef(
            self.name,
            self.key_prefix,
            self.label,
            self.label_plural,
            dict(self.fields),
            self.createable,
            self.updateable,
            self.deletable,
            self.bulk_supported,
            self.in_data_file,
        )


def _label(name: str) -> str:
    base = name[:-2] if name.endswith("Id") and len(name) > 2 else name
    out = ""
    for i, ch in enumerate(base):
        if ch.isupper() and i and not base[i - 1].isupper():
            out += " "
        out += ch
    return out.replace("__c", "").replace("_", " ")


def _f(name: str, type_: str, **kw: object) -> FieldDef:
    fdef = FieldDef(name, type_, **kw)  # type: ignore[arg-type]
    if not fdef.label:
        fdef = replace(fdef, label=_label(name))
    if not fdef.length and fdef.type in STRING_TYPES:
        fdef = replace(fdef, length=255)
    if fdef.type in ID_TYPES:
        fdef = replace(fdef, length=18)
    if fdef.type in ("currency", "double"):
        fdef = replace(fdef, precision=18, scale=2)
    if fdef.type == "percent":
        fdef = replace(fdef, precision=3, scale=0)
    if fdef.type == "textarea" and fdef.extra_type_info is None:
        fdef = replace(fdef, extra_type_info="plaintextarea")
    return fdef


def _address(prefix: str = "") -> list[FieldDef]:
    """A compound address (``Address``, ``MailingAddress``...) and its components."""
    compound = f"{prefix}Address"
    parts = [
        _f(f"{prefix}Street", "textarea", length=255, compound_name=compound),
        _f(f"{prefix}City", "string", length=40, compound_name=compound),
        _f(f"{prefix}State", "string", length=80, compound_name=compound),
        _f(f"{prefix}PostalCode", "string", length=20, compound_name=compound),
        _f(f"{prefix}Country", "string", length=80, compound_name=compound),
        _f(f"{prefix}Latitude", "double", compound_name=compound),
        _f(f"{prefix}Longitude", "double", compound_name=compound),
        _f(
            f"{prefix}GeocodeAccuracy",
            "picklist",
            length=40,
            compound_name=compound,
            picklist_values=GEOCODE_ACCURACIES,
            restricted_picklist=True,
        ),
    ]
    parts = [replace(p, precision=18, scale=15) if p.type == "double" else p for p in parts]
    address = _ro(compound, "address", components=tuple(p.name for p in parts))
    return [*parts, address]


def _viewed() -> list[FieldDef]:
    """``LastViewedDate``/``LastReferencedDate``: on objects with recent-items tracking."""
    return [_ro("LastViewedDate", "datetime"), _ro("LastReferencedDate", "datetime")]


def _ro(name: str, type_: str, **kw: object) -> FieldDef:
    return _f(name, type_, createable=False, updateable=False, **kw)


def _ref(name: str, target: str | tuple[str, ...], rel: str, **kw: object) -> FieldDef:
    targets = (target,) if isinstance(target, str) else target
    return _f(name, "reference", reference_to=targets, relationship_name=rel, **kw)


def _system(*, last_modified: bool = True) -> list[FieldDef]:
    fields = [
        _ro("Id", "id", nillable=False, label="Record ID"),
        _ro("IsDeleted", "boolean", nillable=False, label="Deleted"),
        _ro("CreatedDate", "datetime", nillable=False),
        _ref("CreatedById", "User", "CreatedBy", createable=False, updateable=False),
    ]
    if last_modified:
        fields += [
            _ro("LastModifiedDate", "datetime", nillable=False),
            _ref("LastModifiedById", "User", "LastModifiedBy", createable=False, updateable=False),
        ]
    fields.append(_ro("SystemModstamp", "datetime", nillable=False))
    return fields


def _obj(
    name: str,
    plural: str,
    fields: Iterable[FieldDef],
    *,
    writable: bool = False,
    last_modified: bool = True,
    bulk: bool = True,
    in_data_file: bool = True,
) -> SObjectDef:
    all_fields = {f.name: f for f in _system(last_modified=last_modified)}
    for fdef in fields:
        all_fields[fdef.name] = fdef
    return SObjectDef(
        name,
        KEY_PREFIXES[name],
        _label(name),
        plural,
        all_fields,
        createable=writable,
        updateable=writable,
        deletable=writable,
        bulk_supported=bulk,
        in_data_file=in_data_file,
    )


# Objects that carry CurrencyIsoCode in a multi-currency org.
CURRENCY_OBJECTS = ("Opportunity", "OpportunityLineItem", "OpportunityHistory", "Product2")

# The objects a data file may hold, in dependency order (parents first).
# The data file holds the objects sfsync syncs, parents first (the catalogue's order).
DATA_FILE_OBJECTS = SYNC_OBJECTS


def standard_objects() -> dict[str, SObjectDef]:
    """A fresh copy of the standard catalogue (each org adds its custom fields to its own)."""
    objects = [
        _obj(
            "Organization",
            "Organizations",
            [
                _f("Name", "string", nillable=False),
                _f("FiscalYearStartMonth", "int"),
                _f("UsesStartDateAsFiscalYearName", "boolean"),
                _f("DefaultLocaleSidKey", "picklist"),
                _f("TimeZoneSidKey", "picklist"),
                _f("LanguageLocaleKey", "picklist"),
                _f("OrganizationType", "picklist"),
                _f("IsSandbox", "boolean"),
                _f("InstanceName", "string"),
            ],
        ),
        _obj(
            "User",
            "Users",
            [
                _f("Username", "string", nillable=False),
                _f(
                    "Name",
                    "string",
                    createable=False,
                    updateable=False,
                    extra_type_info="personname",
                ),
                _f("FirstName", "string", compound_name="Name", extra_type_info="personname"),
                _f("LastName", "string", compound_name="Name", extra_type_info="personname"),
                *_address(),
                _f("Email", "email"),
                _f("IsActive", "boolean"),
                _ref("ManagerId", "User", "Manager"),
                _f("ProfileId", "reference", reference_to=("Profile",)),
                _f("UserRoleId", "reference", reference_to=("UserRole",)),
                _f("UserType", "picklist"),
                _f("TimeZoneSidKey", "picklist"),
                *_viewed(),
            ],
        ),
        _obj(
            "RecordType",
            "Record Types",
            [
                _f("Name", "string"),
                _f("DeveloperName", "string"),
                _f("SobjectType", "picklist"),
                _f("IsActive", "boolean"),
                _f("NamespacePrefix", "string"),
                _f("BusinessProcessId", "reference", reference_to=("BusinessProcess",)),
                _f("Description", "string"),
            ],
        ),
        _obj(
            "OpportunityStage",
            "Opportunity Stages",
            [
                _f("MasterLabel", "string"),
                _f("ApiName", "string"),
                _f("SortOrder", "int"),
                _f("IsActive", "boolean"),
                _f("IsClosed", "boolean"),
                _f("IsWon", "boolean"),
                _f("DefaultProbability", "percent"),
                _f("ForecastCategory", "picklist"),
                _f("ForecastCategoryName", "picklist"),
                _f("Description", "string"),
            ],
        ),
        _obj(
            "CurrencyType",
            "Currencies",
            [
                _f("IsoCode", "picklist"),
                _f("ConversionRate", "double"),
                _f("DecimalPlaces", "int"),
                _f("IsActive", "boolean"),
                _f("IsCorporate", "boolean"),
            ],
        ),
        _obj(
            "Product2",
            "Products",
            [
                _f("Name", "string", nillable=False),
                _f("ProductCode", "string"),
                _f("Family", "picklist"),
                _f("IsActive", "boolean"),
                _f("Description", "textarea", length=4000),
                *_viewed(),
            ],
            writable=True,
        ),
        _obj(
            "Opportunity",
            "Opportunities",
            [
                _f("Name", "string", length=120, nillable=False),
                _f("AccountId", "reference", reference_to=("Account",), relationship_name=None),
                _ref("OwnerId", "User", "Owner", defaulted_on_create=True),
                _f("StageName", "picklist", nillable=False, label="Stage"),
                _f("CloseDate", "date", nillable=False),
                _f("Amount", "currency"),
                _f("Probability", "percent"),
                _f("ExpectedRevenue", "currency", createable=False, updateable=False),
                _f("TotalOpportunityQuantity", "double"),
                _f("ForecastCategoryName", "picklist", picklist_values=tuple(FORECAST_CATEGORIES)),
                _ro("ForecastCategory", "picklist"),
                _ro("IsClosed", "boolean", nillable=False),
                _ro("IsWon", "boolean", nillable=False),
                _f("Type", "picklist"),
                _f("LeadSource", "picklist"),
                _f("NextStep", "string"),
                _f("Description", "textarea", length=32000),
                _f("Pricebook2Id", "reference", reference_to=("Pricebook2",)),
                _ro("HasOpportunityLineItem", "boolean", nillable=False),
                _ro("LastStageChangeDate", "datetime"),
                _ro("LastActivityDate", "date"),
                _ro("HasOpenActivity", "boolean"),
                _ro("HasOverdueTask", "boolean"),
                _ro("FiscalYear", "int"),
                _ro("FiscalQuarter", "int"),
                _ro("Fiscal", "string"),
                _ref(
                    "LastAmountChangedHistoryId",
                    "OpportunityHistory",
                    "LastAmountChangedHistory",
                    createable=False,
                    updateable=False,
                ),
                _ref(
                    "LastCloseDateChangedHistoryId",
                    "OpportunityHistory",
                    "LastCloseDateChangedHistory",
                    createable=False,
                    updateable=False,
                ),
                _ref("RecordTypeId", "RecordType", "RecordType"),
                *_viewed(),
            ],
            writable=True,
        ),
        _obj(
            "OpportunityLineItem",
            "Opportunity Product",
            [
                _ref("OpportunityId", "Opportunity", "Opportunity", updateable=False),
                _f("PricebookEntryId", "reference", reference_to=("PricebookEntry",)),
                _ref("Product2Id", "Product2", "Product2", updateable=False),
                _f("Quantity", "double"),
                _f("UnitPrice", "currency"),
                _f("ListPrice", "currency", createable=False, updateable=False),
                _f("TotalPrice", "currency"),
                _f("ServiceDate", "date"),
                _ro("ProductCode", "string"),
                _ro("Name", "string"),
                _f("SortOrder", "int"),
                _f("Description", "string"),
            ],
            writable=True,
        ),
        _obj(
            "OpportunityHistory",
            "Opportunity History",
            [
                _ref(
                    "OpportunityId",
                    "Opportunity",
                    "Opportunity",
                    createable=False,
                    updateable=False,
                ),
                _ro("StageName", "picklist"),
                _ro("CloseDate", "date"),
                _ro("Amount", "currency"),
                _ro("Probability", "percent"),
                _ro("ForecastCategory", "picklist"),
                _ro("ExpectedRevenue", "currency"),
                _ro("PrevAmount", "currency"),
                _ro("PrevCloseDate", "date"),
            ],
            last_modified=False,
        ),
        _obj(
            "Task",
            "Tasks",
            [
                _f("Subject", "combobox", length=255),
                _f(
                    "WhatId",
                    "reference",
                    reference_to=("Opportunity", "Account"),
                    relationship_name="What",
                ),
                _f("WhoId", "reference", reference_to=("Contact", "Lead")),
                _ref("OwnerId", "User", "Owner", defaulted_on_create=True),
                _f("ActivityDate", "date", label="Due Date Only"),
                _f(
                    "Status",
                    "picklist",
                    nillable=False,
                    defaulted_on_create=True,
                    picklist_values=tuple(s.label for s in TASK_STATUSES),
                ),
                _f(
                    "Priority",
                    "picklist",
                    nillable=False,
                    defaulted_on_create=True,
                    picklist_values=tuple(p.label for p in TASK_PRIORITIES),
                ),
                _f("Description", "textarea", length=32000),
                _ro("IsClosed", "boolean", nillable=False),
                _f("Type", "picklist"),
                _f("TaskSubtype", "picklist"),
                _ro("IsHighPriority", "boolean", nillable=False),
                _f(
                    "AccountId",
                    "reference",
                    reference_to=("Account",),
                    createable=False,
                    updateable=False,
                ),
                _ro("CompletedDateTime", "datetime"),
            ],
            writable=True,
        ),
        _obj(
            "TaskStatus",
            "Task Status Values",
            [
                _f("MasterLabel", "string"),
                _f("ApiName", "string"),
                _f("SortOrder", "int"),
                _f("IsDefault", "boolean"),
                _f("IsClosed", "boolean"),
            ],
            bulk=False,
            in_data_file=False,
        ),
        _obj(
            "TaskPriority",
            "Task Priority Values",
            [
                _f("MasterLabel", "string"),
                _f("ApiName", "string"),
                _f("SortOrder", "int"),
                _f("IsDefault", "boolean"),
                _f("IsHighPriority", "boolean"),
            ],
            bulk=False,
            in_data_file=False,
        ),
    ]
    for obj in objects:
        if obj.name in CURRENCY_OBJECTS:
            obj.add(_f("CurrencyIsoCode", "picklist", length=3, label="Currency ISO Code"))
    return {obj.name: obj for obj in objects}


def custom_field(name: str, spec: dict[str, object]) -> FieldDef:
    """A custom field from a data file's ``custom_fields`` declaration (or inferred type)."""
    type_ = str(spec.get("type", "string"))
    length = spec.get("length")
    values = spec.get("values") or ()
    ref = spec.get("referenceTo")
    return _f(
        name,
        type_,
        label=str(spec.get("label") or _label(name)),
        length=int(length) if isinstance(length, int) else 0,
        custom=True,
        external_id=bool(spec.get("externalId", False)),
        unique=bool(spec.get("unique", False)),
        picklist_values=tuple(str(v) for v in values) if isinstance(values, list) else (),
        restricted_picklist=bool(spec.get("restricted", False)),
        reference_to=(str(ref),) if isinstance(ref, str) else (),
    )
