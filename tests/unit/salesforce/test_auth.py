"""Logging in: each OAuth flow, SOAP, the session flow, refusals and unreachable hosts."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sfsync.config import SalesforceSettings
from sfsync.errors import AuthError, ConfigError, SalesforceUnreachable
from sfsync.salesforce import login

LOGIN = "https://login.example.test"
TOKEN_OK = {
    "access_token": "00D5g000004ABCD!AQ4AQ.token",
    "instance_url": "https://acme.my.salesforce.com",
    "id": "https://login.salesforce.com/id/00D5g000004ABCDEAY/0055g00000XYZabAAH",
    "token_type": "Bearer",
    "issued_at": "1722500000000",
    "signature": "p5s4=",
}


def mock(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def test_client_credentials_flow() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=TOKEN_OK)

    settings = SalesforceSettings(login_url=LOGIN, client_id="cid", client_secret="csecret")
    session = login(settings, client=mock(handler))
    assert session.instance_url == "https://acme.my.salesforce.com"
    assert session.user_id == "0055g00000XYZabAAH"
    assert session.org_id == "00D5g000004ABCDEAY"
    assert "token" not in repr(session)
    assert str(seen[0].url) == f"{LOGIN}/services/oauth2/token"
    assert form(seen[0]) == {
        "grant_type": "client_credentials",
        "client_id": "cid",
        "client_secret": "csecret",
    }


def test_refused_credentials_name_the_client_but_not_the_secret() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400, json={"error": "invalid_grant", "error_description": "authentication failure"}
        )

    settings = SalesforceSettings(login_url=LOGIN, client_id="cid", client_secret="csecret-xyz")
    with pytest.raises(AuthError) as exc:
        login(settings, client=mock(handler))
    assert "invalid_grant: authentication failure" in str(exc.value)
    assert "cid" in str(exc.value)
    assert "csecret-xyz" not in str(exc.value)
    assert exc.value.exit_code == 3


def test_unreachable_login_gives_up_within_three_timeouts() -> None:
    """Connection errors are retried, but never past 3 x timeout_s."""
    now = [0.0]
    attempts: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(now[0])
        # Each attempt burns up to its own timeout, as a real connect timeout would.
        now[0] += min(4.0, request.extensions["timeout"]["connect"])
        raise httpx.ConnectError("connection refused")

    def sleep(seconds: float) -> None:
        now[0] += seconds

    settings = SalesforceSettings(login_url=LOGIN, client_id="cid", client_secret="s", timeout_s=5)
    with pytest.raises(SalesforceUnreachable, match="within 15s"):
        login(settings, client=mock(handler), sleep=sleep, clock=lambda: now[0])
    assert len(attempts) >= 2
    assert now[0] <= 15.0


def test_password_flow_with_connected_app_appends_the_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=TOKEN_OK)

    settings = SalesforceSettings(
        auth="password",
        login_url=LOGIN,
        client_id="cid",
        client_secret="cs",
        username="ann@example.com",
        password="pw",
        security_token="TOK",
    )
    login(settings, client=mock(handler))
    sent = form(seen[0])
    assert sent["grant_type"] == "password"
    assert sent["password"] == "pwTOK"


SOAP_OK = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com">
<soapenv:Body><loginResponse><result>
<serverUrl>https://acme-api.my.salesforce.com:8443/services/Soap/u/62.0/00D5g000004ABCD</serverUrl>
<sessionId>00D5g!soap.session</sessionId><userId>0055g00000XYZabAAH</userId>
<userInfo><organizationId>00D5g000004ABCDEAY</organizationId></userInfo>
</result></loginResponse></soapenv:Body></soapenv:Envelope>"""

SOAP_FAULT = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com">
<soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode>
<faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out.</faultstring>
<detail><sf:LoginFault><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode></sf:LoginFault></detail>
</soapenv:Fault></soapenv:Body></soapenv:Envelope>"""


def test_soap_login_without_client_id() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text=SOAP_OK)

    settings = SalesforceSettings(
        auth="password",
        login_url=LOGIN,
        username="a&b@example.com",
        password="p<w",
        security_token="T",
    )
    session = login(settings, client=mock(handler))
    assert session.instance_url == "https://acme.my.salesforce.com:8443"
    assert session.user_id == "0055g00000XYZabAAH"
    assert session.access_token == "00D5g!soap.session"
    body = seen[0].content.decode()
    assert "<urn:username>a&amp;b@example.com</urn:username>" in body
    assert "<urn:password>p&lt;wT</urn:password>" in body
    assert seen[0].headers["SOAPAction"] == "login"


def test_soap_fault_is_an_auth_error() -> None:
    settings = SalesforceSettings(auth="password", login_url=LOGIN, username="u", password="p")
    with pytest.raises(AuthError, match="INVALID_LOGIN"):
        login(settings, client=mock(lambda r: httpx.Response(500, text=SOAP_FAULT)))


def test_jwt_bearer_assertion_is_signed_with_the_private_key() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=TOKEN_OK)

    settings = SalesforceSettings(
        auth="jwt",
        login_url=LOGIN,
        client_id="consumer",
        username="int@example.com",
        private_key=pem,
    )
    login(settings, client=mock(handler))
    sent = form(seen[0])
    assert sent["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(sent["assertion"], key.public_key(), algorithms=["RS256"], audience=LOGIN)
    assert claims["iss"] == "consumer"
    assert claims["sub"] == "int@example.com"


def test_bad_private_key_is_a_config_error() -> None:
    settings = SalesforceSettings(
        auth="jwt", login_url=LOGIN, client_id="c", username="u", private_key="nope"
    )
    with pytest.raises(ConfigError, match=r"salesforce\.private_key_file"):
        login(settings, client=mock(lambda r: httpx.Response(200, json=TOKEN_OK)))


def test_session_flow_asks_who_the_user_is() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/services/oauth2/userinfo"
        return httpx.Response(200, json={"user_id": "0055g00000XYZabAAH", "organization_id": "00D"})

    settings = SalesforceSettings(
        auth="session", instance_url="https://acme.my.salesforce.com", session_id="00D!s"
    )
    session = login(settings, client=mock(handler))
    assert session.user_id == "0055g00000XYZabAAH"
    assert not session.refreshable


def test_missing_credentials_are_named() -> None:
    with pytest.raises(ConfigError) as exc:
        login(SalesforceSettings(auth="jwt"))
    assert exc.value.problems == [
        "salesforce.client_id: required for salesforce.auth = jwt",
        "salesforce.username: required for salesforce.auth = jwt",
        "salesforce.private_key: required for salesforce.auth = jwt",
    ]
