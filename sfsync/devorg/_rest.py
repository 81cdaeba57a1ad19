"""The REST API routes under ``/services/data/vXX.X/`` (docs/salesforce-api.md).

Each route turns a :class:`Request` into a :class:`Response` by calling the
org; Salesforce's status codes, error lists and headers are decided here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from email.message import Message
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from sfsync.devorg._describe import describe_global, describe_object, object_summary
from sfsync.devorg._http import ApiFailure, Request, Response, json_response
from sfsync.devorg._org import QueryCursor, WriteError
from sfsync.devorg.soql import SoqlError
from sfsync.formats import parse_datetime, soql_quote

if TYPE_CHECKING:
    from sfsync.devorg._server import DevOrgServer

__all__ = ["route"]

MAX_BATCH = 2000
MIN_BATCH = 200
MAX_COLLECTION = 200
MAX_COMPOSITE = 25
_CURSOR_RE = re.compile(r"^(01g[A-Za-z0-9]{15})-(\d+)$")
_REF_RE = re.compile(r"@\{([A-Za-z0-9_]+)\.([^}]+)\}")


def _not_found() -> ApiFailure:
    return ApiFailure(404, "NOT_FOUND", "The requested resource does not exist")


def _method_not_allowed(req: Request) -> ApiFailure:
    return ApiFailure(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{req.method}' not allowed.")


def _write_failure(exc: WriteError) -> ApiFailure:
    return ApiFailure(exc.http_status, exc.code, exc.message, exc.fields)


def route(server: DevOrgServer, req: Request, parts: list[str]) -> Response:
    """Dispatch the path after ``/services/data/vXX.X/`` (already split, no empty parts)."""
    if not parts:
        if req.method != "GET":
            raise _method_not_allowed(req)
        base = f"/services/data/v{req.version}"
        names = ["sobjects", "query", "queryAll", "limits", "composite", "jobs"]
        return json_response(200, {n: f"{base}/{n}" for n in names})
    head = parts[0]
    if head == "limits":
        return _limits(server, req)
    if head == "sobjects":
        return _sobjects(server, req, parts[1:])
    if head in ("query", "queryAll"):
        return _query(server, req, parts[1:], include_deleted=head == "queryAll")
    if head == "composite":
        if len(parts) >= 2 and parts[1] == "sobjects":
            return _collections(server, req, parts[2:])
        if len(parts) == 1:
            return _composite(server, req)
        raise _not_found()
    if head == "jobs" and len(parts) >= 2 and parts[1] == "query":
        return server.bulk.handle(req, parts[2:])
    raise _not_found()


# --- limits -----------------------------------------------------------------------------------


# The standard entries of ``/limits`` that the dev org does not meter: (name, Max), each
# answered with Remaining = Max. Names as Salesforce's Limits resource lists them.
_STATIC_LIMITS = (
    ("ActiveScratchOrgs", 3),
    ("AnalyticsExternalDataSizeMB", 40960),
    ("ConcurrentAsyncGetReportInstances", 200),
    ("ConcurrentEinsteinDataInsightsStoryCreation", 5),
    ("ConcurrentEinsteinDiscoveryStoryCreation", 2),
    ("ConcurrentSyncReportRuns", 20),
    ("DailyAnalyticsDataflowJobExecutions", 60),
    ("DailyAnalyticsUploadedFilesSizeMB", 51200),
    ("DailyAsyncApexExecutions", 250000),
    ("DailyAsyncApexTests", 500),
    ("DailyDeliveredPlatformEvents", 10000),
    ("DailyDurableGenericStreamingApiEvents", 10000),
    ("DailyDurableStreamingApiEvents", 10000),
    ("DailyEinsteinDataInsightsStoryCreation", 1000),
    ("DailyEinsteinDiscoveryPredictAPICalls", 50000),
    ("DailyEinsteinDiscoveryPredictionsByCDC", 500000),
    ("DailyEinsteinDiscoveryStoryCreation", 100),
    ("DailyFunctionsApiCallLimit", 235000),
    ("DailyGenericStreamingApiEvents", 10000),
    ("DailyScratchOrgs", 6),
    ("DailyStandardVolumePlatformEvents", 10000),
    ("DailyStreamingApiEvents", 10000),
    ("DailyWorkflowEmails", 2000),
    ("DataStorageMB", 1024),
    ("DurableStreamingApiConcurrentClients", 20),
    ("FileStorageMB", 20480),
    ("HourlyAsyncReportRuns", 1200),
    ("HourlyDashboardRefreshes", 200),
    ("HourlyDashboardResults", 5000),
    ("HourlyDashboardStatuses", 999999999),
    ("HourlyLongTermIdMapping", 100000),
    ("HourlyManagedContentPublicRequests", 50000),
    ("HourlyODataCallout", 10000),
    ("HourlyPublishedPlatformEvents", 50000),
    ("HourlyPublishedStandardVolumePlatformEvents", 1000),
    ("HourlyShortTermIdMapping", 100000),
    ("HourlySyncReportRuns", 500),
    ("HourlyTimeBasedWorkflow", 50),
    ("MassEmail", 10),
    ("MonthlyEinsteinDiscoveryStoryCreation", 500),
    ("MonthlyPlatformEventsUsageEntitlement", 0),
    ("Package2VersionCreates", 6),
    ("Package2VersionCreatesWithoutValidation", 500),
    ("PrivateConnectOutboundCalloutHourlyLimitMB", 0),
    ("PublishCallbackUsageInApex", 5000000),
    ("SingleEmail", 15),
    ("StreamingApiConcurrentClients", 20),
)
DAILY_BULK_BATCHES = 15000
DAILY_BULK_V2_QUERY_JOBS = 10000
DAILY_BULK_V2_QUERY_STORAGE_MB = 976562


def _limits(server: DevOrgServer, req: Request) -> Response:
    """``GET /limits``: the API allowance and Bulk usage as counted, the other entries full."""
    if req.method != "GET":
        raise _method_not_allowed(req)
    used, limit = server.api_usage

    def entry(maximum: int, spent: int = 0) -> dict[str, int]:
        return {"Max": maximum, "Remaining": max(0, maximum - spent)}

    limits: dict[str, dict[str, Any]] = {name: entry(maximum) for name, maximum in _STATIC_LIMITS}
    limits["DailyApiRequests"] = entry(limit, used)
    # DailyBulkApiRequests until API 48.0, DailyBulkApiBatches from 49.0 (the same allowance).
    bulk_name = "DailyBulkApiBatches" if float(req.version) >= 49 else "DailyBulkApiRequests"
    limits[bulk_name] = entry(DAILY_BULK_BATCHES, server.async_api.batches_created)
    limits["DailyBulkV2QueryJobs"] = entry(DAILY_BULK_V2_QUERY_JOBS, server.bulk.jobs_created)
    limits["DailyBulkV2QueryFileStorageMB"] = entry(DAILY_BULK_V2_QUERY_STORAGE_MB)
    limits["PermissionSets"] = {**entry(1500), "CreateCustom": entry(1000)}
    return json_response(200, dict(sorted(limits.items())))


# --- sobjects ---------------------------------------------------------------------------------


def _sobject(server: DevOrgServer, name: str) -> Any:
    objects = server.org.objects
    obj = objects.get(name) or next(
        (o for n, o in objects.items() if n.lower() == name.lower()), None
    )
    if obj is None:
        raise _not_found()
    return obj


def _body_dict(req: Request) -> dict[str, Any]:
    body = req.json()
    if not isinstance(body, dict):
        raise ApiFailure(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
    return body


def _parse_when(req: Request, name: str) -> datetime:
    text = req.param(name)
    if not text:
        raise ApiFailure(400, "MISSING_ARGUMENT", f"{name} is required")
    try:
        if "T" not in text or not re.search(r"(Z|[+-]\d{2}:?\d{2})$", text.strip()):
            raise ValueError
        return parse_datetime(text)
    except ValueError:
        raise ApiFailure(
            400,
            "MALFORMED_QUERY",
            f"{name}: '{text}' is not a valid ISO-8601 dateTime with a time zone",
        ) from None


def _sobjects(server: DevOrgServer, req: Request, parts: list[str]) -> Response:
    org = server.org
    version = req.version
    if not parts:
        if req.method != "GET":
            raise _method_not_allowed(req)
        return json_response(200, describe_global(org, version, server.url))
    obj = _sobject(server, parts[0])
    rest = parts[1:]
    if req.method in ("POST", "PATCH", "DELETE") and rest[:1] != ["describe"]:
        locked = _locked(server, rest[0] if rest else None)
        if locked:
            raise _write_failure(locked)
    if not rest:
        if req.method == "GET":
            return json_response(
                200,
                {"objectDescribe": object_summary(obj, version, server.url), "recentItems": []},
            )
        if req.method == "POST":
            try:
                new_id = org.api_create(obj.name, _body_dict(req), req.user_id)
            except WriteError as exc:
                raise _write_failure(exc) from None
            return json_response(
                201,
                {"id": new_id, "success": True, "errors": []},
                {"Location": f"/services/data/v{version}/sobjects/{obj.name}/{new_id}"},
            )
        raise _method_not_allowed(req)
    if rest == ["describe"]:
        if req.method != "GET":
            raise _method_not_allowed(req)
        return json_response(200, describe_object(org, obj, version, server.url))
    if rest[0] in ("deleted", "updated") and len(rest) == 1:
        if req.method != "GET":
            raise _method_not_allowed(req)
        start, end = _parse_when(req, "start"), _parse_when(req, "end")
        if (end - start).total_seconds() < 60:
            raise ApiFailure(
                400,
                "INVALID_REPLICATION_DATE",
                "end must be at least one minute after start",
            )
        try:
            if rest[0] == "deleted":
                records, earliest, latest = org.deleted_between(obj.name, start, end)
                if len(records) > 600_000:
                    raise ApiFailure(400, "EXCEEDED_ID_LIMIT", "record limit reached (600000)")
                return json_response(
                    200,
                    {
                        "deletedRecords": records,
                        "earliestDateAvailable": earliest,
                        "latestDateCovered": latest,
                    },
                )
            ids, latest = org.updated_between(obj.name, start, end)
            return json_response(200, {"ids": ids, "latestDateCovered": latest})
        except WriteError as exc:
            raise _write_failure(exc) from None
    if len(rest) == 1:
        record_id = rest[0]
        try:
            if req.method == "GET":
                fields_param = req.param("fields")
                fields = fields_param.split(",") if fields_param else None
                return json_response(200, org.get_record(obj.name, record_id, fields, version))
            if req.method == "PATCH":
                org.api_update(obj.name, record_id, _body_dict(req), req.user_id)
                return Response(204, None, None)
            if req.method == "DELETE":
                org.api_delete(obj.name, record_id, req.user_id)
                return Response(204, None, None)
        except WriteError as exc:
            raise _write_failure(exc) from None
        raise _method_not_allowed(req)
    if len(rest) == 2:
        ext_field, value = rest
        if req.method == "PATCH":
            try:
                record_id, created = org.api_upsert(
                    obj.name, ext_field, value, _body_dict(req), req.user_id
                )
            except WriteError as exc:
                raise _write_failure(exc) from None
            payload = {"id": record_id, "success": True, "errors": [], "created": created}
            headers = {"Location": f"/services/data/v{version}/sobjects/{obj.name}/{record_id}"}
            return json_response(201 if created else 200, payload, headers)
        if req.method == "GET":
            fdef = obj.fields.get(obj.canonical(ext_field) or "")
            if fdef is None or not fdef.external_id:
                raise _not_found()
            soql = f"SELECT Id FROM {obj.name} WHERE {fdef.name} = {soql_quote(value)}"  # noqa: S608
            rows = org.query(soql, include_deleted=False)
            if not rows:
                raise _not_found()
            return json_response(200, org.get_record(obj.name, rows[0]["Id"], None, version))
        raise _method_not_allowed(req)
    raise _not_found()


# --- query ------------------------------------------------------------------------------------


def _batch_size(req: Request) -> int:
    options = req.headers.get("Sforce-Query-Options", "")
    match = re.search(r"batchSize\s*=\s*(\d+)", options)
    if not match:
        return MAX_BATCH
    return max(MIN_BATCH, min(MAX_BATCH, int(match.group(1))))


def _page(req: Request, cursor: QueryCursor, start: int, server: DevOrgServer) -> Response:
    if cursor.count_only:
        return json_response(200, {"totalSize": cursor.total, "done": True, "records": []})
    stop = min(cursor.total, start + _batch_size(req))
    records = server.org.fetch_records(cursor, start, stop, req.version)
    payload: dict[str, Any] = {"totalSize": cursor.total, "done": stop >= cursor.total}
    if stop < cursor.total:
        payload["nextRecordsUrl"] = f"/services/data/v{req.version}/query/{cursor.id}-{stop}"
    else:
        server.org.drop_cursor(cursor.id)
    payload["records"] = records
    return json_response(200, payload)


def _query(
    server: DevOrgServer, req: Request, parts: list[str], *, include_deleted: bool
) -> Response:
    if req.method != "GET":
        raise _method_not_allowed(req)
    if parts:
        match = _CURSOR_RE.match(parts[0]) if len(parts) == 1 else None
        cursor = server.org.cursor(match.group(1)) if match else None
        if match is None or cursor is None:
            raise ApiFailure(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return _page(req, cursor, int(match.group(2)), server)
    soql = req.param("q")
    if soql is None:
        raise ApiFailure(400, "MALFORMED_QUERY", "A query string has to be specified")
    try:
        cursor = server.org.open_query(soql, include_deleted)
    except SoqlError as exc:
        raise ApiFailure(400, exc.code, exc.message) from None
    return _page(req, cursor, 0, server)


# --- sObject Collections ------------------------------------------------------------------------


def _result(value: Any, *, upsert: bool = False) -> dict[str, Any]:
    if isinstance(value, WriteError):
        return {"success": False, "errors": [value.as_json("statusCode")]}
    if upsert:
        record_id, created = value
        return {"id": record_id, "success": True, "errors": [], "created": created}
    return {"id": value, "success": True, "errors": []}


def _locked(server: DevOrgServer, record_id: str | None) -> WriteError | None:
    if server.faults.draw_lock():
        target = record_id or "new record"
        return WriteError(
            "UNABLE_TO_LOCK_ROW",
            f"unable to obtain exclusive access to this record or 1 records: {target}",
        )
    return None


def _collections(server: DevOrgServer, req: Request, parts: list[str]) -> Response:
    org = server.org
    if req.method == "DELETE" and not parts:
        ids_text = req.param("ids") or ""
        ids = [i for i in ids_text.split(",") if i]
        all_or_none = (req.param("allOrNone") or "false").lower() == "true"
        if len(ids) > MAX_COLLECTION:
            raise ApiFailure(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )

        def deleter(record_id: str) -> Callable[[], str]:
            def run() -> str:
                locked = _locked(server, record_id)
                if locked:
                    raise locked
                sobject = _object_for_id(server, record_id)
                org.api_delete(sobject, record_id, req.user_id)
                return record_id

            return run

        deleted = org.batch([deleter(i) for i in ids], all_or_none)
        out = []
        for record_id, value in zip(ids, deleted, strict=True):
            out.append({"id": record_id, **{k: v for k, v in _result(value).items() if k != "id"}})
        return json_response(200, out)
    body = _body_dict(req)
    records = body.get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ApiFailure(400, "JSON_PARSER_ERROR", "records must be an array of objects")
    if len(records) > MAX_COLLECTION:
        raise ApiFailure(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        )
    all_or_none = bool(body.get("allOrNone", False))
    if req.method == "PATCH" and len(parts) == 2:
        obj = _sobject(server, parts[0])
        ext_field = parts[1]

        def upserter(record: dict[str, Any]) -> Callable[[], tuple[str, bool]]:
            def run() -> tuple[str, bool]:
                value = next((v for k, v in record.items() if k.lower() == ext_field.lower()), None)
                if value is None:
                    raise WriteError("MISSING_ARGUMENT", f"{ext_field} not specified", [ext_field])
                locked = _locked(server, str(value))
                if locked:
                    raise locked
                fields = {k: v for k, v in record.items() if k != "attributes"}
                return org.api_upsert(obj.name, ext_field, str(value), fields, req.user_id)

            return run

        upserted = org.batch([upserter(r) for r in records], all_or_none)
        return json_response(200, [_upsert_result(v) for v in upserted])
    if parts:
        raise _not_found()
    if req.method == "POST":

        def creator(record: dict[str, Any]) -> Callable[[], str]:
            def run() -> str:
                sobject = _record_type(record)
                if "id" in record or "Id" in record:
                    raise WriteError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
                locked = _locked(server, None)
                if locked:
                    raise locked
                fields = {k: v for k, v in record.items() if k != "attributes"}
                return org.api_create(sobject, fields, req.user_id)

            return run

        created = org.batch([creator(r) for r in records], all_or_none)
        return json_response(200, [_result(v) for v in created])
    if req.method == "PATCH":

        def updater(record: dict[str, Any]) -> Callable[[], str]:
            def run() -> str:
                sobject = _record_type(record)
                record_id = record.get("id") or record.get("Id")
                if not isinstance(record_id, str):
                    raise WriteError("MISSING_ARGUMENT", "Id not specified in an update call")
                locked = _locked(server, record_id)
                if locked:
                    raise locked
                fields = {k: v for k, v in record.items() if k not in ("attributes", "id", "Id")}
                org.api_update(sobject, record_id, fields, req.user_id)
                return org._canonical_id(record_id)

            return run

        updated = org.batch([updater(r) for r in records], all_or_none)
        out = []
        for record, value in zip(records, updated, strict=True):
            item = _result(value)
            if isinstance(value, WriteError):
                rid = record.get("id") or record.get("Id")
                if isinstance(rid, str):
                    item = {"id": rid, **item}
            out.append(item)
        return json_response(200, out)
    raise _method_not_allowed(req)


def _upsert_result(value: Any) -> dict[str, Any]:
    return _result(value, upsert=not isinstance(value, WriteError))


def _record_type(record: dict[str, Any]) -> str:
    attributes = record.get("attributes")
    sobject = attributes.get("type") if isinstance(attributes, dict) else None
    if not isinstance(sobject, str):
        raise WriteError("INVALID_TYPE", "Must send a concrete entity type.")
    return sobject


def _object_for_id(server: DevOrgServer, record_id: str) -> str:
    prefix = record_id[:3]
    for name, obj in server.org.objects.items():
        if obj.key_prefix == prefix:
            return name
    raise WriteError("MALFORMED_ID", f"malformed id {record_id}")


# --- composite ----------------------------------------------------------------------------------


def _lookup(results: dict[str, Any], ref: str, path: str) -> Any:
    value = results.get(ref)
    for token in re.findall(r"[^.\[\]]+", path):
        if isinstance(value, list):
            value = value[int(token)] if token.isdigit() and int(token) < len(value) else None
        elif isinstance(value, dict):
            value = value.get(token)
        else:
            return None
    return value


def _substitute(value: Any, results: dict[str, Any], missing: list[str]) -> Any:
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            found = _lookup(results, match.group(1), match.group(2))
            if found is None:
                missing.append(match.group(0))
                return ""
            return str(found)

        return _REF_RE.sub(repl, value)
    if isinstance(value, list):
        return [_substitute(v, results, missing) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, results, missing) for k, v in value.items()}
    return value


def _composite(server: DevOrgServer, req: Request) -> Response:
    if req.method != "POST":
        raise _method_not_allowed(req)
    body = _body_dict(req)
    subrequests = body.get("compositeRequest")
    if not isinstance(subrequests, list) or not subrequests:
        raise ApiFailure(400, "JSON_PARSER_ERROR", "compositeRequest must be a non-empty array")
    if len(subrequests) > MAX_COMPOSITE:
        raise ApiFailure(
            400, "LIMIT_EXCEEDED", f"A composite request can have at most {MAX_COMPOSITE} parts"
        )
    all_or_none = bool(body.get("allOrNone", False))
    results: dict[str, Any] = {}
    responses: list[dict[str, Any]] = []
    halted = False
    with server.org.transaction() as rollback:
        for sub in subrequests:
            ref = str(sub.get("referenceId", ""))
            if halted:
                responses.append(
                    _halted(
                        ref,
                        "The transaction was rolled back since another "
                        "operation in the same transaction failed.",
                    )
                )
                continue
            headers = _sub_headers(req, sub.get("httpHeaders"), ref)
            missing: list[str] = []
            url = _substitute(str(sub.get("url", "")), results, missing)
            sub_body = _substitute(sub.get("body"), results, missing)
            if missing:
                responses.append(
                    _halted(ref, f"Invalid reference specified. No value for {missing[0]} found.")
                )
                continue
            response = server.dispatch_subrequest(
                req, str(sub.get("method", "GET")), url, sub_body, headers=headers
            )
            payload = response.json()
            results[ref] = payload
            responses.append(
                {
                    "body": payload,
                    "httpHeaders": {k: v for k, v in response.headers.items() if k == "Location"},
                    "httpStatusCode": response.status,
                    "referenceId": ref,
                }
            )
            if response.status >= 400 and all_or_none:
                halted = True
        if halted:
            rollback()
            for item in responses:
                if item["httpStatusCode"] < 400:
                    item.update(
                        _halted(
                            item["referenceId"],
                            "The transaction was rolled back since another operation in the "
                            "same transaction failed.",
                        )
                    )
    return json_response(200, {"compositeResponse": responses})


# Subrequests inherit these from the composite request and may not set them.
_INHERITED_HEADERS = ("accept", "authorization", "content-type")


def _sub_headers(req: Request, extra: Any, ref: str) -> Message:
    """The composite request's headers with a subrequest's own ``httpHeaders`` on top."""
    if extra is None:
        return req.headers
    if not isinstance(extra, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in extra.items()
    ):
        raise ApiFailure(
            400, "JSON_PARSER_ERROR", f"httpHeaders of subrequest {ref!r} must map names to strings"
        )
    headers = Message()
    for name, value in req.headers.items():
        headers[name] = value
    for name, value in extra.items():
        if name.lower() in _INHERITED_HEADERS:
            raise ApiFailure(
                400,
                "INVALID_INPUT",
                f"Subrequest {ref!r} may not set the {name} header: it inherits it",
            )
        del headers[name]
        headers[name] = value
    return headers


def _halted(ref: str, message: str) -> dict[str, Any]:
    return {
        "body": [{"errorCode": "PROCESSING_HALTED", "message": message}],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": ref,
    }


def split_url(url: str) -> tuple[str, dict[str, list[str]], str]:
    """A subrequest URL as (path, query dict, raw query)."""
    parts = urlsplit(url)
    return parts.path, parse_qs(parts.query), parts.query


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")
