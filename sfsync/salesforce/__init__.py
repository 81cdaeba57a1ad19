"""The only code that talks HTTP to Salesforce: auth, retries, budget, REST, Bulk 2.0."""

from sfsync.salesforce._auth import SalesforceSession, login
from sfsync.salesforce._budget import ApiBudget, parse_limit_info
from sfsync.salesforce._bulk import BulkJobFailed
from sfsync.salesforce._client import RetryPolicy, SalesforceClient, SubResponse

__all__ = [
    "ApiBudget",
    "BulkJobFailed",
    "RetryPolicy",
    "SalesforceClient",
    "SalesforceSession",
    "SubResponse",
    "login",
    "parse_limit_info",
]
