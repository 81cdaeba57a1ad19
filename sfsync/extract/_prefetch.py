"""Calls to Salesforce that overlap: the next page while this one is written, and
calls that do not depend on each other's answers sent together.

The org (or the network) prepares page N+1 while sfsync converts and commits
page N. One page is held ahead at most, so memory stays bounded by the page size.
Pages arrive in order; an error raised while fetching surfaces after the pages
fetched before it, so everything already received is still committed.
"""

from __future__ import annotations

import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["in_parallel", "prefetched"]

T = TypeVar("T")
R = TypeVar("R")
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


def in_parallel(call: Callable[[T], R], items: Sequence[T], *, limit: int) -> list[R]:
    """``[call(item) for item in items]`` with up to ``limit`` calls in flight at once.

    Each call runs in a copy of the caller's context (its log fields go along). All
    of them finish before this returns; then the first error, in the order of
    ``items``, is raised, and nothing of an item that failed is returned.
    """
    if len(items) <= 1 or limit <= 1:
        return [call(item) for item in items]
    with ThreadPoolExecutor(
        max_workers=min(limit, len(items)), thread_name_prefix="sfsync-call"
    ) as pool:
        futures = [pool.submit(contextvars.copy_context().run, call, item) for item in items]
    return [future.result() for future in futures]
