"""Bulk API 1.0 query jobs under ``/services/async/{version}/`` (docs/salesforce-api.md, 9.1).

A client creates a job (XML or JSON body: operation ``query``/``queryAll``,
object, contentType CSV/JSON/XML), adds a batch whose body is the SOQL, closes
the job, polls the batch until ``Completed`` and reads its result files. Each
batch runs its query to a snapshot when it is added and is ``Completed`` once the
server's bulk delay has passed (zero: on the first poll); a result too large for
one file (``DevOrgServer(bulk_result_rows=)`` rows, standing in for Salesforce's
1 GB) is split into several. With ``Sforce-Enable-PKChunking`` the batch is
``NotProcessed`` and one batch per ``chunkSize`` Ids (in Id order) does the work,
as Salesforce does.

Formats follow Salesforce: job resources answer in the request's format (JSON for
a JSON body or ``Content-Type``), batch resources in the job's (JSON for JSON
jobs, XML otherwise); results are CSV (every value quoted), JSON (datetimes as
epoch milliseconds, dates as ``YYYY-MM-DD``) or XML. Errors are HTTP 400 with the
async API's ``exceptionCode``/``exceptionMessage``, as XML or JSON.
"""

from __future__ import annotations

import json
import math
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from sfsync.devorg._bulk_common import IdSequence, completed, csv_stream, record_blocks
from sfsync.devorg._http import Request, Response
from sfsync.devorg._org import QueryCursor
from sfsync.devorg.soql import SoqlError
from sfsync.formats import format_datetime, parse_datetime

if TYPE_CHECKING:
    from sfsync.devorg._server import DevOrgServer

__all__ = ["DEFAULT_RESULT_ROWS", "AsyncApi", "AsyncError", "async_error"]

NAMESPACE = "http://www.force.com/2009/06/asyncapi/dataload"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
XML_TYPE = "application/xml"
JSON_TYPE = "application/json"
CONTENT_TYPES = {"CSV": "text/csv", "JSON": JSON_TYPE, "XML": XML_TYPE}
#: Salesforce labels CSV results UTF-8; without it requests decodes ``text/*`` as ISO-8859-1.
CSV_RESULT_TYPE = "text/csv; charset=UTF-8"
#: Rows per result file (Salesforce splits results by size, at 1 GB).
DEFAULT_RESULT_ROWS = 500_000
DEFAULT_CHUNK_SIZE = 100_000
MAX_CHUNK_SIZE = 250_000
_INGEST = ("insert", "update", "upsert", "delete", "hardDelete")
_JOB_KEYS = (
    "id",
    "operation",
    "object",
    "createdById",
    "createdDate",
    "systemModstamp",
    "state",
    "concurrencyMode",
    "contentType",
    "numberBatchesQueued",
    "numberBatchesInProgress",
    "numberBatchesCompleted",
    "numberBatchesFailed",
    "numberBatchesTotal",
    "numberRecordsProcessed",
    "numberRetries",
    "apiVersion",
    "numberRecordsFailed",
    "totalProcessingTime",
    "apiActiveProcessingTime",
    "apexProcessingTime",
)


class AsyncError(Exception):
    """An async-API error: HTTP 400 (unless said), ``exceptionCode`` and ``exceptionMessage``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _xml_document(tag: str, inner: str) -> bytes:
    head = f'<?xml version="1.0" encoding="UTF-8"?><{tag} xmlns="{NAMESPACE}">'
    return f"{head}{inner}</{tag}>".encode()


def _xml_fields(items: dict[str, Any]) -> str:
    out = []
    for key, value in items.items():
        text = str(value).lower() if isinstance(value, bool) else escape(str(value))
        out.append(f"<{key}>{text}</{key}>")
    return "".join(out)


def async_error(
    code: str,
    message: str,
    *,
    as_json: bool,
    status: int = 400,
    headers: dict[str, str] | None = None,
) -> Response:
    """The async API's error body, ``<error xmlns=...><exceptionCode>...`` or its JSON twin."""
    if as_json:
        body = json.dumps({"exceptionCode": code, "exceptionMessage": message}).encode()
        return Response(status, body, JSON_TYPE, dict(headers or {}))
    inner = _xml_fields({"exceptionCode": code, "exceptionMessage": message})
    return Response(status, _xml_document("error", inner), XML_TYPE, dict(headers or {}))


def wants_json(req: Request) -> bool:
    """Whether the request itself is JSON (its ``Content-Type``, else its ``Accept``)."""
    content_type = (req.headers.get("Content-Type") or req.headers.get("Accept") or "").lower()
    return "json" in content_type


def _xml_datetime(value: str) -> str:
    return value.replace("+0000", "Z")


@dataclass(slots=True)
class _Batch:
    id: str
    job_id: str
    query: str
    created_date: str
    cursor: QueryCursor | None = None
    failure: str | None = None  # stateMessage of a Failed batch
    not_processed: bool = False  # the parent batch of a PK-chunked job
    files: dict[str, tuple[int, int]] = field(default_factory=dict)  # result id -> rows
    created: float = field(default_factory=time.monotonic)

    def state(self, delay: float) -> str:
        if self.failure is not None:
            return "Failed"
        if self.not_processed:
            return "NotProcessed"
        return "Completed" if completed(self.created, delay) else "InProgress"

    def info(self, state: str) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "jobId": self.job_id, "state": state}
        if self.failure is not None:
            data["stateMessage"] = self.failure
        elif self.not_processed:
            data["stateMessage"] = "Batch will not be processed"
        done = state == "Completed" and self.cursor is not None
        data.update(
            createdDate=self.created_date,
            systemModstamp=self.created_date,
            numberRecordsProcessed=self.cursor.total if done and self.cursor else 0,
            numberRecordsFailed=0,
            totalProcessingTime=0,
            apiActiveProcessingTime=0,
            apexProcessingTime=0,
        )
        return data


@dataclass(slots=True)
class _Job:
    id: str
    operation: str
    sobject: str
    content_type: str
    concurrency: str
    created_by: str
    created_date: str
    version: str
    chunk_size: int | None
    state: str = "Open"
    modstamp: str = ""
    batches: list[_Batch] = field(default_factory=list)

    def info(self, delay: float) -> dict[str, Any]:
        states = [b.state(delay) for b in self.batches]
        processed = sum(
            b.cursor.total
            for b, s in zip(self.batches, states, strict=True)
            if s == "Completed" and b.cursor is not None
        )
        values: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.sobject,
            "createdById": self.created_by,
            "createdDate": self.created_date,
            "systemModstamp": self.modstamp or self.created_date,
            "state": self.state,
            "concurrencyMode": self.concurrency,
            "contentType": self.content_type,
            "numberBatchesQueued": 0,
            "numberBatchesInProgress": states.count("InProgress"),
            "numberBatchesCompleted": states.count("Completed"),
            "numberBatchesFailed": states.count("Failed"),
            "numberBatchesTotal": len(states),
            "numberRecordsProcessed": processed,
            "numberRetries": 0,
            "apiVersion": float(self.version),
            "numberRecordsFailed": 0,
            "totalProcessingTime": 0,
            "apiActiveProcessingTime": 0,
            "apexProcessingTime": 0,
        }
        return {key: values[key] for key in _JOB_KEYS}


def _parse_body(req: Request) -> dict[str, str]:
    """A jobInfo body, JSON or XML, as flat strings (``concurrencyMode`` 0/1 allowed)."""
    if wants_json(req):
        try:
            data = json.loads(req.body or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise AsyncError("InvalidJob", f"Unable to parse the JSON job: {exc}") from None
        if not isinstance(data, dict):
            raise AsyncError("InvalidJob", "The job must be a JSON object")
        return {str(k): str(v) for k, v in data.items() if v is not None}
    try:
        root = ET.fromstring(req.body or b"<jobInfo/>")  # noqa: S314 - loopback test server
    except ET.ParseError as exc:
        raise AsyncError("InvalidXML", f"Unable to parse the XML job: {exc}") from None
    return {child.tag.rpartition("}")[2]: (child.text or "").strip() for child in root}


def _chunk_size(req: Request) -> int | None:
    """``Sforce-Enable-PKChunking``: ``true``, ``chunkSize=N``, ``startRow=``, ``parent=``."""
    header = req.headers.get("Sforce-Enable-PKChunking")
    if header is None:
        return None
    size = DEFAULT_CHUNK_SIZE
    enabled = False
    for part in (p.strip() for p in header.split(";")):
        key, _, value = part.partition("=")
        key = key.strip().lower()
        if key == "true" and not value:
            enabled = True
        elif key == "false" and not value:
            return None
        elif key == "chunksize":
            if not value.strip().isdigit() or not 1 <= int(value) <= MAX_CHUNK_SIZE:
                raise AsyncError(
                    "InvalidJob",
                    f"Invalid chunkSize {value.strip()!r} in Sforce-Enable-PKChunking: "
                    f"expected 1 to {MAX_CHUNK_SIZE}",
                )
            size, enabled = int(value), True
        elif key in ("startrow", "parent") and value:
            enabled = True
        elif part:
            raise AsyncError("InvalidJob", f"Invalid Sforce-Enable-PKChunking header: {header}")
    return size if enabled else None


class AsyncApi:
    """The org's Bulk API 1.0 query jobs, keyed by job id (thread-safe)."""

    def __init__(self, server: DevOrgServer) -> None:
        self.server = server
        self._jobs: dict[str, _Job] = {}
        self._job_ids = IdSequence("750")
        self._batch_ids = IdSequence("751")
        self._result_ids = IdSequence("752", long=False)
        self._lock = threading.Lock()
        self.batches_created = 0  # the DailyBulkApiBatches usage /limits reports

    # --- routing ---------------------------------------------------------------------------

    def handle(self, req: Request, parts: list[str]) -> Response:
        """``parts`` is the path after ``/services/async/{version}/``; errors in the async shape."""
        job: _Job | None = None
        try:
            if parts[:1] != ["job"]:
                raise AsyncError("InvalidUrl", f"Unknown resource: {'/'.join(parts)}", 404)
            if len(parts) == 1:
                if req.method != "POST":
                    raise AsyncError("InvalidUrl", f"HTTP method {req.method} not allowed", 405)
                return self._create(req)
            job = self._job(parts[1])
            return self._job_route(req, job, parts[2:])
        except AsyncError as exc:
            as_json = wants_json(req) or (job is not None and job.content_type == "JSON")
            return async_error(exc.code, exc.message, as_json=as_json, status=exc.status)

    def _job_route(self, req: Request, job: _Job, rest: list[str]) -> Response:
        if not rest:
            if req.method == "GET":
                return self._job_reply(req, job, 200)
            if req.method == "POST":
                return self._change_state(req, job)
        elif rest[0] == "batch":
            if len(rest) == 1 and req.method == "POST":
                return self._add_batch(req, job)
            if len(rest) == 1 and req.method == "GET":
                return self._batch_list(job)
            if req.method == "GET":
                batch = self._batch(job, rest[1])
                return self._batch_route(job, batch, rest[2:])
        raise AsyncError("InvalidUrl", f"Unknown resource or method: {req.method} {req.path}", 404)

    def _batch_route(self, job: _Job, batch: _Batch, rest: list[str]) -> Response:
        if not rest:
            info = batch.info(batch.state(self.server.bulk_delay))
            return self._reply(job.content_type == "JSON", "batchInfo", info, 200)
        if rest == ["request"]:
            return Response(200, batch.query.encode(), "text/plain;charset=UTF-8")
        if rest[0] == "result":
            if batch.state(self.server.bulk_delay) != "Completed":
                raise AsyncError("InvalidBatch", f"Batch {batch.id} not completed")
            if len(rest) == 1:
                return self._result_list(job, batch)
            if len(rest) == 2 and rest[1] in batch.files:
                return self._result(job, batch, rest[1])
            raise AsyncError("InvalidBatch", f"Invalid result id: {'/'.join(rest[1:])}")
        raise AsyncError("InvalidUrl", f"Unknown batch resource: {'/'.join(rest)}", 404)

    # --- jobs ------------------------------------------------------------------------------

    def _job(self, job_id: str) -> _Job:
        with self._lock:
            job = self._jobs.get(job_id) or next(
                (j for j in self._jobs.values() if j.id[:15] == job_id), None
            )
        if job is None:
            raise AsyncError("InvalidJob", f"Invalid job id: {job_id}")
        return job

    def _create(self, req: Request) -> Response:
        body = _parse_body(req)
        operation = body.get("operation", "")
        if operation in _INGEST:
            raise AsyncError(
                "FeatureNotEnabled",
                f"The dev org serves Bulk API query jobs only, not {operation}: "
                "write through sObject Collections",
            )
        if operation not in ("query", "queryAll"):
            raise AsyncError("InvalidJob", f"Invalid operation: {operation or '(none)'}")
        name = body.get("object", "")
        obj = next(
            (o for n, o in self.server.org.objects.items() if n.lower() == name.lower()), None
        )
        if obj is None:
            raise AsyncError("InvalidJob", f"Unable to find object: {name}")
        if not obj.bulk_supported:
            raise AsyncError("InvalidJob", f"Entity '{obj.name}' is not supported by the Bulk API.")
        content_type = body.get("contentType", "CSV").upper()
        if content_type not in CONTENT_TYPES:
            raise AsyncError("InvalidJob", f"Invalid contentType for a query job: {content_type}")
        mode = body.get("concurrencyMode", "Parallel")
        concurrency = {"0": "Parallel", "1": "Serial"}.get(mode, mode)
        if concurrency not in ("Parallel", "Serial"):
            raise AsyncError("InvalidJob", f"Invalid concurrencyMode: {mode}")
        job = _Job(
            id=self._job_ids.new(),
            operation=operation,
            sobject=obj.name,
            content_type=content_type,
            concurrency=concurrency,
            created_by=req.user_id,
            created_date=format_datetime(self.server.org.now()),
            version=req.version,
            chunk_size=_chunk_size(req),
        )
        with self._lock:
            self._jobs[job.id] = job
        return self._job_reply(req, job, 201)

    def _job_reply(self, req: Request, job: _Job, status: int) -> Response:
        has_type = bool(req.headers.get("Content-Type"))
        as_json = wants_json(req) if has_type else job.content_type == "JSON"
        return self._reply(as_json, "jobInfo", job.info(self.server.bulk_delay), status)

    def _change_state(self, req: Request, job: _Job) -> Response:
        state = _parse_body(req).get("state", "")
        if state not in ("Closed", "Aborted"):
            raise AsyncError("InvalidJobState", f"Invalid state for a job: {state or '(none)'}")
        if job.state != "Open":
            raise AsyncError("InvalidJobState", f"Job {job.id} is already {job.state}")
        job.state = state
        job.modstamp = format_datetime(self.server.org.now())
        return self._job_reply(req, job, 200)

    # --- batches ---------------------------------------------------------------------------

    def _batch(self, job: _Job, batch_id: str) -> _Batch:
        found = next((b for b in job.batches if batch_id in (b.id, b.id[:15])), None)
        if found is None:
            raise AsyncError("InvalidBatch", f"Invalid batch id: {batch_id}")
        return found

    def _add_batch(self, req: Request, job: _Job) -> Response:
        if job.state != "Open":
            raise AsyncError("InvalidJobState", f"Job {job.id} is not open: {job.state}")
        sent = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        expected = CONTENT_TYPES[job.content_type]
        if sent in CONTENT_TYPES.values() and sent != expected:
            raise AsyncError(
                "InvalidBatch",
                f"Content-Type {sent} does not match the job's contentType {job.content_type} "
                f"({expected})",
            )
        soql = req.body.decode("utf-8", "replace").strip()
        with self._lock:
            self.batches_created += 1
        batch = self._new_batch(job, soql, (None, None))
        chunks: list[_Batch] = []
        if batch.failure is None and job.chunk_size is not None:
            # PK chunking: this batch is only the request; one batch per Id range runs it.
            batch.not_processed, batch.cursor, batch.files = True, None, {}
            bounds: list[str | None] = [*self.server.org.id_boundaries(job.sobject, job.chunk_size)]
            bounds = bounds or [None]
            for low, high in zip(bounds, [*bounds[1:], None], strict=True):
                chunks.append(self._new_batch(job, soql, (low, high)))
        job.batches += [batch, *chunks]
        info = batch.info("Queued")
        return self._reply(job.content_type == "JSON", "batchInfo", info, 201)

    def _new_batch(self, job: _Job, soql: str, id_range: tuple[str | None, str | None]) -> _Batch:
        batch = _Batch(self._batch_ids.new(), job.id, soql, format_datetime(self.server.org.now()))
        org = self.server.org
        try:
            _, obj = org.parse(soql)
            if obj.name != job.sobject:
                raise SoqlError(
                    "INVALID_TYPE", f"The query's object {obj.name} is not the job's {job.sobject}"
                )
            cursor = org.open_query(
                soql, job.operation == "queryAll", keep=False, bulk=True, id_range=id_range
            )
        except SoqlError as exc:
            batch.failure = f"InvalidBatch : Failed to process query: {exc.code}: {exc.message}"
            return batch
        batch.cursor = cursor
        rows = self.server.bulk_result_rows
        files = max(1, math.ceil(cursor.total / rows))
        for i in range(files):
            batch.files[self._result_ids.new()] = (i * rows, min(cursor.total, (i + 1) * rows))
        return batch

    def _batch_list(self, job: _Job) -> Response:
        delay = self.server.bulk_delay
        infos = [b.info(b.state(delay)) for b in job.batches]
        if job.content_type == "JSON":
            return Response(200, json.dumps({"batchInfo": infos}).encode(), JSON_TYPE)
        inner = "".join(f"<batchInfo>{_xml_fields(i)}</batchInfo>" for i in infos)
        return Response(200, _xml_document("batchInfoList", inner), XML_TYPE)

    def _reply(self, as_json: bool, tag: str, info: dict[str, Any], status: int) -> Response:
        if as_json:
            return Response(status, json.dumps(info).encode(), JSON_TYPE)
        xml_info = {
            k: _xml_datetime(v) if k in ("createdDate", "systemModstamp") else v
            for k, v in info.items()
        }
        return Response(status, _xml_document(tag, _xml_fields(xml_info)), XML_TYPE)

    # --- results ---------------------------------------------------------------------------

    def _result_list(self, job: _Job, batch: _Batch) -> Response:
        if job.content_type == "JSON":
            return Response(200, json.dumps(list(batch.files)).encode(), JSON_TYPE)
        inner = "".join(f"<result>{r}</result>" for r in batch.files)
        return Response(200, _xml_document("result-list", inner), XML_TYPE)

    def _result(self, job: _Job, batch: _Batch, result_id: str) -> Response:
        cursor = batch.cursor
        assert cursor is not None
        start, stop = batch.files[result_id]
        org = self.server.org
        if job.content_type == "CSV":
            if cursor.total == 0:
                return Response(200, b"Records not found for this query", CSV_RESULT_TYPE)
            return Response(200, csv_stream(org, cursor, start, stop), CSV_RESULT_TYPE)
        blocks = record_blocks(org, cursor, start, stop, job.version)
        assert cursor.projection is not None  # Bulk refuses COUNT()
        paths = [f.names for f in cursor.projection.fields if f.fdef.type == "datetime"]
        if job.content_type == "JSON":
            return Response(200, _json_records(blocks, paths), JSON_TYPE)
        return Response(200, _xml_records(blocks, paths), XML_TYPE)


def _convert(record: dict[str, Any], path: tuple[str, ...], change: Callable[[str], Any]) -> None:
    holder: Any = record
    for name in path[:-1]:
        holder = holder.get(name) if isinstance(holder, dict) else None
    if isinstance(holder, dict) and isinstance(holder.get(path[-1]), str):
        holder[path[-1]] = change(holder[path[-1]])


def _epoch_ms(value: str) -> int:
    return int(parse_datetime(value).timestamp() * 1000)


def _json_records(
    blocks: Iterator[list[dict[str, Any]]], paths: list[tuple[str, ...]]
) -> Iterator[bytes]:
    """A JSON array streamed a block at a time; datetimes as epoch milliseconds."""
    yield b"["
    first = True
    for block in blocks:
        for record in block:
            for path in paths:
                _convert(record, path, _epoch_ms)
        if block:
            text = ",".join(json.dumps(r, ensure_ascii=False) for r in block)
            yield (text if first else "," + text).encode("utf-8")
            first = False
    yield b"]"


def _xml_record(record: dict[str, Any], tag: str) -> str:
    attributes = record.get("attributes") or {}
    record_id = str(attributes.get("url", "")).rpartition("/")[2]
    parts = [f'<{tag} xsi:type="sObject"><type>{attributes.get("type", "")}</type>']
    parts.append(f"<Id>{record_id}</Id>" if record_id else '<Id xsi:nil="true"/>')
    for key, value in record.items():
        if key == "attributes":
            continue
        if isinstance(value, dict):
            parts.append(_xml_record(value, key))
        elif value is None:
            parts.append(f'<{key} xsi:nil="true"/>')
        elif isinstance(value, bool):
            parts.append(f"<{key}>{str(value).lower()}</{key}>")
        else:
            parts.append(f"<{key}>{escape(str(value))}</{key}>")
    parts.append(f"</{tag}>")
    return "".join(parts)


def _xml_records(
    blocks: Iterator[list[dict[str, Any]]], paths: list[tuple[str, ...]]
) -> Iterator[bytes]:
    """``<queryResult>`` with one ``<records xsi:type="sObject">`` per row."""
    yield (
        f'<?xml version="1.0" encoding="UTF-8"?><queryResult xmlns="{NAMESPACE}" '
        f'xmlns:xsi="{_XSI}">'
    ).encode()
    for block in blocks:
        for record in block:
            for path in paths:
                _convert(record, path, _xml_datetime)
        yield "".join(_xml_record(r, "records") for r in block).encode("utf-8")
    yield b"</queryResult>"
