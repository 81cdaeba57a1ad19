"""Bulk API 1.0 query jobs (``/services/async``), as simple-salesforce, dlt and tap-salesforce use them.

The org is served with 1,000-row result files, so 3,000 opportunities come back
in three files that a client must page through.
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sfsync.devorg import DevOrg, DevOrgServer, FaultSpec
from sfsync.devorg.testing import make_id, sample_org_data
from sfsync.formats import parse_datetime

from .conftest import client_credentials_token, http_session, salesforce_client

OPPORTUNITIES = 3000
RESULT_ROWS = 1000
NS = "{http://www.force.com/2009/06/asyncapi/dataload}"
DELETED = make_id("006", 7)


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return sample_org_data(OPPORTUNITIES)


@pytest.fixture(scope="module")
def bulk_server(
    data: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevOrgServer]:
    path = tmp_path_factory.mktemp("bulk1") / "org.json"
    path.write_text(json.dumps(data))
    org = DevOrg.load(path)
    org.soft_delete("Opportunity", DELETED)  # in the recycle bin: queryAll only
    with DevOrgServer(org, bulk_result_rows=RESULT_ROWS) as srv:
        yield srv
    org.close()


@pytest.fixture
def sf(bulk_server: DevOrgServer) -> Salesforce:
    return salesforce_client(bulk_server)


def _xml(text: str) -> ET.Element:
    return ET.fromstring(text)  # noqa: S314 - the dev org's own replies, on loopback


def _epoch_ms(value: str) -> int:
    return int(parse_datetime(value).timestamp() * 1000)


def _result_files(server: DevOrgServer) -> list[str]:
    return [
        r.path
        for r in server.requests
        if r.path.startswith("/services/async/") and "/result/" in r.path
    ]


def test_simple_salesforce_bulk_query_all_returns_every_row_of_the_data_file(
    bulk_server: DevOrgServer, sf: Salesforce, data: dict[str, Any]
) -> None:
    """``sf.bulk.Opportunity.query_all``: JSON job, three result files, deleted rows included."""
    bulk_server.clear_requests()
    before = bulk_server.api_calls
    rows = sf.bulk.Opportunity.query_all(
        "SELECT Id, Name, StageName, CloseDate, Amount, OwnerId, IsDeleted, SystemModstamp "
        "FROM Opportunity",
        wait=0,
    )
    assert len(_result_files(bulk_server)) == 3
    # create, batch, close, batch status, result list, three result files
    assert bulk_server.api_calls - before == 8
    expected = {
        r["Id"]: {
            "Name": r["Name"],
            "StageName": r["StageName"],
            "CloseDate": r["CloseDate"],
            "Amount": r["Amount"],
            "OwnerId": r["OwnerId"],
            "IsDeleted": r["Id"] == DELETED,
            "SystemModstamp": _epoch_ms(r["SystemModstamp"]),
        }
        for r in data["records"]["Opportunity"]
    }
    got = {r["Id"]: {k: v for k, v in r.items() if k not in ("Id", "attributes")} for r in rows}
    assert len(rows) == OPPORTUNITIES
    # SystemModstamp of the deleted one moved with the delete
    got[DELETED]["SystemModstamp"] = expected[DELETED]["SystemModstamp"]
    assert got == expected
    assert rows[0]["attributes"]["type"] == "Opportunity"
    assert rows[0]["attributes"]["url"].startswith("/services/data/v62.0/sobjects/Opportunity/")


def test_simple_salesforce_bulk_query_of_history_leaves_out_deleted_rows(
    sf: Salesforce, data: dict[str, Any]
) -> None:
    """``sf.bulk.OpportunityHistory.query``: the live rows only (the deleted opp's history is gone)."""
    rows = sf.bulk.OpportunityHistory.query(
        "SELECT Id, OpportunityId, StageName, Amount, CreatedDate FROM OpportunityHistory", wait=0
    )
    expected = {
        r["Id"]: (r["OpportunityId"], r["StageName"], r["Amount"], _epoch_ms(r["CreatedDate"]))
        for r in data["records"]["OpportunityHistory"]
        if r["OpportunityId"] != DELETED
    }
    got = {
        r["Id"]: (r["OpportunityId"], r["StageName"], r["Amount"], r["CreatedDate"]) for r in rows
    }
    assert len(rows) == len(expected)
    assert got == expected


class _TapLikeClient:
    """The requests tap-salesforce's bulk mode sends: JSON job, CSV content, XML batch replies."""

    def __init__(self, server: DevOrgServer, token: str, version: str = "61.0") -> None:
        self.session = http_session(server)
        self.base = f"{server.url}/services/async/{version}"
        self.headers = {"X-SFDC-Session": token, "Content-Type": "application/json"}

    def post(self, path: str, body: str, **headers: str) -> requests.Response:
        response = self.session.post(
            f"{self.base}/{path}", data=body, headers={**self.headers, **headers}, timeout=30
        )
        response.raise_for_status()
        return response

    def get(self, path: str) -> requests.Response:
        response = self.session.get(f"{self.base}/{path}", headers=self.headers, timeout=30)
        response.raise_for_status()
        return response

    def query_all(self, sobject: str, soql: str) -> list[dict[str, str]]:
        job = self.post(
            "job", json.dumps({"operation": "queryAll", "object": sobject, "contentType": "CSV"})
        ).json()["id"]
        batch = _xml(self.post(f"job/{job}/batch", soql, **{"Content-Type": "text/csv"}).text)
        batch_id = batch.findtext(f"{NS}id")
        assert batch.findtext(f"{NS}state") == "Queued"
        self.post(f"job/{job}", json.dumps({"state": "Closed"}))
        status = _xml(self.get(f"job/{job}/batch/{batch_id}").text)
        assert status.findtext(f"{NS}state") == "Completed"
        listing = _xml(self.get(f"job/{job}/batch/{batch_id}/result").text)
        rows: list[dict[str, str]] = []
        for result in listing.iter(f"{NS}result"):
            text = self.get(f"job/{job}/batch/{batch_id}/result/{result.text}").text
            rows += list(csv.DictReader(io.StringIO(text)))
        return rows


def test_a_csv_job_answers_batches_in_xml_and_results_in_quoted_csv(
    bulk_server: DevOrgServer, data: dict[str, Any]
) -> None:
    token = client_credentials_token(bulk_server)["access_token"]
    client = _TapLikeClient(bulk_server, token)
    bulk_server.clear_requests()
    rows = client.query_all(
        "Opportunity",
        "SELECT Id,Name,Amount,CloseDate,SystemModstamp FROM Opportunity "
        "WHERE SystemModstamp >= 2000-01-01T00:00:00Z ORDER BY SystemModstamp ASC",
    )
    assert len(_result_files(bulk_server)) == 3
    assert len(rows) == OPPORTUNITIES
    by_id = {r["Id"]: r for r in data["records"]["Opportunity"]}
    for row in rows:
        source = by_id[row["Id"]]
        assert row["Name"] == source["Name"]
        assert float(row["Amount"]) == source["Amount"]
        assert row["CloseDate"] == source["CloseDate"]
        assert row["SystemModstamp"].endswith(".000Z")
    stamps = [r["SystemModstamp"] for r in rows]
    assert stamps == sorted(stamps)
    first = next(r for r in bulk_server.requests if "/result/" in r.path)
    assert first.status == 200


def test_an_xml_job_from_an_xml_request(bulk_server: DevOrgServer) -> None:
    """jobInfo in XML, answered in XML; results as ``<queryResult>`` records."""
    token = client_credentials_token(bulk_server)["access_token"]
    session = http_session(bulk_server)
    base = f"{bulk_server.url}/services/async/62.0"
    headers = {"X-SFDC-Session": token, "Content-Type": "application/xml; charset=UTF-8"}
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><jobInfo '
        'xmlns="http://www.force.com/2009/06/asyncapi/dataload"><operation>query</operation>'
        "<object>User</object><contentType>XML</contentType></jobInfo>"
    )
    created = session.post(f"{base}/job", data=body, headers=headers, timeout=10)
    assert created.status_code == 201
    assert created.headers["Content-Type"] == "application/xml"
    job = _xml(created.text)
    assert job.findtext(f"{NS}state") == "Open"
    assert job.findtext(f"{NS}createdDate", "").endswith(".000Z")
    assert [c.tag.removeprefix(NS) for c in job][:6] == [
        "id",
        "operation",
        "object",
        "createdById",
        "createdDate",
        "systemModstamp",
    ]
    job_id = job.findtext(f"{NS}id")
    batch = session.post(
        f"{base}/job/{job_id}/batch",
        data="SELECT Id, Username, Manager.Username, LastModifiedDate FROM User ORDER BY Id",
        headers=headers,
        timeout=10,
    )
    assert batch.status_code == 201
    batch_id = _xml(batch.text).findtext(f"{NS}id")
    listing = _xml(
        session.get(f"{base}/job/{job_id}/batch/{batch_id}/result", headers=headers).text
    )
    (result_id,) = [r.text for r in listing.iter(f"{NS}result")]
    result = session.get(
        f"{base}/job/{job_id}/batch/{batch_id}/result/{result_id}", headers=headers
    )
    root = _xml(result.text)
    records = root.findall(f"{NS}records")
    assert len(records) == 4
    assert records[0].findtext(f"{NS}type") == "User"
    assert records[0].findtext(f"{NS}LastModifiedDate", "").endswith("Z")
    nil = "{http://www.w3.org/2001/XMLSchema-instance}nil"
    assert any(r.find(f"{NS}Manager") is not None for r in records)
    assert any(m.get(nil) == "true" for r in records for m in r.findall(f"{NS}Manager"))
    close = session.post(
        f"{base}/job/{job_id}",
        data=f'<jobInfo xmlns="{NS[1:-1]}"><state>Closed</state></jobInfo>',
        headers=headers,
        timeout=10,
    )
    assert _xml(close.text).findtext(f"{NS}state") == "Closed"


def test_a_bad_session_gets_the_async_apis_xml_fault(bulk_server: DevOrgServer) -> None:
    session = http_session(bulk_server)
    url = f"{bulk_server.url}/services/async/59.0/job"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><jobInfo '
        'xmlns="http://www.force.com/2009/06/asyncapi/dataload"><operation>query</operation>'
        "<object>Opportunity</object><contentType>CSV</contentType></jobInfo>"
    )
    before = bulk_server.api_calls
    response = session.post(
        url,
        data=body,
        headers={"X-SFDC-Session": "00D000000000000!bogus", "Content-Type": "application/xml"},
        timeout=10,
    )
    assert response.status_code == 400
    root = _xml(response.text)
    assert root.tag == f"{NS}error"
    assert root.findtext(f"{NS}exceptionCode") == "InvalidSessionId"
    assert root.findtext(f"{NS}exceptionMessage") == "Invalid session id"
    assert bulk_server.api_calls == before
    as_json = session.post(
        url,
        data=json.dumps({"operation": "query", "object": "Opportunity", "contentType": "JSON"}),
        headers={"X-SFDC-Session": "bogus", "Content-Type": "application/json"},
        timeout=10,
    )
    assert as_json.status_code == 400
    assert as_json.json() == {
        "exceptionCode": "InvalidSessionId",
        "exceptionMessage": "Invalid session id",
    }


def test_simple_salesforce_sees_errors_as_malformed_requests(sf: Salesforce) -> None:
    """A bad SOQL fails the batch (stateMessage); an unknown object fails the job (400)."""
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.bulk.Account.query("SELECT Id FROM Account", wait=0)
    assert info.value.content["exceptionCode"] == "InvalidJob"
    with pytest.raises(Exception, match="Failed to process query: INVALID_FIELD") as failed:
        sf.bulk.Opportunity.query("SELECT Bacon__c FROM Opportunity", wait=0)
    assert "Failed" in str(failed.value)


def test_pk_chunking_splits_the_batch_by_id_range(
    bulk_server: DevOrgServer, data: dict[str, Any]
) -> None:
    token = client_credentials_token(bulk_server)["access_token"]
    session = http_session(bulk_server)
    base = f"{bulk_server.url}/services/async/62.0"
    headers = {"X-SFDC-Session": token, "Content-Type": "application/json"}
    job = session.post(
        f"{base}/job",
        json={"operation": "query", "object": "Opportunity", "contentType": "JSON"},
        headers={**headers, "Sforce-Enable-PKChunking": "chunkSize=1200"},
        timeout=10,
    ).json()
    first = session.post(
        f"{base}/job/{job['id']}/batch", data="SELECT Id FROM Opportunity", headers=headers
    ).json()
    batches = session.get(f"{base}/job/{job['id']}/batch", headers=headers).json()["batchInfo"]
    assert [b["state"] for b in batches] == ["NotProcessed", "Completed", "Completed", "Completed"]
    assert batches[0]["id"] == first["id"]
    ids: list[str] = []
    for batch in batches[1:]:
        for result in session.get(
            f"{base}/job/{job['id']}/batch/{batch['id']}/result", headers=headers
        ).json():
            ids += [
                r["Id"]
                for r in session.get(
                    f"{base}/job/{job['id']}/batch/{batch['id']}/result/{result}", headers=headers
                ).json()
            ]
    live = sorted(r["Id"] for r in data["records"]["Opportunity"] if r["Id"] != DELETED)
    assert ids == live  # chunks in Id order, no row twice, the deleted one left out
    info = session.get(f"{base}/job/{job['id']}", headers=headers).json()
    assert info["numberBatchesTotal"] == 4
    assert info["numberBatchesCompleted"] == 3
    assert info["numberRecordsProcessed"] == OPPORTUNITIES - 1
    bad = session.post(
        f"{base}/job",
        json={"operation": "query", "object": "Opportunity", "contentType": "JSON"},
        headers={**headers, "Sforce-Enable-PKChunking": "chunkSize=999999"},
        timeout=10,
    )
    assert bad.status_code == 400
    assert bad.json()["exceptionCode"] == "InvalidJob"


def test_job_and_batch_errors_in_the_async_shape(bulk_server: DevOrgServer) -> None:
    token = client_credentials_token(bulk_server)["access_token"]
    session = http_session(bulk_server)
    base = f"{bulk_server.url}/services/async/62.0"
    headers = {"X-SFDC-Session": token, "Content-Type": "application/json"}

    def post(path: str, body: Any, **extra: str) -> requests.Response:
        return session.post(f"{base}/{path}", json=body, headers={**headers, **extra}, timeout=10)

    assert (
        post("job/750000000000000AAA", {"state": "Closed"}).json()["exceptionCode"] == "InvalidJob"
    )
    assert post("job", {"operation": "insert", "object": "Task"}).json()["exceptionCode"] == (
        "FeatureNotEnabled"
    )
    assert post("job", {"operation": "query", "object": "TaskStatus"}).json()["exceptionCode"] == (
        "InvalidJob"
    )
    job = post("job", {"operation": "query", "object": "Task", "contentType": "CSV"}).json()
    too_early = session.get(f"{base}/job/{job['id']}/batch/751000000000000AAA", headers=headers)
    assert too_early.status_code == 400
    assert too_early.json()["exceptionCode"] == "InvalidBatch"  # a JSON request: a JSON error
    bulk_server.bulk_delay = 3600
    try:
        batch = session.post(
            f"{base}/job/{job['id']}/batch",
            data="SELECT Id FROM Task",
            headers={**headers, "Content-Type": "text/csv"},
        )
        batch_id = _xml(batch.text).findtext(f"{NS}id")
        state = session.get(f"{base}/job/{job['id']}/batch/{batch_id}", headers=headers)
        assert _xml(state.text).findtext(f"{NS}state") == "InProgress"
        early = session.get(
            f"{base}/job/{job['id']}/batch/{batch_id}/result",
            headers={"X-SFDC-Session": token},
        )
        assert _xml(early.text).findtext(f"{NS}exceptionCode") == "InvalidBatch"
    finally:
        bulk_server.bulk_delay = 0.0
    wrong_type = session.post(
        f"{base}/job/{job['id']}/batch",
        data="SELECT Id FROM Task",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert wrong_type.status_code == 400
    aborted = post(f"job/{job['id']}", {"state": "Aborted"}).json()
    assert aborted["state"] == "Aborted"
    closed_twice = post(f"job/{job['id']}", {"state": "Closed"})
    assert closed_twice.json()["exceptionCode"] == "InvalidJobState"
    not_open = session.post(
        f"{base}/job/{job['id']}/batch",
        data="SELECT Id FROM Task",
        headers={"X-SFDC-Session": token, "Content-Type": "text/csv"},
    )
    assert _xml(not_open.text).findtext(f"{NS}exceptionCode") == "InvalidJobState"
    unknown = session.get(f"{base}/nothing", headers=headers)
    assert unknown.json()["exceptionCode"] == "InvalidUrl"
    old = session.get(f"{bulk_server.url}/services/async/20.0/job", headers=headers)
    assert old.json()["exceptionCode"] == "InvalidUrl"


def test_csv_results_say_utf8_so_a_tap_decodes_non_ascii_names() -> None:
    """Salesforce answers a Bulk 1.0 CSV result with ``text/csv; charset=UTF-8`` (Bulk API
    guide, "Use Compression for Responses"). tap-salesforce decodes the stream by that charset
    (requests' ``iter_content(decode_unicode=True)``); without it requests falls back to
    ISO-8859-1 for ``text/*`` and "Müller" arrives as "MÃ¼ller"."""
    data = sample_org_data(3)
    name = "Müller & Søhne, 東京"
    data["records"]["Opportunity"][0]["Name"] = name
    opp_id = data["records"]["Opportunity"][0]["Id"]
    org = DevOrg.from_data(data)
    try:
        with DevOrgServer(org) as srv:
            client = _TapLikeClient(srv, client_credentials_token(srv)["access_token"])
            rows = client.query_all("Opportunity", "SELECT Id, Name FROM Opportunity")
            assert {r["Id"]: r["Name"] for r in rows}[opp_id] == name
            results = [r for r in srv.requests if "/result/" in r.path]
            response = client.get(results[-1].path.split("/services/async/61.0/", 1)[1])
            assert response.headers["Content-Type"] == "text/csv; charset=UTF-8"
            empty = client.query_all("Opportunity", "SELECT Id FROM Opportunity WHERE Name = 'x'")
            assert empty == []
            results = [r for r in srv.requests if "/result/" in r.path]
            response = client.get(results[-1].path.split("/services/async/61.0/", 1)[1])
            assert response.text == "Records not found for this query"
            assert response.headers["Content-Type"] == "text/csv; charset=UTF-8"
    finally:
        org.close()


def test_an_empty_csv_result_says_records_not_found(bulk_server: DevOrgServer) -> None:
    token = client_credentials_token(bulk_server)["access_token"]
    client = _TapLikeClient(bulk_server, token)
    rows = client.query_all("Opportunity", "SELECT Id FROM Opportunity WHERE Name = 'nobody'")
    assert rows == []


def test_bulk1_calls_count_and_take_faults_like_rest(bulk_server: DevOrgServer) -> None:
    """Each async request is one API call; past the limit ExceededQuota; injected 503s too."""
    token = client_credentials_token(bulk_server)["access_token"]
    session = http_session(bulk_server)
    url = f"{bulk_server.url}/services/async/62.0/job"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = {"operation": "query", "object": "User", "contentType": "JSON"}
    used = bulk_server.api_calls
    ok = session.post(url, json=body, headers=headers, timeout=10)
    assert ok.status_code == 201
    assert ok.headers["Sforce-Limit-Info"] == f"api-usage={used + 1}/{bulk_server.api_limit}"
    bulk_server.set_faults(FaultSpec(api_limit=used + 1))
    try:
        over = session.post(url, json=body, headers=headers, timeout=10)
        assert over.status_code == 400
        assert over.json()["exceptionCode"] == "ExceededQuota"
        bulk_server.set_faults(FaultSpec(error_rate=1.0, seed=3))
        failed = session.post(url, json=body, headers=headers, timeout=10)
        assert failed.status_code in (500, 503)
        assert failed.json()["exceptionCode"] == "Unknown"
        bulk_server.set_faults(FaultSpec(throttle_rate=1.0, retry_after_s=2))
        throttled = session.post(url, json=body, headers=headers, timeout=10)
        assert throttled.status_code == 429
        assert throttled.headers["Retry-After"] == "2"
    finally:
        bulk_server.set_faults(FaultSpec())


def test_serve_cli_takes_bulk_result_rows(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sfsync.cli.devorg import devorg

    result = CliRunner().invoke(devorg, ["serve", "--help"])
    assert "--bulk-result-rows" in result.output


@pytest.mark.parametrize("sobject", ["User", "Opportunity", "OpportunityLineItem", "Task"])
def test_dlt_style_every_described_field_but_compounds_through_bulk(
    sf: Salesforce, bulk_server: DevOrgServer, sobject: str
) -> None:
    """dlt's Salesforce source: describe, drop compound fields, ``query_all`` lazily by Bulk 1.0."""
    describe = getattr(sf, sobject).describe()
    compounds = {f["compoundFieldName"] for f in describe["fields"] if f["compoundFieldName"]}
    compounds -= {"Name"}
    fields = [f["name"] for f in describe["fields"] if f["name"] not in compounds]
    datetimes = {f["name"] for f in describe["fields"] if f["type"] == "datetime"}
    soql = f"SELECT {', '.join(fields)} FROM {sobject} ORDER BY SystemModstamp ASC"
    pages = getattr(sf.bulk, sobject).query_all(soql, lazy_operation=True, wait=0)
    rows = [row for page in pages for row in page]
    assert len(rows) == bulk_server.org.query(f"SELECT COUNT() FROM {sobject}", True)[0]["expr0"]
    assert all(set(fields) <= set(r) for r in rows)
    stamps = [r["SystemModstamp"] for r in rows]
    assert all(isinstance(s, int) for s in stamps)
    assert stamps == sorted(stamps)
    assert all(r[name] is None or isinstance(r[name], int) for r in rows for name in datetimes)
