"""The dev org's key prefixes are Salesforce's published ones (the first three characters of an Id).

Sources: the key-prefix tables published for standard objects (``01J`` is the
prefix of PicklistMaster, which OpportunityStage, TaskStatus and TaskPriority
rows are), and public examples of ``CurrencyType`` ids, which start with ``01L``.
A client that recognises objects by prefix (or a data file exported from a real
org) must find the same ones here.
"""

from __future__ import annotations

import pytest

from sfsync.devorg import DevOrg
from sfsync.devorg._catalog import standard_objects
from sfsync.devorg._gen_base import KEY_PREFIXES as GENERATOR_PREFIXES
from sfsync.devorg.testing import make_id, sample_org_data

SALESFORCE_PREFIXES = {
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


@pytest.mark.parametrize("name", sorted(SALESFORCE_PREFIXES))
def test_catalogue_prefix_is_salesforces(name: str) -> None:
    assert standard_objects()[name].key_prefix == SALESFORCE_PREFIXES[name]


def test_the_generator_uses_the_catalogues_prefixes() -> None:
    for name, prefix in GENERATOR_PREFIXES.items():
        assert standard_objects()[name].key_prefix == prefix, name


def test_a_data_file_with_real_currency_type_ids_loads() -> None:
    org = DevOrg.from_data(sample_org_data(3, multi_currency=True))
    try:
        ids = [r["Id"] for r in org.query("SELECT Id FROM CurrencyType")]
        assert ids
        assert all(i.startswith("01L") for i in ids)
        statuses = org.query("SELECT Id FROM TaskStatus")
        assert all(r["Id"].startswith("01J") for r in statuses)
    finally:
        org.close()


def test_built_in_picklist_rows_do_not_collide_with_stage_ids() -> None:
    org = DevOrg.from_data(sample_org_data(3))
    try:
        stage_ids = {r["Id"] for r in org.query("SELECT Id FROM OpportunityStage")}
        others = {r["Id"] for r in org.query("SELECT Id FROM TaskStatus")}
        others |= {r["Id"] for r in org.query("SELECT Id FROM TaskPriority")}
        assert not stage_ids & others
        assert make_id("01J", 1) not in others
    finally:
        org.close()
