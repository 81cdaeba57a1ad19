"""The one exception hierarchy of sfsync, and the one mapping to exit codes.

Every failure a user can cause or meet is an :class:`SfsyncError` subclass whose
message is one readable paragraph naming the offending key, value, file or
record. The CLI turns it into that paragraph on stderr and :func:`exit_code_for`.

Exit codes (the contract in docs/contracts.md):

===  ==========================================================================
0    ok
1    findings at or above ``--fail-on`` exist
2    usage, config or data error (nothing was written)
3    Salesforce or the database is unreachable, or refused our credentials
4    API budget reached; the run stopped cleanly with what it had committed
5    partial failure: some writes failed and are recorded for retry
6    another run holds the lock
70   internal error (a bug in sfsync): please report it with ``-v`` output
143  stopped on request (SIGTERM); what was committed is kept
===  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "EXIT_BUDGET",
    "EXIT_FINDINGS",
    "EXIT_INTERNAL",
    "EXIT_LOCKED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_STOPPED",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "ApiError",
    "AuthError",
    "BudgetExhausted",
    "ConfigError",
    "DataFileError",
    "DatabaseUnreachable",
    "InsecureEndpoint",
    "Interrupted",
    "LockHeld",
    "PartialFailure",
    "RecordError",
    "RetryableError",
    "SalesforceUnreachable",
    "SchemaError",
    "SessionExpired",
    "SfsyncError",
    "UsageError",
    "exit_code_for",
]

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_BUDGET = 4
EXIT_PARTIAL = 5
EXIT_LOCKED = 6
EXIT_INTERNAL = 70
EXIT_STOPPED = 143  # 128 + SIGTERM: stopped on request, what was committed is kept


class SfsyncError(Exception):
    """Base of every error sfsync reports to a user."""

    exit_code: int = EXIT_INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(SfsyncError):
    """A bad command-line argument (a date in the wrong format, an unknown rule id...)."""

    exit_code = EXIT_USAGE


class ConfigError(SfsyncError):
    """The configuration is invalid. Carries every problem, each with its key path."""

    exit_code = EXIT_USAGE

    def __init__(self, problems: Sequence[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = [f"configuration has {count} {noun}{where}:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class DataFileError(SfsyncError):
    """A data file (the dev org's, an import) is malformed. Names file, object, record, field."""

    exit_code = EXIT_USAGE


class SchemaError(SfsyncError):
    """The warehouse schema is not the one this sfsync expects (unknown or old revision)."""

    exit_code = EXIT_USAGE


class DatabaseUnreachable(SfsyncError):
    """The database cannot be reached or refused our credentials."""

    exit_code = EXIT_UNREACHABLE


class SalesforceUnreachable(SfsyncError):
    """Salesforce cannot be reached (connection errors, timeouts, 5xx after retries)."""

    exit_code = EXIT_UNREACHABLE


class InsecureEndpoint(SfsyncError):
    """Salesforce pointed sfsync at a URL it will not send credentials to (not https://)."""

    exit_code = EXIT_UNREACHABLE


class AuthError(SfsyncError):
    """Salesforce refused our credentials (bad client, bad password, unapproved app...)."""

    exit_code = EXIT_UNREACHABLE


class ApiError(SfsyncError):
    """Salesforce answered a request with an error that retrying will not fix.

    ``error_code`` is Salesforce's ``errorCode`` (``MALFORMED_QUERY``, ``INVALID_FIELD``...).
    """

    exit_code = EXIT_UNREACHABLE

    def __init__(self, message: str, *, status: int | None = None, error_code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class SessionExpired(ApiError):
    """``401 INVALID_SESSION_ID``: the client logs in again and replays the call once."""


class RetryableError(ApiError):
    """A transient failure (429, 5xx, ``UNABLE_TO_LOCK_ROW``, connection reset, timeout).

    Retried with backoff by the client; if it still fails it surfaces as
    :class:`SalesforceUnreachable`.
    """


class BudgetExhausted(SfsyncError):
    """The run reached its API budget (``sync.max_api_share`` / ``sync.api_floor``)."""

    exit_code = EXIT_BUDGET


class RecordError(SfsyncError):
    """One record failed (a write rejected by a validation rule, a row that does not fit).

    Never ends a run on its own: it is recorded, counted and reported.
    """

    exit_code = EXIT_PARTIAL

    def __init__(self, message: str, *, record_id: str | None = None, code: str = "") -> None:
        super().__init__(message)
        self.record_id = record_id
        self.code = code


class PartialFailure(SfsyncError):
    """The command finished but some of its writes failed; they are recorded for retry."""

    exit_code = EXIT_PARTIAL


class Interrupted(SfsyncError):
    """A stop was requested (SIGTERM): the work stopped at a point where all is committed."""

    exit_code = EXIT_STOPPED


class LockHeld(SfsyncError):
    """Another sfsync run holds the run lock on this warehouse."""

    exit_code = EXIT_LOCKED


def exit_code_for(exc: BaseException) -> int:
    """The process exit code for an exception that ends a command."""
    if isinstance(exc, SfsyncError):
        return exc.exit_code
    return EXIT_INTERNAL
