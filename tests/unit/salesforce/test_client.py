"""The Salesforce client: paging, retries, re-login, budget, error mapping (no network)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import responses

from sfsync.config import SalesforceSettings
from sfsync.errors import (
    ApiError,
    AuthError,
    BudgetExhausted,
    RetryableError,
    SalesforceUnreachable,
)
from sfsync.salesforce import ApiBudget, RetryPolicy, SalesforceClient, SalesforceSession
from sfsync.salesforce._bulk import BulkChunk

INSTANCE = "https://acme.my.salesforce.com"
BASE = f"{INSTANCE}/services/data/v62.0"
LIMIT = {"Sforce-Limit-Info": "api-usage=25/15000"}


def session(flow: str = "client_credentials", token: str = "00Dxx!AQ4.first") -> SalesforceSession:
    return SalesforceSession(
        token, INSTANCE, "005xx0000012345AAA", "00Dxx0000001gPLEAY", flow, datetime.now(UTC)
    )


def client(
    budget: ApiBudget | None = None, flow: str = "client_credentials", **kw: Any
) -> SalesforceClient:
    settings = SalesforceSettings(client_id="cid", client_secret="secret-value", timeout_s=5)
    return SalesforceClient.from_session(
        settings,
        session(flow),
        budget=budget,
        retry=RetryPolicy(max_attempts=4, base_s=0.01, max_s=0.05),
        sleep=lambda _s: None,
        **kw,
    )


def record(n: int) -> dict[str, Any]:
    return {
        "attributes": {
            "type": "Opportunity",
            "url": f"/services/data/v62.0/sobjects/Opportunity/006{n}",
        },
        "Id": f"006xx00000{n:05d}AAA",
        "SystemModstamp": "2024-07-30T09:12:44.000+0000",
    }


@responses.activate
def test_query_pages_follow_next_records_url_with_batch_size() -> None:
    """Pages are fetched lazily through nextRecordsUrl, each with the batchSize header."""
    responses.get(
        f"{BASE}/queryAll/",
        json={
            "totalSize": 3,
            "done": False,
            "nextRecordsUrl": "/services/data/v62.0/query/01gxx-2",
            "records": [record(1), record(2)],
        },
        headers=LIMIT,
    )
    responses.get(
        f"{INSTANCE}/services/data/v62.0/query/01gxx-2",
        json={"totalSize": 3, "done": True, "records": [record(3)]},
        headers=LIMIT,
    )
    sf = client()
    pages = list(sf.query_pages("SELECT Id FROM Opportunity", include_deleted=True, page_size=500))
    assert [len(p["records"]) for p in pages] == [2, 1]
    assert sf.api_calls == 2
    assert all(
        c.request.headers["Sforce-Query-Options"] == "batchSize=500" for c in responses.calls
    )
    assert "X-PrettyPrint" not in responses.calls[0].request.headers
    assert responses.calls[0].request.headers["Authorization"] == "Bearer 00Dxx!AQ4.first"


@responses.activate
def test_transient_errors_are_retried_with_backoff() -> None:
    """503, 429 (with Retry-After) and UNABLE_TO_LOCK_ROW are retried; each attempt is counted."""
    url = f"{BASE}/query/"
    responses.get(
        url,
        status=503,
        json=[{"message": "down", "errorCode": "SERVER_UNAVAILABLE"}],
        headers=LIMIT,
    )
    responses.get(url, status=429, body="", headers={**LIMIT, "Retry-After": "0"})
    responses.get(url, status=400, json=[{"message": "lock", "errorCode": "UNABLE_TO_LOCK_ROW"}])
    responses.get(url, json={"totalSize": 0, "done": True, "records": []}, headers=LIMIT)
    delays: list[float] = []
    sf = client()
    sf.sleep = delays.append
    assert sf.query_all("SELECT Id FROM Opportunity") == []
    assert sf.api_calls == 4
    assert sf.retries == 3
    assert len(delays) == 3
    assert all(0 <= d <= 0.05 for d in delays)


@responses.activate
def test_retries_give_up_with_a_clear_error() -> None:
    responses.get(f"{BASE}/query/", status=502, body="<html>bad gateway</html>")
    sf = client()
    with pytest.raises(SalesforceUnreachable, match=r"gave up after 4 attempts.*HTTP 502"):
        sf.query_all("SELECT Id FROM Opportunity")


@responses.activate
def test_a_response_that_is_not_json_is_retried_then_named() -> None:
    responses.get(
        f"{BASE}/query/", status=200, body="<html>proxy login</html>", content_type="text/html"
    )
    sf = client()
    with pytest.raises(SalesforceUnreachable, match="not JSON"):
        sf.query_all("SELECT Id FROM Opportunity")
    assert sf.api_calls == 4


@responses.activate
def test_malformed_query_is_not_retried() -> None:
    responses.get(
        f"{BASE}/query/",
        status=400,
        json=[{"message": "unexpected token: SELEKT", "errorCode": "MALFORMED_QUERY"}],
    )
    sf = client()
    with pytest.raises(ApiError, match="MALFORMED_QUERY: unexpected token: SELEKT") as exc:
        sf.query_all("SELEKT Id FROM Opportunity")
    assert exc.value.error_code == "MALFORMED_QUERY"
    assert exc.value.exit_code == 3
    assert sf.api_calls == 1


@responses.activate
def test_expired_session_logs_in_again_and_replays_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """401 INVALID_SESSION_ID: a new token is obtained and the call replayed with it."""
    tokens = iter(["00Dxx!AQ4.second"])
    monkeypatch.setattr(
        "sfsync.salesforce._client.login",
        lambda settings, **_: session(token=next(tokens)),
    )
    expired = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    responses.get(f"{BASE}/query/", status=401, json=expired)
    responses.get(f"{BASE}/query/", json={"totalSize": 0, "done": True, "records": []})
    sf = client()
    sf.query_all("SELECT Id FROM Opportunity")
    assert sf.relogins == 1
    assert responses.calls[1].request.headers["Authorization"] == "Bearer 00Dxx!AQ4.second"


@responses.activate
def test_expired_given_session_cannot_be_renewed() -> None:
    responses.get(
        f"{BASE}/query/",
        status=401,
        json=[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
    )
    with pytest.raises(AuthError, match="cannot be renewed"):
        client(flow="session").query_all("SELECT Id FROM Opportunity")


@responses.activate
def test_budget_share_stops_before_the_call_that_would_exceed_it() -> None:
    """With 100 calls left and max_api_share 0.05, the sixth call is never made."""
    page = {"totalSize": 0, "done": True, "records": []}
    responses.get(f"{BASE}/query/", json=page, headers={"Sforce-Limit-Info": "api-usage=900/1000"})
    budget = ApiBudget(max_share=0.05, floor=0)
    sf = client(budget)
    budget.observe(900, 1000)
    for _ in range(5):
        sf.query_all("SELECT Id FROM Opportunity")
    with pytest.raises(BudgetExhausted, match=r"used 5 of its 5 calls"):
        sf.query_all("SELECT Id FROM Opportunity")
    assert len(responses.calls) == 5


@responses.activate
def test_budget_floor_reads_every_response_header() -> None:
    """The floor is checked against the usage the last response reported (others use the org too)."""
    responses.get(
        f"{BASE}/query/",
        json={"totalSize": 0, "done": True, "records": []},
        headers={"Sforce-Limit-Info": "api-usage=14000/15000"},
    )
    budget = ApiBudget(max_share=1.0, floor=1000)
    sf = client(budget)
    sf.query_all("SELECT Id FROM Opportunity")
    assert budget.remaining == 1000
    with pytest.raises(BudgetExhausted, match=r"sync\.api_floor is 1000"):
        sf.query_all("SELECT Id FROM Opportunity")


@responses.activate
def test_daily_limit_exceeded_stops_the_run() -> None:
    responses.get(
        f"{BASE}/query/",
        status=403,
        json=[{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
        headers={"Sforce-Limit-Info": "api-usage=15001/15000"},
    )
    sf = client()
    with pytest.raises(BudgetExhausted, match="daily API limit"):
        sf.query_all("SELECT Id FROM Opportunity")
    assert sf.budget.remaining == 0


@responses.activate
@pytest.mark.parametrize("status", [429, 503])
def test_a_throttle_is_backed_off_and_retried_not_taken_for_the_daily_limit(status: int) -> None:
    """429 "Too many requests" (even with REQUEST_LIMIT_EXCEEDED) is transient; Retry-After wins."""
    url = f"{BASE}/query/"
    responses.get(
        url,
        status=status,
        json=[
            {
                "message": "Too many requests. Please retry later.",
                "errorCode": "REQUEST_LIMIT_EXCEEDED",
            }
        ],
        headers={**LIMIT, "Retry-After": "7"},
    )
    responses.get(url, json={"totalSize": 0, "done": True, "records": []}, headers=LIMIT)
    delays: list[float] = []
    sf = client()
    sf.sleep = delays.append
    assert sf.query_all("SELECT Id FROM Opportunity") == []
    assert delays == [0.05]  # Retry-After (7 s), capped at the policy's max_s


@responses.activate
def test_limits_feed_the_budget_and_server_clock() -> None:
    responses.get(
        f"{BASE}/limits/",
        json={"DailyApiRequests": {"Max": 15000, "Remaining": 14998}},
        headers={"Date": "Thu, 01 Aug 2024 10:00:00 GMT", "Sforce-Limit-Info": "api-usage=2/15000"},
    )
    budget = ApiBudget(max_share=0.2, floor=1000)
    sf = client(budget)
    sf.limits()
    assert budget.allowance == 2999  # 0.2 of the 14,998 left at the first observation
    assert sf.server_now() >= datetime(2024, 8, 1, 10, 0, tzinfo=UTC)
    assert sf.server_now() < datetime(2024, 8, 1, 10, 1, tzinfo=UTC)


@responses.activate
def test_collection_create_is_not_blindly_retried() -> None:
    """A create that may have reached Salesforce is surfaced, not re-sent (no duplicate Tasks)."""
    responses.post(
        f"{BASE}/composite/sobjects",
        status=503,
        json=[{"message": "x", "errorCode": "SERVER_UNAVAILABLE"}],
    )
    sf = client()
    with pytest.raises(RetryableError):
        sf.collection_create([{"attributes": {"type": "Task"}, "Subject": "s"}])
    assert len(responses.calls) == 1


@responses.activate
def test_collection_results_come_back_in_order() -> None:
    results = [
        {"id": "00Txx0000000001AAA", "success": True, "errors": []},
        {
            "success": False,
            "errors": [
                {
                    "statusCode": "INACTIVE_OWNER_OR_USER",
                    "message": "operation performed with inactive user",
                    "fields": [],
                }
            ],
        },
    ]
    responses.post(f"{BASE}/composite/sobjects", json=results, headers=LIMIT)
    sf = client()
    answer = sf.collection_create(
        [{"attributes": {"type": "Task"}}, {"attributes": {"type": "Task"}}]
    )
    assert answer == results
    body = json.loads(responses.calls[0].request.body)
    assert body["allOrNone"] is False
    with pytest.raises(ValueError, match="at most 200"):
        sf.collection_create([{}] * 201)


@responses.activate
@pytest.mark.parametrize(
    "reply",
    [
        {"compositeResponse": [{"body": {}, "httpStatusCode": "abc", "referenceId": "d"}]},
        {"compositeResponse": [{"body": {}, "referenceId": "d"}]},
        {"compositeResponse": "not a list"},
        {"compositeResponse": [{"body": {}, "httpStatusCode": 200, "referenceId": "other"}]},
    ],
    ids=["status abc", "no status", "not a list", "reference missing"],
)
def test_a_malformed_composite_reply_is_an_api_error_naming_what_is_wrong(
    reply: dict[str, Any],
) -> None:
    """Not a crash (exit 70): exit 3, naming the subrequest and the value."""
    responses.post(f"{BASE}/composite", json=reply, headers=LIMIT)
    sf = client()
    with pytest.raises(ApiError, match="composite") as caught:
        sf.composite_get([("d", "sobjects/Opportunity/describe")])
    assert caught.value.exit_code == 3
    assert type(caught.value) is ApiError


@responses.activate
def test_composite_get_packs_subrequests_into_one_call() -> None:
    responses.post(
        f"{BASE}/composite",
        json={
            "compositeResponse": [
                {
                    "body": {"name": "Opportunity", "fields": []},
                    "httpHeaders": {},
                    "httpStatusCode": 200,
                    "referenceId": "d",
                },
                {
                    "body": [
                        {
                            "errorCode": "NOT_FOUND",
                            "message": "The requested resource does not exist",
                        }
                    ],
                    "httpHeaders": {},
                    "httpStatusCode": 404,
                    "referenceId": "c",
                },
            ]
        },
        headers=LIMIT,
    )
    sf = client()
    answers = sf.composite_get(
        [("d", "sobjects/Opportunity/describe"), ("c", "sobjects/CurrencyType/describe")]
    )
    assert sf.api_calls == 1
    assert answers["d"].ok
    assert answers["c"].status == 404
    with pytest.raises(ApiError, match="NOT_FOUND"):
        answers["c"].raise_for_error("describe CurrencyType")
    sent = json.loads(responses.calls[0].request.body)
    assert (
        sent["compositeRequest"][0]["url"] == "/services/data/v62.0/sobjects/Opportunity/describe"
    )


@responses.activate
def test_deleted_sends_aware_utc_window() -> None:
    responses.get(
        re.compile(rf"{re.escape(BASE)}/sobjects/Opportunity/deleted/.*"),
        json={
            "deletedRecords": [],
            "earliestDateAvailable": "2024-07-20T15:57:00.000+0000",
            "latestDateCovered": "2024-08-05T21:20:00.000+0000",
        },
    )
    sf = client()
    sf.deleted("Opportunity", datetime(2024, 8, 1, tzinfo=UTC), datetime(2024, 8, 5, tzinfo=UTC))
    url = responses.calls[0].request.url
    assert "start=2024-08-01T00%3A00%3A00%2B00%3A00" in url


# ---------------------------------------------------------------------------- Bulk API 2.0


def dicts(chunk: BulkChunk) -> list[dict[str, str]]:
    """A chunk's rows keyed by the CSV header (what each row means)."""
    return [dict(zip(chunk.header, row, strict=True)) for row in chunk.rows]


def bulk_transport(
    pages: list[tuple[str, dict[str, str]]], *, states: list[str]
) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    page_iter = iter(pages)
    state_iter = iter(states)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if request.method == "POST" and path.endswith("/jobs/query"):
            return httpx.Response(
                200,
                json={"id": "750xx000000AAAA", "operation": "queryAll", "state": "UploadComplete"},
                headers=LIMIT,
            )
        if request.method == "GET" and path.endswith("/jobs/query/750xx000000AAAA"):
            return httpx.Response(
                200, json={"id": "750xx000000AAAA", "state": next(state_iter)}, headers=LIMIT
            )
        if path.endswith("/results"):
            body, headers = next(page_iter)
            return httpx.Response(
                200, text=body, headers={**LIMIT, **headers, "Content-Type": "text/csv"}
            )
        return httpx.Response(404, json=[{"errorCode": "NOT_FOUND", "message": path}])

    return httpx.MockTransport(handler), seen


def test_bulk_query_streams_pages_by_locator() -> None:
    """Job create, polls until JobComplete, then result pages until the locator is null."""
    header = '"Id","Name","IsDeleted"\n'
    pages = [
        (
            header + '"006A","Big ""deal""","false"\n"006B","multi\nline","true"\n',
            {"Sforce-Locator": "MTA", "Sforce-NumberOfRecords": "2"},
        ),
        (header + '"006C","","false"\n', {"Sforce-Locator": "null", "Sforce-NumberOfRecords": "1"}),
    ]
    transport, seen = bulk_transport(pages, states=["InProgress", "JobComplete"])
    sf = client(httpx_transport=transport)
    jobs: list[str] = []
    chunks = list(
        sf.bulk_query(
            "SELECT Id FROM Opportunity", include_deleted=True, poll_s=0.001, on_job=jobs.append
        )
    )
    assert jobs == ["750xx000000AAAA"]
    assert [(c.page_complete, c.next_locator, len(c.rows)) for c in chunks] == [
        (True, "MTA", 2),
        (True, None, 1),
    ]
    assert chunks[0].header == ["Id", "Name", "IsDeleted"]
    assert dicts(chunks[0])[0] == {"Id": "006A", "Name": 'Big "deal"', "IsDeleted": "false"}
    assert dicts(chunks[0])[1]["Name"] == "multi\nline"
    assert sf.api_calls == 5
    create = json.loads(seen[0].content)
    assert create["operation"] == "queryAll"
    assert seen[-1].url.params["locator"] == "MTA"


def test_a_job_created_earlier_is_asked_at_once_a_new_one_after_a_pause() -> None:
    """Jobs created ahead of their turn have had their time: waiting ``poll_s`` before the
    first poll of each would only add up (one pause per Bulk object of a run)."""
    page = ('"Id"\n"006A"\n', {"Sforce-Locator": "null", "Sforce-NumberOfRecords": "1"})
    # job_id -> the requests made before each pause (a new job: its create, then a pause)
    for job_id, expected in ((None, [1]), ("750xx000000AAAA", [])):
        transport, seen = bulk_transport([page], states=["JobComplete"])
        sf = client(httpx_transport=transport)
        pauses: list[int] = []
        sf.sleep = lambda _s, seen=seen, pauses=pauses: pauses.append(len(seen))
        chunks = list(sf.bulk_query("SELECT Id FROM Opportunity", poll_s=2.0, job_id=job_id))
        assert [row["Id"] for c in chunks for row in dicts(c)] == ["006A"]
        assert pauses == expected, job_id


def test_bulk_pages_are_handed_out_in_bounded_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory stays flat: a big page arrives as chunks, the last one carrying the locator."""
    monkeypatch.setattr("sfsync.salesforce._bulk.CHUNK_ROWS", 2)
    body = '"Id"\n' + "".join(f'"006{n}"\n' for n in range(5))
    transport, _ = bulk_transport(
        [(body, {"Sforce-Locator": "null", "Sforce-NumberOfRecords": "5"})], states=["JobComplete"]
    )
    chunks = list(
        client(httpx_transport=transport).bulk_query("SELECT Id FROM Opportunity", poll_s=0.001)
    )
    assert [(len(c.rows), c.page_complete) for c in chunks] == [(2, False), (2, False), (1, True)]


def test_bulk_truncated_page_is_retried() -> None:
    header = '"Id"\n'
    pages = [
        (header + '"006A"\n', {"Sforce-Locator": "null", "Sforce-NumberOfRecords": "2"}),
        (header + '"006A"\n"006B"\n', {"Sforce-Locator": "null", "Sforce-NumberOfRecords": "2"}),
    ]
    transport, _ = bulk_transport(pages, states=["JobComplete"])
    sf = client(httpx_transport=transport)
    chunks = list(sf.bulk_query("SELECT Id FROM Opportunity", poll_s=0.001))
    # The short first read is caught before its (only) chunk is handed out; the re-read
    # hands out the whole page and only then the locator.
    assert [row["Id"] for c in chunks for row in dicts(c)] == ["006A", "006B"]
    assert [c.page_complete for c in chunks] == [True]
    assert sf.retries == 1


def test_bulk_failed_job_is_reported_for_fallback() -> None:
    from sfsync.salesforce import BulkJobFailed

    transport, _ = bulk_transport([], states=["Failed"])
    sf = client(httpx_transport=transport)
    with pytest.raises(BulkJobFailed, match="failed"):
        list(sf.bulk_query("SELECT Id FROM Opportunity", poll_s=0.001))


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("UNABLE_TO_LOCK_ROW", "transient"),
        ("SERVER_UNAVAILABLE", "transient"),
        ("QUERY_TIMEOUT", "transient"),
        ("INACTIVE_OWNER_OR_USER", "reassign"),
        ("DUPLICATE_VALUE", "exists"),
        ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "refused"),
        ("INVALID_CROSS_REFERENCE_KEY", "refused"),
        ("", "refused"),
    ],
)
def test_each_record_error_code_is_classified_once(code: str, kind: str) -> None:
    """The one classification the write-back's retry policy and applier both read."""
    from sfsync.salesforce import classify_record_error

    assert classify_record_error(code) == kind


@responses.activate
def test_a_client_builds_one_tls_context_for_its_logins_calls_and_bulk_jobs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Loading the system's CA certificates takes ~20 ms: a client does it once, however
    many logins, REST calls and Bulk jobs its run makes."""
    import ssl

    from sfsync.config import SyncSettings

    built: list[ssl.SSLContext] = []
    create = ssl.create_default_context

    def counted(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(create(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(ssl, "create_default_context", counted)
    tokens = iter(["00Dxx!AQ4.first", "00Dxx!AQ4.second"])
    monkeypatch.setattr(
        "sfsync.salesforce._client.login", lambda settings, **_: session(token=next(tokens))
    )
    expired = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    responses.get(f"{BASE}/query/", status=401, json=expired)
    responses.get(f"{BASE}/query/", json={"totalSize": 0, "done": True, "records": []})
    page = ('"Id"\n"006A"\n', {"Sforce-Locator": "null", "Sforce-NumberOfRecords": "1"})
    transport, _ = bulk_transport([page, page], states=["JobComplete", "JobComplete"])
    settings = SalesforceSettings(client_id="cid", client_secret="secret-value", timeout_s=5)
    sf = SalesforceClient.connect(settings, SyncSettings(), httpx_transport=transport)
    sf.query_all("SELECT Id FROM Opportunity")
    for _ in range(2):
        list(sf.bulk_query("SELECT Id FROM Opportunity", poll_s=0.0))
    assert sf.relogins == 1
    assert len(built) == 1


class _ProcessingJob:
    """A Bulk job that Salesforce processes at a steady rate, on a clock the test owns.

    Every call takes ``latency`` seconds (the server answers halfway through it); a pause
    moves the clock on. ``numberRecordsProcessed`` rises linearly over ``delay`` seconds,
    or stays 0 until the job completes when ``reports_progress`` is false.
    """

    def __init__(
        self, rows: int, delay: float, *, latency: float = 0.2, reports_progress: bool = True
    ) -> None:
        self.rows, self.delay, self.latency = rows, delay, latency
        self.reports_progress = reports_progress
        self.now = 100.0
        self.created: float | None = None
        self.polls: list[tuple[float, str]] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.now += self.latency / 2
        answered = self.now
        self.now += self.latency / 2
        if request.method == "POST":
            self.created = answered
            return httpx.Response(200, json={"id": "750xx000000AAAA", "state": "UploadComplete"})
        if request.url.path.endswith("/results"):
            return httpx.Response(
                200,
                text='"Id"\n"006A"\n',
                headers={"Sforce-Locator": "null", "Sforce-NumberOfRecords": "1"},
            )
        assert self.created is not None
        share = (answered - self.created) / self.delay
        state = "JobComplete" if share >= 1 else "InProgress"
        processed = self.rows if share >= 1 else int(self.rows * share)
        self.polls.append((answered, state))
        return httpx.Response(
            200,
            json={
                "id": "750xx000000AAAA",
                "state": state,
                "numberRecordsProcessed": processed if self.reports_progress else 0,
            },
        )


def _run_job(
    monkeypatch: pytest.MonkeyPatch, job: _ProcessingJob, *, ahead: float | None = None
) -> None:
    monkeypatch.setattr("sfsync.salesforce._bulk._clock", job.clock)
    sf = client(httpx_transport=httpx.MockTransport(job.handle))
    sf.sleep = job.sleep
    job_id = None
    if ahead is not None:  # created ahead of its turn; other objects are pulled meanwhile
        job_id = sf.bulk_create("SELECT Id FROM Opportunity")
        job.now += ahead
    chunks = list(
        sf.bulk_query(
            "SELECT Id FROM Opportunity",
            poll_s=0.5,
            job_id=job_id,
            expected_rows=job.rows,
        )
    )
    assert [row["Id"] for c in chunks for row in dicts(c)] == ["006A"]


@pytest.mark.parametrize("ahead", [None, 3.0], ids=["new", "created-ahead"])
def test_a_job_is_asked_again_when_its_progress_says_it_will_be_complete(
    monkeypatch: pytest.MonkeyPatch, ahead: float | None
) -> None:
    """A 20 s job of 100,000 rows: polled once while in progress, then once more, and
    found complete soon after it completes (a growing back-off polled it 8 times and
    found it 4-8 s late)."""
    job = _ProcessingJob(100_000, 20.0)
    _run_job(monkeypatch, job, ahead=ahead)
    assert job.created is not None
    assert [state for _, state in job.polls] == ["InProgress", "JobComplete"]
    found = job.polls[-1][0] - job.created
    assert 20.0 <= found <= 20.0 + 0.5


def test_a_job_that_reports_no_progress_is_polled_with_a_growing_pause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without ``numberRecordsProcessed`` rising, the pause grows by half up to 10 s."""
    job = _ProcessingJob(100_000, 20.0, reports_progress=False)
    _run_job(monkeypatch, job)
    states = [state for _, state in job.polls]
    assert states == ["InProgress"] * (len(states) - 1) + ["JobComplete"]
    gaps = [b - a for (a, _), (b, _) in zip(job.polls, job.polls[1:], strict=False)]
    assert gaps == sorted(gaps)
    assert max(gaps) <= 10.0 + 0.2 + 1e-9


@pytest.mark.parametrize(
    ("expected", "created", "observations", "estimates"),
    [
        # 1,000 of 10,000 rows in 2 s: 18 s to go; then 3,000 by 10 s, 250 a second: 28 s
        (10_000, 0.0, [(2.0, 1_000), (10.0, 3_000)], [18.0, 28.0]),
        # a job not created by this client: its first poll is where the rate starts
        (10_000, None, [(2.0, 1_000), (4.0, 2_000)], [None, 16.0]),
        # stalled, then going on
        (10_000, 0.0, [(2.0, 1_000), (4.0, 1_000), (6.0, 2_000)], [18.0, None, 16.0]),
        # more rows than were counted, nothing counted, no progress reported, nonsense
        (1_000, 0.0, [(2.0, 1_000), (4.0, 1_500)], [None, None]),
        (None, 0.0, [(2.0, 1_000)], [None]),
        (10_000, 0.0, [(2.0, 0), (4.0, None), (5.0, True), (6.0, "9"), (7.0, -1)], [None] * 5),
    ],
)
def test_the_estimate_of_when_a_job_completes_reads_its_rate_between_two_observations(
    expected: int | None,
    created: float | None,
    observations: list[tuple[float, Any]],
    estimates: list[float | None],
) -> None:
    from sfsync.salesforce._bulk import _Progress

    progress = _Progress(expected, created)
    got = [progress.observe(at, processed) for at, processed in observations]
    assert got == pytest.approx(estimates)
