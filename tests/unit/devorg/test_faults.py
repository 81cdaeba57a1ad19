"""Fault specs parse strictly, and a seed makes the injected faults reproducible."""

from __future__ import annotations

import pytest

from sfsync.devorg import FaultSpec, FaultSpecError
from sfsync.devorg._faults import FaultInjector
from sfsync.errors import UsageError


def test_parse_the_documented_example() -> None:
    spec = FaultSpec.parse(
        "latency=50ms,error_rate=0.1,drop_rate=0.01,session_ttl=300,api_limit=5000,"
        "lock_rate=0.2,seed=7"
    )
    assert spec == FaultSpec(
        latency_ms=50.0,
        error_rate=0.1,
        drop_rate=0.01,
        session_ttl=300.0,
        api_limit=5000,
        lock_rate=0.2,
        seed=7,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [("latency=0.2s", 200.0), ("latency=75", 75.0), ("session_ttl=5m", None)],
)
def test_durations(text: str, expected: float | None) -> None:
    spec = FaultSpec.parse(text)
    if expected is None:
        assert spec.session_ttl == 300.0
    else:
        assert spec.latency_ms == pytest.approx(expected)


@pytest.mark.parametrize(
    "text", ["error_rate=2", "latency=fast", "nonsense=1", "seed", "api_limit=-3"]
)
def test_bad_specs_are_usage_errors(text: str) -> None:
    with pytest.raises(FaultSpecError) as info:
        FaultSpec.parse(text)
    assert isinstance(info.value, UsageError)
    assert info.value.exit_code == 2
    assert "--fault" in info.value.message


def test_same_seed_same_faults() -> None:
    spec = FaultSpec(error_rate=0.2, drop_rate=0.1, throttle_rate=0.1, lock_rate=0.3, seed=42)

    def run() -> list[object]:
        injector = FaultInjector(spec)
        return [injector.draw_request() if i % 3 else injector.draw_lock() for i in range(300)]

    first = run()
    assert first == run()
    assert {"drop", "error500", "error503", "throttle", None, True, False} <= set(first)
    other = FaultInjector(FaultSpec(error_rate=0.2, drop_rate=0.1, throttle_rate=0.1, seed=43))
    assert [other.draw_request() for _ in range(100)] != [
        FaultInjector(spec).draw_request() for _ in range(100)
    ]


def test_no_faults_by_default() -> None:
    injector = FaultInjector(FaultSpec())
    assert {injector.draw_request() for _ in range(200)} == {None}
    assert not any(injector.draw_lock() for _ in range(200))
