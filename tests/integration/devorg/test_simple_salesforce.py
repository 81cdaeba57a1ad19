"""simple-salesforce, unmodified, works against the dev org as against a real org."""

# SOQL here is built from the test's own constant ids.

from __future__ import annotations

import base64
import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from sfsync.devorg import DevOrgServer, FaultSpec
from sfsync.devorg.testing import INACTIVE_USER_ID, REP_USER_ID, make_id

from .conftest import OPPORTUNITIES, client_credentials_token, http_session, salesforce_client


def test_client_credentials_token_has_the_documented_shape(server: DevOrgServer) -> None:
    """The token reply of §1.1: instance_url is the dev org, no expires_in/refresh_token."""
    token = client_credentials_token(server)
    assert set(token) == {
        "access_token",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
        "signature",
        "scope",
    }
    assert token["instance_url"] == server.url
    assert token["token_type"] == "Bearer"
    assert token["issued_at"].isdigit()


def test_client_credentials_accepts_a_basic_header(server: DevOrgServer) -> None:
    basic = base64.b64encode(f"{server.client_id}:{server.client_secret}".encode()).decode()
    response = http_session(server).post(
        f"{server.url}/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["access_token"]


def test_password_flow_and_bad_credentials(server: DevOrgServer) -> None:
    """Password+token works; a wrong password is 400 invalid_grant "authentication failure"."""
    form = {
        "grant_type": "password",
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "username": server.username,
        "password": server.password + server.security_token,
    }
    session = http_session(server)
    ok = session.post(f"{server.url}/services/oauth2/token", data=form, timeout=10)
    assert ok.status_code == 200
    sf = salesforce_client(server, ok.json())
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 4
    bad = session.post(
        f"{server.url}/services/oauth2/token", data={**form, "password": "nope"}, timeout=10
    )
    assert bad.status_code == 400
    assert bad.json() == {"error": "invalid_grant", "error_description": "authentication failure"}


_SOAP_LOGIN = """<?xml version="1.0" encoding="utf-8" ?>
<env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:urn="urn:partner.soap.sforce.com">
  <env:Header><urn:CallOptions><urn:client>sfsync</urn:client></urn:CallOptions></env:Header>
  <env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com">
    <n1:username>{username}</n1:username><n1:password>{password}</n1:password>
  </n1:login></env:Body>
</env:Envelope>"""


def test_soap_login_then_direct_mode(server: DevOrgServer) -> None:
    """The partner login() of §1.2 (password + security token), then a session-id client."""
    session = http_session(server)
    url = f"{server.url}/services/Soap/u/62.0"
    headers = {"content-type": "text/xml", "charset": "UTF-8", "SOAPAction": "login"}
    body = _SOAP_LOGIN.format(
        username=server.username, password=server.password + server.security_token
    )
    response = session.post(url, data=body, headers=headers, timeout=10)
    assert response.status_code == 200
    session_id = re.search(r"<sessionId>([^<]+)</sessionId>", response.text)
    server_url = re.search(r"<serverUrl>([^<]+)</serverUrl>", response.text)
    assert session_id
    assert server_url
    assert server_url.group(1).startswith(server.url)
    assert "<organizationMultiCurrency>false</organizationMultiCurrency>" in response.text
    sf = Salesforce(
        instance_url=server.url, session_id=session_id.group(1), session=session, version="62.0"
    )
    assert sf.query("SELECT Id FROM Organization")["totalSize"] == 1

    wrong = _SOAP_LOGIN.format(username=server.username, password=server.password)
    failed = session.post(url, data=wrong, headers=headers, timeout=10)
    assert failed.status_code == 500
    assert "<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>" in failed.text


def test_jwt_bearer_flow(tmp_path: Path) -> None:
    """A JWT signed with the key whose public half the data file names gets a token."""
    import json

    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from sfsync.devorg import DevOrg
    from sfsync.devorg.testing import sample_org_data

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    data = sample_org_data(3)
    data["credentials"] = {"client_id": "jwt-app", "jwt_public_key": public}
    path = tmp_path / "org.json"
    path.write_text(json.dumps(data))
    with DevOrgServer(DevOrg.load(path)) as srv:
        claims = {
            "iss": "jwt-app",
            "sub": srv.username,
            "aud": "https://login.salesforce.com",
            "exp": int((datetime.now(UTC) + timedelta(minutes=3)).timestamp()),
        }
        assertion = jwt.encode(claims, key, algorithm="RS256")
        session = http_session(srv)
        grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
        ok = session.post(
            f"{srv.url}/services/oauth2/token",
            data={"grant_type": grant, "assertion": assertion},
            timeout=10,
        )
        assert ok.status_code == 200
        assert set(ok.json()) == {"access_token", "scope", "instance_url", "id", "token_type"}
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = jwt.encode(claims, other, algorithm="RS256")
        bad = session.post(
            f"{srv.url}/services/oauth2/token",
            data={"grant_type": grant, "assertion": forged},
            timeout=10,
        )
        assert bad.status_code == 400
        assert bad.json()["error"] == "invalid_grant"


def test_query_all_iter_pages_through_5000_opportunities(
    server: DevOrgServer, sf: Salesforce
) -> None:
    """Three pages of 2000/2000/1000, in (SystemModstamp, Id) order, one API call each."""
    before = server.api_calls
    rows = list(
        sf.query_all_iter("SELECT Id, SystemModstamp FROM Opportunity ORDER BY SystemModstamp, Id")
    )
    assert len(rows) == OPPORTUNITIES
    assert server.api_calls - before == 3
    keys = [(r["SystemModstamp"], r["Id"]) for r in rows]
    assert keys == sorted(keys)
    assert len({r["Id"] for r in rows}) == OPPORTUNITIES
    pages = [r for r in server.requests if r.path.startswith("/services/data/v62.0/query")]
    assert re.fullmatch(r"/services/data/v62\.0/query/01g[A-Za-z0-9]{15}-4000", pages[-1].path)


def test_batch_size_header_is_honoured_and_clamped(sf: Salesforce) -> None:
    small = sf.query("SELECT Id FROM Opportunity", headers={"Sforce-Query-Options": "batchSize=10"})
    assert len(small["records"]) == 200  # min 200
    assert small["done"] is False
    assert small["totalSize"] == OPPORTUNITIES
    page = sf.query("SELECT Id FROM Opportunity", headers={"Sforce-Query-Options": "batchSize=500"})
    assert len(page["records"]) == 500
    assert page["nextRecordsUrl"].endswith("-500")


def test_parent_relationships_and_api_usage(sf: Salesforce) -> None:
    result = sf.query(
        "SELECT Id, Owner.Name, Owner.Manager.IsActive FROM Opportunity "
        f"WHERE Id = '{make_id('006', 1)}'"
    )
    record = result["records"][0]
    assert record["Owner"]["Name"] == "Ann Lee"
    assert record["Owner"]["Manager"]["IsActive"] is True
    assert record["Owner"]["attributes"]["type"] == "User"
    assert sf.api_usage["api-usage"].total == 5_000_000


def test_bulk2_query_pages_and_download(
    server: DevOrgServer, sf: Salesforce, tmp_path: Path
) -> None:
    """Bulk 2.0: a CSV page per locator (header on each, all quoted), and streamed download."""
    soql = "SELECT Id, Name, Amount, IsClosed, Owner.Name FROM Opportunity"
    pages = list(sf.bulk2.Opportunity.query(soql, max_records=2000, wait=0.1))
    assert len(pages) == 3
    rows = [row for page in pages for row in list(csv.reader(io.StringIO(page)))[1:]]
    assert len(rows) == OPPORTUNITIES
    assert pages[1].splitlines()[0] == '"Id","Name","Amount","IsClosed","Owner.Name"'
    assert all(line.startswith('"') for line in pages[0].splitlines())
    results = sf.bulk2.Opportunity.download(soql, path=str(tmp_path), max_records=2000, wait=0.1)
    assert sum(r["number_of_records"] for r in results) == OPPORTUNITIES
    assert all(Path(r["file"]).exists() for r in results)


def test_bulk2_rejects_count_and_unsupported_objects(server: DevOrgServer) -> None:
    token = client_credentials_token(server)
    session = http_session(server)
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    url = f"{server.url}/services/data/v62.0/jobs/query"
    count = session.post(
        url,
        json={"operation": "query", "query": "SELECT COUNT() FROM Opportunity"},
        headers=headers,
        timeout=10,
    )
    assert count.status_code == 400
    status = session.post(
        url,
        json={"operation": "query", "query": "SELECT Id FROM TaskStatus"},
        headers=headers,
        timeout=10,
    )
    assert status.status_code == 400
    assert status.json()[0]["errorCode"] == "INVALIDENTITY"


def test_450_tasks_in_three_collection_calls(server: DevOrgServer, sf: Salesforce) -> None:
    """sObject Collections: ≤200 per call, one API call each, results in request order."""
    records = [
        {
            "attributes": {"type": "Task"},
            "Subject": f"Check {i}",
            "WhatId": make_id("006", i + 1),
            "OwnerId": REP_USER_ID,
            "Sfsync_Key__c": f"bulk-{i}",
        }
        for i in range(450)
    ]
    before = server.api_calls
    results = []
    for start in range(0, 450, 200):
        chunk = records[start : start + 200]
        results += sf.restful(
            "composite/sobjects", method="POST", json={"allOrNone": False, "records": chunk}
        )
    assert server.api_calls - before == 3
    assert len(results) == 450
    assert all(r["success"] and r["id"].startswith("00T") for r in results)
    assert (
        sf.query("SELECT COUNT() FROM Task WHERE Sfsync_Key__c LIKE 'bulk-%'")["totalSize"] == 450
    )


def test_collection_errors_are_per_record_and_all_or_none_rolls_back(sf: Salesforce) -> None:
    good = {"attributes": {"type": "Task"}, "Subject": "ok", "OwnerId": REP_USER_ID}
    bad = {"attributes": {"type": "Task"}, "Subject": "x", "OwnerId": INACTIVE_USER_ID}
    results = sf.restful(
        "composite/sobjects", method="POST", json={"allOrNone": False, "records": [good, bad]}
    )
    assert results[0]["success"] is True
    assert results[1] == {
        "success": False,
        "errors": [
            {
                "statusCode": "INACTIVE_OWNER_OR_USER",
                "message": f"operation performed with inactive user [{INACTIVE_USER_ID}] "
                "as owner of task",
                "fields": [],
            }
        ],
    }
    before = sf.query("SELECT COUNT() FROM Task")["totalSize"]
    rolled = sf.restful(
        "composite/sobjects", method="POST", json={"allOrNone": True, "records": [good, bad]}
    )
    assert rolled[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert rolled[1]["errors"][0]["statusCode"] == "INACTIVE_OWNER_OR_USER"
    assert sf.query("SELECT COUNT() FROM Task")["totalSize"] == before


def test_upsert_on_external_id(sf: Salesforce) -> None:
    """Insert answers 201 created:true, the same key again updates (200) without a duplicate."""
    fields = {
        "Subject": "Close date in the past",
        "WhatId": make_id("006", 7),
        "OwnerId": REP_USER_ID,
    }
    assert sf.Task.upsert("Sfsync_Key__c/opp7-close_date_past", fields) == 201
    assert sf.Task.upsert("Sfsync_Key__c/opp7-close_date_past", {"Status": "Completed"}) == 200
    rows = sf.query(
        "SELECT Id, Status, IsClosed FROM Task WHERE Sfsync_Key__c = 'opp7-close_date_past'"
    )["records"]
    assert len(rows) == 1
    assert rows[0]["Status"] == "Completed"
    assert rows[0]["IsClosed"] is True


def test_task_writes_do_not_touch_the_opportunitys_last_modified(
    server: DevOrgServer, sf: Salesforce
) -> None:
    opp_id = make_id("006", 11)
    before = sf.Opportunity.get(opp_id)
    sf.Task.create({"Subject": "Nudge", "WhatId": opp_id, "OwnerId": REP_USER_ID})
    after = sf.Opportunity.get(opp_id)
    assert after["LastModifiedDate"] == before["LastModifiedDate"]
    assert not [
        r for r in server.requests if r.method == "PATCH" and "/sobjects/Opportunity/" in r.path
    ]


def test_soft_delete_is_visible_to_query_all_and_get_deleted(
    server: DevOrgServer, sf: Salesforce
) -> None:
    opp_id = make_id("006", 42)
    assert sf.Opportunity.delete(opp_id) == 204
    live = sf.query(f"SELECT Id FROM Opportunity WHERE Id = '{opp_id}'")
    assert live["totalSize"] == 0
    everything = sf.query_all(
        f"SELECT Id, IsDeleted FROM Opportunity WHERE Id = '{opp_id}'", include_deleted=True
    )
    assert everything["records"][0]["IsDeleted"] is True
    now = server.org.now()
    deleted = sf.Opportunity.deleted(now - timedelta(hours=1), now + timedelta(minutes=5))
    assert opp_id in [d["id"] for d in deleted["deletedRecords"]]
    assert set(deleted) == {"deletedRecords", "earliestDateAvailable", "latestDateCovered"}
    history = sf.query_all(
        f"SELECT Id, IsDeleted FROM OpportunityHistory WHERE OpportunityId = '{opp_id}'",
        include_deleted=True,
    )
    assert all(r["IsDeleted"] for r in history["records"])
    with pytest.raises(SalesforceResourceNotFound) as info:
        sf.Opportunity.delete(opp_id)
    assert info.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"


def test_hard_delete_and_erase(server: DevOrgServer, sf: Salesforce) -> None:
    hard, erased = make_id("006", 43), make_id("006", 44)
    server.org.hard_delete("Opportunity", hard)
    server.org.erase("Opportunity", erased)
    for opp_id in (hard, erased):
        result = sf.query_all(
            f"SELECT Id FROM Opportunity WHERE Id = '{opp_id}'", include_deleted=True
        )
        assert result["totalSize"] == 0
    now = server.org.now()
    deleted = sf.Opportunity.deleted(now - timedelta(hours=1), now + timedelta(minutes=5))
    ids = [d["id"] for d in deleted["deletedRecords"]]
    assert hard in ids
    assert erased not in ids


def test_malformed_query_and_unknown_field(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELEKT Id FROM Opportunity")
    assert info.value.content[0]["errorCode"] == "MALFORMED_QUERY"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Bacon__c FROM Opportunity")
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Bacon__c' on entity 'Opportunity'" in info.value.content[0]["message"]


def test_expired_session_is_401_invalid_session_id(server: DevOrgServer) -> None:
    sf = salesforce_client(server)
    sf.query("SELECT Id FROM User LIMIT 1")
    server.expire_sessions()
    with pytest.raises(SalesforceExpiredSession) as info:
        sf.query("SELECT Id FROM User LIMIT 1")
    assert info.value.content == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_session_ttl_fault(server: DevOrgServer) -> None:
    sf = salesforce_client(server)
    server.set_faults(FaultSpec(session_ttl=0.0))
    try:
        with pytest.raises(SalesforceExpiredSession):
            sf.query("SELECT Id FROM User LIMIT 1")
    finally:
        server.set_faults(FaultSpec())


def test_api_limit_is_403_request_limit_exceeded(server: DevOrgServer, sf: Salesforce) -> None:
    used = server.api_calls
    server.set_faults(FaultSpec(api_limit=used + 2))
    try:
        sf.query("SELECT Id FROM User LIMIT 1")
        limits = sf.restful("limits/")
        assert limits["DailyApiRequests"] == {"Max": used + 2, "Remaining": 0}
        with pytest.raises(SalesforceRefusedRequest) as info:
            sf.query("SELECT Id FROM User LIMIT 1")
        assert info.value.content == [
            {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
        ]
        assert server.api_calls == used + 2
    finally:
        server.set_faults(FaultSpec())


def _statuses(server: DevOrgServer, token: str, count: int) -> list[int]:
    session = http_session(server)
    out = []
    for _ in range(count):
        try:
            response = session.get(
                f"{server.url}/services/data/v62.0/limits",
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            )
            out.append(response.status_code)
        except requests.ConnectionError:
            out.append(0)
            session = http_session(server)
    return out


def test_faults_are_reproducible_under_a_seed(server: DevOrgServer) -> None:
    """Same seed, same sequence of requests: the same 500/503/429/dropped answers."""
    token = client_credentials_token(server)["access_token"]
    spec = FaultSpec.parse("error_rate=0.3,drop_rate=0.1,throttle_rate=0.1,seed=7")
    try:
        server.set_faults(spec)
        first = _statuses(server, token, 40)
        server.set_faults(spec)
        second = _statuses(server, token, 40)
    finally:
        server.set_faults(FaultSpec())
    assert first == second
    assert {0, 500, 503, 429, 200} <= set(first)


def test_lock_rate_fails_records_with_unable_to_lock_row(
    server: DevOrgServer, sf: Salesforce
) -> None:
    server.set_faults(FaultSpec(lock_rate=1.0, seed=1))
    try:
        results = sf.restful(
            "composite/sobjects",
            method="POST",
            json={"records": [{"attributes": {"type": "Task"}, "Subject": "locked"}]},
        )
    finally:
        server.set_faults(FaultSpec())
    assert results[0]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"


def test_every_response_carries_the_limit_header(server: DevOrgServer) -> None:
    session = http_session(server)
    response = session.get(f"{server.url}/services/data/v62.0/limits", timeout=5)
    assert response.status_code == 401
    assert re.fullmatch(r"api-usage=\d+/\d+", response.headers["Sforce-Limit-Info"])
    assert response.headers["Content-Type"] == "application/json;charset=UTF-8"


def test_versions(server: DevOrgServer) -> None:
    token = client_credentials_token(server)["access_token"]
    session = http_session(server)
    headers = {"Authorization": f"Bearer {token}"}
    versions = session.get(f"{server.url}/services/data/", timeout=5).json()
    assert {"version": "62.0", "label": "Winter '25", "url": "/services/data/v62.0"} in versions
    for version in ("59.0", "61.0", "62.0"):
        ok = session.get(f"{server.url}/services/data/v{version}/sobjects/", headers=headers)
        assert ok.status_code == 200
    assert (
        session.get(f"{server.url}/services/data/v99.0/sobjects", headers=headers).status_code
        == 404
    )
    assert (
        session.get(f"{server.url}/services/data/v25.0/sobjects", headers=headers).status_code
        == 410
    )


def test_a_composite_subrequest_sets_its_own_headers_but_not_the_inherited_ones(
    sf: Salesforce,
) -> None:
    """``httpHeaders`` of a subrequest apply to it alone (a query's batch size); Accept,
    Authorization and Content-Type come from the composite request and may not be set."""
    version = sf.sf_version

    def composite(headers: dict[str, str] | None) -> requests.Response:
        sub: dict[str, object] = {
            "method": "GET",
            "url": f"/services/data/v{version}/query/?q=SELECT+Id+FROM+Opportunity",
            "referenceId": "page",
        }
        if headers is not None:
            sub["httpHeaders"] = headers
        plain = {"method": "GET", "url": sub["url"], "referenceId": "plain"}
        return sf.session.post(
            f"{sf.base_url}composite",
            json={"allOrNone": False, "compositeRequest": [sub, plain]},
            headers=sf.headers,
        )

    answer = composite({"Sforce-Query-Options": "batchSize=200"}).json()["compositeResponse"]
    page, plain = answer[0]["body"], answer[1]["body"]
    assert page["totalSize"] == plain["totalSize"] > 200
    assert len(page["records"]) == 200
    assert page["nextRecordsUrl"]
    assert len(plain["records"]) == min(plain["totalSize"], 2000)
    refused = composite({"Authorization": "Bearer someone-else"})
    assert refused.status_code == 400
    assert refused.json()[0]["errorCode"] == "INVALID_INPUT"
    assert "Authorization" in refused.json()[0]["message"]
