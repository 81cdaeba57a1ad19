"""The container health check of the sfsync image (the Dockerfile's HEALTHCHECK).

    python /usr/local/lib/sfsync/healthcheck.py [--file PATH] [--max-age S] [--max-run S]

Standard library only: it runs in the image's Python, beside sfsync, as often as
Docker asks (every 30 s). Exit 0 means healthy, 1 unhealthy; one line on stdout
says why (``docker inspect`` shows it).

The file is the one ``sfsync worker`` rewrites every few seconds (see
``sfsync/scheduler.py``); its path is ``--file``, else ``$SFSYNC_SCHEDULE__HEALTH_FILE``
(the image sets ``/tmp/sfsync-health.json``). Unhealthy when:

- the file is older than ``--max-age`` seconds (default 60): the worker is hung;
- its ``last_status`` is ``failed``: the worker's last run failed (healthy again
  once a run succeeds);
- with ``--max-run`` (off by default), a run has been going for longer than that;
- it is not JSON, or a worker process is running but no file is there.

Healthy when no health file is configured, or when there is no file and no
``sfsync worker`` process in the container: a one-shot container (``sfsync run``,
``sfsync check``, ``db upgrade``) writes no health file, and is never marked
unhealthy for it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

HEALTH_FILE_ENV = "SFSYNC_SCHEDULE__HEALTH_FILE"
DEFAULT_MAX_AGE_S = 60.0


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    reason: str

    @property
    def exit_code(self) -> int:
        return 0 if self.healthy else 1


def evaluate(
    path: Path | None,
    *,
    now: float,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    max_run_s: float | None = None,
    worker_running: bool = False,
) -> Verdict:
    """Judge the health file at ``path`` as of ``now`` (seconds since the epoch)."""
    if path is None:
        return Verdict(True, "no health file is configured: nothing to check")
    try:
        modified = path.stat().st_mtime
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if worker_running:
            return Verdict(False, f"the worker is running but {path} does not exist")
        return Verdict(True, f"no {path} and no worker: a one-shot command, nothing to check")
    except OSError as exc:
        return Verdict(False, f"{path} cannot be read: {exc.strerror or exc}")
    try:
        document = json.loads(text)
    except ValueError:
        return Verdict(False, f"{path} is not JSON")
    if not isinstance(document, dict):
        return Verdict(False, f"{path} is not a JSON object")
    age = now - modified
    if age > max_age_s:
        return Verdict(
            False, f"{path} is {age:.0f} s old (more than {max_age_s:g} s): the worker is hung"
        )
    if document.get("last_status") == "failed":
        error = document.get("last_error") or "no error recorded"
        return Verdict(False, f"the last run failed (exit {document.get('last_exit')}): {error}")
    running_for = document.get("running_for_s")
    if max_run_s is not None and isinstance(running_for, int | float) and running_for > max_run_s:
        return Verdict(
            False, f"the run in progress has been going for {running_for:.0f} s: it is stuck"
        )
    status = document.get("status", "unknown")
    return Verdict(True, f"ok: worker {status}, last run {document.get('last_status', 'none')}")


def is_sfsync_worker(argv: Sequence[str]) -> bool:
    """Whether a process's arguments are ``sfsync [options] worker`` (also ``-m sfsync``)."""
    for index, arg in enumerate(argv):
        if Path(arg).name == "sfsync":
            return "worker" in argv[index + 1 :]
    return False


def _command_lines(proc: Path) -> Iterable[list[str]]:
    try:
        entries = list(proc.iterdir())
    except OSError:
        return
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # the process ended, or is not ours to read
        yield [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def worker_running(proc: Path = Path("/proc")) -> bool:
    """Whether an ``sfsync worker`` process runs in this (the container's) PID namespace."""
    return any(is_sfsync_worker(argv) for argv in _command_lines(proc))


def main(argv: Sequence[str] | None = None, *, now: float | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", help=f"the health file (default: ${HEALTH_FILE_ENV})")
    parser.add_argument(
        "--max-age",
        type=float,
        default=DEFAULT_MAX_AGE_S,
        help="seconds after which the file is stale (default: %(default)s)",
    )
    parser.add_argument(
        "--max-run", type=float, default=None, help="seconds a run may take (default: no limit)"
    )
    parser.add_argument("--proc", default="/proc", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    named = args.file if args.file is not None else os.environ.get(HEALTH_FILE_ENV, "")
    path = Path(named) if named.strip() not in ("", "null", "~") else None
    verdict = evaluate(
        path,
        now=time.time() if now is None else now,
        max_age_s=args.max_age,
        max_run_s=args.max_run,
        worker_running=path is not None and worker_running(Path(args.proc)),
    )
    print(verdict.reason)
    return verdict.exit_code


if __name__ == "__main__":
    sys.exit(main())
