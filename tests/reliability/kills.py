"""Killing sfsync at places a test chooses, never after a wall-clock delay.

Two ways, both deterministic on any machine:

- a named crash point (``SFSYNC_CRASH_AT=point:n``, see :mod:`sfsync.chaos`): the
  process exits 137 the n-th time it reaches the point;
- a request held by the dev org (:class:`Gate`): the n-th matching API request
  blocks in the server, the test sees it arrive, SIGKILLs the client while its call
  is in flight, then lets the server go on (``after=True`` holds it once the org
  has applied it but before the answer is sent: the write exists, the client never
  hears of it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from sfsync.chaos import CRASH_ENV, CRASH_EXIT_CODE
from sfsync.devorg import DevOrgServer
from sfsync.devorg._http import Request, Response

# Generous upper bounds for things that happen in milliseconds; reaching one is a failure.
ARRIVAL_TIMEOUT_S = 180.0
EXIT_TIMEOUT_S = 300.0

KILLED = -signal.SIGKILL
CRASHED = CRASH_EXIT_CODE


def sfsync_process(
    *args: str, env: dict[str, str], log: Path, crash_at: str | None = None
) -> subprocess.Popen[bytes]:
    """``python -m sfsync ARGS`` with only the given SFSYNC_* settings (stderr appended to log)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("SFSYNC_")}
    full.update(env)
    if crash_at:
        full[CRASH_ENV] = crash_at
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "sfsync", *args],
            env=full,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )


def finish(proc: subprocess.Popen[bytes]) -> int:
    return proc.wait(timeout=EXIT_TIMEOUT_S)


class Gate:
    """Hold the ``nth`` API request that ``matches`` until :meth:`release`."""

    def __init__(
        self,
        server: DevOrgServer,
        matches: Callable[[Request], bool],
        *,
        nth: int = 1,
        after: bool = False,
    ) -> None:
        self.arrived = threading.Event()
        self._release = threading.Event()
        self._seen = 0
        self._lock = threading.Lock()
        self._matches = matches
        self._nth = nth
        self._phase = "after" if after else "before"
        self._remove = server.add_hook(self._hook)

    def _hook(self, phase: str, req: Request, _response: Response | None) -> None:
        if phase != self._phase or not self._matches(req):
            return
        with self._lock:
            self._seen += 1
            mine = self._seen == self._nth
        if mine:
            self.arrived.set()
            self._release.wait(ARRIVAL_TIMEOUT_S)

    def kill_when_held(self, proc: subprocess.Popen[bytes]) -> int:
        """SIGKILL ``proc`` once its request is held; return its exit code."""
        try:
            waited = 0.0
            while not self.arrived.wait(0.05):
                waited += 0.05
                if proc.poll() is not None or waited > ARRIVAL_TIMEOUT_S:
                    proc.kill()
                    raise AssertionError(
                        f"the held request never arrived (exit {proc.poll()}): the test's "
                        "expectation of the run's calls is wrong"
                    )
            proc.send_signal(signal.SIGKILL)
            return finish(proc)
        finally:
            self.release()

    def release(self) -> None:
        self._remove()
        self._release.set()


def is_write(req: Request) -> bool:
    """A record write (sObject collections, single-record calls), not a query."""
    return req.method in ("POST", "PATCH", "DELETE") and "/sobjects" in req.path
