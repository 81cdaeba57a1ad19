"""Fixtures for audit tests: a warehouse holding the worked-examples org."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from sfsync.cli import cli
from sfsync.warehouse import Warehouse
from tests.integration.audit.load import load_org, new_warehouse
from tests.unit.audit.examples import examples_org
from tests.unit.audit.org import Org


@dataclass
class ExamplesWarehouse:
    url: str
    warehouse: Warehouse
    org: Org
    ids: dict[int, str]


@pytest.fixture
def examples_warehouse(db_url: str) -> Iterator[ExamplesWarehouse]:
    """A warehouse at schema head filled with RULES.md's worked examples."""
    warehouse = new_warehouse(db_url)
    org, ids = examples_org()
    load_org(warehouse, org)
    yield ExamplesWarehouse(db_url, warehouse, org, ids)
    warehouse.dispose()


@pytest.fixture
def audit_cli() -> None:
    """Put audit/findings/waive on the real CLI group (until sfsync/cli.py registers them)."""
    from sfsync.audit.cli import audit_command, findings_command, waive_command

    for command in (audit_command, findings_command, waive_command):
        if command.name not in cli.commands:
            cli.add_command(command)
