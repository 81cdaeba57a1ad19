"""What sfsync pulls: one spec per object, with required and optional fields.

A spec is declarative; :func:`plan_object` resolves it against the org's
describe: optional fields the org lacks (``CurrencyIsoCode`` without
multi-currency, a missing ``Rev_Rec_Terms__c``) are dropped with a warning,
required ones are an error that ``sfsync check`` reports; a field whose type
is not what sfsync expects is kept in ``raw`` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sfsync.config import Settings
from sfsync.salesforce import soql
from sfsync.warehouse.models import OBJECT_MODELS, SObjectRow

__all__ = [
    "FieldSpec",
    "ObjectPlan",
    "ObjectSpec",
    "assumed_plan",
    "describe_memo",
    "object_specs",
    "plan_object",
]

Kind = Literal["str", "bool", "int", "float", "date", "datetime"]
Mode = Literal["reference", "incremental"]

# Salesforce describe types that fit each kind.
_COMPATIBLE: dict[Kind, frozenset[str]] = {
    "str": frozenset(
        {
            "id",
            "reference",
            "string",
            "textarea",
            "picklist",
            "multipicklist",
            "combobox",
            "email",
            "phone",
            "url",
            "encryptedstring",
        }
    ),
    "bool": frozenset({"boolean"}),
    "int": frozenset({"int", "long", "double"}),
    "float": frozenset({"double", "currency", "percent", "int", "long"}),
    "date": frozenset({"date"}),
    "datetime": frozenset({"datetime"}),
}


@dataclass(frozen=True)
class FieldSpec:
    """A Salesforce field and the warehouse column it fills (None: kept in ``raw`` only)."""

    name: str
    kind: Kind = "str"
    column: str | None = None
    required: bool = True
    why: str = ""


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    model: type[SObjectRow]
    fields: tuple[FieldSpec, ...]
    mode: Mode = "incremental"
    # Watermark candidates in order of preference (OpportunityHistory may lack SystemModstamp).
    watermark_fields: tuple[str, ...] = ("SystemModstamp",)
    bulk: bool = False
    where: str | None = None
    only_if_object: str | None = None  # sync only when this object is in the global describe


@dataclass(frozen=True)
class ObjectPlan:
    """A spec resolved against one org's describe."""

    spec: ObjectSpec
    fields: tuple[FieldSpec, ...]
    watermark_field: str | None
    has_is_deleted: bool
    field_types: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name

    def select(self) -> str:
        return ", ".join(f.name for f in self.fields)

    def soql(self, *conditions: str, order: bool = True) -> str:
        """The SOQL for this object with extra conditions (built by ``soql``) ANDed in."""
        order_by = (self.watermark_field, "Id") if order and self.watermark_field else ()
        return soql.select(
            [f.name for f in self.fields],
            self.name,
            where=[*conditions, self.spec.where],
            order_by=order_by,
        )


def _f(name: str, kind: Kind = "str", column: str | None = None, **kw: Any) -> FieldSpec:
    return FieldSpec(name, kind, column, **kw)


def _system(*, created: bool = True, modified: bool = True) -> tuple[FieldSpec, ...]:
    fields = [
        _f("Id", column="id"),
        _f("SystemModstamp", "datetime", required=False),
        _f("IsDeleted", "bool", required=False),
    ]
    if created:
        fields += [_f("CreatedDate", "datetime", required=False), _f("CreatedById", required=False)]
    if modified:
        fields += [
            _f("LastModifiedDate", "datetime", required=False),
            _f("LastModifiedById", required=False),
        ]
    return tuple(fields)


def object_specs(
    settings: Settings, *, integration_user_id: str | None = None
) -> dict[str, ObjectSpec]:
    """Every object sfsync can sync, with the custom field names taken from config.

    sfsync's Tasks are those whose subject starts with ``writeback.subject_prefix``
    or, with ``integration_user_id``, that the integration user created: a Task a
    rep renamed is still sfsync's (and still open), not one that went away.
    """
    audit, writeback = settings.audit, settings.writeback
    extra = settings.sync.extra_fields

    def extras(obj: str) -> tuple[FieldSpec, ...]:
        return tuple(
            _f(name, required=False, why="sync.extra_fields") for name in extra.get(obj, [])
        )

    opportunity_custom: list[FieldSpec] = [
        _f(
            audit.fields.rev_rec_terms,
            column="rev_rec_terms",
            required=False,
            why="audit.fields.rev_rec_terms",
        ),
    ]
    if audit.instrument.field:
        opportunity_custom.append(
            _f(
                audit.instrument.field,
                "bool",
                "instrument_flag",
                required=False,
                why="audit.instrument.field",
            )
        )
    if audit.scope.field:
        opportunity_custom.append(
            _f(audit.scope.field, column="scope_value", required=False, why="audit.scope.field")
        )
    if writeback.flags.enabled:
        opportunity_custom += [
            _f(writeback.flags.rules_field, required=False, why="writeback.flags.rules_field"),
            _f(
                writeback.flags.extensions_field,
                "float",
                required=False,
                why="writeback.flags.extensions_field",
            ),
        ]

    task_fields = [
        *_system(),
        _f("WhatId", column="what_id"),
        _f("OwnerId", column="owner_id"),
        _f("Subject", column="subject"),
        _f("Status", column="status"),
        _f("Priority", column="priority"),
        _f("ActivityDate", "date", "activity_date", required=False),
        _f("IsClosed", "bool", "is_closed", required=False),
        _f("Description", required=False),
    ]
    task_where = soql.like_prefix("Subject", writeback.subject_prefix)
    if integration_user_id:
        task_where = soql.any_of(task_where, soql.equals("CreatedById", integration_user_id))
    if writeback.task_key_field:
        task_fields.append(
            _f(
                writeback.task_key_field,
                column="sfsync_key",
                required=False,
                why="writeback.task_key_field",
            )
        )

    specs = [
        ObjectSpec(
            "Organization",
            OBJECT_MODELS["Organization"],
            (
                *_system(),
                _f("Name", column="name"),
                _f("FiscalYearStartMonth", "int", "fiscal_year_start_month"),
                _f("TimeZoneSidKey", column="time_zone_sid_key", required=False),
                _f("IsSandbox", "bool", "is_sandbox", required=False),
            ),
            mode="reference",
        ),
        ObjectSpec(
            "RecordType",
            OBJECT_MODELS["RecordType"],
            (
                *_system(),
                _f("Name", column="name"),
                _f("DeveloperName", column="developer_name"),
                _f("SobjectType", column="sobject_type"),
                _f("IsActive", "bool", "is_active", required=False),
            ),
            mode="reference",
            where=soql.equals("SobjectType", "Opportunity"),
        ),
        ObjectSpec(
            "OpportunityStage",
            OBJECT_MODELS["OpportunityStage"],
            (
                *_system(),
                _f("ApiName", column="api_name", required=False),
                _f("MasterLabel", column="master_label"),
                _f("SortOrder", "int", "sort_order"),
                _f("IsActive", "bool", "is_active", required=False),
                _f("IsClosed", "bool", "is_closed"),
                _f("IsWon", "bool", "is_won", required=False),
                _f("DefaultProbability", "float", "default_probability", required=False),
                _f("ForecastCategoryName", column="forecast_category_name", required=False),
            ),
            mode="reference",
        ),
        ObjectSpec(
            "CurrencyType",
            OBJECT_MODELS["CurrencyType"],
            (
                *_system(),
                _f("IsoCode", column="iso_code"),
                _f("ConversionRate", "float", "conversion_rate"),
                _f("DecimalPlaces", "int", "decimal_places", required=False),
                _f("IsActive", "bool", "is_active", required=False),
                _f("IsCorporate", "bool", "is_corporate", required=False),
            ),
            mode="reference",
            only_if_object="CurrencyType",
        ),
        ObjectSpec(
            "User",
            OBJECT_MODELS["User"],
            (
                *_system(),
                _f("Username", column="username"),
                _f("Name", column="name"),
                _f("Email", column="email", required=False),
                _f("IsActive", "bool", "is_active"),
                _f("ManagerId", column="manager_id", required=False),
                _f("UserType", column="user_type", required=False),
                *extras("User"),
            ),
        ),
        ObjectSpec(
            "Product2",
            OBJECT_MODELS["Product2"],
            (
                *_system(),
                _f("Name", column="name"),
                _f("ProductCode", column="product_code", required=False),
                _f("Family", column="family", required=False),
                _f("IsActive", "bool", "is_active", required=False),
                *extras("Product2"),
            ),
        ),
        ObjectSpec(
            "Opportunity",
            OBJECT_MODELS["Opportunity"],
            (
                *_system(created=False, modified=False),
                _f("CreatedDate", "datetime", "created_date"),
                _f("CreatedById", column="created_by_id"),
                _f("LastModifiedDate", "datetime", "last_modified_date"),
                _f("LastModifiedById", column="last_modified_by_id"),
                _f("Name", column="name"),
                _f("AccountId", column="account_id", required=False),
                _f("OwnerId", column="owner_id"),
                _f("RecordTypeId", column="record_type_id", required=False),
                _f("StageName", column="stage_name"),
                _f("CloseDate", "date", "close_date"),
                _f("Amount", "float", "amount"),
                _f("CurrencyIsoCode", column="currency_iso_code", required=False),
                _f("Probability", "float", "probability", required=False),
                _f("ForecastCategoryName", column="forecast_category_name", required=False),
                _f("IsClosed", "bool", "is_closed"),
                _f("IsWon", "bool", "is_won", required=False),
                _f("LastStageChangeDate", "datetime", "last_stage_change_date", required=False),
                *opportunity_custom,
                *extras("Opportunity"),
            ),
            bulk=True,
        ),
        ObjectSpec(
            "OpportunityLineItem",
            OBJECT_MODELS["OpportunityLineItem"],
            (
                *_system(),
                _f("OpportunityId", column="opportunity_id"),
                _f("Product2Id", column="product2_id", required=False),
                _f("Name", column="name", required=False),
                _f("Quantity", "float", "quantity", required=False),
                _f("UnitPrice", "float", "unit_price", required=False),
                _f("TotalPrice", "float", "total_price", required=False),
                *extras("OpportunityLineItem"),
            ),
            bulk=True,
        ),
        ObjectSpec(
            "OpportunityHistory",
            OBJECT_MODELS["OpportunityHistory"],
            (
                *_system(created=False, modified=False),
                _f("CreatedDate", "datetime", "created_date"),
                _f("CreatedById", column="created_by_id", required=False),
                _f("OpportunityId", column="opportunity_id"),
                _f("StageName", column="stage_name"),
                _f("CloseDate", "date", "close_date"),
                _f("Amount", "float", "amount", required=False),
                _f("Probability", "float", "probability", required=False),
                _f("ForecastCategory", column="forecast_category", required=False),
                *extras("OpportunityHistory"),
            ),
            watermark_fields=("SystemModstamp", "CreatedDate"),
            bulk=True,
        ),
        ObjectSpec(
            "Task",
            OBJECT_MODELS["Task"],
            (*task_fields, *extras("Task")),
            where=task_where,
        ),
    ]
    return {spec.name: spec for spec in specs}


def plan_object(
    spec: ObjectSpec, describe: dict[str, Any], *, task_key_field: str | None = None
) -> ObjectPlan:
    """Resolve ``spec`` against the org's describe of that object."""
    described = {str(f["name"]).lower(): f for f in describe.get("fields", [])}
    kept: list[FieldSpec] = []
    types: dict[str, str] = {}
    warnings: list[str] = []
    errors: list[str] = []
    for wanted in spec.fields:
        found = described.get(wanted.name.lower())
        via = f" (from {wanted.why})" if wanted.why else ""
        if found is None:
            message = f"{spec.name}.{wanted.name}{via} does not exist in this org"
            (errors if wanted.required else warnings).append(
                message if wanted.required else f"{message}; skipped"
            )
            continue
        sf_type = str(found.get("type", ""))
        name = str(found["name"])  # the org's own spelling
        types[name] = sf_type
        if wanted.column and sf_type not in _COMPATIBLE[wanted.kind]:
            warnings.append(
                f"{spec.name}.{name}{via} is a {sf_type} field, not {wanted.kind}: kept in raw only"
            )
            kept.append(FieldSpec(name, wanted.kind, None, wanted.required, wanted.why))
            continue
        kept.append(FieldSpec(name, wanted.kind, wanted.column, wanted.required, wanted.why))
    watermark = next((w for w in spec.watermark_fields if w.lower() in described), None)
    if spec.mode == "incremental" and watermark is None:
        errors.append(f"{spec.name} has none of {', '.join(spec.watermark_fields)} to sync on")
    where = spec.where
    if spec.name == "Task" and task_key_field and task_key_field.lower() in described:
        where = soql.any_of(soql.is_not_null(task_key_field), spec.where)
    resolved = ObjectSpec(
        spec.name,
        spec.model,
        spec.fields,
        spec.mode,
        spec.watermark_fields,
        spec.bulk,
        where,
        spec.only_if_object,
    )
    return ObjectPlan(
        resolved,
        tuple(kept),
        watermark,
        "isdeleted" in described,
        types,
        tuple(warnings),
        tuple(errors),
    )


def assumed_plan(
    spec: ObjectSpec,
    *,
    task_key_field: str | None = None,
    remembered: dict[str, Any] | None = None,
) -> ObjectPlan:
    """The plan to send the first queries with, before this run's describe is back.

    ``remembered`` is what the last describe found (:func:`describe_memo`); on a
    first run, the org is assumed to have every field the spec names. Where the
    real plan differs, the sync asks again with it.
    """
    if remembered is None:
        fields = [{"name": f.name, "type": sorted(_COMPATIBLE[f.kind])[0]} for f in spec.fields]
        if task_key_field and spec.name == "Task":
            fields.append({"name": task_key_field, "type": "string"})
        remembered = {"fields": fields}
    return plan_object(spec, remembered, task_key_field=task_key_field)


def describe_memo(
    describe: dict[str, Any], spec: ObjectSpec, task_key_field: str | None
) -> dict[str, Any]:
    """The part of a describe a plan depends on (names and types of wanted fields), to keep."""
    wanted = {f.name.lower() for f in spec.fields} | {"isdeleted", "systemmodstamp", "createddate"}
    if task_key_field:
        wanted.add(task_key_field.lower())
    return {
        "fields": [
            {"name": f["name"], "type": f.get("type", "")}
            for f in describe.get("fields", [])
            if str(f.get("name", "")).lower() in wanted
        ]
    }
