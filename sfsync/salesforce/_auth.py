"""Logging in: OAuth client credentials, JWT bearer, username-password (OAuth or SOAP), session.

simple-salesforce hard-codes ``https://{domain}.salesforce.com`` for its own
logins, which rules out My Domain login hosts given as URLs and the loopback dev
org; so sfsync obtains the token itself (httpx) from ``salesforce.login_url``
and hands simple-salesforce an instance URL and session id ("direct" mode).

A login that cannot connect gives up within 3 x ``timeout_s``, retries included.
"""

from __future__ import annotations

import random
import ssl
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse
from xml.sax.saxutils import escape

import httpx

from sfsync.config import SalesforceSettings
from sfsync.errors import AuthError, ConfigError, SalesforceUnreachable
from sfsync.logging import get_logger, register_secrets
from sfsync.salesforce._errors import parse_body
from sfsync.salesforce._retry import LOGIN_RETRY
from sfsync.salesforce._transport import (
    capped_body,
    deadline_context,
    is_certificate_error,
    is_unreachable_host,
    refuse_plain_http,
    require_https,
)
from sfsync.salesforce._transport import deadline as request_deadline

__all__ = ["SalesforceSession", "http_client", "login", "tls_context"]

log = get_logger()
_RNG = random.Random()

_SOAP_NS = "urn:partner.soap.sforce.com"


@dataclass(frozen=True)
class SalesforceSession:
    """A logged-in session. The token never appears in ``repr``."""

    access_token: str = field(repr=False)
    instance_url: str
    user_id: str | None
    org_id: str | None
    flow: str
    issued_at: datetime
    # The login server's clock (HTTP Date header): sync windows use the org's time, not ours.
    server_date: str | None = None

    @property
    def refreshable(self) -> bool:
        """A session given in config cannot be renewed when it expires."""
        return self.flow != "session"


def tls_context(settings: SalesforceSettings) -> ssl.SSLContext:
    """System CAs plus ``salesforce.ca_bundle`` (the dev org's local CA, a corporate proxy's)."""
    context = ssl.create_default_context()
    if settings.ca_bundle:
        bundle = str(settings.ca_bundle)
        try:
            context.load_verify_locations(cafile=bundle)
        except ssl.SSLError as exc:
            # OpenSSL's words ("no certificate or crl found") do not say which file or key.
            raise ConfigError(
                [
                    f"salesforce.ca_bundle: {bundle!r} is not a PEM certificate bundle "
                    f"({exc.reason or exc.strerror or exc}); it must hold one or more "
                    "'-----BEGIN CERTIFICATE-----' blocks"
                ]
            ) from None
        except OSError as exc:  # removed or made unreadable since the config was loaded
            raise ConfigError(
                [f"salesforce.ca_bundle: cannot read {bundle!r}: {exc.strerror or exc}"]
            ) from None
    return context


def http_client(
    settings: SalesforceSettings,
    *,
    timeout: float | None = None,
    tls: ssl.SSLContext | None = None,
) -> httpx.Client:
    """An httpx client with sfsync's TLS trust and timeouts (env proxies/CA not consulted).

    HTTPS only, and its sockets honour the current request's deadline (see ``_transport``).
    ``tls``: a context from :func:`deadline_context` to share (else one is built).
    """
    return httpx.Client(
        verify=tls or deadline_context(tls_context(settings)),
        timeout=httpx.Timeout(timeout or settings.timeout_s, connect=min(10.0, settings.timeout_s)),
        trust_env=False,
        headers={"User-Agent": "sfsync", "Sforce-Call-Options": "client=sfsync"},
        event_hooks={"request": [refuse_plain_http]},
    )


def login(
    settings: SalesforceSettings,
    *,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> SalesforceSession:
    """Log in with the configured flow; raise AuthError (refused) or SalesforceUnreachable."""
    missing = settings.missing_for_flow()
    if missing:
        raise ConfigError(
            [f"{key}: required for salesforce.auth = {settings.auth}" for key in missing]
        )
    owned = client is None
    http = client or http_client(settings)
    try:
        session = _with_deadline(settings, http, sleep, clock)
    finally:
        if owned:
            http.close()
    register_secrets([session.access_token])
    log.info(
        "salesforce.login",
        flow=session.flow,
        instance_url=session.instance_url,
        user_id=session.user_id,
    )
    return session


def _with_deadline(
    settings: SalesforceSettings,
    http: httpx.Client,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> SalesforceSession:
    deadline = clock() + 3 * settings.timeout_s
    attempt = 0
    while True:
        timeout = min(settings.timeout_s, deadline - clock())
        try:
            with request_deadline(min(settings.deadline_s, max(timeout, 0.001))):
                return _login_once(settings, http, timeout=timeout)
        except _Transient as exc:
            attempt += 1
            delay = LOGIN_RETRY.delay(attempt, None, _RNG)
            # Another attempt needs time for the pause and a useful slice of a timeout.
            if clock() + delay + min(1.0, settings.timeout_s) >= deadline:
                raise SalesforceUnreachable(
                    f"cannot log in to Salesforce at {settings.login_url} (salesforce.login_url) "
                    f"after {attempt} attempt(s) within {3 * settings.timeout_s:g}s: {exc}"
                ) from None
            log.warning("salesforce.login_retry", attempt=attempt, reason=str(exc))
            sleep(delay)


class _Transient(Exception):
    pass


def _unreachable(settings: SalesforceSettings, url: str, exc: BaseException) -> Exception:
    """A login failure worth another attempt (_Transient), or one that is not."""
    if is_certificate_error(exc):
        return SalesforceUnreachable(
            f"the TLS certificate of {url} (salesforce.login_url) does not verify: {exc}. If "
            "the org is reached through a proxy with its own CA, set salesforce.ca_bundle"
        )
    if is_unreachable_host(exc):
        return SalesforceUnreachable(
            f"cannot connect to {url} (salesforce.login_url): {exc}. Check the host name "
            "(e.g. https://login.salesforce.com, https://test.salesforce.com or your My "
            "Domain URL) and that this machine can reach it"
        )
    return _Transient(f"{type(exc).__name__}: {exc}")


def _post(
    settings: SalesforceSettings,
    http: httpx.Client,
    url: str,
    *,
    timeout: float,
    soap: bool = False,
    **kwargs: Any,
) -> tuple[int, str, str | None]:
    limit = settings.max_response_mb * 1024 * 1024
    try:
        with http.stream("POST", url, timeout=timeout, **kwargs) as response:
            body = capped_body(response.iter_bytes(), limit, "the login request")
    except httpx.TransportError as exc:
        raise _unreachable(settings, url, exc) from None
    status = response.status_code
    # SOAP reports a refused login as an HTTP 500 fault: that is an answer, not an outage.
    soap_fault = soap and status == 500
    if status in (420, 429) or (status >= 500 and not soap_fault):
        raise _Transient(f"HTTP {status}")
    text = body.decode(response.encoding or "utf-8", "replace")
    return status, text, response.headers.get("Date")


def _login_once(
    settings: SalesforceSettings, http: httpx.Client, *, timeout: float
) -> SalesforceSession:
    if settings.auth == "session":
        return _session_flow(settings, http, timeout=timeout)
    if settings.auth == "password" and settings.client_id is None:
        return _soap_login(settings, http, timeout=timeout)
    form = _token_form(settings)
    status, text, server_date = _post(
        settings,
        http,
        f"{settings.login_url}/services/oauth2/token",
        timeout=timeout,
        data=form,
        headers={"Accept": "application/json"},
    )
    body = parse_body(text)
    if status != 200 or not isinstance(body, dict) or "access_token" not in body:
        raise _auth_failure(settings, status, body)
    identity = str(body.get("id") or "")
    parts = [p for p in urlparse(identity).path.split("/") if p]
    instance_url = require_https(
        str(body.get("instance_url") or settings.login_url).rstrip("/"),
        f"the instance_url in the token reply of {settings.login_url}",
    )
    return SalesforceSession(
        access_token=str(body["access_token"]),
        instance_url=instance_url,
        user_id=parts[-1] if len(parts) >= 2 else None,
        org_id=parts[-2] if len(parts) >= 2 else None,
        flow=settings.auth,
        issued_at=datetime.now(UTC),
        server_date=server_date,
    )


def _token_form(settings: SalesforceSettings) -> dict[str, str]:
    def secret(value: Any) -> str:
        return str(value.get_secret_value()) if value is not None else ""

    if settings.auth == "client_credentials":
        return {
            "grant_type": "client_credentials",
            "client_id": str(settings.client_id),
            "client_secret": secret(settings.client_secret),
        }
    if settings.auth == "password":
        form = {
            "grant_type": "password",
            "client_id": str(settings.client_id),
            "username": str(settings.username),
            "password": secret(settings.password) + secret(settings.security_token),
        }
        if settings.client_secret is not None:
            form["client_secret"] = secret(settings.client_secret)
        return form
    # JWT bearer: an RS256 assertion signed with the connected app's private key.
    import jwt

    claims = {
        "iss": settings.client_id,
        "sub": settings.username,
        "aud": settings.login_url,
        "exp": int(time.time()) + 180,
    }
    try:
        assertion = jwt.encode(claims, secret(settings.private_key), algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        raise ConfigError(
            [f"salesforce.private_key_file: not a usable RSA private key ({type(exc).__name__})"]
        ) from None
    return {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}


def _auth_failure(settings: SalesforceSettings, status: int, body: Any) -> AuthError:
    if isinstance(body, dict):
        reason = f"{body.get('error', 'error')}: {body.get('error_description', '')}".strip()
    else:
        reason = f"HTTP {status}"
    who = settings.client_id or settings.username or "(no client id)"
    return AuthError(
        f"Salesforce refused the {settings.auth} login for {who} at {settings.login_url} "
        f"(salesforce.login_url): {reason}. Check salesforce.client_id and the secret, and "
        "that the connected app allows this flow"
    )


def _soap_login(
    settings: SalesforceSettings, http: httpx.Client, *, timeout: float
) -> SalesforceSession:
    """Partner SOAP ``login()``: username + password + security token (retiring in Summer '27)."""
    password = (settings.password.get_secret_value() if settings.password else "") + (
        settings.security_token.get_secret_value() if settings.security_token else ""
    )
    envelope = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:urn="{_SOAP_NS}"><env:Header><urn:CallOptions><urn:client>sfsync</urn:client>'
        "</urn:CallOptions></env:Header><env:Body><urn:login>"
        f"<urn:username>{escape(str(settings.username))}</urn:username>"
        f"<urn:password>{escape(password)}</urn:password>"
        "</urn:login></env:Body></env:Envelope>"
    )
    status, text, server_date = _post(
        settings,
        http,
        f"{settings.login_url}/services/Soap/u/{settings.api_version}",
        timeout=timeout,
        soap=True,
        content=envelope.encode(),
        headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "login"},
    )
    try:
        # The answer comes from the configured login server over TLS; expat refuses
        # external entities, and Python's expat caps entity expansion.
        root = ET.fromstring(text)  # noqa: S314
    except ET.ParseError:
        raise _Transient(
            f"SOAP login answered HTTP {status} with something that is not XML"
        ) from None

    def find(tag: str) -> str | None:
        node = root.find(f".//{{{_SOAP_NS}}}{tag}")
        return node.text if node is not None else None

    session_id, server_url = find("sessionId"), find("serverUrl")
    if status != 200 or not session_id or not server_url:
        fault = root.find(".//faultstring")
        code = root.find(".//{urn:fault.partner.soap.sforce.com}exceptionCode")
        reason = " ".join(
            t
            for t in (
                (code.text if code is not None else None),
                (fault.text if fault is not None else None),
            )
            if t
        )
        raise AuthError(
            f"Salesforce refused the SOAP login for {settings.username} at {settings.login_url} "
            f"(salesforce.login_url): {reason or f'HTTP {status}'}. Check salesforce.username, "
            "salesforce.password and salesforce.security_token"
        )
    require_https(server_url, f"the serverUrl in the SOAP login reply of {settings.login_url}")
    parsed = urlparse(server_url)
    # simple-salesforce strips "-api" from SOAP server hosts; so do we.
    host = (parsed.hostname or "").replace("-api", "")
    port = f":{parsed.port}" if parsed.port not in (None, 443) else ""
    return SalesforceSession(
        access_token=session_id,
        instance_url=f"{parsed.scheme}://{host}{port}",
        user_id=find("userId"),
        org_id=find("organizationId"),
        flow="password",
        issued_at=datetime.now(UTC),
        server_date=server_date,
    )


def _session_flow(
    settings: SalesforceSettings, http: httpx.Client, *, timeout: float
) -> SalesforceSession:
    """A session id given in config; the user comes from the OAuth userinfo endpoint."""
    token = settings.session_id.get_secret_value() if settings.session_id else ""
    instance = require_https(str(settings.instance_url), "salesforce.instance_url")
    limit = settings.max_response_mb * 1024 * 1024
    try:
        with http.stream(
            "GET",
            f"{instance}/services/oauth2/userinfo",
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            raw = capped_body(response.iter_bytes(), limit, "the userinfo request")
    except httpx.TransportError as exc:
        raise _unreachable(settings, instance, exc) from None
    if response.status_code >= 500:
        raise _Transient(f"HTTP {response.status_code}")
    body = parse_body(raw.decode(response.encoding or "utf-8", "replace"))
    if response.status_code in (401, 403):
        raise AuthError(
            f"Salesforce refused salesforce.session_id at {instance} (salesforce.instance_url): "
            "the session is invalid or expired"
        )
    user_id = body.get("user_id") if isinstance(body, dict) else None
    org_id = body.get("organization_id") if isinstance(body, dict) else None
    return SalesforceSession(
        access_token=token,
        instance_url=instance,
        user_id=str(user_id) if user_id else None,
        org_id=str(org_id) if org_id else None,
        flow="session",
        issued_at=datetime.now(UTC),
        server_date=response.headers.get("Date"),
    )
