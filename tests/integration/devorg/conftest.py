"""A dev org served over HTTPS on loopback, and clients that reach it like a real org."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from sfsync.devorg import DevOrg, DevOrgServer
from sfsync.devorg.testing import sample_org_data

OPPORTUNITIES = 5000


@pytest.fixture(scope="module")
def org_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small valid data file written by the test itself (no generator)."""
    path = tmp_path_factory.mktemp("devorg") / "org.json"
    data = sample_org_data(OPPORTUNITIES)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def server(org_file: Path) -> Iterator[DevOrgServer]:
    org = DevOrg.load(org_file)
    with DevOrgServer(org) as srv:
        yield srv
    org.close()


def http_session(srv: DevOrgServer) -> requests.Session:
    session = requests.Session()
    session.verify = str(srv.ca_path)
    session.trust_env = False  # else REQUESTS_CA_BUNDLE would override verify
    return session


def client_credentials_token(srv: DevOrgServer) -> dict[str, Any]:
    response = http_session(srv).post(
        f"{srv.url}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": srv.client_id,
            "client_secret": srv.client_secret,
        },
        timeout=10,
    )
    response.raise_for_status()
    token: dict[str, Any] = response.json()
    return token


def salesforce_client(srv: DevOrgServer, token: dict[str, Any] | None = None) -> Salesforce:
    token = token or client_credentials_token(srv)
    return Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        session=http_session(srv),
        version="62.0",
    )


@pytest.fixture
def sf(server: DevOrgServer) -> Salesforce:
    return salesforce_client(server)
