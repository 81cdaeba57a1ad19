"""The slip table's top N: the most extended first, the first seen winning ties."""

from __future__ import annotations

import random

import pytest

from sfsync.audit import SlipMetrics
from sfsync.report._data import _rank, _TopN


def _metrics(rng: random.Random, n: int) -> list[SlipMetrics]:
    def maybe(value: int) -> int | None:
        return None if rng.random() < 0.1 else value

    return [
        SlipMetrics(
            opportunity_id=f"006{i:015d}",
            # Mostly 0 or 1, as in a real pipeline; a few slip far; many ties.
            month_extensions=min(rng.choice((0, 0, 0, 0, 1, 1, 2, 3)) + rng.choice((0, 0, 5)), 9),
            days_since_stage_change=maybe(rng.randrange(0, 60, 10)),
            days_open=maybe(rng.randrange(0, 400, 50)),
            lower_bound=rng.random() < 0.2,
            source="history",
        )
        for i in range(n)
    ]


@pytest.mark.parametrize(("seed", "n", "keep"), [(1, 5000, 200), (2, 300, 200), (3, 1000, 1)])
def test_top_n_is_the_stable_sort_of_every_offer_cut_at_n(seed: int, n: int, keep: int) -> None:
    """Ranked by (extensions, days since a stage change, days open), unknown lowest; on equal
    ranks the opportunity offered first (the stream is in id order) is kept and listed first."""
    offered = _metrics(random.Random(seed), n)
    top = _TopN(keep)
    for metrics in offered:
        top.offer(metrics)
    expected = sorted(offered, key=_rank, reverse=True)[:keep]  # sorted() is stable
    assert top.items() == expected


def test_a_top_of_zero_keeps_nothing() -> None:
    top = _TopN(0)
    for metrics in _metrics(random.Random(4), 10):
        top.offer(metrics)
    assert top.items() == []
