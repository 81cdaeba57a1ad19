"""How clients reach a dev org: an sfsync config (``write_config``) or connection details for
any other client (``write_credentials``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sfsync.files import atomic_text_file

if TYPE_CHECKING:
    from sfsync.devorg._server import DevOrgServer

__all__ = ["credentials", "write_config", "write_credentials"]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def write_config(
    path: Path,
    server: DevOrgServer,
    *,
    database_url: str | None = None,
    extra: dict[str, Any] | None = None,
    auth: str = "client_credentials",
) -> None:
    """Write the YAML config atomically with mode 0600 (it holds the client secret).

    Only the credentials of ``auth`` are written (client_credentials: the client id
    and secret; password: the username, password and security token too), so the
    config holds no secret that sfsync would ignore with a warning.
    """
    path = Path(path)
    if auth not in ("client_credentials", "password"):
        raise ValueError(
            f"the dev org's config can use client_credentials or password, not {auth!r}"
        )
    salesforce: dict[str, Any] = {
        "auth": auth,
        "login_url": server.url,
        "api_version": "62.0",
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "username": server.username,
    }
    if auth == "password":
        salesforce["password"] = server.password
        salesforce["security_token"] = server.security_token
    salesforce["ca_bundle"] = str(server.ca_path) if server.ca_path else None
    salesforce["timeout_s"] = 30
    config: dict[str, Any] = {"salesforce": salesforce}
    if database_url is not None:
        config["database"] = {"url": database_url}
    if extra:
        _merge(config, extra)
    text = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_text_file(path, mode=0o600) as out:
        out.write(text)


def credentials(server: DevOrgServer) -> dict[str, Any]:
    """Everything a third-party client needs to log in to ``server`` (any OAuth flow, or SOAP)."""
    return {
        "instance_url": server.url,
        "login_url": server.url,
        "token_url": f"{server.url}/services/oauth2/token",
        "soap_login_url": f"{server.url}/services/Soap/u/62.0",
        "api_version": "62.0",
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "username": server.username,
        "password": server.password,
        "security_token": server.security_token,
        "refresh_token": server.refresh_token,
        "ca_bundle": str(server.ca_path) if server.ca_path else None,
    }


def write_credentials(path: Path, server: DevOrgServer) -> None:
    """Write :func:`credentials` as JSON, atomically with mode 0600 (it holds every secret)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_text_file(path, mode=0o600) as out:
        out.write(json.dumps(credentials(server), indent=2) + "\n")
