"""Contract: the dev org answers like the recorded Salesforce shapes in tests/fixtures/salesforce.

Each fixture holds a request and the documented response (docs/salesforce-api.md): the
test checks the status, the required headers, and that the body has the same keys
and JSON types (and, where a fixture says so, the same values or patterns).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from sfsync.devorg import DevOrgServer, FaultSpec
from sfsync.devorg.testing import INACTIVE_USER_ID, REP_USER_ID, make_id
from sfsync.formats import soql_datetime

from .conftest import client_credentials_token, http_session

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "salesforce"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def assert_shape(expected: Any, actual: Any, where: str, *, exact: bool, by_index: bool) -> None:
    """Same keys (all of them when ``exact``) and the same JSON types; null matches anything.

    Array items are compared with the fixture's first item (or item by item with
    ``by_index``); an empty array in the response has nothing to compare.
    """
    if expected is None:
        return
    assert _json_type(actual) == _json_type(expected), (
        f"{where}: expected {_json_type(expected)}, got {actual!r}"
    )
    if isinstance(expected, dict):
        missing = set(expected) - set(actual)
        assert not missing, f"{where}: missing keys {sorted(missing)}"
        if exact:
            extra = set(actual) - set(expected)
            assert not extra, f"{where}: unexpected keys {sorted(extra)}"
        for key, value in expected.items():
            assert_shape(value, actual[key], f"{where}.{key}", exact=exact, by_index=by_index)
    elif isinstance(expected, list) and expected:
        if by_index:
            assert len(actual) == len(expected), f"{where}: expected {len(expected)} items"
            pairs = list(zip(expected, actual, strict=True))
        else:
            pairs = [(expected[0], item) for item in actual]
        for i, (exp, act) in enumerate(pairs):
            assert_shape(exp, act, f"{where}[{i}]", exact=exact, by_index=by_index)


def _at(value: Any, path: str) -> Any:
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


class _Context:
    def __init__(self, server: DevOrgServer) -> None:
        self.server = server
        self.session: requests.Session = http_session(server)
        self.token = client_credentials_token(server)["access_token"]
        now = server.org.now()
        self.values: dict[str, str] = {
            "client_id": server.client_id,
            "client_secret": server.client_secret,
            "username": server.username,
            "rep": REP_USER_ID,
            "inactive": INACTIVE_USER_ID,
            "task5": make_id("00T", 5),
            "now_minus_1h": soql_datetime(now - timedelta(hours=1)),
            "now_plus_5m": soql_datetime(now + timedelta(minutes=5)),
        }
        self.values.update({f"opp{i}": make_id("006", i) for i in range(1, 21)})

    def fill(self, value: Any) -> Any:
        if isinstance(value, str):
            return re.sub(
                r"\{([a-z_0-9]+)\}", lambda m: self.values.get(m.group(1), m.group(0)), value
            )
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        return value

    def send(self, spec: dict[str, Any]) -> requests.Response:
        headers = {}
        auth = spec.get("auth", "bearer")
        if auth == "bearer":
            headers["Authorization"] = f"Bearer {self.token}"
        elif auth == "bad":
            headers["Authorization"] = "Bearer 00D000000000000!bogus"
        response = self.session.request(
            spec["method"],
            self.server.url + self.fill(spec["path"]),
            params=self.fill(spec.get("params")),
            json=self.fill(spec.get("json")),
            data=self.fill(spec.get("form")),
            headers=headers,
            timeout=10,
        )
        for name, key in spec.get("capture", {}).items():
            self.values[name] = response.json()[key]
        return response


@pytest.mark.parametrize("name", NAMES)
def test_response_matches_the_documented_shape(server: DevOrgServer, name: str) -> None:
    fixture = json.loads((FIXTURES / f"{name}.json").read_text())
    context = _Context(server)
    for step in fixture.get("setup", []):
        context.send(step)
    if "faults" in fixture:
        server.set_faults(FaultSpec.parse(fixture["faults"]))
    try:
        response = context.send(fixture["request"])
    finally:
        server.set_faults(FaultSpec())
    expected = fixture["response"]
    assert response.status_code == expected["status"], response.text
    for header, value in expected.get("headers", {}).items():
        assert header in response.headers, f"missing header {header}"
        if value.startswith("re:"):
            assert re.search(value[3:], response.headers[header]), response.headers[header]
        else:
            assert response.headers[header] == value
    if "body_text" in expected:
        text = expected["body_text"]
        if text.startswith("re:"):
            assert re.search(text[3:], response.text), response.text[:500]
        else:
            assert response.text == text
        return
    body = response.json()
    if expected.get("equals"):
        assert body == expected["body"]
    assert_shape(
        expected["body"],
        body,
        "body",
        exact=expected.get("match") == "exact",
        by_index=bool(expected.get("item_by_index")),
    )
    for path, pattern in expected.get("patterns", {}).items():
        assert re.search(context.fill(pattern), str(_at(body, path))), (path, _at(body, path))


def test_every_fixture_names_its_source() -> None:
    for name in NAMES:
        fixture = json.loads((FIXTURES / f"{name}.json").read_text())
        assert fixture["source"].startswith("docs/salesforce-api.md")
