"""Fault injection: latency, 5xx, dropped connections, throttling, session expiry, row locks.

Faults are drawn from one ``random.Random(seed)`` in request order, with a fixed
number of draws per request (and one per written record), so the same seed and
the same sequence of requests inject the same faults whatever the rates are.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, fields

from sfsync.errors import UsageError

__all__ = ["FaultInjector", "FaultSpec", "FaultSpecError"]

_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


class FaultSpecError(UsageError, ValueError):
    """A ``--fault`` spec that cannot be parsed (exit code 2)."""


def _duration_s(key: str, text: str, default_unit: str) -> float:
    match = _DURATION_RE.match(text.strip())
    if not match:
        raise FaultSpecError(f"--fault {key}={text}: expected a duration such as 50ms, 2s, 5m")
    value, unit = float(match.group(1)), match.group(2) or default_unit
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


def _rate(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FaultSpecError(f"--fault {key}={text}: expected a rate between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise FaultSpecError(f"--fault {key}={text}: expected a rate between 0 and 1")
    return value


def _int(key: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise FaultSpecError(f"--fault {key}={text}: expected a whole number") from None
    if value < 0:
        raise FaultSpecError(f"--fault {key}={text}: expected a whole number >= 0")
    return value


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """What to inject. Rates are probabilities per request (``lock_rate``: per written record).

    ``latency_ms`` is added to every API request; ``error_rate`` answers 500
    ``UNKNOWN_EXCEPTION`` or 503 ``SERVER_UNAVAILABLE``; ``drop_rate`` closes the
    connection without an answer; ``throttle_rate`` answers 429 with
    ``Retry-After: retry_after_s``; ``session_ttl`` (seconds) expires tokens;
    ``api_limit`` is the daily request allowance; ``lock_rate`` fails writes with
    ``UNABLE_TO_LOCK_ROW``; ``seed`` makes it all reproducible.
    """

    latency_ms: float = 0.0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    throttle_rate: float = 0.0
    retry_after_s: int = 1
    session_ttl: float | None = None
    api_limit: int | None = None
    lock_rate: float = 0.0
    seed: int | None = None

    @classmethod
    def parse(cls, spec: str) -> FaultSpec:
        """``"latency=50ms,error_rate=0.1,drop_rate=0.01,session_ttl=300,api_limit=5000,..."``."""
        values: dict[str, object] = {}
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            key, sep, text = part.partition("=")
            key = key.strip().lower()
            if not sep:
                raise FaultSpecError(f"--fault {part}: expected key=value")
            if key == "latency":
                values["latency_ms"] = _duration_s(key, text, "ms") * 1000.0
            elif key in ("error_rate", "drop_rate", "throttle_rate", "lock_rate"):
                values[key] = _rate(key, text)
            elif key == "session_ttl":
                values[key] = _duration_s(key, text, "s")
            elif key in ("api_limit", "seed", "retry_after"):
                values["retry_after_s" if key == "retry_after" else key] = _int(key, text)
            else:
                known = "latency, error_rate, drop_rate, throttle_rate, retry_after, "
                known += "session_ttl, api_limit, lock_rate, seed"
                raise FaultSpecError(f"--fault {key}: unknown fault (known: {known})")
        return cls(**values)  # type: ignore[arg-type]

    def __str__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                parts.append(f"{f.name}={value}")
        return ",".join(parts)


class FaultInjector:
    """Draws faults in request order from a seeded generator (thread-safe)."""

    def __init__(self, spec: FaultSpec) -> None:
        self.spec = spec
        self._rng = random.Random(spec.seed)
        self._lock = threading.Lock()

    def draw_request(self) -> str | None:
        """``"drop"``, ``"error500"``, ``"error503"``, ``"throttle"`` or None for this request."""
        spec = self.spec
        with self._lock:
            drop, error, which, throttle = (self._rng.random() for _ in range(4))
        if drop < spec.drop_rate:
            return "drop"
        if error < spec.error_rate:
            return "error500" if which < 0.5 else "error503"
        if throttle < spec.throttle_rate:
            return "throttle"
        return None

    def draw_lock(self) -> bool:
        """Whether this record write fails with ``UNABLE_TO_LOCK_ROW``."""
        with self._lock:
            return self._rng.random() < self.spec.lock_rate
