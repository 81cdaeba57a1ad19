"""Credentials never travel over plain HTTP; a server that drips never hangs a run.

The fake servers record every byte they receive: a canary secret must never be
among them, and a refused plain-HTTP URL is refused before any connection.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.cli_helpers import run_sfsync
from tests.integration.fake_servers import FakeServer, json_answer

CANARY_SECRET = "canary-client-secret-5b1f0e"
CANARY_TOKEN = "00DCANARY!canary-access-token-77d2"
CANARY_SESSION = "00DCANARY!canary-session-id-91aa"


def _config(tmp_path: Path, salesforce: dict[str, object]) -> dict[str, str]:
    path = tmp_path / "sfsync.yaml"
    config = {
        "salesforce": {"client_id": "canary-client", "timeout_s": 5, **salesforce},
        "database": {"url": f"sqlite:///{tmp_path / 'warehouse.db'}"},
        "sync": {"max_attempts": 1},
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {"SFSYNC_CONFIG": str(path), "SFSYNC_SALESFORCE__CLIENT_SECRET": CANARY_SECRET}
    assert run_sfsync("db", "upgrade", env=env).exit_code == 0
    return env


def _nothing_leaked(server: FakeServer, *outputs: str) -> None:
    received = bytes(server.received)
    for canary in (CANARY_SECRET, CANARY_TOKEN, CANARY_SESSION):
        assert canary.encode() not in received
        for output in outputs:
            assert canary not in output


def test_a_plain_http_login_url_is_refused_before_connecting(tmp_path: Path) -> None:
    with FakeServer(lambda _req, _conn: json_answer("{}"), tls=False) as plain:
        env = _config(tmp_path, {"login_url": plain.url})
        outcome = run_sfsync("check", env=env)
        assert outcome.exit_code == 2, outcome.output
        assert "salesforce.login_url" in outcome.stderr
        assert bytes(plain.received) == b""
        _nothing_leaked(plain, outcome.stdout, outcome.stderr)


def test_a_session_on_a_plain_http_instance_is_refused(tmp_path: Path) -> None:
    with FakeServer(lambda _req, _conn: json_answer("{}"), tls=False) as plain:
        env = _config(
            tmp_path,
            {"auth": "session", "instance_url": plain.url, "session_id": CANARY_SESSION},
        )
        outcome = run_sfsync("sync", env=env)
        assert outcome.exit_code == 2, outcome.output
        assert "salesforce.instance_url" in outcome.stderr
        assert bytes(plain.received) == b""
        _nothing_leaked(plain, outcome.stdout, outcome.stderr)


def test_a_token_reply_pointing_at_plain_http_gets_no_token(tmp_path: Path) -> None:
    """The login host answers over HTTPS with an http:// instance_url: exit 3, nothing sent."""
    with FakeServer(lambda _req, _conn: json_answer("[]"), tls=False) as plain:
        reply = json.dumps(
            {
                "access_token": CANARY_TOKEN,
                "instance_url": plain.url,
                "id": f"{plain.url}/id/00D000000000001AAA/005000000000001AAA",
                "token_type": "Bearer",
            }
        )
        with FakeServer(lambda _req, _conn: json_answer(reply), tls=True, ca_dir=tmp_path) as login:
            env = _config(tmp_path, {"login_url": login.url, "ca_bundle": str(login.ca_path)})
            for command in ("check", "sync"):
                outcome = run_sfsync(command, env=env)
                assert outcome.exit_code == 3, outcome.output
                assert plain.url in outcome.stdout + outcome.stderr
                assert "https" in outcome.stdout + outcome.stderr
                _nothing_leaked(plain, outcome.stdout, outcome.stderr)
            assert bytes(plain.received) == b""


def test_a_soap_login_pointing_at_plain_http_gets_no_session(tmp_path: Path) -> None:
    with FakeServer(lambda _req, _conn: json_answer("[]"), tls=False) as plain:
        envelope = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
            f"<serverUrl>{plain.url}/services/Soap/u/62.0/00D000000000001</serverUrl>"
            f"<sessionId>{CANARY_SESSION}</sessionId><userId>005000000000001AAA</userId>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )

        def soap(_req: bytes, _conn: object) -> bytes:
            data = envelope.encode()
            return (
                b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: "
                + str(len(data)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + data
            )

        with FakeServer(soap, tls=True, ca_dir=tmp_path) as login:  # type: ignore[arg-type]
            env = _config(
                tmp_path,
                {
                    "auth": "password",
                    "client_id": None,
                    "login_url": login.url,
                    "ca_bundle": str(login.ca_path),
                    "username": "rep@example.com",
                    "password": "pw-canary-1",
                    "security_token": "tok",
                },
            )
            outcome = run_sfsync("sync", env=env)
            assert outcome.exit_code == 3, outcome.output
            assert plain.url in outcome.stderr
            assert bytes(plain.received) == b""
            _nothing_leaked(plain, outcome.stdout, outcome.stderr)
