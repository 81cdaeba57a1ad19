"""A chaos-testing knob: die at a named point of the write-back, like a SIGKILL would.

Set ``SFSYNC_CRASH_AT=<point>`` (or ``<point>:<n>`` for the n-th time the point is
reached, counting from 1) and the process calls ``os._exit(137)`` there: no
``finally`` blocks, no flushing, no ledger commit, exactly what a kill -9 or an
OOM kill leaves behind. Points, in the order one batch reaches them:

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

__all__ = ["CRASH_ENV", "CRASH_EXIT_CODE", "crash_point"]

CRASH_ENV = "SFSYNC_CRASH_AT"
CRASH_EXIT_CODE = 137
_reached: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Exit the process at once if ``SFSYNC_CRASH_AT`` names this point (and count)."""
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point.strip() != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    wanted = int(nth) if nth.strip().isdigit() else 1
    if _reached[name] == wanted:
        os._exit(CRASH_EXIT_CODE)
