"""Credentials never travel over plain HTTP; a server that drips never hangs a run.

The fake servers record every byte they receive: a canary secret must never be
among them, and a refused plain-HTTP URL is refused before any connection.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml

from tests.cli_helpers import run_sfsync
from tests.reliability.fake_servers import FakeServer, Responder, dripping, json_answer

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
    database = {"SFSYNC_DATABASE_URL": config["database"]["url"]}  # type: ignore[index]
    assert run_sfsync("db", "upgrade", env=database).exit_code == 0
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


def _token_then(answer: Responder, server_url: list[str]) -> Responder:
    """A login host that is also the instance: a token at once, then ``answer``."""

    def respond(request: bytes, conn: socket.socket) -> bytes | None:
        if b"/services/oauth2/token" in request.split(b"\r\n", 1)[0]:
            return json_answer(
                json.dumps(
                    {
                        "access_token": CANARY_TOKEN,
                        "instance_url": server_url[0],
                        "id": f"{server_url[0]}/id/00D000000000001AAA/005000000000001AAA",
                    }
                )
            )
        return answer(request, conn)

    return respond


@pytest.mark.parametrize("head_first", [True, False], ids=["dripping body", "dripping headers"])
def test_a_server_that_drips_ends_the_call_at_its_deadline(
    tmp_path: Path, head_first: bool
) -> None:
    """timeout_s bounds each read; deadline_s bounds the whole request (2,000 s of drip)."""
    url: list[str] = []
    drip = dripping(b"{" + b" " * 2000 + b"}", head_first=head_first, every_s=1.0)
    with FakeServer(_token_then(drip, url), tls=True, ca_dir=tmp_path) as server:
        url.append(server.url)
        env = _config(
            tmp_path,
            {
                "login_url": server.url,
                "ca_bundle": str(server.ca_path),
                "timeout_s": 3,
                "deadline_s": 5,
            },
        )
        outcome = run_sfsync("sync", env=env, timeout=120)  # hangs for 2,000 s without it
    assert outcome.exit_code == 3, outcome.output
    assert "Read timed out" in outcome.stderr or "deadline" in outcome.stderr
    assert "bug" not in outcome.stderr


def test_a_dripping_login_host_ends_the_login_at_its_deadline(tmp_path: Path) -> None:
    drip = dripping(b"{" + b" " * 2000 + b"}", head_first=True, every_s=1.0)
    with FakeServer(drip, tls=True, ca_dir=tmp_path) as server:
        env = _config(
            tmp_path,
            {"login_url": server.url, "ca_bundle": str(server.ca_path), "timeout_s": 2},
        )
        outcome = run_sfsync("sync", env=env, timeout=120)
    assert outcome.exit_code == 3, outcome.output
    assert "salesforce.login_url" in outcome.stderr


def test_an_answer_over_the_size_cap_is_refused_not_held(tmp_path: Path) -> None:
    url: list[str] = []
    huge = json_answer('{"DailyApiRequests": "' + "x" * (3 * 1024 * 1024) + '"}')
    with FakeServer(_token_then(lambda _r, _c: huge, url), tls=True, ca_dir=tmp_path) as server:
        url.append(server.url)
        env = _config(
            tmp_path,
            {"login_url": server.url, "ca_bundle": str(server.ca_path), "max_response_mb": 1},
        )
        outcome = run_sfsync("sync", env=env)
    assert outcome.exit_code == 3, outcome.output
    assert "salesforce.max_response_mb" in outcome.stderr
    assert "bug" not in outcome.stderr


def test_a_certificate_that_does_not_verify_is_not_retried(tmp_path: Path) -> None:
    """No ca_bundle for the server's private CA: one connection, exit 3, the key to set."""
    with FakeServer(lambda _r, _c: json_answer("{}"), tls=True, ca_dir=tmp_path) as server:
        env = _config(tmp_path, {"login_url": server.url, "timeout_s": 5})
        outcome = run_sfsync("check", env=env)
        assert server.connections == 1
    assert outcome.exit_code == 3, outcome.output
    assert "salesforce.ca_bundle" in outcome.stdout + outcome.stderr
    assert "login_retry" not in outcome.stderr


def test_a_refused_login_connection_fails_at_once(tmp_path: Path) -> None:
    """Nothing listens there: not a transient outage, so no retries (exit 3, names the key)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens on it
    env = _config(tmp_path, {"login_url": f"https://127.0.0.1:{port}"})
    outcome = run_sfsync("sync", env=env)
    assert outcome.exit_code == 3, outcome.output
    assert "salesforce.login_url" in outcome.stderr
    assert "login_retry" not in outcome.stderr


def test_a_login_host_that_does_not_resolve_fails_at_once(tmp_path: Path) -> None:
    """A misspelt host (RFC 6761 reserves .invalid: it never resolves) is not an outage:
    exit 3 after one attempt, naming the URL and the key, instead of retrying for minutes."""
    url = "https://login.salesforce.invalid"
    env = _config(tmp_path, {"login_url": url})
    outcome = run_sfsync("check", env=env)
    assert outcome.exit_code == 3, outcome.output
    said = outcome.stdout + outcome.stderr
    assert url in said
    assert "salesforce.login_url" in said
    assert "login_retry" not in outcome.stderr
