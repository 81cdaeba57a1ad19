"""The environment failing (unreadable paths, odd dates, ...): exit 2 or 3 naming what, never 70."""

from __future__ import annotations

import errno
import io
import json
from pathlib import Path
from typing import Any

import pytest

from sfsync import scheduler
from sfsync.config import ScheduleSettings, Settings
from sfsync.logging import configure_logging
from sfsync.scheduler import Worker
from tests.cli_helpers import run_cli


def assert_no_bug(stderr: str) -> None:
    assert "bug" not in stderr, stderr
    assert "Traceback" not in stderr, stderr


# --------------------------------------------------------------------------- 1. ca_bundle


def test_a_ca_bundle_behind_an_unreadable_directory_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Path.is_file`` raises PermissionError for a path under a directory we cannot search."""
    bundle = tmp_path / "locked" / "ca.pem"
    real_is_file = Path.is_file

    def is_file(self: Path) -> bool:
        if self == bundle:
            raise PermissionError(13, "Permission denied", str(self))
        return real_is_file(self)

    monkeypatch.setattr(Path, "is_file", is_file)
    outcome = run_cli("db", "current", env={"SFSYNC_SALESFORCE__CA_BUNDLE": str(bundle)})
    assert outcome.exit_code == 2, outcome.output
    assert "salesforce.ca_bundle" in outcome.stderr
    assert str(bundle) in outcome.stderr
    assert "Permission denied" in outcome.stderr
    assert_no_bug(outcome.stderr)


# --------------------------------------------------------------------------- 4. the health file


def test_a_health_file_write_that_fails_later_logs_a_warning_and_the_worker_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk under the health file must not kill the worker: one warning, then recovery."""
    health = tmp_path / "health.json"
    worker = Worker(Settings(schedule=ScheduleSettings(health_file=health)))
    events = io.StringIO()
    configure_logging("json", stream=events)
    real_writer = scheduler.atomic_text_file

    def disk_full(path: Path, **kwargs: object) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(scheduler, "atomic_text_file", disk_full)
    worker._write_health()
    worker._write_health()  # still failing: not a warning every few seconds
    monkeypatch.setattr(scheduler, "atomic_text_file", real_writer)
    worker._write_health()
    lines = [json.loads(line) for line in events.getvalue().splitlines()]
    warnings = [e for e in lines if e["event"] == "worker.health_not_written"]
    assert len(warnings) == 1, lines
    assert warnings[0]["level"] == "warning"
    assert warnings[0]["path"] == str(health)
    assert "No space left on device" in warnings[0]["error"]
    assert any(e["event"] == "worker.health_written" for e in lines), lines
    assert json.loads(health.read_text())["status"] == "starting"


# --------------------------------------------------------------------------- locked SQLite


@pytest.mark.parametrize("code", ["SQLITE_BUSY", "SQLITE_LOCKED"])
def test_a_sqlite_file_locked_by_another_process_is_exit_3_naming_it(code: str) -> None:
    """'database is locked' after SQLite's 30-second wait: the environment, not a bug."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from sfsync.config import DatabaseSettings
    from sfsync.warehouse import database_failure

    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = getattr(sqlite3, code)  # type: ignore[attr-defined]
    mapped = database_failure(
        OperationalError("UPDATE finding ...", {}, locked),
        DatabaseSettings(url="sqlite:////var/lib/sfsync/warehouse.db"),
    )
    assert mapped is not None
    assert mapped.exit_code == 3
    assert "warehouse.db" in mapped.message
    assert "locked" in mapped.message
