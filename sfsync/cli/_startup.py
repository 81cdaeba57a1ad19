"""The cyclic garbage collector of an ``sfsync`` process while it starts.

Start-up (the imports, the settings models, the rule registry) creates some 50,000
objects that live as long as the process. CPython's collector walks them again at
each full collection while they are being created, and once more when the process
ends. Measured with ``tests/bench/bench_startup.py``: about 0.1 s of the 0.4 s that
``sfsync runs`` took. Collecting rarely during start-up, and freezing what it
created (``gc.freeze``) once it is over, saves that time.

A command that never reads the settings (``--help``, ``devorg``) keeps the rare
collection to its end: the collector still runs, every 100,000 allocations.

Only the console entry point (:func:`sfsync.cli.main`) calls these: a test or a
Python caller that runs commands in its own process keeps its collector as it is.
"""

from __future__ import annotations

import gc

__all__ = ["started", "starting"]

# Container allocations between two young collections while the process starts
# (CPython's default is 700): start-up creates objects that stay, not garbage.
START_UP_THRESHOLD = 100_000


class _Collector:
    """The thresholds to restore when start-up is over; None when none is under way."""

    saved: tuple[int, int, int] | None = None


def starting() -> None:
    """Collect rarely until :func:`started`."""
    _Collector.saved = gc.get_threshold()
    gc.set_threshold(START_UP_THRESHOLD, *_Collector.saved[1:])


def started() -> None:
    """Start-up is over (the settings are read): what it created is kept out of later
    collections, and the collector runs as usual again. Does nothing unless
    :func:`starting` was called."""
    if _Collector.saved is None:
        return
    gc.freeze()
    gc.set_threshold(*_Collector.saved)
    _Collector.saved = None
