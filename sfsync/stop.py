"""Stopping on request: one flag that the signal handler sets and every loop and wait reads.

SIGTERM (and, for the worker, SIGINT) must end a run within seconds, at a point
where what was done is committed: between pages and batches the loops check the
flag, and the waits in between (a retry's back-off, a Bulk job's polls) wake up as
soon as it is set, instead of sleeping out their full length.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from sfsync.errors import Interrupted

__all__ = ["ShouldStop", "StopSignal", "never", "pause"]

ShouldStop = Callable[[], bool]


def never() -> bool:
    """The ``should_stop`` of work nobody can stop."""
    return False


class StopSignal:
    """A stop request. Call it to ask whether a stop was requested (a ``should_stop``)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    def __call__(self) -> bool:
        return self._event.is_set()

    def request(self, reason: str) -> None:
        self.reason = reason
        self._event.set()

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True as soon as a stop is requested."""
        return self._event.wait(seconds)

    @contextmanager
    def on_signals(self, *signums: signal.Signals) -> Iterator[StopSignal]:
        """Within the block, the given signals request a stop instead of ending the process."""

        def handler(signum: int, _frame: FrameType | None) -> None:
            self.request(signal.Signals(signum).name)

        previous = {signum: signal.signal(signum, handler) for signum in signums}
        try:
            yield self
        finally:
            for signum, old in previous.items():
                signal.signal(signum, old)


def pause(seconds: float, should_stop: ShouldStop | None) -> None:
    """Sleep ``seconds``, or raise :class:`Interrupted` as soon as a stop is requested."""
    if should_stop is None:
        time.sleep(seconds)
        return
    if should_stop():
        raise Interrupted("stopped on request while waiting; everything so far is committed")
    if isinstance(should_stop, StopSignal):
        stopped = should_stop.wait(seconds)
    else:  # any other callable is polled, a few times a second
        until = time.monotonic() + seconds
        stopped = False
        while (left := until - time.monotonic()) > 0 and not stopped:
            time.sleep(min(left, 0.1))
            stopped = should_stop()
    if stopped:
        raise Interrupted("stopped on request while waiting; everything so far is committed")
