"""Fixtures for audit tests: a warehouse holding the worked-examples org."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

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
    """A warehouse at schema head filled with docs/rules.md's worked examples."""
    warehouse = new_warehouse(db_url)
    org, ids = examples_org()
    load_org(warehouse, org)
    yield ExamplesWarehouse(db_url, warehouse, org, ids)
    warehouse.dispose()
