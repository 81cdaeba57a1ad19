"""A Salesforce-compatible org on loopback, for demos, integration tests and benchmarks.

sfsync talks to it through exactly the code path it uses for a real org: OAuth
and SOAP logins, REST query/queryAll with cursors, describe, sObject and
collection writes, getDeleted, limits and Bulk API 2.0 query jobs, over HTTPS
with a local CA. See ``sfsync/devorg/README.md`` for the data file, endpoints,
faults and the admin API.
"""

from __future__ import annotations

from sfsync.devorg._config import write_config
from sfsync.devorg._faults import FaultSpec, FaultSpecError
from sfsync.devorg._org import DevOrg, WriteError
from sfsync.devorg._server import DevOrgServer, RequestHook, RequestRecord

__all__ = [
    "DevOrg",
    "DevOrgServer",
    "FaultSpec",
    "FaultSpecError",
    "RequestHook",
    "RequestRecord",
    "WriteError",
    "write_config",
]
