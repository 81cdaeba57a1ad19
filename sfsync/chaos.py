"""A chaos-testing knob: die at a named point, exactly as a SIGKILL there would leave things.

Set ``SFSYNC_CRASH_AT=<point>`` (or ``<point>:<n>`` for the n-th time the point is
reached in the process, counting from 1) and the process calls ``os._exit(137)``
there: no ``finally`` blocks, no flushing, no commit, what a kill -9 or an OOM kill
leaves behind. Tests place their kills here (or on progress they observe) rather
than after a wall-clock delay, so that a test kills exactly as often as it says on
a fast machine and on a loaded one.

Points of the sync, in the order one run reaches them:

``sync.bulk_job_created``
    a Bulk 2.0 job was created and its id committed as the object's resume point
    (every job the run needs is created first, up to ``sync.bulk_jobs_ahead``);
``sync.reference_committed``
    a reference object (Organization, User...) was refreshed and committed;
``sync.page_committed``
    a page (or Bulk chunk) of rows and its progress marker (watermark, locator)
    were committed together;
``sync.object_committed``
    an incremental object's pull, deletes and final watermark are committed; its
    live rows are not counted yet.

Points of the write-back, in the order one batch reaches them:

``writeback.after_reconcile``
    in-doubt rows of an earlier run were reconciled with Salesforce and committed;
``writeback.after_plan``
    every write of the plan is committed to the ledger as ``planned``;
``writeback.before_send``
    a batch is committed as ``sent``; the HTTP call has not been made;
``writeback.after_send``
    Salesforce answered the batch; the answer is not yet in the ledger (the
    moment that makes write-back hard: the Tasks exist, the ledger says ``sent``);
``writeback.after_confirm``
    the batch's outcomes are committed.

Unset (the default) it costs one environment lookup per point. It is for tests and
game days only; nothing in ``sfsync/salesforce/`` knows about it.
"""

from __future__ import annotations

import os
import threading

__all__ = ["CRASH_ENV", "CRASH_EXIT_CODE", "CRASH_POINTS", "crash_point"]

CRASH_ENV = "SFSYNC_CRASH_AT"
CRASH_EXIT_CODE = 137
CRASH_POINTS = (
    "sync.reference_committed",
    "sync.bulk_job_created",
    "sync.page_committed",
    "sync.object_committed",
    "writeback.after_reconcile",
    "writeback.after_plan",
    "writeback.before_send",
    "writeback.after_send",
    "writeback.after_confirm",
)
_reached: dict[str, int] = {}
_lock = threading.Lock()  # pages commit on a writer thread


def crash_point(name: str) -> None:
    """Exit the process at once if ``SFSYNC_CRASH_AT`` names this point (and count)."""
    assert name in CRASH_POINTS, f"unknown crash point {name!r}"
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point.strip() != name:
        return
    wanted = int(nth) if nth.strip().isdigit() else 1
    with _lock:
        _reached[name] = _reached.get(name, 0) + 1
        if _reached[name] == wanted:
            os._exit(CRASH_EXIT_CODE)
