"""The cyclic garbage collector of an ``sfsync`` process: while it starts, and at work.

Start-up (the imports, the settings models, the rule registry) creates some 50,000
objects that live as long as the process. With CPython's default thresholds the
collector walks them again at each full collection, and once more when the process
ends: about 0.1 s of the 0.4 s that ``sfsync runs`` took. A sync of 100,000
opportunities then made some 3,800 collections, 2.1 s of its 26 s of CPU, although
almost all of its garbage is freed by reference counting as soon as a row is
written (measured with ``gc.callbacks``).

So the console entry point collects rarely while the process starts
(:func:`starting`), then freezes what start-up created, which no later collection
walks again, and lets the young generation grow to 10,000 objects between
collections (:func:`started`): that sync then made 41 collections, 0.09 s, with the
same peak memory.

A command that never reads the settings (``--help``, ``devorg``) keeps the start-up
threshold to its end: the collector still runs, every 100,000 allocations.

Only the console entry point (:func:`sfsync.cli.main`) calls these: a test or a
Python caller that runs commands in its own process keeps its collector as it is.
"""

from __future__ import annotations

import gc

__all__ = ["START_UP_THRESHOLD", "WORK_THRESHOLD", "started", "starting"]

# Allocations of container objects (less those freed) between two collections of the
# young generation; CPython's default is 700.
START_UP_THRESHOLD = 100_000
WORK_THRESHOLD = 10_000


class _Collector:
    """Whether start-up is under way (between :func:`starting` and :func:`started`)."""

    starting = False


def starting() -> None:
    """Collect rarely until :func:`started`."""
    _Collector.starting = True
    gc.set_threshold(START_UP_THRESHOLD, *gc.get_threshold()[1:])


def started() -> None:
    """Start-up is over (the settings are read): freeze what it created, and collect
    the young generation every :data:`WORK_THRESHOLD` allocations from now on. Does
    nothing unless :func:`starting` was called."""
    if not _Collector.starting:
        return
    _Collector.starting = False
    gc.freeze()
    gc.set_threshold(WORK_THRESHOLD, *gc.get_threshold()[1:])
