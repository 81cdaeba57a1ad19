"""Nothing waits for ever: a Bulk job that never completes, a stop during any wait.

Kills and signals are placed on progress the dev org observes (a Bulk poll arrived,
a throttled call was answered), never after a sleep; the bounds on how long the
process may take are generous upper limits, failures only when something hangs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from sfsync.devorg import FaultSpec
from sfsync.devorg._http import Request, Response
from sfsync.warehouse.models import Run
from tests.cli_helpers import run_sfsync
from tests.integration.conftest import OrgFactory, RunningOrg
from tests.integration.sync_helpers import mismatches

STOPPED_WITHIN_S = 60  # a stop is honoured in seconds; this bound only catches a hang


def _arrived(org: RunningOrg, matches: str) -> threading.Event:
    """Set once an API request whose path contains ``matches`` has been answered."""
    seen = threading.Event()

    def hook(phase: str, req: Request, _response: Response | None) -> None:
        if phase == "after" and matches in req.path:
            seen.set()

    org.server.add_hook(hook)
    return seen


def _is_bulk_poll(org: RunningOrg) -> threading.Event:
    seen = threading.Event()

    def hook(phase: str, req: Request, _response: Response | None) -> None:
        parts = req.path.rstrip("/").split("/")  # .../jobs/query/<job id>: a status poll
        if phase == "after" and req.method == "GET" and parts[-3:-1] == ["jobs", "query"]:
            seen.set()

    org.server.add_hook(hook)
    return seen


def _popen(org: RunningOrg, *args: str, **env: str) -> subprocess.Popen[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("SFSYNC_")}
    full.update(org.env, **env)
    return subprocess.Popen(
        [sys.executable, "-m", "sfsync", *args],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_bulk_job_that_never_completes_is_given_up_at_its_deadline(
    running_org: OrgFactory,
) -> None:
    """sync.bulk_timeout_s: the job is aborted and the object is read through REST instead."""
    org = running_org(
        300, extra={"sync": {"bulk_threshold": 100, "bulk_poll_s": 0.2, "bulk_timeout_s": 2}}
    )
    org.server.bulk_delay = 100_000
    outcome = run_sfsync("sync", env=org.env, timeout=STOPPED_WITHIN_S * 2)
    assert outcome.exit_code == 0, outcome.stderr[-2000:]
    assert "rest (bulk failed)" in outcome.stdout
    assert "bulk_timeout_s" in outcome.stderr
    aborted = [r for r in org.server.requests if r.method == "PATCH" and "/jobs/query/" in r.path]
    assert aborted
    assert all(r.body == {"state": "Aborted"} for r in aborted)
    assert mismatches(org.org, org.settings, org.warehouse()) == {}


def test_sigterm_ends_a_worker_whose_bulk_job_never_completes(
    running_org: OrgFactory, tmp_path: Path
) -> None:
    """The poll loop honours the stop; the health file said how long the run had been going."""
    org = running_org(300, extra={"sync": {"bulk_threshold": 100, "bulk_poll_s": 0.2}})
    org.server.bulk_delay = 100_000
    polled = _is_bulk_poll(org)
    health = tmp_path / "health.json"
    worker = _popen(
        org,
        "worker",
        "--now",
        SFSYNC_SCHEDULE__CRON="0 2 * * *",
        SFSYNC_SCHEDULE__HEALTH_FILE=str(health),
    )
    try:
        assert polled.wait(STOPPED_WITHIN_S * 2), "the worker never polled its Bulk job"
        document = json.loads(health.read_text())
        assert document["status"] == "running"
        assert isinstance(document["running_for_s"], int | float)
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=STOPPED_WITHIN_S)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert code == 0, worker.stderr.read() if worker.stderr else ""
    assert json.loads(health.read_text())["status"] == "stopped"
    warehouse = org.warehouse()
    with warehouse.session() as session:
        statuses = [r.status for r in session.scalars(select(Run).where(Run.kind == "run"))]
    assert statuses == ["interrupted"]


def test_sigterm_ends_a_run_waiting_out_a_long_retry_after(running_org: OrgFactory) -> None:
    """Every call is throttled with Retry-After: 1000 s; SIGTERM ends the wait at once."""
    org = running_org(300, extra={"sync": {"backoff_max_s": 1000, "max_attempts": 5}})
    throttled = _arrived(org, "/services/data/")
    org.server.set_faults(FaultSpec(throttle_rate=1.0, retry_after_s=1000))
    run = _popen(org, "run")
    try:
        assert throttled.wait(STOPPED_WITHIN_S * 2), "no throttled call was answered"
        run.send_signal(signal.SIGTERM)
        code = run.wait(timeout=STOPPED_WITHIN_S)
    finally:
        if run.poll() is None:
            run.kill()
    assert code != -signal.SIGTERM  # it stopped on its own terms, not by the signal's default
    stderr = run.stderr.read() if run.stderr else ""
    assert "bug" not in stderr, stderr[-2000:]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_throttling_is_waited_out_not_reported_as_the_daily_limit(
    running_org: OrgFactory, seed: int
) -> None:
    """5 % of calls answer 429 Too many requests: the run backs off and ends ok (exit 0)."""
    org = running_org(300, faults=FaultSpec(throttle_rate=0.05, retry_after_s=0, seed=seed))
    outcome = run_sfsync("run", "--apply", env=org.env)
    assert outcome.exit_code == 0, outcome.stderr[-2000:]
    assert "daily API limit" not in outcome.stderr
