"""``sfsync worker``: runs on ``schedule.cron`` until SIGTERM/SIGINT.

APScheduler runs the job with ``max_instances=1`` and ``coalesce`` (missed fires
collapse into one run) and a misfire grace period. A signal sets a stop flag the
run checks between pages and batches: the current step finishes, the ledger and
watermarks stay consistent, and the process exits 0. A health file (JSON,
rewritten every few seconds and after each run) is what container probes read.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from sfsync.config import Settings
from sfsync.context import run_context
from sfsync.cron import cron_trigger
from sfsync.errors import ConfigError, LockHeld, SfsyncError
from sfsync.files import atomic_text_file
from sfsync.formats import rfc3339
from sfsync.logging import get_logger
from sfsync.stop import StopSignal
from sfsync.warehouse import database_failure, open_warehouse

__all__ = ["Worker"]

log = get_logger()
HEALTH_EVERY_S = 5.0


class Worker:
    def __init__(self, settings: Settings, *, run_now: bool = False) -> None:
        self.settings = settings
        self.schedule = settings.schedule
        self.run_now = run_now
        self.stop = StopSignal()
        self._run_started: float | None = None  # monotonic start of the run in progress
        self.state: dict[str, Any] = {"status": "starting", "runs": 0, "pid": os.getpid()}
        self._lock = threading.Lock()
        # Held from a health snapshot to its write, so that no older snapshot lands last.
        self._health_lock = threading.Lock()
        self._health_error: str | None = None  # why the last health write failed
        self.scheduler = BackgroundScheduler(
            timezone=self.schedule.timezone,
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={
                "max_instances": 1,
                "coalesce": True,
                "misfire_grace_time": self.schedule.misfire_grace_s,
            },
        )

    # ---------------------------------------------------------------- lifecycle

    def serve(self) -> int:
        """Run until a stop signal; return the process exit code."""
        self._install_signals()
        self._check_health_file()  # fail fast: a health file probes could read
        warehouse = open_warehouse(self.settings.database)  # fail fast: reachable, at head
        warehouse.dispose()
        trigger = cron_trigger(self.schedule.cron, self.schedule.timezone)
        job = self.scheduler.add_job(self._run_job, trigger, id="sfsync-run", name="sfsync run")
        if self.run_now:
            self.scheduler.add_job(self._run_job, id="sfsync-run-now", name="sfsync run (now)")
        # Idle until a run says otherwise: set before the scheduler starts, since the run
        # of --now may say ``running`` from its own thread before start() has returned.
        with self._lock:
            self.state["status"] = "idle"
        self.scheduler.start()
        log.info(
            "worker.start",
            cron=self.schedule.cron,
            timezone=self.schedule.timezone,
            apply=self.schedule.apply,
            next_run_at=_when(job.next_run_time),
        )
        self._write_health()  # now with the next run's time
        while not self.stop.wait(HEALTH_EVERY_S):
            self._write_health()
        log.info("worker.stopping", reason="signal", running=self.state.get("status") == "running")
        self._set(status="stopping")
        self.scheduler.shutdown(wait=True)  # the running job sees the stop flag and winds down
        self._set(status="stopped")
        log.info("worker.stopped")
        return 0

    def _install_signals(self) -> None:
        def handle(signum: int, _frame: FrameType | None) -> None:
            log.info("worker.signal", signal=signal.Signals(signum).name)
            self.stop.request(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    # ---------------------------------------------------------------- the job

    def _run_job(self) -> None:
        if self.stop():
            return
        from sfsync import runner

        self._run_started = time.monotonic()
        self._set(status="running", run_started_at=_now())
        try:
            with run_context(self.settings, stop=self.stop) as ctx:
                outcome = runner.run(ctx, apply=self.schedule.apply)
            self._set(
                last_run_id=outcome.run_id, last_status=outcome.status, last_exit=outcome.exit_code
            )
        except LockHeld as exc:
            log.warning("worker.skipped", reason=exc.message)
            self._set(last_status="skipped (locked)")
        except SfsyncError as exc:
            log.error("worker.run_failed", message=exc.message, exit_code=exc.exit_code)
            self._set(last_status="failed", last_error=exc.message, last_exit=exc.exit_code)
        except Exception as exc:  # the worker outlives a bug in one run; the run row says failed
            mapped = database_failure(exc, self.settings.database)
            if mapped is not None:  # the database went away or filled up: not a bug
                log.error("worker.run_failed", message=mapped.message, exit_code=mapped.exit_code)
                self._set(
                    last_status="failed", last_error=mapped.message, last_exit=mapped.exit_code
                )
            else:
                log.exception("worker.run_crashed", error=f"{type(exc).__name__}: {exc}")
                self._set(last_status="failed", last_error=f"{type(exc).__name__}: {exc}")
        finally:
            self.state["runs"] = int(self.state.get("runs", 0)) + 1
            self._run_started = None
            self._set(status="idle" if not self.stop() else "stopping", run_ended_at=_now())
            job = self.scheduler.get_job("sfsync-run") if self.scheduler.running else None
            if job is not None and not self.stop():
                log.info("worker.next_run", next_run_at=_when(job.next_run_time))

    # ---------------------------------------------------------------- health

    def _set(self, **values: Any) -> None:
        with self._lock:
            self.state.update(values)
        self._write_health()

    def _check_health_file(self) -> None:
        """Refuse to start (exit 2) with a health file this worker cannot write.

        Container probes read that exact path: a worker that cannot write it looks
        hung, and one that made up a missing directory would be probed elsewhere.
        The first write (status ``starting``) is the proof.
        """
        path = self.schedule.health_file
        if path is None:
            return
        path = Path(path)
        parent = path.parent
        try:
            if path.is_dir():
                problem = "is a directory; give the path of a file (e.g. .../health.json)"
            elif not parent.exists():
                problem = f"is in a directory that does not exist ({str(parent)!r}); create it"
            elif not parent.is_dir():
                problem = f"is under {str(parent)!r}, which is not a directory"
            else:
                self._write_health(strict=True)
                return
        except OSError as exc:
            problem = f"cannot be written: {exc.strerror or type(exc).__name__}"
        raise ConfigError([f"schedule.health_file: {str(path)!r} {problem}"])

    def _write_health(self, *, strict: bool = False) -> None:
        """Rewrite the health file. A failure (a full disk) is a warning, never the end
        of the worker; ``strict`` (the start-up check) raises it instead."""
        path = self.schedule.health_file
        if path is None:
            return
        job = self.scheduler.get_job("sfsync-run") if self.scheduler.running else None
        try:
            with self._health_lock:
                with self._lock:
                    document = {
                        **self.state,
                        "updated_at": _now(),
                        "next_run_at": _when(job.next_run_time) if job else None,
                    }
                    started = self._run_started
                # How long the run in progress has been going: a stuck run shows, however
                # fresh the file itself is.
                document["running_for_s"] = (
                    None if started is None else round(time.monotonic() - started)
                )
                # Status only (no org data or secrets), read by monitoring that may run as
                # another user.
                with atomic_text_file(Path(path), mode=0o644) as out:
                    out.write(json.dumps(document, default=str, indent=2))
        except OSError as exc:
            if strict:
                raise
            error = exc.strerror or type(exc).__name__
            if error != self._health_error:  # once per trouble, not every few seconds
                log.warning("worker.health_not_written", path=str(path), error=error)
            self._health_error = error
            return
        if self._health_error is not None:
            log.info("worker.health_written", path=str(path), after=self._health_error)
            self._health_error = None


def _now() -> str:
    return rfc3339(datetime.now(UTC))


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else rfc3339(moment)
