"""The one retry policy: how many attempts, and how long to wait before each.

Every retry loop of the client uses it: a call (429/5xx, a lock, a dropped
connection), a login that cannot connect, a Bulk result page that broke off, a
query cursor that expired. Waiting itself is the caller's (the client's waits end
early on a stop request; tests inject a sleep).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sfsync.config import SyncSettings

__all__ = ["LOGIN_RETRY", "RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_s: float = 1.0
    max_s: float = 60.0

    @classmethod
    def from_settings(cls, sync: SyncSettings) -> RetryPolicy:
        return cls(sync.max_attempts, sync.backoff_base_s, sync.backoff_max_s)

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Full jitter (AWS architecture blog): uniform in [0, min(max, base * 2^attempt)]."""
        ceiling = min(self.max_s, self.base_s * (2**attempt))
        jittered = rng.uniform(0, ceiling)
        if retry_after is not None:
            return max(jittered, min(retry_after, self.max_s))
        return jittered


# Logging in: quick attempts, short pauses; the login's own deadline (3 x timeout_s)
# bounds how many fit.
LOGIN_RETRY = RetryPolicy(max_attempts=1_000, base_s=1.0, max_s=10.0)
