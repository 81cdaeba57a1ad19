"""The one mapping from errors to exit codes (docs/contracts.md)."""

from __future__ import annotations

import pytest

from sfsync import errors


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.UsageError("x"), 2),
        (errors.ConfigError(["a: b"]), 2),
        (errors.SchemaError("x"), 2),
        (errors.DataFileError("x"), 2),
        (errors.DatabaseUnreachable("x"), 3),
        (errors.SalesforceUnreachable("x"), 3),
        (errors.AuthError("x"), 3),
        (errors.ApiError("x", status=400, error_code="MALFORMED_QUERY"), 3),
        (errors.BudgetExhausted("x"), 4),
        (errors.PartialFailure("x"), 5),
        (errors.LockHeld("x"), 6),
        (RuntimeError("bug"), 70),
    ],
)
def test_exit_codes(exc: BaseException, code: int) -> None:
    assert errors.exit_code_for(exc) == code


def test_config_error_lists_every_problem() -> None:
    exc = errors.ConfigError(["a.b: bad", "c: worse"], source="x.yaml")
    assert str(exc) == "configuration has 2 problems in x.yaml:\n  - a.b: bad\n  - c: worse"
