"""The API budget guard: a share of the remaining daily allowance, and a floor never crossed.

Salesforce reports usage on every response (``Sforce-Limit-Info: api-usage=used/max``)
and in ``/limits``. The guard is consulted *before* each call, so a run stops
cleanly one call short of its budget instead of discovering it afterwards.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from sfsync.errors import BudgetExhausted

__all__ = ["ApiBudget", "parse_limit_info"]

_LIMIT_INFO_RE = re.compile(r"api-usage=(\d+)/(\d+)")


def parse_limit_info(header: str | None) -> tuple[int, int] | None:
    """``(used, max)`` from a ``Sforce-Limit-Info`` header, or None."""
    if not header:
        return None
    match = _LIMIT_INFO_RE.search(header)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2))


@dataclass
class ApiBudget:
    """How many calls this run may still make.

    ``allowance`` is fixed at the first observation: ``max_share`` of what was
    remaining then. ``floor`` is checked against the latest observation, so calls
    made by other integrations at the same time are respected too.
    """

    max_share: float
    floor: int
    calls: int = 0
    allowance: int | None = None
    remaining: int | None = None
    daily_max: int | None = None

    def observe(self, used: int, daily_max: int) -> None:
        self.daily_max = daily_max
        self.remaining = max(daily_max - used, 0)
        if self.allowance is None:
            self.allowance = math.floor(self.remaining * self.max_share)

    def check(self, calls: int = 1) -> None:
        """Raise :class:`BudgetExhausted` if ``calls`` more calls would exceed the budget."""
        if self.allowance is not None and self.calls + calls > self.allowance:
            raise BudgetExhausted(
                f"API budget reached: this run used {self.calls} of its {self.allowance} calls "
                f"(sync.max_api_share = {self.max_share:g} of the remaining daily allowance); "
                "the run stopped cleanly and kept what it had committed"
            )
        if self.remaining is not None and self.remaining - calls < self.floor:
            raise BudgetExhausted(
                f"API budget reached: the org has {self.remaining} API calls left today and "
                f"sync.api_floor is {self.floor}; the run stopped cleanly and kept what it had "
                "committed"
            )

    def spend(self) -> None:
        self.calls += 1
        if self.remaining is not None:
            self.remaining = max(self.remaining - 1, 0)

    @property
    def left(self) -> int | None:
        """Calls this run may still make (None before the first observation)."""
        if self.allowance is None or self.remaining is None:
            return None
        return max(min(self.allowance - self.calls, self.remaining - self.floor), 0)
