"""Logs: JSON lines off a TTY, secrets redacted, run_id bound."""

from __future__ import annotations

import io
import json

from sfsync.logging import (
    bind_run,
    configure_logging,
    get_logger,
    redact_text,
    register_secrets,
    unbind_run,
)


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
