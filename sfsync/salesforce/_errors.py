"""The one mapping from Salesforce responses to sfsync's exceptions.

Both HTTP stacks (requests, under simple-salesforce, and httpx, for auth and
Bulk 2.0) hand their failures to :func:`classify_response` or
:func:`classify_transport`, so a ``503`` means the same thing on every path.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from sfsync.errors import (
    ApiError,
    BudgetExhausted,
    RetryableError,
    SalesforceUnreachable,
    SessionExpired,
    SfsyncError,
)

__all__ = [
    "RETRYABLE_CODES",
    "RETRYABLE_STATUS",
    "RecordErrorKind",
    "classify_record_error",
    "classify_response",
    "classify_transport",
    "error_code_of",
    "error_message_of",
]

RETRYABLE_STATUS = frozenset({420, 429, 500, 502, 503, 504})
THROTTLE_STATUS = frozenset({420, 429, 503})
# Error codes that say "try again later", in a whole response or for one record.
RETRYABLE_CODES = frozenset(
    {
        "UNABLE_TO_LOCK_ROW",
        "UNKNOWN_EXCEPTION",
        "SERVER_UNAVAILABLE",
        "REQUEST_RUNNING_TOO_LONG",
        "QUERY_TIMEOUT",
        "TIMEOUT",
        "CONCURRENT_REQUESTS_LIMIT_EXCEEDED",
    }
)
RecordErrorKind = Literal["transient", "reassign", "exists", "refused"]


def _first_error(body: Any) -> dict[str, Any]:
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return body[0]
    if isinstance(body, dict):
        return body
    return {}


def error_code_of(body: Any) -> str:
    """``errorCode`` (single-record/REST) or ``statusCode`` (collections) of a body."""
    first = _first_error(body)
    code = first.get("errorCode") or first.get("statusCode") or first.get("error") or ""
    return str(code)


def error_message_of(body: Any) -> str:
    first = _first_error(body)
    message = first.get("message") or first.get("error_description") or ""
    if not message and isinstance(body, str):
        message = body.strip()[:300]
    return str(message).strip()


def parse_body(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


class RetryableResponse(RetryableError):
    """A transient failure that came with a response (the server saw the request)."""

    def __init__(
        self, message: str, *, status: int | None, error_code: str, retry_after: float | None
    ) -> None:
        super().__init__(message, status=status, error_code=error_code)
        self.retry_after = retry_after


class TransportError(RetryableError):
    """No usable response: connection refused/reset, timeout, TLS failure.

    ``sent`` is False only when the request certainly never reached the server
    (the connection was refused), so a non-idempotent write may be retried.
    """

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


def classify_response(
    status: int, body: Any, *, what: str, headers: dict[str, str] | None = None
) -> SfsyncError:
    """The sfsync exception for an error response to ``what`` (e.g. "query Opportunity")."""
    code = error_code_of(body)
    message = error_message_of(body) or f"HTTP {status}"
    text = f"Salesforce refused {what}: {code + ': ' if code else ''}{message} (HTTP {status})"
    if status == 401 or code == "INVALID_SESSION_ID":
        return SessionExpired(text, status=status, error_code=code or "INVALID_SESSION_ID")
    retry_after = _retry_after(headers)
    # A throttle (420/429/503, whatever its errorCode says) is waited out. Only a refusal
    # of the daily allowance (403 REQUEST_LIMIT_EXCEEDED "TotalRequests...") ends the run.
    if status in THROTTLE_STATUS:
        return RetryableResponse(text, status=status, error_code=code, retry_after=retry_after)
    if code == "REQUEST_LIMIT_EXCEEDED":
        if "concurrent" in message.lower() or "longtxn" in message.lower():
            return RetryableResponse(text, status=status, error_code=code, retry_after=retry_after)
        return BudgetExhausted(
            f"the org's daily API limit is exhausted ({what}: {message}); the run stopped "
            "and kept what it had committed"
        )
    if status in RETRYABLE_STATUS or code in RETRYABLE_CODES:
        return RetryableResponse(text, status=status, error_code=code, retry_after=retry_after)
    if status == 406 and not body:
        return RetryableResponse(text, status=status, error_code=code, retry_after=None)
    return ApiError(text, status=status, error_code=code)


def _retry_after(headers: dict[str, str] | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    raw = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after")
    if not raw:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return float(raw)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def classify_record_error(code: str) -> RecordErrorKind:
    """What one record's error code (a collection result) calls for.

    ``transient``: a later attempt may succeed (a lock, a timeout); ``reassign``: the
    owner is inactive, the next owner may take it; ``exists``: a duplicate external id
    (the record is there); ``refused``: the org refused it (a validation rule, a
    missing field or permission) and will until someone changes something.
    """
    if code in RETRYABLE_CODES or "TIMEOUT" in code:
        return "transient"
    if code == "INACTIVE_OWNER_OR_USER":
        return "reassign"
    if code == "DUPLICATE_VALUE":
        return "exists"
    return "refused"


def classify_transport(exc: BaseException, *, what: str) -> SfsyncError:
    """A transport failure (requests or httpx): retryable, unless a certificate is refused."""
    import httpx
    import requests

    from sfsync.salesforce._transport import is_certificate_error

    if is_certificate_error(exc):
        return SalesforceUnreachable(
            f"{what} failed: the server's TLS certificate does not verify ({exc}). If the "
            "org is reached through a proxy with its own CA, set salesforce.ca_bundle"
        )

    refused = isinstance(
        exc, requests.exceptions.ConnectTimeout | httpx.ConnectError | httpx.ConnectTimeout
    ) or (
        isinstance(exc, requests.exceptions.ConnectionError) and "NewConnectionError" in repr(exc)
    )
    kind = type(exc).__name__
    return TransportError(f"{what} failed: {kind}: {exc}", sent=not refused)


def non_json(status: int, text: str, *, what: str) -> RetryableResponse:
    """A response that should be JSON but is not (proxies, truncated bodies)."""
    snippet = text.strip().replace("\n", " ")[:200]
    return RetryableResponse(
        f"Salesforce answered {what} with something that is not JSON (HTTP {status}): {snippet!r}",
        status=status,
        error_code="NOT_JSON",
        retry_after=None,
    )
