"""Every key real Salesforce returns is in the dev org's answers (keys ⊇ the fixtures' keys).

The fixtures (tests/fixtures/salesforce, README.md there names their sources) hold
one documented example of each shape; here every object the global describe lists,
every field, child relationship and record type is compared with them, and the
compound fields clients rely on (``User.Address``, the ``Name`` parts) are checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sfsync.devorg import DevOrgServer
from sfsync.devorg.testing import REP_USER_ID, make_id

from .conftest import client_credentials_token, http_session

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "salesforce"


def _body(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())["response"]["body"]


def _missing(expected: dict[str, Any], actual: dict[str, Any], where: str) -> list[str]:
    return [f"{where}.{key}" for key in expected if key not in actual]


@pytest.fixture(scope="module")
def api(server: DevOrgServer) -> requests.Session:
    session = http_session(server)
    token = client_credentials_token(server)["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def _get(server: DevOrgServer, api: requests.Session, path: str) -> Any:
    response = api.get(f"{server.url}/services/data/v62.0/{path}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_every_global_describe_entry_has_every_documented_key(
    server: DevOrgServer, api: requests.Session
) -> None:
    documented = _body("describe_global_entry_keys")["sobjects"][0]
    entries = _get(server, api, "sobjects/")["sobjects"]
    assert entries
    missing = []
    for entry in entries:
        missing += _missing(documented, entry, entry["name"])
        missing += _missing(documented["urls"], entry["urls"], f"{entry['name']}.urls")
    assert not missing


def test_every_object_describe_has_every_documented_key(
    server: DevOrgServer, api: requests.Session
) -> None:
    documented = _body("describe_sobject_keys")
    field_keys = documented["fields"][0]
    child_keys = documented["childRelationships"][0]
    record_type_keys = documented["recordTypeInfos"][0]
    missing: list[str] = []
    children = 0
    for entry in _get(server, api, "sobjects/")["sobjects"]:
        name = entry["name"]
        describe = _get(server, api, f"sobjects/{name}/describe")
        missing += _missing(documented, describe, name)
        missing += _missing(documented["urls"], describe["urls"], f"{name}.urls")
        for fdef in describe["fields"]:
            missing += _missing(field_keys, fdef, f"{name}.{fdef['name']}")
        for child in describe["childRelationships"]:
            children += 1
            missing += _missing(child_keys, child, f"{name}.childRelationships")
        for info in describe["recordTypeInfos"]:
            missing += _missing(record_type_keys, info, f"{name}.recordTypeInfos")
    assert not missing
    assert children


def test_limits_have_every_standard_entry(server: DevOrgServer, api: requests.Session) -> None:
    documented = _body("limits_all_entries")
    limits = _get(server, api, "limits/")
    assert not _missing(documented, limits, "limits")
    for name, entry in limits.items():
        assert isinstance(entry["Max"], int), name
        assert isinstance(entry["Remaining"], int), name
    assert limits["PermissionSets"]["CreateCustom"] == {"Max": 1000, "Remaining": 1000}
    old = api.get(f"{server.url}/services/data/v48.0/limits", timeout=10).json()
    assert "DailyBulkApiRequests" in old  # the name before API 49.0
    assert "DailyBulkApiBatches" not in old


def test_limits_count_bulk_batches_and_bulk2_jobs(sf: Salesforce, server: DevOrgServer) -> None:
    before = sf.restful("limits/")
    sf.bulk.User.query("SELECT Id FROM User", wait=0)
    list(sf.bulk2.User.query("SELECT Id FROM User", wait=0.1))
    after = sf.restful("limits/")
    spent = before["DailyBulkApiBatches"]["Remaining"] - after["DailyBulkApiBatches"]["Remaining"]
    assert spent == 1
    jobs = before["DailyBulkV2QueryJobs"]["Remaining"] - after["DailyBulkV2QueryJobs"]["Remaining"]
    assert jobs == 1
    assert after["DailyApiRequests"]["Max"] == server.api_limit


def test_record_gets_carry_last_viewed_and_referenced_dates(sf: Salesforce) -> None:
    for sobject, record_id in (
        ("Opportunity", make_id("006", 1)),
        ("User", REP_USER_ID),
        ("Product2", make_id("01t", 1)),
    ):
        record = getattr(sf, sobject).get(record_id)
        assert "LastViewedDate" in record, sobject
        assert "LastReferencedDate" in record, sobject
    task = sf.query("SELECT Id FROM Task LIMIT 1")["records"][0]["Id"]
    assert "LastViewedDate" not in sf.Task.get(task)


def test_user_has_the_compound_address_and_name_as_real_orgs_describe_them(
    sf: Salesforce,
) -> None:
    fields = {f["name"]: f for f in sf.User.describe()["fields"]}
    address = fields["Address"]
    assert address["type"] == "address"
    assert address["soapType"] == "urn:address"
    assert address["compoundFieldName"] is None
    assert not address["createable"]
    assert not address["filterable"]
    components = [
        "Street",
        "City",
        "State",
        "PostalCode",
        "Country",
        "Latitude",
        "Longitude",
        "GeocodeAccuracy",
    ]
    assert {n: fields[n]["compoundFieldName"] for n in components} == dict.fromkeys(
        components, "Address"
    )
    assert fields["Latitude"]["type"] == "double"
    assert fields["GeocodeAccuracy"]["type"] == "picklist"
    assert fields["FirstName"]["compoundFieldName"] == "Name"
    assert fields["LastName"]["compoundFieldName"] == "Name"
    assert fields["Name"]["compoundFieldName"] is None


def test_the_compound_address_is_read_as_one_object(sf: Salesforce, server: DevOrgServer) -> None:
    """REST returns ``Address`` as an object of its components, or null when all are null."""
    empty = sf.query(f"SELECT Id, Address FROM User WHERE Id = '{REP_USER_ID}'")["records"][0]
    assert empty["Address"] is None
    server.org.update(
        "User",
        REP_USER_ID,
        {"Street": "1 Market St", "City": "San Francisco", "Latitude": 37.79, "Country": "US"},
    )
    try:
        row = sf.query(f"SELECT Id, Address, City FROM User WHERE Id = '{REP_USER_ID}'")
        address = row["records"][0]["Address"]
        assert address == {
            "city": "San Francisco",
            "country": "US",
            "geocodeAccuracy": None,
            "latitude": 37.79,
            "longitude": None,
            "postalCode": None,
            "state": None,
            "street": "1 Market St",
        }
        assert sf.User.get(REP_USER_ID)["Address"] == address
        with pytest.raises(SalesforceMalformedRequest) as info:
            sf.query("SELECT Id FROM User WHERE Address = 'x'")
        assert info.value.content[0]["errorCode"] == "INVALID_FIELD"
    finally:
        server.org.update(
            "User", REP_USER_ID, {"Street": None, "City": None, "Latitude": None, "Country": None}
        )


def test_bulk_refuses_compound_fields_like_salesforce(sf: Salesforce) -> None:
    """Compound fields cannot be selected by Bulk API 1.0 or 2.0 (airbyte routes them to REST)."""
    with pytest.raises(Exception, match="Selecting compound data not supported in Bulk Query"):
        sf.bulk.User.query("SELECT Id, Address FROM User", wait=0)
    with pytest.raises(Exception, match="compound"):
        list(sf.bulk2.User.query("SELECT Id, Address FROM User", wait=0.1))
    assert sf.bulk.User.query("SELECT Id, City FROM User", wait=0)
