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
from typing import TYPE_CHECKING, Any

import httpx

from sfsync.errors import ApiError, SfsyncError
from sfsync.logging import get_logger
from sfsync.salesforce._auth import tls_context
from sfsync.salesforce._errors import classify_response, non_json, parse_body

if TYPE_CHECKING:
    from sfsync.salesforce._client import SalesforceClient

__all__ = ["BulkJobFailed", "BulkQuery"]

log = get_logger()


class BulkJobFailed(ApiError):
    """The job failed, was aborted, or the object is not supported: fall back to REST."""


class TruncatedPage(SfsyncError):
    pass


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


class BulkQuery:
    def __init__(self, client: SalesforceClient, *, page_size: int, poll_s: float) -> None:
        self.client = client
        self.page_size = page_size
        self.poll_s = poll_s
        settings = client.settings
        self.http = httpx.Client(
            verify=tls_context(settings),
            timeout=httpx.Timeout(settings.timeout_s, connect=min(10.0, settings.timeout_s)),
            trust_env=False,
            headers={"Sforce-Call-Options": "client=sfsync"},
            event_hooks={"response": [self._observe]},
            transport=client.httpx_transport,
        )

    def _observe(self, response: httpx.Response) -> None:
        self.client.observe_headers(response.headers)

    def _url(self, path: str) -> str:
        return f"{self.client.instance_url}{self.client.base_path}/jobs/query{path}"

    def _json(self, what: str, method: str, path: str, body: Any = None) -> dict[str, Any]:
        def send(_sf: object) -> dict[str, Any]:
            response = self.http.request(
                method,
                self._url(path),
                json=body,
                headers={**self.client.bearer_headers(), "Accept": "application/json"},
            )
            parsed = parse_body(response.text)
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
                raise non_json(response.status_code, response.text, what=what)
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
    ) -> Iterator[tuple[str | None, list[dict[str, str]]]]:
        try:
            if job_id is None:
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
                if on_job is not None:
                    on_job(job_id)
                log.info("bulk.job", job_id=job_id, operation=job.get("operation"))
            self._wait(job_id)
            while True:
                next_locator, rows = self._page(job_id, locator)
                yield next_locator, rows
                if next_locator is None:
                    break
                locator = next_locator
        finally:
            self.http.close()

    def _wait(self, job_id: str) -> None:
        delay = self.poll_s
        while True:
            time.sleep(delay)
            job = self._json("poll Bulk 2.0 query job", "GET", f"/{job_id}")
            state = job.get("state")
            if state == "JobComplete":
                return
            if state in ("Failed", "Aborted"):
                reason = job.get("errorMessage") or "no reason given"
                raise BulkJobFailed(
                    f"Bulk 2.0 job {job_id} {state.lower()}: {reason}",
                    error_code=f"JOB_{state.upper()}",
                )
            delay = min(delay * 1.5, 10.0)

    def _page(self, job_id: str, locator: str | None) -> tuple[str | None, list[dict[str, str]]]:
        params = {"maxRecords": str(self.page_size)}
        if locator:
            params["locator"] = locator
        what = f"Bulk 2.0 results of job {job_id}"

        def fetch(_sf: object) -> tuple[str | None, list[dict[str, str]]]:
            headers = {**self.client.bearer_headers(), "Accept": "text/csv"}
            with self.http.stream(
                "GET", self._url(f"/{job_id}/results"), params=params, headers=headers
            ) as response:
                if response.status_code >= 300:
                    response.read()
                    error = classify_response(
                        response.status_code,
                        parse_body(response.text),
                        what=what,
                        headers=dict(response.headers),
                    )
                    if type(error) is ApiError:
                        raise BulkJobFailed(
                            error.message, status=error.status, error_code=error.error_code
                        )
                    raise error
                expected = response.headers.get("Sforce-NumberOfRecords")
                next_locator = response.headers.get("Sforce-Locator")
                text = io.TextIOWrapper(
                    io.BufferedReader(_Iterable(response.iter_bytes())),
                    encoding="utf-8",
                    newline="",
                )
                try:
                    rows = list(csv.DictReader(text, strict=True))
                except csv.Error as exc:
                    raise _truncated(what, f"unreadable CSV ({exc})") from None
            if expected is not None and expected.isdigit() and int(expected) != len(rows):
                raise _truncated(what, f"{len(rows)} rows, Sforce-NumberOfRecords says {expected}")
            if next_locator in (None, "", "null"):
                next_locator = None
            return next_locator, rows

        return self.client.call(what, fetch)


def _truncated(what: str, detail: str) -> SfsyncError:
    from sfsync.salesforce._errors import RetryableResponse

    return RetryableResponse(
        f"{what}: truncated page: {detail}",
        status=None,
        error_code="TRUNCATED_CSV",
        retry_after=None,
    )
