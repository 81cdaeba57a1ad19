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


def _urls(obj: SObjectDef, version: str, instance_url: str) -> dict[str, str]:
    """Every URL Salesforce lists for an object (the ui* ones point at the instance)."""
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    return {
        "compactLayouts": f"{base}/describe/compactLayouts",
        "rowTemplate": f"{base}/{{ID}}",
        "approvalLayouts": f"{base}/describe/approvalLayouts",
        "uiDetailTemplate": f"{instance_url}/{{ID}}",
        "uiEditTemplate": f"{instance_url}/{{ID}}/e",
        "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
        "listviews": f"{base}/listviews",
        "describe": f"{base}/describe",
        "uiNewRecord": f"{instance_url}/{obj.key_prefix}/e",
        "quickActions": f"{base}/quickActions",
        "layouts": f"{base}/describe/layouts",
        "sobject": base,
    }


def object_summary(obj: SObjectDef, version: str, instance_url: str = "") -> dict[str, Any]:
    """One entry of ``GET /sobjects``: every key Salesforce's describeGlobal entries have."""
    return {
        "activateable": False,
        "associateEntityType": None,
        "associateParentEntity": None,
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
        "mruEnabled": "LastViewedDate" in obj.fields,
        "name": obj.name,
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "searchable": obj.createable,
        "triggerable": obj.createable,
        "undeletable": obj.deletable,
        "updateable": obj.updateable,
        "urls": _urls(obj, version, instance_url),
    }


def describe_global(org: DevOrg, version: str, instance_url: str = "") -> dict[str, Any]:
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [object_summary(obj, version, instance_url) for obj in org.objects.values()],
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
    is_text = is_text and not fdef.is_compound
    length = fdef.length if is_text else 0
    reference = fdef.type == "reference"
    return {
        "aggregatable": not fdef.is_compound and fdef.type != "textarea",
        "aiPredictionField": False,
        "autoNumber": False,
        "byteLength": length * 3,
        "calculated": fdef.calculated,
        "calculatedFormula": None,
        "cascadeDelete": False,
        "caseSensitive": False,
        "compoundFieldName": fdef.compound_name,
        "controllerName": None,
        "createable": fdef.createable,
        "custom": fdef.custom,
        "defaultValue": None,
        "defaultValueFormula": None,
        "defaultedOnCreate": fdef.defaulted_on_create or fdef.name in ("Id", "IsDeleted"),
        "dependentPicklist": False,
        "deprecatedAndHidden": False,
        "digits": 9 if fdef.type == "int" else 0,
        "displayLocationInDecimal": False,
        "encrypted": False,
        "externalId": fdef.external_id,
        "extraTypeInfo": fdef.extra_type_info,
        "filterable": not fdef.is_compound and fdef.type != "textarea",
        "filteredLookupInfo": None,
        "formulaTreatNullNumberAsZero": False,
        "groupable": fdef.storage != "real" and not fdef.is_compound,
        "highScaleNumber": False,
        "htmlFormatted": False,
        "idLookup": fdef.name == "Id" or fdef.external_id,
        "inlineHelpText": None,
        "label": fdef.label or fdef.name,
        "length": length,
        "mask": None,
        "maskType": None,
        "name": fdef.name,
        "nameField": fdef.name == "Name",
        "namePointing": reference and len(fdef.reference_to) > 1,
        "nillable": fdef.nillable,
        "permissionable": fdef.nillable and fdef.updateable,
        "picklistValues": picklist,
        "polymorphicForeignKey": len(fdef.reference_to) > 1,
        "precision": fdef.precision,
        "queryByDistance": False,
        "referenceTargetField": None,
        "referenceTo": list(fdef.reference_to),
        "relationshipName": fdef.relationship_name,
        "relationshipOrder": None,
        "restrictedDelete": False,
        "restrictedPicklist": fdef.restricted_picklist,
        "scale": fdef.scale,
        "searchPrefilterable": reference,
        "soapType": fdef.soap_type,
        "sortable": fdef.type != "textarea" and not fdef.is_compound,
        "type": fdef.type,
        "unique": fdef.unique,
        "updateable": fdef.updateable,
        "writeRequiresMasterRead": False,
    }


def describe_object(
    org: DevOrg, obj: SObjectDef, version: str, instance_url: str = ""
) -> dict[str, Any]:
    """``GET /sobjects/{type}/describe``: every top-level key a real describe has."""
    result = object_summary(obj, version, instance_url)
    result.update(
        actionOverrides=[],
        compactLayoutable=obj.createable,
        dataTranslationEnabled=False,
        defaultImplementation=None,
        extendedBy=None,
        extendsInterfaces=None,
        implementedBy=None,
        implementsInterfaces=None,
        listviewable=None,
        lookupLayoutable=None,
        networkScopeFieldName=None,
        searchLayoutable=obj.createable,
        sobjectDescribeOption="FULL",
    )
    result["fields"] = [_field(org, obj, f) for f in obj.fields.values()]
    result["childRelationships"] = [
        {
            "cascadeDelete": cascade,
            "childSObject": child,
            "deprecatedAndHidden": False,
            "field": fld,
            "junctionIdListNames": [],
            "junctionReferenceTo": [],
            "relationshipName": rel,
            "restrictedDelete": False,
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
