"""Files that hold the org's data are created 0600 (owner only), whatever the umask.

The warehouse (with SQLite's -wal and -shm beside it), the HTML report, and the
dev org's generated and saved data files. The umask is set permissive (022) in
every test, so a passing test shows the mode is chosen, not inherited.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from sfsync.config import DatabaseSettings, Settings
from sfsync.devorg import DevOrg
from sfsync.devorg.generate import generate_org
from sfsync.devorg.testing import sample_org_data
from sfsync.files import atomic_text_file
from sfsync.report import write_report
from sfsync.warehouse import open_warehouse
from tests.cli_helpers import run_cli
from tests.unit.report.fill import AS_OF, fill_small_warehouse, new_warehouse

OWNER_ONLY = "0o600"  # modes compared as octal text, so that a failure reads 0o644


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def test_db_upgrade_creates_the_sqlite_warehouse_and_its_wal_and_shm_0600(tmp_path: Path) -> None:
    db = tmp_path / "warehouse.db"
    url = f"sqlite:///{db}"
    outcome = run_cli("db", "upgrade", env={"SFSYNC_DATABASE_URL": url})
    assert outcome.exit_code == 0, outcome.output
    assert _mode(db) == OWNER_ONLY
    warehouse = open_warehouse(DatabaseSettings(url=url))
    try:
        with warehouse.engine.connect() as conn:
            # A write in WAL mode: SQLite makes -wal and -shm, which live while a
            # connection is open (the last one to close removes them).
            conn.execute(text("CREATE TABLE mode_probe (x INTEGER)"))
            conn.execute(text("INSERT INTO mode_probe VALUES (1)"))
            conn.commit()
            wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
            assert wal.exists()
            assert shm.exists()
            assert (_mode(db), _mode(wal), _mode(shm)) == (OWNER_ONLY,) * 3
    finally:
        warehouse.dispose()


def test_the_report_is_written_0600_even_over_a_file_with_another_mode(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    warehouse = new_warehouse(url)
    try:
        fill_small_warehouse(warehouse)
        settings = Settings(database=DatabaseSettings(url=url))
        fresh = write_report(warehouse, settings, tmp_path / "report.html", as_of=AS_OF)
        replaced = tmp_path / "shared.html"
        replaced.write_text("old")
        replaced.chmod(0o640)
        write_report(warehouse, settings, replaced, as_of=AS_OF)
    finally:
        warehouse.dispose()
    assert _mode(fresh) == OWNER_ONLY
    assert _mode(replaced) == OWNER_ONLY
    assert replaced.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_a_generated_dev_org_is_written_0600(tmp_path: Path) -> None:
    out = tmp_path / "org.json"
    generate_org(opportunities=10, seed=1, out=out)
    assert _mode(out) == OWNER_ONLY


def test_a_saved_dev_org_is_written_0600_with_or_without_credentials(tmp_path: Path) -> None:
    for name, data in [
        ("plain", sample_org_data(5)),
        ("creds", {**sample_org_data(5), "credentials": {"client_secret": "s3cret-value"}}),
    ]:
        source = tmp_path / f"{name}.json"
        source.write_text(json.dumps(data))
        org = DevOrg.load(source)
        try:
            org.save(tmp_path / f"{name}-saved.json")
        finally:
            org.close()
        assert _mode(tmp_path / f"{name}-saved.json") == OWNER_ONLY, name


def test_atomic_text_file_writes_0600_unless_told_otherwise(tmp_path: Path) -> None:
    """The default is owner-only, also over an existing file; callers ask for more."""
    existing = tmp_path / "existing.txt"
    existing.write_text("old")
    existing.chmod(0o644)
    with atomic_text_file(existing) as out:
        out.write("new")
    assert _mode(existing) == OWNER_ONLY
    health = tmp_path / "health.json"
    with atomic_text_file(health, mode=0o644) as out:
        out.write("{}")
    assert _mode(health) == "0o644"
