"""Fetch the next page while the current one is written.

The org (or the network) prepares page N+1 while sfsync converts and commits
page N. One page is held ahead at most, so memory stays bounded by the page size.
Pages arrive in order; an error raised while fetching surfaces after the pages
fetched before it, so everything already received is still committed.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

__all__ = ["prefetched"]

T = TypeVar("T")
_DONE = object()


def prefetched(pages: Iterator[T], *, depth: int = 1) -> Iterator[T]:
    """Iterate ``pages`` with up to ``depth`` items fetched ahead in a background thread."""
    slots: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        slots.put((page, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, never lost
            slots.put((_DONE, exc))
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()

    worker = threading.Thread(target=produce, name="sfsync-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = slots.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while worker.is_alive():
            with contextlib.suppress(queue.Empty):
                slots.get(timeout=0.05)
        worker.join()
