"""The only code that talks HTTP to Salesforce: auth, retries, budget, REST, Bulk 2.0.

Names are loaded on first use (PEP 562): the commands that never talk to
Salesforce should not pay for the HTTP stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sfsync.salesforce._auth import SalesforceSession, login
    from sfsync.salesforce._budget import ApiBudget, parse_limit_info
    from sfsync.salesforce._bulk import BulkJobFailed
    from sfsync.salesforce._client import SalesforceClient, SubResponse
    from sfsync.salesforce._errors import RecordErrorKind, classify_record_error
    from sfsync.salesforce._retry import RetryPolicy

_EXPORTS = {
    "ApiBudget": "sfsync.salesforce._budget",
    "BulkJobFailed": "sfsync.salesforce._bulk",
    "RecordErrorKind": "sfsync.salesforce._errors",
    "RetryPolicy": "sfsync.salesforce._retry",
    "SalesforceClient": "sfsync.salesforce._client",
    "SalesforceSession": "sfsync.salesforce._auth",
    "SubResponse": "sfsync.salesforce._client",
    "classify_record_error": "sfsync.salesforce._errors",
    "login": "sfsync.salesforce._auth",
    "parse_limit_info": "sfsync.salesforce._budget",
}

__all__ = [
    "ApiBudget",
    "BulkJobFailed",
    "RecordErrorKind",
    "RetryPolicy",
    "SalesforceClient",
    "SalesforceSession",
    "SubResponse",
    "classify_record_error",
    "login",
    "parse_limit_info",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
