"""Fixtures shared by every test layer.

``db_url`` is parametrized over SQLite and a real PostgreSQL: a test that takes it
runs on both. In CI (``CI=true``) a PostgreSQL that cannot be started fails the run
instead of skipping.
"""

from __future__ import annotations

import logging as stdlib_logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from structlog.testing import LogCapture
from structlog.typing import EventDict

from sfsync.logging import reset_logging
from tests._postgres import PostgresUnavailable, create_database, drop_database, postgres_server

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's SFSYNC_* settings or config/sfsync.yaml."""
    for name in list(os.environ):
        if name.startswith("SFSYNC_") and name != "SFSYNC_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _isolated_logging() -> Iterator[None]:
    """No test sees another's logging set-up, bound run context or registered secrets.

    configure_logging and register_secrets change process-wide state; without this a
    test passes or fails depending on which tests ran before it in the same process.
    """
    reset_logging()
    yield
    reset_logging()


@pytest.fixture
def log_events() -> list[EventDict]:
    """sfsync's log events as dicts, as structlog.testing.capture_logs gives them.

    Unlike capture_logs() (which drops every processor), the run context bound with
    bind_run is merged in, and only INFO and above pass, as with the default
    ``logging.level``. _isolated_logging undoes the configuration afterwards.
    """
    capture = LogCapture()
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, capture],
        wrapper_class=structlog.make_filtering_bound_logger(stdlib_logging.INFO),
    )
    return capture.entries


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    try:
        with postgres_server() as url:
            yield url
    except PostgresUnavailable as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL unavailable: {exc}")


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    url = create_database(postgres_server_url)
    yield url
    drop_database(postgres_server_url, url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty database URL: SQLite file, then real PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))
