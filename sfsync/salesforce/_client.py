"""The Salesforce client: every HTTP call sfsync makes to an org goes through here.

- REST (query/queryAll/describe/sObject/collections/composite) through
  simple-salesforce on a ``requests`` session with sfsync's CA trust and a
  timeout on every call; Bulk API 2.0 through httpx (see ``_bulk``).
- :meth:`SalesforceClient.call` is the single choke point: budget check, call
  counting, retries with exponential backoff and full jitter on transport
  errors, 420/429/5xx and ``UNABLE_TO_LOCK_ROW`` (honouring ``Retry-After``),
  re-login and one replay on ``INVALID_SESSION_ID``, and the one mapping of
  failures to sfsync exceptions (``_errors``).
- ``Sforce-Limit-Info`` and ``Date`` are read off every response: the former
  feeds the budget, the latter gives the *server's* clock for sync windows.
"""

from __future__ import annotations

import functools
import json
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError

from sfsync.config import SalesforceSettings, SyncSettings
from sfsync.errors import (
    ApiError,
    AuthError,
    RetryableError,
    SalesforceUnreachable,
    SessionExpired,
    SfsyncError,
)
from sfsync.logging import get_logger
from sfsync.salesforce._auth import SalesforceSession, http_client, login, tls_context
from sfsync.salesforce._budget import ApiBudget, parse_limit_info
from sfsync.salesforce._bulk import BulkChunk, BulkQuery
from sfsync.salesforce._errors import (
    RetryableResponse,
    TransportError,
    classify_response,
    classify_transport,
    non_json,
)
from sfsync.salesforce._retry import RetryPolicy
from sfsync.salesforce._transport import (
    HttpsAdapter,
    RefusePlainHttp,
    capped_body,
    deadline,
    deadline_context,
)
from sfsync.stop import ShouldStop, pause

__all__ = ["RetryPolicy", "SalesforceClient", "SubResponse"]

log = get_logger()
T = TypeVar("T")


@dataclass(frozen=True)
class SubResponse:
    """One answer of a ``/composite`` call."""

    reference_id: str
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def raise_for_error(self, what: str) -> Any:
        if not self.ok:
            raise classify_response(self.status, self.body, what=what)
        return self.body


class _TimeoutSession(requests.Session):
    """The requests session under simple-salesforce (which sets no timeout, reads any size).

    HTTPS only (``http://`` is mounted on an adapter that refuses), sfsync's TLS trust
    with deadline-aware sockets, a timeout on every request, and each body read in
    chunks up to ``max_bytes`` before simple-salesforce parses it.
    """

    def __init__(self, settings: SalesforceSettings, tls: ssl.SSLContext) -> None:
        super().__init__()
        self._timeout = (min(10.0, settings.timeout_s), settings.timeout_s)
        self._max_bytes = settings.max_response_mb * 1024 * 1024
        self.mount("https://", HttpsAdapter(tls))
        self.mount("http://", RefusePlainHttp())

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self._timeout)
        kwargs["stream"] = True
        response = super().request(method, url, *args, **kwargs)
        try:
            what = f"{method!s} {urlsplit(str(url)).path}"
            # iter_content maps urllib3's read errors to requests' own, like .content does.
            chunks = response.iter_content(65536)
            response._content = capped_body(chunks, self._max_bytes, what)
        finally:
            response.close()  # the connection goes back to the pool
        return response


@dataclass
class _ServerClock:
    """The org's clock, from ``Date`` headers, advanced by our monotonic clock."""

    at: datetime | None = None
    mono: float = 0.0

    def observe(self, header: str | None) -> None:
        if not header:
            return
        try:
            parsed = parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        self.at, self.mono = parsed.astimezone(UTC), time.monotonic()

    def now(self) -> datetime:
        if self.at is None:
            return datetime.now(UTC).replace(microsecond=0)
        return self.at + timedelta(seconds=time.monotonic() - self.mono)


@dataclass
class SalesforceClient:
    """A logged-in connection to one org, with retries, budget and call accounting."""

    settings: SalesforceSettings
    budget: ApiBudget
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Tests inject a sleep; by default waits end early when ``should_stop`` says so.
    sleep: Callable[[float], None] | None = None
    should_stop: ShouldStop | None = None
    rng: random.Random = field(default_factory=random.Random)
    session: SalesforceSession | None = None
    # Bulk 2.0 goes over httpx; a transport may be injected (httpx.MockTransport in tests).
    httpx_transport: httpx.BaseTransport | None = None
    api_calls: int = 0
    retries: int = 0
    relogins: int = 0

    def __post_init__(self) -> None:
        self._sf: Salesforce | None = None
        self._http: _TimeoutSession | None = None
        self._clock = _ServerClock()
        self._lock = threading.Lock()
        self._describes: dict[str, dict[str, Any]] = {}
        self._last_headers: Any = {}
        # Bulk jobs this client created: about when Salesforce created each (mid-call).
        self.bulk_created: dict[str, float] = {}

    # ------------------------------------------------------------------ connection

    @classmethod
    def connect(
        cls, settings: SalesforceSettings, sync: SyncSettings, **kwargs: Any
    ) -> SalesforceClient:
        """Log in and return a client whose budget knows the org's remaining allowance."""
        client = cls(
            settings,
            ApiBudget(sync.max_api_share, sync.api_floor),
            RetryPolicy.from_settings(sync),
            **kwargs,
        )
        client.login()
        return client

    @classmethod
    @contextmanager
    def lease(
        cls,
        settings: SalesforceSettings,
        sync: SyncSettings,
        *,
        client: SalesforceClient | None = None,
        should_stop: ShouldStop | None = None,
    ) -> Iterator[SalesforceClient]:
        """A client for a block: ``client`` if a caller lends one, else a new one, closed after.

        A stop request reaches the client's waits either way.
        """
        if client is not None:
            if should_stop is not None:
                client.should_stop = should_stop
            yield client
            return
        own = cls.connect(settings, sync, should_stop=should_stop)
        try:
            yield own
        finally:
            own.close()

    @classmethod
    def from_session(
        cls,
        settings: SalesforceSettings,
        session: SalesforceSession,
        *,
        budget: ApiBudget | None = None,
        **kwargs: Any,
    ) -> SalesforceClient:
        """A client over a session obtained elsewhere (no login call)."""
        client = cls(settings, budget or ApiBudget(1.0, 0), session=session, **kwargs)
        client._build()
        return client

    @functools.cached_property
    def tls(self) -> ssl.SSLContext:
        """The TLS context of every connection this client opens: logins, REST calls and
        Bulk jobs. Built once, as loading the system's CA certificates takes ~20 ms."""
        return deadline_context(tls_context(self.settings))

    def login(self) -> None:
        if self.session is None or self.session.refreshable:
            with http_client(self.settings, tls=self.tls) as http:
                self.session = login(self.settings, client=http, sleep=self.pause)
        self._build()

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` (a back-off, a Bulk poll); a stop request ends it with Interrupted."""
        if self.sleep is not None:
            self.sleep(seconds)
        else:
            pause(seconds, self.should_stop)

    def _build(self) -> None:
        assert self.session is not None
        if self._http is None:
            http = _TimeoutSession(self.settings, self.tls)
            # Otherwise REQUESTS_CA_BUNDLE / proxy env vars silently override the trust.
            http.trust_env = False
            http.headers["Sforce-Call-Options"] = "client=sfsync"
            http.hooks["response"].append(self._on_response)
            self._http = http
        sf = Salesforce(
            instance_url=self.session.instance_url,
            session_id=self.session.access_token,
            session=self._http,
            version=self.settings.api_version,
        )
        sf.headers.pop("X-PrettyPrint", None)  # compact JSON: big pages are a third smaller
        self._sf = sf
        if self._clock.at is None:
            self._clock.observe(self.session.server_date)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> SalesforceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def integration_user_id(self) -> str | None:
        return self.session.user_id if self.session else None

    @property
    def instance_url(self) -> str:
        return self.session.instance_url if self.session else ""

    @property
    def base_path(self) -> str:
        return f"/services/data/v{self.settings.api_version}"

    def server_now(self) -> datetime:
        """The org's current time (from the last ``Date`` header), to the second."""
        return self._clock.now().replace(microsecond=0)

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        # simple-salesforce's exceptions drop the response; keep its headers for Retry-After.
        self._last_headers = response.headers
        self.observe_headers(response.headers)

    def observe_headers(self, headers: Any) -> None:
        """Feed the budget and the server clock from one response's headers."""
        usage = parse_limit_info(headers.get("Sforce-Limit-Info"))
        with self._lock:
            if usage is not None:
                self.budget.observe(*usage)
            self._clock.observe(headers.get("Date"))

    # ------------------------------------------------------------------ the choke point

    def call(self, what: str, fn: Callable[[Salesforce], T], *, idempotent: bool = True) -> T:
        """Run one HTTP call ``fn(sf)`` with budget, counting, retries and re-login.

        Non-idempotent calls (creating records) are only retried when the request
        certainly did not reach Salesforce; otherwise the ambiguity is surfaced as
        :class:`RetryableError` so the caller can reconcile before re-sending.
        """
        attempt = 0
        relogged = False
        while True:
            with self._lock:
                self.budget.check()
                self.budget.spend()
                self.api_calls += 1
            assert self._sf is not None, "call login() first"
            try:
                with deadline(self.settings.deadline_s):
                    return fn(self._sf)
            except Exception as raw:
                error = self._map(raw, what)
            if isinstance(error, SessionExpired):
                if relogged or self.session is None or not self.session.refreshable:
                    raise AuthError(
                        f"{error.message}; logging in again did not help"
                        if relogged
                        else f"{error.message}; the configured session cannot be renewed"
                    ) from None
                log.info("salesforce.relogin", reason=error.error_code, what=what)
                self.login()
                self.relogins += 1
                relogged = True
                continue
            if isinstance(error, RetryableError):
                safe = idempotent or (isinstance(error, TransportError) and not error.sent)
                if not safe:
                    raise error
                if attempt + 1 >= self.retry.max_attempts:
                    raise SalesforceUnreachable(
                        f"{what}: gave up after {attempt + 1} attempts: {error.message}"
                    ) from None
                retry_after = error.retry_after if isinstance(error, RetryableResponse) else None
                delay = self.retry.delay(attempt, retry_after, self.rng)
                log.warning(
                    "salesforce.retry",
                    what=what,
                    attempt=attempt + 1,
                    delay_s=round(delay, 2),
                    reason=error.error_code or type(error).__name__,
                    status=error.status,
                )
                self.retries += 1
                self.pause(delay)
                attempt += 1
                continue
            raise error

    def _map(self, raw: Exception, what: str) -> SfsyncError:
        if isinstance(raw, SfsyncError):
            return raw
        if isinstance(raw, SalesforceError):
            return classify_response(raw.status, raw.content, what=what, headers=self._last_headers)
        if isinstance(raw, requests.exceptions.JSONDecodeError | json.JSONDecodeError):
            return non_json(0, str(raw), what=what)
        if isinstance(raw, requests.exceptions.RequestException | httpx.TransportError):
            return classify_transport(raw, what=what)
        raise raw

    # ------------------------------------------------------------------ REST reads

    def limits(self) -> dict[str, Any]:
        body = self.rest("GET /limits", "limits/")
        daily = body.get("DailyApiRequests")
        if isinstance(daily, dict) and "Max" in daily and "Remaining" in daily:
            with self._lock:
                self.budget.observe(int(daily["Max"]) - int(daily["Remaining"]), int(daily["Max"]))
        return body

    def versions(self) -> list[str]:
        """API versions the org serves (``GET /services/data/``)."""
        url = f"{self.instance_url}/services/data/"

        def fetch(sf: Salesforce) -> Any:
            response = sf.session.get(url, headers=sf.headers)
            if response.status_code >= 300:
                raise classify_response(
                    response.status_code, response.text, what="GET /services/data/"
                )
            return response.json()

        body = self.call("GET /services/data/", fetch)
        return [str(v.get("version")) for v in body if isinstance(v, dict)]

    def describe_global(self) -> dict[str, Any]:
        return self.rest("describe global", "sobjects/")

    def describe(self, sobject: str) -> dict[str, Any]:
        if sobject not in self._describes:
            self._describes[sobject] = self.rest(
                f"describe {sobject}", f"sobjects/{sobject}/describe"
            )
        return self._describes[sobject]

    def remember_describe(self, sobject: str, describe: dict[str, Any]) -> None:
        self._describes[sobject] = describe

    def query_pages(
        self,
        soql: str,
        *,
        include_deleted: bool = False,
        page_size: int = 2000,
        first: dict[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield each page (``totalSize``, ``done``, ``records``) of a query, lazily.

        ``first``: the query's first page, already fetched (in a composite call): the
        pages go on from its ``nextRecordsUrl`` without querying again.
        """
        headers = _query_options(page_size)
        verb = "queryAll" if include_deleted else "query"
        page: dict[str, Any] = (
            first
            if first is not None
            else self.call(
                verb, lambda sf: sf.query(soql, include_deleted=include_deleted, headers=headers)
            )
        )
        yield page
        while not page.get("done", True):
            page = self.next_page(str(page["nextRecordsUrl"]), headers=headers)
            yield page

    def next_page(self, next_url: str, *, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """The page behind a ``nextRecordsUrl``."""
        result: dict[str, Any] = self.call(
            "query next page",
            lambda sf: sf.query_more(next_url, identifier_is_url=True, headers=headers or {}),
        )
        return result

    def rest(self, what: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """A REST call under ``/services/data/vXX.X/`` whose answer is a JSON object."""
        answer = self.call(what, lambda sf: sf.restful(path, **kwargs))
        if answer is None:
            return {}
        if not isinstance(answer, dict):
            raise ApiError(f"{what}: expected a JSON object, got {type(answer).__name__}")
        return answer

    def query_all(self, soql: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Every record of a (small) query."""
        records: list[dict[str, Any]] = []
        for page in self.query_pages(soql, include_deleted=include_deleted):
            records.extend(page.get("records", []))
        return records

    def count(self, soql_count: str, *, include_deleted: bool = False) -> int:
        page = next(self.query_pages(soql_count, include_deleted=include_deleted))
        return int(page.get("totalSize", 0))

    def deleted(self, sobject: str, start: datetime, end: datetime) -> dict[str, Any]:
        """``getDeleted`` for a window (ids hard- or soft-deleted in it)."""
        return self.rest(
            f"getDeleted {sobject}",
            f"sobjects/{sobject}/deleted/",
            params={"start": _iso(start), "end": _iso(end)},
        )

    @staticmethod
    def is_query_path(path: str) -> bool:
        """Whether a path under ``/services/data/vXX.X/`` is a query (``query``, ``queryAll``):
        a composite call may hold at most 5 of them."""
        return path.startswith(("query", "queryAll"))

    def composite_get(
        self, requests_: Sequence[tuple[str, str]], *, page_size: int | None = None
    ) -> dict[str, SubResponse]:
        """Several GETs (describe, query, getDeleted...) for the price of one API call.

        ``requests_`` is ``(reference_id, path under /services/data/vXX.X/)``; at most
        25 per call and 5 of them queries (Salesforce's composite limits). With
        ``page_size``, each query subrequest asks for pages of that many rows.
        """
        if not requests_:
            return {}
        if len(requests_) > 25:
            raise ValueError("a composite call takes at most 25 subrequests")
        subrequests: list[dict[str, Any]] = []
        for ref, path in requests_:
            sub: dict[str, Any] = {"method": "GET", "url": f"{self.base_path}/{path}"}
            if page_size is not None and self.is_query_path(path):
                sub["httpHeaders"] = _query_options(page_size)
            subrequests.append({**sub, "referenceId": ref})
        body = {"allOrNone": False, "compositeRequest": subrequests}
        answer = self.rest("composite", "composite", method="POST", data=json.dumps(body))
        return _sub_responses(answer, [ref for ref, _ in requests_])

    # ------------------------------------------------------------------ writes

    def collection_create(
        self, records: Sequence[dict[str, Any]], *, all_or_none: bool = False
    ) -> list[dict[str, Any]]:
        """``POST /composite/sobjects``: ≤200 records, one API call, results in order.

        Not idempotent: an ambiguous failure raises :class:`RetryableError` for the
        caller to reconcile, rather than being re-sent here.
        """
        return self._collection(
            "POST", "composite/sobjects", records, all_or_none, idempotent=False
        )

    def collection_update(
        self, records: Sequence[dict[str, Any]], *, all_or_none: bool = False
    ) -> list[dict[str, Any]]:
        """``PATCH /composite/sobjects`` (records carry ``id``): idempotent, so retried."""
        return self._collection(
            "PATCH", "composite/sobjects", records, all_or_none, idempotent=True
        )

    def collection_upsert(
        self,
        sobject: str,
        external_id_field: str,
        records: Sequence[dict[str, Any]],
        *,
        all_or_none: bool = False,
    ) -> list[dict[str, Any]]:
        """Upsert on an external id: Salesforce itself de-duplicates, so it is retried."""
        path = f"composite/sobjects/{quote(sobject)}/{quote(external_id_field)}"
        return self._collection("PATCH", path, records, all_or_none, idempotent=True)

    def _collection(
        self,
        method: str,
        path: str,
        records: Sequence[dict[str, Any]],
        all_or_none: bool,
        *,
        idempotent: bool,
    ) -> list[dict[str, Any]]:
        if not records:
            return []
        if len(records) > 200:
            raise ValueError("an sObject collection call takes at most 200 records")
        data = json.dumps({"allOrNone": all_or_none, "records": list(records)})
        answer = self.call(
            f"{method} {path}",
            lambda sf: sf.restful(path, method=method, data=data),
            idempotent=idempotent,
        )
        if not isinstance(answer, list) or len(answer) != len(records):
            raise ApiError(
                f"{method} {path}: expected {len(records)} results, got "
                f"{len(answer) if isinstance(answer, list) else type(answer).__name__}"
            )
        return [dict(item) for item in answer]

    # ------------------------------------------------------------------ Bulk API 2.0

    def bulk_query(
        self,
        soql: str,
        *,
        include_deleted: bool = False,
        page_size: int = 50_000,
        poll_s: float = 1.0,
        timeout_s: float = 7200.0,
        on_job: Callable[[str], None] | None = None,
        job_id: str | None = None,
        locator: str | None = None,
        expected_rows: int | None = None,
    ) -> Iterator[BulkChunk]:
        """Stream a Bulk 2.0 query job's results as chunks of rows.

        The last chunk of each result page has ``page_complete`` and the locator of
        the next page (None after the last). Pass ``job_id``/``locator`` to resume
        an earlier job where it stopped (locators stay valid while the job exists).
        A job not complete within ``timeout_s`` is aborted (:class:`BulkJobFailed`).
        ``expected_rows``: how many rows the query should return (counted beforehand).
        """
        bulk = BulkQuery(
            self,
            page_size=page_size,
            poll_s=poll_s,
            timeout_s=timeout_s,
            expected_rows=expected_rows,
        )
        yield from bulk.run(
            soql, include_deleted=include_deleted, on_job=on_job, job_id=job_id, locator=locator
        )

    def bulk_create(self, soql: str, *, include_deleted: bool = False) -> str:
        """Create a Bulk 2.0 query job without waiting for it (``bulk_query(job_id=...)``
        reads it later): Salesforce processes it while the caller does other work."""
        bulk = BulkQuery(self, page_size=1, poll_s=0.0, timeout_s=0.0)
        try:
            return bulk.create(soql, include_deleted=include_deleted)
        finally:
            bulk.close()

    def bearer_headers(self) -> dict[str, str]:
        assert self.session is not None
        return {"Authorization": f"Bearer {self.session.access_token}"}


def _query_options(page_size: int) -> dict[str, str]:
    """The header that asks for query pages of ``page_size`` rows."""
    return {"Sforce-Query-Options": f"batchSize={page_size}"}


def _sub_responses(answer: dict[str, Any], refs: Sequence[str]) -> dict[str, SubResponse]:
    """A composite reply's answers by reference id, each checked for its shape."""
    results = answer.get("compositeResponse")
    if not isinstance(results, list):
        raise ApiError(
            f"composite: Salesforce's reply has no compositeResponse list (got "
            f"{type(results).__name__})"
        )
    answers: dict[str, SubResponse] = {}
    for item in results:
        ref = str(item.get("referenceId")) if isinstance(item, dict) else "?"
        status = item.get("httpStatusCode") if isinstance(item, dict) else None
        if isinstance(status, bool) or not isinstance(status, int | str):
            raise ApiError(f"composite: subrequest {ref!r} came back without an httpStatusCode")
        try:
            code = int(status)
        except ValueError:
            raise ApiError(
                f"composite: subrequest {ref!r} came back with httpStatusCode {status!r}, "
                "which is not a number"
            ) from None
        answers[ref] = SubResponse(ref, code, item.get("body"))
    missing = [ref for ref in refs if ref not in answers]
    if missing:
        raise ApiError(f"composite: Salesforce's reply has no answer for {', '.join(missing)}")
    return answers


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("getDeleted needs timezone-aware datetimes")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
