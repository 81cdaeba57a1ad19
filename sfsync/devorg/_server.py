"""The dev org's HTTPS server: TLS on loopback, sessions, API counting, faults, routing.

The standard library's ``ThreadingHTTPServer`` serves each connection in its own
thread (HTTP/1.1 keep-alive); TLS is negotiated in that thread, not the accept
loop, so a slow client cannot stall the others. Each response is sent with one
``write`` and ``TCP_NODELAY`` set: small responses otherwise wait ~40 ms for a
delayed ACK on loopback.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import socket
import ssl
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from email.message import Message
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sfsync.devorg import _auth, _rest
from sfsync.devorg._bulk import BulkJobs
from sfsync.devorg._bulk1 import DEFAULT_RESULT_ROWS, AsyncApi, async_error, wants_json
from sfsync.devorg._faults import FaultInjector, FaultSpec, FaultSpecError
from sfsync.devorg._http import ApiFailure, Request, Response, error_response, json_response
from sfsync.devorg._org import DEFAULT_API_LIMIT, DevOrg, WriteError
from sfsync.logging import get_logger

__all__ = ["DevOrgServer", "RequestHook", "RequestRecord"]

# Called for every authenticated API request, in its server thread: ("before", req, None)
# ahead of routing and ("after", req, response) once answered but not yet sent.
RequestHook = Callable[[str, Request, "Response | None"], None]

# How an API family answers the server's own refusals, by kind ("session", "limit",
# "error500", "error503", "throttle"), with the headers to send.
_Refusal = Callable[[str, dict[str, str]], Response]

MIN_VERSION = 31
MAX_VERSION = 64
_LOG_CAP = 200_000
_BODY_LOG_CAP = 10_000
_WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")
#: The names the server's TLS certificate is issued for: loopback only.
CERTIFICATE_HOSTS = ("localhost", "127.0.0.1", "::1")

log = get_logger()


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One served request, for tests: ``body`` is the parsed body of writes (never logins)."""

    method: str
    path: str
    query: str
    status: int
    ms: float
    body: Any = None


def _version_label(major: int) -> str:
    k = major - 59
    return f"{('Winter', 'Spring', 'Summer')[k % 3]} '{24 + k // 3}"


def _versions() -> list[dict[str, str]]:
    return [
        {"label": _version_label(v), "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
        for v in range(MIN_VERSION, MAX_VERSION + 1)
    ]


def _is_host_name(host: str) -> bool:
    """True for a name such as ``localhost``; False for an IP address or the empty wildcard."""
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: DevOrgServer, tls: ssl.SSLContext | None):
        self.app = app
        self.tls = tls
        if ":" in address[0]:  # an IPv6 address such as ::1 (or :: for every interface)
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        with suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = request
        if self.tls is not None:
            try:
                request.settimeout(15)
                conn = self.tls.wrap_socket(request, server_side=True)
                conn.settimeout(None)
            except (OSError, ssl.SSLError):
                return
        try:
            _Handler(conn, client_address, self)
        finally:
            if conn is not request:
                with suppress(OSError):
                    conn.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sfsync-devorg"
    sys_version = ""
    timeout = 300
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are logged as structured events by the app, not as text lines."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def _serve(self) -> None:
        started = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        req = Request(
            method=self.command,
            path=unquote(split.path),
            query=parse_qs(split.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
            raw_query=split.query,
        )
        app = self.server.app
        response = app.handle(req)
        if response is None:  # an injected dropped connection
            self.close_connection = True
            with suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            app.record(req, 0, started)
            return
        if self.headers.get("Connection", "").lower() == "close":
            self.close_connection = True
        # Recorded before the answer leaves: a client that has its answer finds it in the log.
        app.record(req, response.status, started)
        try:
            self._write(response)
        except OSError:
            self.close_connection = True

    def _write(self, response: Response) -> None:
        status = HTTPStatus(response.status)
        head = [f"HTTP/1.1 {status.value} {status.phrase}", f"Date: {formatdate(usegmt=True)}"]
        if response.content_type:
            head.append(f"Content-Type: {response.content_type}")
        head += [f"{k}: {v}" for k, v in response.headers.items()]
        if self.close_connection:
            head.append("Connection: close")
        body = response.body
        if body is None or isinstance(body, bytes):
            data = body or b""
            if response.status != 204:
                head.append(f"Content-Length: {len(data)}")
            payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
            if self.command != "HEAD":
                payload += data
            self.wfile.write(payload)
            return
        head.append("Transfer-Encoding: chunked")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        for chunk in body:
            if chunk:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


class DevOrgServer:
    """A Salesforce-compatible HTTPS server for a :class:`DevOrg`, on loopback by default.

    ``host`` is bound as given (an IPv6 address such as ``::1`` too); the CLI
    refuses non-loopback hosts unless ``--allow-remote``. The TLS certificate
    covers ``localhost``, ``127.0.0.1`` and ``::1`` only.

    Use as a context manager, or :meth:`start` / :meth:`stop`. Credentials come
    from the data file's ``credentials`` (else generated per server); tokens are
    issued for the org's integration user.
    """

    def __init__(
        self,
        org: DevOrg,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultSpec | None = None,
        tls: bool = True,
        ca_dir: Path | None = None,
        *,
        api_limit: int | None = None,
        bulk_delay: float = 0.0,
        bulk_result_rows: int = DEFAULT_RESULT_ROWS,
        log_requests: bool = False,
    ) -> None:
        self.org = org
        self.host = host
        self._requested_port = port
        self._tls = tls
        self._ca_dir = Path(ca_dir) if ca_dir else None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._api_limit_override = api_limit
        self.bulk_delay = bulk_delay
        if bulk_result_rows < 1:
            raise ValueError("bulk_result_rows must be at least 1")
        self.bulk_result_rows = bulk_result_rows
        self.log_requests = log_requests
        self.faults = FaultInjector(faults or FaultSpec())
        self.bulk = BulkJobs(self)
        self.async_api = AsyncApi(self)
        self.save_path: Path | None = None
        creds = org.credentials
        user = org.get_record("User", org.integration_user_id, ["Username"], "62.0")
        self.client_id = creds.get("client_id", "sfsync-devorg-client")
        self.client_secret = creds.get("client_secret") or secrets.token_urlsafe(24)
        self.username = creds.get("username") or str(user["Username"])
        self.password = creds.get("password") or secrets.token_urlsafe(12)
        self.security_token = creds.get("security_token") or secrets.token_hex(12)
        self.refresh_token = creds.get("refresh_token") or secrets.token_urlsafe(32)
        self.jwt_public_key = creds.get("jwt_public_key")
        self.admin_token = secrets.token_urlsafe(24)
        self._sessions: dict[str, float] = {}
        self._lock = threading.Lock()
        self._api_used = 0
        self._log: deque[RequestRecord] = deque(maxlen=_LOG_CAP)
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self.ca_path: Path | None = None
        self._hooks: list[RequestHook] = []

    # --- lifecycle ------------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert(*CERTIFICATE_HOSTS)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(ctx)
        directory = self._ca_dir
        if directory is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="sfsync-devorg-ca-")
            directory = Path(self._tmpdir.name)
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_path = directory / "devorg-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        return ctx

    def start(self) -> DevOrgServer:
        """Bind and serve in background threads; returns self."""
        if self._httpd is not None:
            return self
        ctx = self._ssl_context() if self._tls else None
        self._httpd = _HttpServer((self.host, self._requested_port), self, ctx)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="devorg-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting and close the socket (open keep-alive connections are dropped)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> DevOrgServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- properties -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        return int(self._httpd.server_address[1])

    @property
    def listen_address(self) -> tuple[str, int]:
        """The address and port the socket is bound to (``0.0.0.0`` or ``::`` = every interface)."""
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        address = self._httpd.server_address
        return str(address[0]), int(address[1])

    @property
    def url(self) -> str:
        """The URL to reach the server from this machine.

        The bound address, except that a wildcard bind (every interface) is reached
        on loopback (``127.0.0.1``; ``[::1]`` for ``::``), which the certificate covers.
        """
        host = self.listen_address[0]
        if host == "0.0.0.0":  # noqa: S104 - naming the wildcard, not binding it
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        elif _is_host_name(self.host):
            host = self.host  # the name given (localhost: the one the certificate covers)
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if self._tls else 'http'}://{host}:{self.port}"

    @property
    def identity_url(self) -> str:
        org_id = str(self.org.organization.get("Id", ""))
        return f"{self.url}/id/{org_id}/{self.org.integration_user_id}"

    @property
    def api_limit(self) -> int:
        return (
            self.faults.spec.api_limit
            or self._api_limit_override
            or self.org.file_api_limit
            or DEFAULT_API_LIMIT
        )

    @property
    def api_usage(self) -> tuple[int, int]:
        with self._lock:
            return self._api_used, self.api_limit

    @property
    def api_calls(self) -> int:
        """Authenticated API requests counted so far (a collection call counts once)."""
        with self._lock:
            return self._api_used

    @property
    def requests(self) -> list[RequestRecord]:
        """The request log (API and login requests; admin calls are not listed)."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def set_faults(self, spec: FaultSpec) -> None:
        """Replace the fault spec (and restart its seeded sequence)."""
        self.faults = FaultInjector(spec)

    def add_hook(self, hook: RequestHook) -> Callable[[], None]:
        """Run ``hook`` around every API request (tests: edit the org mid-sync, hold a call).

        Returns a function that removes it. A hook may block (the client waits, as it
        would for a slow org) but must not raise.
        """
        with self._lock:
            self._hooks.append(hook)

        def remove() -> None:
            with self._lock:
                if hook in self._hooks:
                    self._hooks.remove(hook)

        return remove

    def _run_hooks(self, phase: str, req: Request, response: Response | None) -> None:
        with self._lock:
            hooks = list(self._hooks)
        for hook in hooks:
            hook(phase, req, response)

    def expire_sessions(self) -> None:
        """Invalidate every issued token: the next call answers 401 INVALID_SESSION_ID."""
        with self._lock:
            self._sessions.clear()

    def reset_api_usage(self) -> None:
        with self._lock:
            self._api_used = 0

    def new_session(self) -> str:
        org_id = str(self.org.organization.get("Id", "00D000000000000"))
        token = f"{org_id[:15]}!{secrets.token_urlsafe(48)}"
        with self._lock:
            self._sessions[token] = time.monotonic()
        return token

    # --- request handling -----------------------------------------------------------------

    def record(self, req: Request, status: int, started: float) -> None:
        ms = round((time.perf_counter() - started) * 1000, 2)
        is_admin = req.path.startswith("/_devorg")
        is_login = req.path.startswith(("/services/oauth2", "/services/Soap"))
        body: Any = None
        if req.method in _WRITE_METHODS and req.body and not is_login:
            text = req.body[:_BODY_LOG_CAP].decode("utf-8", "replace")
            try:
                body = json.loads(text)
            except ValueError:
                body = text
        if not is_admin:
            with self._lock:
                self._log.append(
                    RequestRecord(req.method, req.path, req.raw_query, status, ms, body)
                )
        if self.log_requests:
            log.info("devorg.request", method=req.method, path=req.path, status=status, ms=ms)

    def _session_user(self, req: Request, *, sfdc_session: bool = False) -> str | None:
        """The token's user; ``sfdc_session``: the async API's ``X-SFDC-Session`` header too."""
        header = req.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if sfdc_session and req.headers.get("X-SFDC-Session"):
            scheme, token = "bearer", str(req.headers.get("X-SFDC-Session"))
        if scheme.lower() not in ("bearer", "oauth") or not token:
            return None
        token = token.strip()
        ttl = self.faults.spec.session_ttl
        with self._lock:
            issued = self._sessions.get(token)
            if issued is None:
                return None
            if ttl is not None and time.monotonic() - issued > ttl:
                del self._sessions[token]
                return None
        return self.org.integration_user_id

    def handle(self, req: Request) -> Response | None:
        """Answer one request; None means "drop the connection" (an injected fault)."""
        path = req.path.rstrip("/") or "/"
        try:
            if path.startswith("/_devorg"):
                return self._admin(req, path)
            if path == "/services/oauth2/token":
                return _auth.oauth_token(self, req)
            if path.startswith("/services/Soap/u/"):
                version = path.split("/")[4] if len(path.split("/")) > 4 else "62.0"
                return _auth.soap_login(self, req, version)
            if path == "/services/data":
                return json_response(200, _versions())
            if path.startswith("/services/data/v"):
                return self._data(req, path)
            if path.startswith("/services/async/"):
                return self._async(req, path)
            return error_response(404, "NOT_FOUND", "The requested resource does not exist")
        except ApiFailure as exc:
            return exc.response()
        except Exception as exc:  # a dev-org bug must still answer like Salesforce does
            log.exception("devorg.error", path=req.path)
            return error_response(500, "UNKNOWN_EXCEPTION", f"An unexpected error occurred: {exc}")

    def _limit_header(self) -> dict[str, str]:
        used, limit = self.api_usage
        return {"Sforce-Limit-Info": f"api-usage={used}/{limit}"}

    @staticmethod
    def _version(text: str) -> tuple[int, int]:
        try:
            major_text, minor_text = text.split(".")
            return int(major_text), int(minor_text)
        except ValueError:
            return -1, -1

    def _rest_refusal(self, kind: str, headers: dict[str, str]) -> Response:
        status, code, message = {
            "session": (401, "INVALID_SESSION_ID", "Session expired or invalid"),
            "limit": (403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
            "error500": (
                500,
                "UNKNOWN_EXCEPTION",
                "An unexpected error occurred. Please try again.",
            ),
            "error503": (
                503,
                "SERVER_UNAVAILABLE",
                "Server temporarily unavailable. Please try again.",
            ),
            "throttle": (429, "REQUEST_LIMIT_EXCEEDED", "Too many requests. Please retry later."),
        }[kind]
        return error_response(status, code, message, None, headers)

    def _data(self, req: Request, path: str) -> Response | None:
        parts = path.split("/")[3:]  # ["vNN.N", ...]
        version_text = parts[0][1:]
        major, minor = self._version(version_text)
        if minor == 0 and 20 <= major < MIN_VERSION:
            return error_response(
                410, "API_VERSION_RETIRED", f"API version {version_text} has been retired"
            )
        if minor != 0 or not MIN_VERSION <= major <= MAX_VERSION:
            return error_response(404, "NOT_FOUND", "The requested resource does not exist")
        req.version = f"{major}.0"

        def route() -> Response:
            try:
                return _rest.route(self, req, [p for p in parts[1:] if p])
            except ApiFailure as exc:
                return exc.response()

        return self._metered(req, self._rest_refusal, route)

    def _async(self, req: Request, path: str) -> Response | None:
        """Bulk API 1.0 (``/services/async/{version}/...``): the session in ``X-SFDC-Session``."""
        parts = path.split("/")[3:]  # ["NN.N", "job", ...]
        as_json = wants_json(req)
        major, minor = self._version(parts[0] if parts else "")
        if minor != 0 or not MIN_VERSION <= major <= MAX_VERSION:
            return async_error(
                "InvalidUrl",
                f"Unsupported API version: {parts[0] if parts else ''}",
                as_json=as_json,
                status=404,
            )
        req.version = f"{major}.0"

        def refusal(kind: str, headers: dict[str, str]) -> Response:
            status, code, message = {
                "session": (400, "InvalidSessionId", "Invalid session id"),
                "limit": (400, "ExceededQuota", "TotalRequests Limit exceeded."),
                "error500": (500, "Unknown", "An unexpected error occurred. Please try again."),
                "error503": (503, "Unknown", "Server temporarily unavailable. Please try again."),
                "throttle": (429, "ExceededQuota", "Too many requests. Please retry later."),
            }[kind]
            return async_error(code, message, as_json=as_json, status=status, headers=headers)

        return self._metered(
            req,
            refusal,
            lambda: self.async_api.handle(req, [p for p in parts[1:] if p]),
            sfdc_session=True,
        )

    def _metered(
        self,
        req: Request,
        refuse: _Refusal,
        route: Callable[[], Response],
        *,
        sfdc_session: bool = False,
    ) -> Response | None:
        """An authenticated API call: session, daily count and limit, faults, hooks, routing.

        Every API family (REST, Bulk API 1.0) goes through here, so each call counts
        once against the allowance and draws its faults from the one seeded sequence.
        """
        user = self._session_user(req, sfdc_session=sfdc_session)
        if user is None:
            return refuse("session", self._limit_header())
        req.user_id = user
        with self._lock:
            over = self._api_used >= self.api_limit
            if not over:
                self._api_used += 1
        if over:
            return refuse("limit", self._limit_header())
        spec = self.faults.spec
        if spec.latency_ms:
            time.sleep(spec.latency_ms / 1000.0)
        self._run_hooks("before", req, None)
        fault = self.faults.draw_request()
        if fault == "drop":
            self._run_hooks("after", req, None)
            return None
        if fault is not None:
            extra = {"Retry-After": str(spec.retry_after_s)} if fault == "throttle" else {}
            response = refuse(fault, extra)
        else:
            response = route()
        self._run_hooks("after", req, response)
        response.headers.update(self._limit_header())
        return response

    def dispatch_subrequest(
        self,
        parent: Request,
        method: str,
        url: str,
        body: Any,
        *,
        headers: Message,
    ) -> Response:
        """A ``/composite`` subrequest: same session, no extra API count, no faults;
        ``headers``: the parent's, with the subrequest's own on top."""
        path, query, raw = _rest.split_url(url)
        sub = Request(
            method=method.upper(),
            path=path,
            query=query,
            headers=headers,
            body=_rest.dumps(body) if body is not None else b"",
            raw_query=raw,
            user_id=parent.user_id,
        )
        parts = path.rstrip("/").split("/")[3:]
        if len(parts) < 1 or not path.startswith("/services/data/v"):
            return error_response(404, "NOT_FOUND", "The requested resource does not exist")
        sub.version = parts[0][1:]
        try:
            return _rest.route(self, sub, [p for p in parts[1:] if p])
        except ApiFailure as exc:
            return exc.response()

    # --- admin API --------------------------------------------------------------------------

    def _admin(self, req: Request, path: str) -> Response:
        header = req.headers.get("X-Devorg-Admin") or ""
        auth = req.headers.get("Authorization", "")
        token = header or (auth[7:].strip() if auth.lower().startswith("bearer ") else "")
        if not secrets.compare_digest(token, self.admin_token):
            return error_response(401, "INVALID_SESSION_ID", "admin token required")
        parts = path.split("/")[2:]
        body = req.json() if req.body else {}
        org = self.org
        as_user = req.param("as_user")
        try:
            if parts == ["status"] and req.method == "GET":
                used, limit = self.api_usage
                return json_response(
                    200,
                    {
                        "url": self.url,
                        "api_calls": used,
                        "api_limit": limit,
                        "faults": str(self.faults.spec),
                    },
                )
            if parts == ["faults"] and req.method == "POST":
                spec = body.get("spec") if isinstance(body, dict) else None
                try:
                    faults = FaultSpec.parse(spec) if isinstance(spec, str) else FaultSpec(**body)
                except (FaultSpecError, TypeError) as exc:
                    return error_response(400, "INVALID_FAULT_SPEC", str(exc))
                self.set_faults(faults)
                return json_response(200, {"faults": str(faults)})
            if parts == ["expire_sessions"] and req.method == "POST":
                self.expire_sessions()
                return Response(204, None, None)
            if parts == ["reset_api_usage"] and req.method == "POST":
                self.reset_api_usage()
                return Response(204, None, None)
            if parts[:1] == ["records"] and len(parts) == 2 and req.method == "POST":
                new_id = org.create(parts[1], body, as_user=as_user)
                return json_response(201, {"id": new_id})
            if parts[:1] == ["records"] and len(parts) == 3 and req.method == "PATCH":
                org.update(parts[1], parts[2], body, as_user=as_user)
                return Response(204, None, None)
            if parts in (["delete"], ["hard_delete"], ["erase"]) and req.method == "POST":
                sobject, record_id = str(body.get("type", "")), str(body.get("id", ""))
                if parts[0] == "delete":
                    org.soft_delete(sobject, record_id, as_user=as_user)
                elif parts[0] == "hard_delete":
                    org.hard_delete(sobject, record_id)
                else:
                    org.erase(sobject, record_id)
                return Response(204, None, None)
            if parts == ["save"] and req.method == "POST":
                target = body.get("path") if isinstance(body, dict) else None
                save_to = Path(target) if target else self.save_path
                if save_to is None:
                    return error_response(400, "MISSING_ARGUMENT", "path is required")
                org.save(save_to)
                return json_response(200, {"path": str(save_to)})
            if parts == ["query"] and req.method == "POST":
                rows = org.query(str(body.get("q", "")), bool(body.get("all", False)))
                return json_response(200, {"records": rows})
        except WriteError as exc:
            return json_response(exc.http_status, [exc.as_json()])
        return error_response(404, "NOT_FOUND", "The requested resource does not exist")
