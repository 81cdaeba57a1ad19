"""Global and object describe (docs/salesforce-api.md, Describe), built from the org's catalogue.

Clients describe every object the global describe lists, so only objects whose
describe works are listed, and every field carries the standard keys (including
``compoundFieldName``) with standard types only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sfsync.devorg._catalog import MASTER_RECORD_TYPE_ID, FieldDef, SObjectDef

if TYPE_CHECKING:
    from sfsync.devorg._org import DevOrg

__all__ = ["describe_global", "describe_object", "object_summary"]

_CHILDREN = {
    "Opportunity": (
        ("OpportunityLineItem", "OpportunityId", "OpportunityLineItems", True),
        ("OpportunityHistory", "OpportunityId", "OpportunityHistories", True),
        ("Task", "WhatId", "Tasks", True),
    ),
    "User": (("User", "ManagerId", "ManagedUsers", False),),
    "Product2": (("OpportunityLineItem", "Product2Id", None, False),),
}


def _urls(name: str, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{name}"
    return {
        "sobject": base,
        "describe": f"{base}/describe",
        "rowTemplate": f"{base}/{{ID}}",
    }


def object_summary(obj: SObjectDef, version: str) -> dict[str, Any]:
    """One entry of ``GET /sobjects``: the flags a client checks before describing."""
    return {
        "activateable": False,
        "createable": obj.createable,
        "custom": False,
        "customSetting": False,
        "deepCloneable": False,
        "deletable": obj.deletable,
        "deprecatedAndHidden": False,
        "feedEnabled": False,
        "hasSubtypes": False,
        "isInterface": False,
        "isSubtype": False,
        "keyPrefix": obj.key_prefix,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "layoutable": obj.createable,
        "mergeable": False,
        "mruEnabled": False,
        "name": obj.name,
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "searchable": obj.createable,
        "triggerable": obj.createable,
        "undeletable": obj.deletable,
        "updateable": obj.updateable,
        "urls": _urls(obj.name, version),
    }


def describe_global(org: DevOrg, version: str) -> dict[str, Any]:
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [object_summary(obj, version) for obj in org.objects.values()],
    }


def _field(org: DevOrg, obj: SObjectDef, fdef: FieldDef) -> dict[str, Any]:
    picklist: list[dict[str, Any]] = []
    if fdef.type in ("picklist", "multipicklist", "combobox"):
        values = org.picklist_values(obj.name, fdef.name)
        picklist = [
            {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v}
            for v in values
        ]
    is_text = fdef.storage == "text" and fdef.type not in ("date", "datetime")
    length = fdef.length if is_text else 0
    return {
        "aggregatable": True,
        "autoNumber": False,
        "byteLength": length * 3,
        "calculated": fdef.calculated,
        "cascadeDelete": False,
        "caseSensitive": False,
        "compoundFieldName": None,
        "createable": fdef.createable,
        "custom": fdef.custom,
        "defaultValue": None,
        "defaultedOnCreate": fdef.defaulted_on_create or fdef.name in ("Id", "IsDeleted"),
        "dependentPicklist": False,
        "digits": 9 if fdef.type == "int" else 0,
        "externalId": fdef.external_id,
        "filterable": True,
        "groupable": fdef.storage != "real",
        "htmlFormatted": False,
        "idLookup": fdef.name == "Id" or fdef.external_id,
        "label": fdef.label or fdef.name,
        "length": length,
        "name": fdef.name,
        "nameField": fdef.name == "Name",
        "nillable": fdef.nillable,
        "permissionable": fdef.nillable and fdef.updateable,
        "picklistValues": picklist,
        "polymorphicForeignKey": len(fdef.reference_to) > 1,
        "precision": fdef.precision,
        "referenceTo": list(fdef.reference_to),
        "relationshipName": fdef.relationship_name,
        "restrictedPicklist": fdef.restricted_picklist,
        "scale": fdef.scale,
        "soapType": fdef.soap_type,
        "sortable": fdef.type != "textarea",
        "type": fdef.type,
        "unique": fdef.unique,
        "updateable": fdef.updateable,
    }


def describe_object(org: DevOrg, obj: SObjectDef, version: str) -> dict[str, Any]:
    """``GET /sobjects/{type}/describe``."""
    result = object_summary(obj, version)
    result["fields"] = [_field(org, obj, f) for f in obj.fields.values()]
    result["childRelationships"] = [
        {
            "cascadeDelete": cascade,
            "childSObject": child,
            "deprecatedAndHidden": False,
            "field": fld,
            "relationshipName": rel,
        }
        for child, fld, rel, cascade in _CHILDREN.get(obj.name, ())
        if child in org.objects
    ]
    layout = f"/services/data/v{version}/sobjects/{obj.name}/describe/layouts/"
    infos = [
        {
            "active": True,
            "available": True,
            "defaultRecordTypeMapping": not org.record_types(obj.name),
            "developerName": "Master",
            "master": True,
            "name": "Master",
            "recordTypeId": MASTER_RECORD_TYPE_ID,
            "urls": {"layout": layout + MASTER_RECORD_TYPE_ID},
        }
    ]
    for i, rt in enumerate(org.record_types(obj.name)):
        infos.insert(
            i,
            {
                "active": rt["IsActive"],
                "available": True,
                "defaultRecordTypeMapping": i == 0,
                "developerName": rt["DeveloperName"],
                "master": False,
                "name": rt["Name"],
                "recordTypeId": rt["Id"],
                "urls": {"layout": layout + rt["Id"]},
            },
        )
    result["recordTypeInfos"] = infos
    result["namedLayoutInfos"] = []
    result["supportedScopes"] = [{"label": "All", "name": "everything"}]
    return result
