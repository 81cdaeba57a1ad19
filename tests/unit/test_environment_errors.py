"""The environment failing (unreadable paths, odd dates, ...): exit 2 or 3 naming what, never 70."""

from __future__ import annotations

from pathlib import Path

import pytest

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
