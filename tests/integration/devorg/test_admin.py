"""The admin API mutates the org while it is served, without counting as API calls."""

from __future__ import annotations

from pathlib import Path

from sfsync.devorg import DevOrg, DevOrgServer
from sfsync.devorg.testing import REP_USER_ID, make_id

from .conftest import http_session, salesforce_client


def test_admin_calls_need_the_token_and_do_not_count(server: DevOrgServer, tmp_path: Path) -> None:
    session = http_session(server)
    admin = {"X-Devorg-Admin": server.admin_token}
    assert session.get(f"{server.url}/_devorg/status", timeout=5).status_code == 401
    before = server.api_calls
    opp = make_id("006", 77)
    edited = session.patch(
        f"{server.url}/_devorg/records/Opportunity/{opp}?as_user={REP_USER_ID}",
        json={"NextStep": "Demo"},
        headers=admin,
        timeout=5,
    )
    assert edited.status_code == 204
    created = session.post(
        f"{server.url}/_devorg/records/Task", json={"Subject": "admin"}, headers=admin, timeout=5
    )
    assert created.status_code == 201
    refused = session.post(
        f"{server.url}/_devorg/records/Task", json={"Nope": 1}, headers=admin, timeout=5
    )
    assert refused.json()[0]["errorCode"] == "INVALID_FIELD"
    for action in ("delete", "hard_delete", "erase"):
        target = {"delete": 78, "hard_delete": 79, "erase": 80}[action]
        response = session.post(
            f"{server.url}/_devorg/{action}",
            json={"type": "Opportunity", "id": make_id("006", target)},
            headers=admin,
            timeout=5,
        )
        assert response.status_code == 204
    faults = session.post(
        f"{server.url}/_devorg/faults",
        json={"spec": "latency=1ms,seed=3"},
        headers=admin,
        timeout=5,
    )
    assert faults.json() == {"faults": "latency_ms=1.0,seed=3"}
    saved = session.post(
        f"{server.url}/_devorg/save",
        json={"path": str(tmp_path / "s.json")},
        headers=admin,
        timeout=5,
    )
    assert saved.status_code == 200
    session.post(f"{server.url}/_devorg/faults", json={}, headers=admin, timeout=5)
    assert server.api_calls == before
    assert not [r for r in server.requests if r.path.startswith("/_devorg")]

    sf = salesforce_client(server)
    row = sf.Opportunity.get(opp)
    assert row["NextStep"] == "Demo"
    assert row["LastModifiedById"] == REP_USER_ID
    reloaded = DevOrg.load(tmp_path / "s.json")
    assert (
        reloaded.query(
            f"SELECT IsDeleted FROM Opportunity WHERE Id = '{make_id('006', 78)}'",
            include_deleted=True,
        )[0]["IsDeleted"]
        is True
    )
