"""Bulk API 2.0 query jobs, streamed page by page with httpx.

simple-salesforce's ``bulk2`` copies the session token once (it never renews
it) and materialises each page as one string; sfsync needs re-login mid-job,
per-call budget accounting, truncation checks and flat memory, so it drives the
three endpoints itself: create job -> poll -> results by locator.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from sfsync.errors import ApiError, SalesforceUnreachable, SfsyncError
from sfsync.logging import get_logger
from sfsync.salesforce._errors import classify_response, non_json, parse_body
from sfsync.salesforce._transport import (
    capped_body,
    deadline,
    refuse_plain_http,
)

if TYPE_CHECKING:
    from sfsync.salesforce._client import SalesforceClient

__all__ = ["BulkChunk", "BulkJobFailed", "BulkQuery"]

log = get_logger()
_clock = time.monotonic  # the polls' clock (tests own it)


class BulkJobFailed(ApiError):
    """The job failed, was aborted, or the object is not supported: fall back to REST."""


class TruncatedPage(SfsyncError):
    """A result page that broke off or does not match its record count: read it again."""


CHUNK_ROWS = 2000  # rows handed to the caller at a time: memory stays flat whatever the page


@dataclass(frozen=True)
class BulkChunk:
    """Rows of a result page; the last chunk of a page says where the next page starts.

    Rows are lists of the CSV's text cells in ``header`` order (dicts per row would
    cost more than the rest of the sync's inner loop).
    """

    header: list[str]
    rows: list[list[str]]
    page_complete: bool
    next_locator: str | None


class _Iterable(io.RawIOBase):
    """A readable raw stream over an iterator of byte chunks (for csv over TextIOWrapper)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


_LONGEST_BACKOFF_S = 10.0
_LONGEST_PAUSE_S = 120.0  # even a job whose progress says "an hour" is asked now and then


class _Progress:
    """When a job will be complete, from how fast its ``numberRecordsProcessed`` rises.

    Salesforce counts the records a query job has processed while it is in progress;
    with the rows the window holds (counted while planning) the rate tells when the job
    will be done, so one more poll then finds it complete. Each observation is placed
    halfway through its call (a job's creation, a poll): where the server answered, as
    far as the client can tell. The pause runs from the answer's arrival, and the next
    poll reaches the server half a call later, so it lands a round trip after the
    estimate. A job that reports no progress, has processed all the rows counted (more
    came since) or stalled gives no estimate.
    """

    __slots__ = ("done", "expected", "since")

    def __init__(self, expected: int | None, created: float | None) -> None:
        self.expected = expected
        # The last observation: when (mid-call) and how many records were processed then.
        self.since = created
        self.done = 0

    def observe(self, at: float, processed: Any) -> float | None:
        """Seconds from ``at`` until the job should be complete, if its progress tells."""
        if type(processed) is not int or processed < 0:
            return None
        since, done = self.since, self.done
        self.since, self.done = at, processed
        if since is None or self.expected is None or not done < processed < self.expected:
            return None
        rate = (processed - done) / max(at - since, 1e-6)
        return (self.expected - processed) / rate


class BulkQuery:
    def __init__(
        self,
        client: SalesforceClient,
        *,
        page_size: int,
        poll_s: float,
        timeout_s: float,
        expected_rows: int | None = None,
    ) -> None:
        self.client = client
        self.page_size = page_size
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.expected_rows = expected_rows
        settings = client.settings
        self.http = httpx.Client(
            verify=client.tls,
            timeout=httpx.Timeout(settings.timeout_s, connect=min(10.0, settings.timeout_s)),
            trust_env=False,
            headers={"Sforce-Call-Options": "client=sfsync"},
            event_hooks={"request": [refuse_plain_http], "response": [self._observe]},
            transport=client.httpx_transport,
        )
        self.max_bytes = settings.max_response_mb * 1024 * 1024

    def _observe(self, response: httpx.Response) -> None:
        self.client.observe_headers(response.headers)

    def _url(self, path: str) -> str:
        return f"{self.client.instance_url}{self.client.base_path}/jobs/query{path}"

    def _json(self, what: str, method: str, path: str, body: Any = None) -> dict[str, Any]:
        def send(_sf: object) -> dict[str, Any]:
            request = self.http.build_request(
                method,
                self._url(path),
                json=body,
                headers={**self.client.bearer_headers(), "Accept": "application/json"},
            )
            response = self.http.send(request, stream=True)
            try:
                raw = capped_body(response.iter_bytes(), self.max_bytes, what)
            finally:
                response.close()
            text = raw.decode(response.encoding or "utf-8", "replace")
            parsed = parse_body(text)
            if response.status_code >= 300:
                error = classify_response(
                    response.status_code, parsed, what=what, headers=dict(response.headers)
                )
                if type(error) is ApiError:
                    raise BulkJobFailed(
                        error.message, status=error.status, error_code=error.error_code
                    )
                raise error
            if not isinstance(parsed, dict):
                raise non_json(response.status_code, text, what=what)
            return parsed

        return self.client.call(what, send)

    def run(
        self,
        soql: str,
        *,
        include_deleted: bool,
        on_job: Callable[[str], None] | None,
        job_id: str | None,
        locator: str | None,
    ) -> Iterator[BulkChunk]:
        try:
            # A job created earlier (ahead of its turn, or by a run that stopped) may be done
            # by now: it is asked at once. A job created here is given its first pause.
            fresh = job_id is None
            if job_id is None:
                job_id = self.create(soql, include_deleted=include_deleted)
                if on_job is not None:
                    on_job(job_id)
            self._wait(job_id, pause_first=fresh)
            while True:
                next_locator: str | None = None
                for chunk in self._page(job_id, locator):
                    yield chunk
                    next_locator = chunk.next_locator
                if next_locator is None:
                    break
                locator = next_locator
        finally:
            self.http.close()

    def create(self, soql: str, *, include_deleted: bool) -> str:
        """Create the query job and return its id; Salesforce starts processing it at once."""
        sent = _clock()
        job = self._json(
            "create Bulk 2.0 query job",
            "POST",
            "",
            {
                "operation": "queryAll" if include_deleted else "query",
                "query": soql,
                "contentType": "CSV",
                "columnDelimiter": "COMMA",
                "lineEnding": "LF",
            },
        )
        job_id = str(job["id"])
        self.client.bulk_created[job_id] = (sent + _clock()) / 2
        log.info("bulk.job", job_id=job_id, operation=job.get("operation"))
        return job_id

    def close(self) -> None:
        self.http.close()

    def _wait(self, job_id: str, *, pause_first: bool = True) -> None:
        """Poll until the job completes; past ``timeout_s`` abort it and give it up.

        While the job reports its progress, the next poll is timed for when that
        progress says it will be complete (:class:`_Progress`); otherwise the pause
        starts at ``poll_s`` and grows by half up to 10 s. Salesforce itself retries a
        query job for a long while (up to 15 attempts of up to 10 minutes each) before
        failing it, so the default leaves it two hours. Every wait between polls ends at
        once when a stop is requested.
        """
        delay = self.poll_s
        give_up_at = _clock() + self.timeout_s
        progress = _Progress(self.expected_rows, self.client.bulk_created.get(job_id))
        pause = delay if pause_first else 0.0
        while True:
            if pause > 0:
                self.client.pause(min(pause, max(give_up_at - _clock(), 0.0)))
            sent = _clock()
            job = self._json("poll Bulk 2.0 query job", "GET", f"/{job_id}")
            answered = _clock()
            state = job.get("state")
            if state == "JobComplete":
                return
            if state in ("Failed", "Aborted"):
                reason = job.get("errorMessage") or "no reason given"
                raise BulkJobFailed(
                    f"Bulk 2.0 job {job_id} {state.lower()}: {reason}",
                    error_code=f"JOB_{state.upper()}",
                )
            if answered >= give_up_at:
                self._abort(job_id)
                raise BulkJobFailed(
                    f"Bulk 2.0 job {job_id} was still {state} after {self.timeout_s:g}s "
                    "(sync.bulk_timeout_s); it was aborted",
                    error_code="JOB_TIMEOUT",
                )
            remaining = progress.observe((sent + answered) / 2, job.get("numberRecordsProcessed"))
            if remaining is None:
                pause = delay
                delay = min(delay * 1.5, _LONGEST_BACKOFF_S)
            else:
                pause = min(max(remaining, self.poll_s / 4), _LONGEST_PAUSE_S)
                log.debug("bulk.eta", job_id=job_id, seconds=round(remaining, 2))

    def _abort(self, job_id: str) -> None:
        """Ask Salesforce to stop working on a job we give up (best effort)."""
        try:
            self._json("abort Bulk 2.0 query job", "PATCH", f"/{job_id}", {"state": "Aborted"})
        except SfsyncError as exc:
            log.warning("bulk.abort_failed", job_id=job_id, reason=exc.message)

    def _page(self, job_id: str, locator: str | None) -> Iterator[BulkChunk]:
        """One result page, streamed as chunks of rows; a broken page is read again.

        Chunks already handed out are handed out again on a re-read: the caller
        upserts by Id, so that is harmless, and it advances its locator only on a
        chunk marked ``page_complete``.
        """
        what = f"Bulk 2.0 results of job {job_id}"
        attempt = 0
        while True:
            response = self.client.call(what, lambda _sf: self._open_page(job_id, locator, what))
            try:
                # The page streams in the caller's rhythm; its download still has a deadline.
                with deadline(self.client.settings.deadline_s):
                    yield from self._read_page(response, what)
                return
            except (TruncatedPage, httpx.TransportError) as exc:
                attempt += 1
                if attempt >= self.client.retry.max_attempts:
                    raise SalesforceUnreachable(
                        f"{what}: gave up after {attempt} attempts: {exc}"
                    ) from None
                delay = self.client.retry.delay(attempt, None, self.client.rng)
                log.warning("bulk.page_retry", job_id=job_id, attempt=attempt, reason=str(exc))
                self.client.retries += 1
                self.client.pause(delay)
            finally:
                response.close()

    def _open_page(self, job_id: str, locator: str | None, what: str) -> httpx.Response:
        params = {"maxRecords": str(self.page_size)}
        if locator:
            params["locator"] = locator
        request = self.http.build_request(
            "GET",
            self._url(f"/{job_id}/results"),
            params=params,
            headers={**self.client.bearer_headers(), "Accept": "text/csv"},
        )
        response = self.http.send(request, stream=True)
        if response.status_code >= 300:
            response.read()
            response.close()
            error = classify_response(
                response.status_code,
                parse_body(response.text),
                what=what,
                headers=dict(response.headers),
            )
            if type(error) is ApiError:
                raise BulkJobFailed(error.message, status=error.status, error_code=error.error_code)
            raise error
        return response

    def _read_page(self, response: httpx.Response, what: str) -> Iterator[BulkChunk]:
        expected = response.headers.get("Sforce-NumberOfRecords")
        next_locator = response.headers.get("Sforce-Locator")
        if next_locator in (None, "", "null"):
            next_locator = None
        text = io.TextIOWrapper(
            io.BufferedReader(_Iterable(response.iter_bytes())), encoding="utf-8", newline=""
        )
        rows: list[list[str]] = []
        count = 0
        reader = csv.reader(text, strict=True)
        try:
            header = next(reader, [])  # every page repeats the header row
            for row in reader:
                rows.append(row)
                count += 1
                if len(rows) == CHUNK_ROWS:
                    yield BulkChunk(header, rows, page_complete=False, next_locator=None)
                    rows = []
        except csv.Error as exc:
            raise TruncatedPage(f"{what}: unreadable CSV after {count} rows ({exc})") from None
        if expected is not None and expected.isdigit() and int(expected) != count:
            raise TruncatedPage(
                f"{what}: truncated page: {count} rows, Sforce-NumberOfRecords says {expected}"
            )
        yield BulkChunk(header, rows, page_complete=True, next_locator=next_locator)
