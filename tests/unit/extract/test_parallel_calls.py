"""``in_parallel``: independent calls in flight together, answers in order, errors after all."""

from __future__ import annotations

import contextvars
import threading

import pytest

from sfsync.extract._prefetch import in_parallel

_RUN = contextvars.ContextVar("run", default="none")


def test_the_calls_are_in_flight_together_and_answer_in_order() -> None:
    """Each call waits until all three have started: run one after another, none would."""
    started = threading.Barrier(3, timeout=60)

    def call(n: int) -> int:
        started.wait()
        return n * 10

    assert in_parallel(call, [1, 2, 3], limit=4) == [10, 20, 30]


def test_no_more_than_the_limit_are_in_flight() -> None:
    """Two at a time (each pair meets at a barrier), on no more than two threads."""
    pairs = threading.Barrier(2, timeout=60)
    threads: set[str] = set()

    def call(n: int) -> int:
        pairs.wait()
        threads.add(threading.current_thread().name)
        return n

    assert in_parallel(call, list(range(6)), limit=2) == list(range(6))
    assert len(threads) == 2


def test_an_error_is_raised_once_every_call_has_finished() -> None:
    finished: list[int] = []
    second_failed = threading.Event()

    def call(n: int) -> int:
        if n == 2:
            second_failed.set()
            raise ValueError("no answer for 2")
        if n == 3:
            second_failed.wait(60)  # ends after the failure: still waited for
        finished.append(n)
        return n

    with pytest.raises(ValueError, match="no answer for 2"):
        in_parallel(call, [1, 2, 3], limit=3)
    assert sorted(finished) == [1, 3]


def test_the_calls_see_the_callers_context() -> None:
    """Log fields bound by the run (structlog's contextvars) go along into each call."""
    token = _RUN.set("run-7")
    try:
        assert in_parallel(lambda _n: _RUN.get(), [1, 2], limit=2) == ["run-7", "run-7"]
    finally:
        _RUN.reset(token)


def test_a_single_call_runs_in_the_callers_thread() -> None:
    assert in_parallel(lambda _n: threading.current_thread().name, [1], limit=4) == [
        threading.current_thread().name
    ]
