"""The environment failing under a command: exit 2 or 3 and a paragraph naming what, never 70.

Unreadable or bogus files, a full disk, a database server that goes away, a reader
that closes the pipe, a health file that cannot be written, a schema without its
revision, dates out of range, a warehouse file that is not a database.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import Outcome, run_sfsync
from tests.integration.conftest import OrgFactory


def assert_no_bug(stderr: str) -> None:
    assert "bug" not in stderr, stderr
    assert "Traceback" not in stderr, stderr


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFSYNC_")}
    env.update(extra)
    return env


# --------------------------------------------------------------------------- 1. ca_bundle


def test_a_ca_bundle_in_a_directory_this_user_cannot_read_exits_2(tmp_path: Path) -> None:
    """A real unreadable directory: chmod 0 as a user; as root, sfsync runs as ``nobody``."""
    locked = tmp_path / "locked"
    locked.mkdir()
    bundle = locked / "ca.pem"
    bundle.write_text("not read anyway\n")
    kwargs: dict[str, Any] = {}
    if os.geteuid() == 0:
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            pytest.skip("running as root and there is no 'nobody' user to drop to")
        # tmp_path is root's and 0700: nobody cannot search it.
        locked.chmod(0o700)
        kwargs = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    else:
        locked.chmod(0)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "sfsync", "db", "current"],
            env=clean_env(SFSYNC_SALESFORCE__CA_BUNDLE=str(bundle)),
            cwd="/",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **kwargs,
        )
    finally:
        locked.chmod(0o700)
    assert proc.returncode == 2, proc.stderr
    assert "salesforce.ca_bundle" in proc.stderr
    assert str(bundle) in proc.stderr
    assert_no_bug(proc.stderr)


def test_a_ca_bundle_that_is_not_a_certificate_exits_2(
    running_org: OrgFactory, tmp_path: Path
) -> None:
    org = running_org(20)
    bogus = tmp_path / "corporate-ca.pem"
    bogus.write_text("this is not a certificate\n")
    env = {**org.env, "SFSYNC_SALESFORCE__CA_BUNDLE": str(bogus)}
    for command in ("sync", "check"):
        outcome: Outcome = run_sfsync(command, env=env)
        assert outcome.exit_code == 2, outcome.output
        assert "salesforce.ca_bundle" in outcome.output
        assert str(bogus) in outcome.output
        assert "PEM" in outcome.output
        assert_no_bug(outcome.stderr)
