"""Logs: JSON lines off a TTY, secrets redacted, run_id bound."""

from __future__ import annotations

import io
import json
import logging as stdlib_logging
from pathlib import Path

import pytest
import structlog

from sfsync.logging import (
    bind_run,
    configure_logging,
    get_logger,
    redact_text,
    register_secrets,
    reset_logging,
    unbind_run,
)
from tests.cli_helpers import run_sfsync


def test_json_lines_with_run_id() -> None:
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    bind_run(42)
    try:
        get_logger().info("sync.page", object="Opportunity", rows=2000)
    finally:
        unbind_run()
    event = json.loads(stream.getvalue().strip())
    assert event["event"] == "sync.page"
    assert event["run_id"] == 42
    assert event["rows"] == 2000
    assert event["level"] == "info"


def test_registered_secrets_and_secret_keys_are_redacted() -> None:
    """The redaction processor masks secret-named keys and known secret values anywhere."""
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    register_secrets(["tok-123456-secret"])
    get_logger().info(
        "auth.debug",
        password="pw-plain",
        note="header was Bearer tok-123456-secret",
        nested={"client_secret": "x", "ok": "tok-123456-secret"},
    )
    line = stream.getvalue()
    assert "tok-123456-secret" not in line
    assert "pw-plain" not in line
    event = json.loads(line)
    assert event["password"] == "[redacted]"
    assert event["nested"] == {"client_secret": "[redacted]", "ok": "[redacted]"}


def test_bearer_tokens_are_redacted_from_text() -> None:
    assert redact_text("Authorization: Bearer 00Dxx!AQ4.abc") == "Authorization: Bearer [redacted]"


def test_debug_events_hidden_at_info() -> None:
    stream = io.StringIO()
    configure_logging("json", stream=stream, level="INFO")
    get_logger().debug("hidden")
    assert stream.getvalue() == ""
    configure_logging("json", stream=stream, verbosity=1)
    get_logger().debug("shown")
    assert "shown" in stream.getvalue()


# --- the standard library's logging (alembic, urllib3, ...) in the same stream -----------


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_stdlib_records_are_json_lines_in_the_same_stream_at_vv() -> None:
    stream = io.StringIO()
    configure_logging("json", verbosity=2, stream=stream)
    stdlib_logging.getLogger("urllib3").debug("Starting new HTTPS connection (%d): %s", 1, "x")
    stdlib_logging.getLogger("alembic").warning("Will assume non-transactional DDL.")
    get_logger().info("sync.page", rows=3)
    events = [json.loads(line) for line in _lines(stream)]  # every line is a JSON object
    assert [(e["event"], e["level"], e.get("logger")) for e in events] == [
        ("Starting new HTTPS connection (1): x", "debug", "urllib3"),
        ("Will assume non-transactional DDL.", "warning", "alembic"),
        ("sync.page", "info", None),
    ]
    assert all("timestamp" in e for e in events)


def test_secrets_are_redacted_from_stdlib_records() -> None:
    stream = io.StringIO()
    configure_logging("json", verbosity=2, stream=stream)
    register_secrets(["stdlib-secret-9f8e7d"])
    stdlib_logging.getLogger("simple_salesforce").debug(
        "login answered sessionId=%s", "stdlib-secret-9f8e7d"
    )
    stdlib_logging.getLogger("httpx").warning("Authorization: Bearer 00Dxx!AQ4.abc")
    assert "stdlib-secret-9f8e7d" not in stream.getvalue()
    assert "00Dxx!AQ4.abc" not in stream.getvalue()
    events = [json.loads(line) for line in _lines(stream)]
    assert [e["event"] for e in events] == [
        "login answered sessionId=[redacted]",
        "Authorization: Bearer [redacted]",
    ]


def test_configuring_again_replaces_the_handler_instead_of_adding_one() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", stream=first)
    configure_logging("json", verbosity=2, stream=second)
    configure_logging("json", verbosity=2, stream=second)
    stdlib_logging.getLogger("alembic").warning("once")
    assert first.getvalue() == ""
    assert [json.loads(line)["event"] for line in _lines(second)] == ["once"]


def test_stdlib_records_look_like_sfsyncs_own_in_console_mode() -> None:
    stream = io.StringIO()
    configure_logging("console", verbosity=2, stream=stream)
    stdlib_logging.getLogger("alembic").warning("Will assume non-transactional DDL.")
    get_logger().warning("config.warning")
    stdlib_line, own_line = _lines(stream)
    for line in (stdlib_line, own_line):
        assert "[warning  ]" in line
    assert "Will assume non-transactional DDL." in stdlib_line
    assert "alembic" in stdlib_line
    assert not stdlib_line.startswith("WARNING:")


def test_db_upgrade_at_vv_writes_only_json_lines_to_stderr(tmp_path: Path) -> None:
    """As a real process: alembic's INFO/DEBUG records join the JSON stream."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    outcome = run_sfsync(
        "-vv", "--log-format", "json", "db", "upgrade", env={"SFSYNC_DATABASE_URL": url}
    )
    assert outcome.exit_code == 0, outcome.stderr
    events = []
    for line in outcome.stderr.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a stderr line is not JSON: {line!r}")
    assert any(str(e.get("logger", "")).startswith("alembic") for e in events), events


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_logged_traceback_shows_no_secret_not_in_a_local_nor_in_the_message(fmt: str) -> None:
    """log.exception (the worker's run_crashed): frame locals and messages are redacted."""
    stream = io.StringIO()
    configure_logging(fmt, stream=stream)  # type: ignore[arg-type]
    register_secrets(["client-secret-in-a-local-9f3e"])

    def token_request() -> None:
        form = {"grant_type": "client_credentials", "secret": "client-secret-in-a-local-9f3e"}
        raise RuntimeError(f"the login failed for {form}")

    try:
        token_request()
    except RuntimeError:
        get_logger().exception("worker.run_crashed")
    assert "worker.run_crashed" in stream.getvalue()
    assert "client-secret-in-a-local-9f3e" not in stream.getvalue()


def test_reset_logging_forgets_secrets_configuration_and_bound_context() -> None:
    configure_logging("json", verbosity=2, stream=io.StringIO())
    register_secrets(["reset-secret-5a4b3c"])
    bind_run(7)
    reset_logging()
    assert redact_text("reset-secret-5a4b3c") == "reset-secret-5a4b3c"
    assert not structlog.is_configured()
    assert structlog.contextvars.get_contextvars() == {}
    assert all("sfsync" not in type(h).__module__ for h in stdlib_logging.getLogger().handlers)
    assert stdlib_logging.getLogger("alembic").level == stdlib_logging.NOTSET


# The conftest's autouse fixture resets logging between tests: the first test leaves a
# secret, a configuration and a bound run behind, the next (pytest runs a module's tests
# in order) must see none of them.
def test_isolation_1_leaves_logging_state_behind() -> None:
    configure_logging("json", stream=io.StringIO())
    register_secrets(["leaked-secret-1e2d3c"])
    bind_run(99)


def test_isolation_2_sees_nothing_the_previous_test_left() -> None:
    assert redact_text("leaked-secret-1e2d3c") == "leaked-secret-1e2d3c"
    assert not structlog.is_configured()
    assert structlog.contextvars.get_contextvars() == {}
