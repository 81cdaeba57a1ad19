"""Bulk API 2.0 query jobs (docs/salesforce-api.md, section 9): lifecycle, streamed CSV.

A job's result is the query's snapshot, taken when the job is created; its state
then moves ``UploadComplete`` → ``InProgress`` → ``JobComplete`` as the
configured delay passes (zero: complete on the first poll), its
``numberRecordsProcessed`` rising steadily meanwhile. Result pages are
streamed in blocks, so a million-row page never sits in memory.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sfsync.devorg._bulk_common import IdSequence, completed, csv_stream
from sfsync.devorg._http import ApiFailure, Request, Response, json_response
from sfsync.devorg._org import QueryCursor
from sfsync.devorg.soql import SoqlError
from sfsync.formats import format_datetime

if TYPE_CHECKING:
    from sfsync.devorg._server import DevOrgServer

__all__ = ["BulkJobs"]

DEFAULT_MAX_RECORDS = 50_000
_TERMINAL = ("JobComplete", "Aborted", "Failed")


@dataclass(slots=True)
class _Job:
    id: str
    operation: str
    sobject: str
    created_by: str
    created_date: str
    version: str
    line_ending: str
    cursor: QueryCursor
    created: float = field(default_factory=time.monotonic)
    aborted: bool = False

    def state(self, delay: float) -> str:
        if self.aborted:
            return "Aborted"
        if completed(self.created, delay):
            return "JobComplete"
        return "InProgress"

    def processed(self, state: str, delay: float) -> int:
        """The records processed so far: all once complete, before that a steady share of
        them as the delay passes (as Salesforce counts a job's records while it runs)."""
        if state == "JobComplete":
            return self.cursor.total
        if state != "InProgress" or delay <= 0:
            return 0
        share = (time.monotonic() - self.created) / delay
        return min(int(self.cursor.total * share), max(self.cursor.total - 1, 0))

    def info(self, delay: float, *, full: bool, state: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.sobject,
            "createdById": self.created_by,
            "createdDate": self.created_date,
            "systemModstamp": self.created_date,
            "state": state or self.state(delay),
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.version),
            "lineEnding": self.line_ending,
            "columnDelimiter": "COMMA",
        }
        if full:
            data.update(
                jobType="V2Query",
                numberRecordsProcessed=self.processed(data["state"], delay),
                retries=0,
                totalProcessingTime=0,
                isPkChunkingSupported=True,
            )
        return data


def _encode_locator(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def _decode_locator(locator: str) -> int:
    try:
        padded = locator + "=" * (-len(locator) % 4)
        return int(base64.b64decode(padded, validate=True).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ApiFailure(400, "INVALIDLOCATOR", f"Invalid locator: {locator}") from None


class BulkJobs:
    """The org's Bulk 2.0 query jobs, keyed by job id."""

    def __init__(self, server: DevOrgServer) -> None:
        self.server = server
        self._jobs: dict[str, _Job] = {}
        self._ids = IdSequence("750")
        self._lock = threading.Lock()
        self.jobs_created = 0  # the DailyBulkV2QueryJobs usage /limits reports

    def _job(self, job_id: str) -> _Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise ApiFailure(404, "NOT_FOUND", "The requested resource does not exist")
        return job

    def handle(self, req: Request, parts: list[str]) -> Response:
        """``parts`` is the path after ``jobs/query``."""
        delay = self.server.bulk_delay
        if not parts:
            if req.method == "POST":
                return self._create(req)
            if req.method == "GET":
                with self._lock:
                    jobs = list(self._jobs.values())
                return json_response(
                    200,
                    {
                        "done": True,
                        "records": [j.info(delay, full=False) for j in jobs],
                        "nextRecordsUrl": None,
                    },
                )
            raise ApiFailure(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{req.method}' not allowed")
        job = self._job(parts[0])
        if len(parts) == 2 and parts[1] == "results" and req.method == "GET":
            return self._results(req, job)
        if len(parts) != 1:
            raise ApiFailure(404, "NOT_FOUND", "The requested resource does not exist")
        if req.method == "GET":
            return json_response(200, job.info(delay, full=True))
        if req.method == "PATCH":
            body = req.json() or {}
            if body.get("state") != "Aborted":
                raise ApiFailure(400, "INVALIDJOBSTATE", "A query job can only be Aborted")
            if job.state(delay) in _TERMINAL:
                raise ApiFailure(
                    400, "INVALIDJOBSTATE", f"Job {job.id} is already {job.state(delay)}"
                )
            job.aborted = True
            return json_response(200, job.info(delay, full=False))
        if req.method == "DELETE":
            if job.state(delay) not in _TERMINAL:
                raise ApiFailure(
                    400, "INVALIDJOBSTATE", "Only a job that is complete or aborted can be deleted"
                )
            with self._lock:
                self._jobs.pop(job.id, None)
            self.server.org.drop_cursor(job.cursor.id)
            return Response(204, None, None)
        raise ApiFailure(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{req.method}' not allowed")

    def _create(self, req: Request) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            raise ApiFailure(400, "INVALIDJOB", "The request body must be a JSON object")
        operation = body.get("operation", "query")
        if operation not in ("query", "queryAll"):
            raise ApiFailure(400, "INVALIDJOB", f"Invalid operation: {operation}")
        if body.get("contentType", "CSV") != "CSV":
            raise ApiFailure(400, "INVALIDJOB", "Only CSV is supported for query jobs")
        if body.get("columnDelimiter", "COMMA") != "COMMA":
            raise ApiFailure(400, "INVALIDJOB", "The dev org only writes COMMA-delimited CSV")
        line_ending = body.get("lineEnding", "LF")
        if line_ending not in ("LF", "CRLF"):
            raise ApiFailure(400, "INVALIDJOB", f"Invalid lineEnding: {line_ending}")
        soql = body.get("query")
        if not isinstance(soql, str):
            raise ApiFailure(400, "INVALIDJOB", "query is required")
        try:
            cursor = self.server.org.open_query(soql, operation == "queryAll", bulk=True)
        except SoqlError as exc:
            raise ApiFailure(400, exc.code, exc.message) from None
        job_id = self._ids.new()
        job = _Job(
            job_id,
            operation,
            cursor.sobject.name,
            req.user_id,
            format_datetime(self.server.org.now()),
            req.version,
            line_ending,
            cursor,
        )
        with self._lock:
            self._jobs[job_id] = job
            self.jobs_created += 1
        return json_response(
            200, job.info(self.server.bulk_delay, full=False, state="UploadComplete")
        )

    def _results(self, req: Request, job: _Job) -> Response:
        if job.version != req.version:
            raise ApiFailure(
                409,
                "INVALIDVERSION",
                f"Job {job.id} was created with API version {job.version}; use that version",
            )
        state = job.state(self.server.bulk_delay)
        if state != "JobComplete":
            raise ApiFailure(400, "JOB_NOT_COMPLETE", f"Job {job.id} is {state}")
        max_text = req.param("maxRecords")
        try:
            max_records = int(max_text) if max_text else DEFAULT_MAX_RECORDS
        except ValueError:
            raise ApiFailure(400, "INVALIDMAXRECORDS", f"Invalid maxRecords: {max_text}") from None
        if max_records < 1:
            raise ApiFailure(400, "INVALIDMAXRECORDS", f"Invalid maxRecords: {max_text}")
        locator = req.param("locator")
        start = _decode_locator(locator) if locator and locator != "null" else 0
        total = job.cursor.total
        stop = min(total, start + max_records)
        next_locator = _encode_locator(stop) if stop < total else "null"
        headers = {
            "Sforce-NumberOfRecords": str(max(0, stop - start)),
            "Sforce-Locator": next_locator,
        }
        newline = "\r\n" if job.line_ending == "CRLF" else "\n"
        body = csv_stream(self.server.org, job.cursor, start, stop, newline)
        return Response(200, body, "text/csv", headers)
