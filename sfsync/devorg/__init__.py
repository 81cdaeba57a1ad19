"""A Salesforce-compatible org on loopback, for demos, integration tests and benchmarks.

sfsync talks to it through exactly the code path it uses for a real org: OAuth
and SOAP logins, REST query/queryAll with cursors, describe, sObject and
collection writes, getDeleted, limits and Bulk API 2.0 query jobs, over HTTPS
with a local CA. See ``sfsync/devorg/README.md`` for the data file, endpoints,
faults and the admin API.

Its third-party modules (trustme for the CA, lark for the SOQL parser) are the
``devorg`` extra, which production installs and the container image leave out.
So importing this package (``sfsync --help`` lists ``sfsync devorg``) needs
neither: the org and its server are loaded on first use, after
:func:`require_extra` has turned a missing extra into a :class:`UsageError`.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from sfsync.devorg._config import credentials, write_config, write_credentials
from sfsync.devorg._faults import FaultSpec, FaultSpecError
from sfsync.errors import UsageError

if TYPE_CHECKING:
    from sfsync.devorg._org import DevOrg, WriteError
    from sfsync.devorg._server import DevOrgServer, RequestHook, RequestRecord

__all__ = [
    "EXTRA_MODULES",
    "DevOrg",
    "DevOrgServer",
    "FaultSpec",
    "FaultSpecError",
    "RequestHook",
    "RequestRecord",
    "WriteError",
    "credentials",
    "require_extra",
    "write_config",
    "write_credentials",
]

# What the ``devorg`` extra in pyproject.toml installs, by import name.
EXTRA_MODULES = ("lark", "trustme")

# Names whose modules import the extra's (the org imports lark; its server, trustme).
_NEEDS_EXTRA = {
    "DevOrg": "sfsync.devorg._org",
    "WriteError": "sfsync.devorg._org",
    "DevOrgServer": "sfsync.devorg._server",
    "RequestHook": "sfsync.devorg._server",
    "RequestRecord": "sfsync.devorg._server",
}


def require_extra() -> None:
    """Raise :class:`UsageError` naming ``sfsync[devorg]`` unless the extra is installed."""
    missing = [name for name in EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(
            "the dev org (sfsync devorg, sfsync demo) needs the optional devorg extra, which "
            f"this installation does not have (no module named {', '.join(missing)}); "
            "production installs and the container image leave it out on purpose. "
            "Install it with: pip install 'sfsync[devorg]'"
        )


def __getattr__(name: str) -> Any:
    module = _NEEDS_EXTRA.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    require_extra()
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
