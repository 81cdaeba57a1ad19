"""write_config: the fixed salesforce keys, optional database and extra sections, mode 0600."""

from __future__ import annotations

import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import yaml

from sfsync.devorg import write_config


def _server(tmp_path: Path) -> Any:
    return SimpleNamespace(
        url="https://127.0.0.1:4321",
        client_id="cid",
        client_secret="secret",
        username="u@example.com",
        password="pw",
        security_token="tok",
        ca_path=tmp_path / "ca.pem",
    )


def test_config_has_the_fixed_keys_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "c.yaml"
    write_config(
        path,
        cast(Any, _server(tmp_path)),
        database_url="sqlite:///w.db",
        extra={"audit": {"profile": "europe"}, "database": {"echo": False}},
    )
    config = yaml.safe_load(path.read_text())
    assert config["salesforce"] == {
        "auth": "client_credentials",
        "login_url": "https://127.0.0.1:4321",
        "api_version": "62.0",
        "client_id": "cid",
        "client_secret": "secret",
        "username": "u@example.com",
        "ca_bundle": str(tmp_path / "ca.pem"),
        "timeout_s": 30,
    }
    assert config["database"] == {"url": "sqlite:///w.db", "echo": False}
    assert config["audit"] == {"profile": "europe"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["c.yaml"]  # no temp file left


def test_without_a_database_there_is_no_database_section(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    write_config(path, cast(Any, _server(tmp_path)))
    assert set(yaml.safe_load(path.read_text())) == {"salesforce"}


def test_password_flow_config_carries_its_secrets_only_then(tmp_path: Path) -> None:
    """Secrets of an unused flow would only earn a warning: they are written for password only."""
    path = tmp_path / "c.yaml"
    write_config(path, cast(Any, _server(tmp_path)), auth="password")
    salesforce = yaml.safe_load(path.read_text())["salesforce"]
    assert salesforce["auth"] == "password"
    assert (salesforce["password"], salesforce["security_token"]) == ("pw", "tok")
