"""Write batches on a writer thread while the next batch is converted.

The database drivers release the GIL while SQLite or PostgreSQL works, so the
conversion of batch N+1 (Python) overlaps the writing of batch N. Batches are
written one by one, in order (what commits when is the ``write`` callable's
business); at most ``depth`` wait. An error on the writer surfaces at the next
hand-over or at the end, after which nothing more is written: the last
committed progress marker stays the truth. ``finish`` runs on the writer thread
last, whatever happened (to roll back what was left uncommitted).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

__all__ = ["OrderedWriter"]

_DONE = object()


class OrderedWriter:
    def __init__(
        self,
        commit: Callable[[Any], None],
        *,
        depth: int = 1,
        finish: Callable[[], None] | None = None,
    ) -> None:
        self._commit = commit
        self._finish = finish
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sfsync-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                if self._finish is not None:
                    try:
                        self._finish()
                    except BaseException as exc:
                        if self._error is None:
                            self._error = exc
                return
            if self._error is not None:
                continue  # drain what is left without writing it
            try:
                self._commit(item)
            except BaseException as exc:  # handed to the producer, never lost
                self._error = exc

    def put(self, item: Any) -> None:
        """Hand a batch over (blocks while ``depth`` batches are waiting)."""
        self._raise_if_failed()
        self._queue.put(item)

    def close(self) -> None:
        """Wait until everything handed over is committed; raise a writer error."""
        self._queue.put(_DONE)
        self._thread.join()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def __enter__(self) -> OrderedWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        # The caller failed (or was stopped): still commit what it handed over, then let
        # its exception win over any writer error.
        self._queue.put(_DONE)
        self._thread.join()
