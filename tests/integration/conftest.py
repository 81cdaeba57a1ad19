"""A dev org on loopback for integration tests, reached through sfsync's real client code."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from sfsync.config import Settings, load_settings
from sfsync.devorg import DevOrg, DevOrgServer, FaultSpec, write_config
from sfsync.devorg.generate import generate_org
from sfsync.warehouse import Warehouse, open_warehouse, upgrade

_GENERATED: dict[tuple[int, int, bool], Path] = {}


def generated_org_file(
    tmp_root: Path, opportunities: int, seed: int = 7, *, multi_currency: bool = True
) -> Path:
    """A generated data file, made once per session per (size, seed)."""
    key = (opportunities, seed, multi_currency)
    if key not in _GENERATED:
        out = tmp_root / f"org-{opportunities}-{seed}-{int(multi_currency)}.json"
        generate_org(opportunities=opportunities, seed=seed, out=out, multi_currency=multi_currency)
        _GENERATED[key] = out
    return _GENERATED[key]


@dataclass
class RunningOrg:
    """A served dev org plus an sfsync config and warehouse pointed at it."""

    server: DevOrgServer
    config_path: Path
    database_url: str
    tmp: Path
    _warehouses: list[Warehouse] = field(default_factory=list)

    @property
    def org(self) -> DevOrg:
        return self.server.org

    @property
    def settings(self) -> Settings:
        return load_settings(self.config_path, environ={}).settings

    def warehouse(self) -> Warehouse:
        warehouse = open_warehouse(self.settings.database)
        self._warehouses.append(warehouse)
        return warehouse

    @property
    def env(self) -> dict[str, str]:
        return {"SFSYNC_CONFIG": str(self.config_path)}

    def close(self) -> None:
        for warehouse in self._warehouses:
            warehouse.dispose()
        self.server.stop()
        self.org.close()


OrgFactory = Callable[..., RunningOrg]


@pytest.fixture(scope="session")
def org_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("orgs")


@pytest.fixture
def running_org(
    tmp_path: Path, org_files: Path, request: pytest.FixtureRequest
) -> Iterator[OrgFactory]:
    """Start a dev org; the warehouse is SQLite unless ``database_url`` is given."""
    started: list[RunningOrg] = []

    def start(
        opportunities: int = 300,
        *,
        seed: int = 7,
        data: dict[str, Any] | None = None,
        data_file: Path | None = None,
        faults: FaultSpec | None = None,
        api_limit: int | None = None,
        database_url: str | None = None,
        extra: dict[str, Any] | None = None,
        as_of: date | None = None,
        multi_currency: bool = True,
    ) -> RunningOrg:
        if data is not None:
            org = DevOrg.from_data(data)
        else:
            if data_file is None:
                data_file = generated_org_file(
                    org_files, opportunities, seed, multi_currency=multi_currency
                )
            org = DevOrg.load(data_file)
        server = DevOrgServer(
            org, faults=faults, api_limit=api_limit, ca_dir=tmp_path / "ca"
        ).start()
        url = database_url or f"sqlite:///{tmp_path / 'warehouse.db'}"
        config_path = tmp_path / "sfsync.yaml"
        sync = {"lag_s": 0, "lookback_s": 5, "backoff_base_s": 0.05, "backoff_max_s": 0.5}
        merged = {"sync": sync, "logging": {"format": "json"}}
        for section, values in (extra or {}).items():
            merged[section] = {**merged.get(section, {}), **values}
        write_config(config_path, server, database_url=url, extra=merged)
        running = RunningOrg(server, config_path, url, tmp_path)
        warehouse = open_warehouse(running.settings.database, require_head=False, create=True)
        with warehouse.engine.begin() as conn:
            upgrade(conn)
        warehouse.dispose()
        started.append(running)
        return running

    yield start
    for running in started:
        running.close()
