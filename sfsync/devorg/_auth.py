"""Logins: the OAuth token endpoint (§1.1) and the partner SOAP ``login()`` (§1.2).

Every successful login issues a session (the access token) for the integration
user. Failures answer exactly as Salesforce does: ``400 invalid_grant`` for
OAuth, an HTTP 500 SOAP fault with ``INVALID_LOGIN`` for SOAP.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from sfsync.devorg._http import Request, Response, json_response

if TYPE_CHECKING:
    from sfsync.devorg._server import DevOrgServer

__all__ = ["oauth_token", "soap_login"]

_JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _oauth_error(error: str, description: str) -> Response:
    return json_response(400, {"error": error, "error_description": description})


def _basic_credentials(req: Request) -> tuple[str, str] | None:
    header = req.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def oauth_token(server: DevOrgServer, req: Request) -> Response:
    """``POST /services/oauth2/token``: client_credentials, password, refresh_token, JWT."""
    if req.method != "POST":
        return _oauth_error("invalid_request", "must use HTTP POST")
    form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
    grant = form.get("grant_type", "")
    basic = _basic_credentials(req)
    client_id = form.get("client_id") or (basic[0] if basic else "")
    client_secret = form.get("client_secret") or (basic[1] if basic else "")
    ok_client = hmac.compare_digest(client_id, server.client_id) and hmac.compare_digest(
        client_secret, server.client_secret
    )
    if grant == "client_credentials":
        if not ok_client:
            return _oauth_error("invalid_client", "invalid client credentials")
    elif grant == "password":
        if not ok_client:
            return _oauth_error("invalid_client", "invalid client credentials")
        password = form.get("password", "")
        if form.get("username") != server.username or password not in (
            server.password,
            server.password + server.security_token,
        ):
            return _oauth_error("invalid_grant", "authentication failure")
    elif grant == "refresh_token":
        token = form.get("refresh_token", "")
        if not hmac.compare_digest(client_id, server.client_id) or not hmac.compare_digest(
            token, server.refresh_token
        ):
            return _oauth_error("invalid_grant", "expired access/refresh token")
        if client_secret and not ok_client:
            return _oauth_error("invalid_client", "invalid client credentials")
    elif grant == _JWT_GRANT:
        problem = _check_jwt(server, form.get("assertion", ""))
        if problem:
            return _oauth_error("invalid_grant", problem)
        session = server.new_session()
        return json_response(
            200,
            {
                "access_token": session,
                "scope": "api",
                "instance_url": server.url,
                "id": server.identity_url,
                "token_type": "Bearer",
            },
        )
    else:
        return _oauth_error("unsupported_grant_type", "grant type not supported")
    session = server.new_session()
    issued_at = str(int(time.time() * 1000))
    identity = server.identity_url
    signature = base64.b64encode(
        hmac.new(
            server.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
        ).digest()
    ).decode()
    return json_response(
        200,
        {
            "access_token": session,
            "instance_url": server.url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature,
            "scope": "api",
        },
    )


def _check_jwt(server: DevOrgServer, assertion: str) -> str | None:
    """Why a JWT bearer assertion is refused, or None when it is good."""
    if not server.jwt_public_key:
        return "invalid assertion"
    import jwt

    try:
        claims = jwt.decode(
            assertion,
            server.jwt_public_key,
            algorithms=["RS256"],
            options={"verify_aud": False, "require": ["exp", "iss", "sub", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        return "expired authorization code"
    except jwt.PyJWTError:
        return "invalid assertion"
    if claims.get("iss") != server.client_id:
        return "invalid client credentials"
    if claims.get("sub") != server.username:
        return "user hasn't approved this consumer"
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    allowed = {"https://login.salesforce.com", "https://test.salesforce.com", server.url}
    if not any(a in allowed for a in audiences):
        return "audience is invalid"
    return None


def _soap_fault(code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(500, body.encode(), "text/xml;charset=UTF-8")


def soap_login(server: DevOrgServer, req: Request, version: str) -> Response:
    """``POST /services/Soap/u/{ver}``: the partner ``login()`` (password + security token)."""
    try:
        # The body comes from a loopback client of a dev tool; no entity expansion is possible
        # with ElementTree's expat defaults that could reach beyond this process.
        root = ET.fromstring(req.body)  # noqa: S314
    except ET.ParseError:
        return _soap_fault(
            "INVALID_LOGIN", "Invalid username, password, security token; or user locked out."
        )
    values: dict[str, str] = {}
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag in ("username", "password"):
            values[tag] = (element.text or "").strip()
    expected = server.password + server.security_token
    if values.get("username") != server.username or values.get("password") != expected:
        return _soap_fault(
            "INVALID_LOGIN", "Invalid username, password, security token; or user locked out."
        )
    session = server.new_session()
    org = server.org
    org_id = str(org.organization.get("Id", ""))
    user = org.get_record("User", org.integration_user_id, None, version)
    server_url = f"{server.url}/services/Soap/u/{version}/{org_id[:15]}"
    user_info = {
        "accessibilityMode": "false",
        "currencySymbol": "$",
        "orgAttachmentFileSizeLimit": "5242880",
        "orgDefaultCurrencyIsoCode": "USD",
        "orgDisallowHtmlAttachments": "false",
        "orgHasPersonAccounts": "false",
        "organizationId": org_id,
        "organizationMultiCurrency": str(org.is_multi_currency).lower(),
        "organizationName": str(org.organization.get("Name", "")),
        "profileId": "00e000000000000AAA",
        "roleId": "",
        "sessionSecondsValid": "7200",
        "userDefaultCurrencyIsoCode": "",
        "userEmail": str(user.get("Email") or ""),
        "userFullName": str(user.get("Name") or ""),
        "userId": org.integration_user_id,
        "userLanguage": "en_US",
        "userLocale": "en_US",
        "userName": server.username,
        "userTimeZone": "GMT",
        "userType": "Standard",
        "userUiSkin": "Theme3",
    }
    info = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in user_info.items())
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns="urn:partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse>'
        f"<result><metadataServerUrl>{server.url}/services/Soap/m/{version}/{org_id[:15]}"
        "</metadataServerUrl><passwordExpired>false</passwordExpired>"
        f"<sandbox>{str(bool(org.organization.get('IsSandbox'))).lower()}</sandbox>"
        f"<serverUrl>{server_url}</serverUrl><sessionId>{session}</sessionId>"
        f"<userId>{org.integration_user_id}</userId><userInfo>{info}</userInfo></result>"
        "</loginResponse></soapenv:Body></soapenv:Envelope>"
    )
    return Response(200, body.encode(), "text/xml;charset=UTF-8")
