"""``sfsync check``: preflight checks, each a named result rather than an exception.

Every check runs even when an earlier one failed (a config error aside, which
stops everything), so one ``sfsync check`` shows an operator all that is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sfsync.config import LoadedSettings
from sfsync.errors import EXIT_OK, SfsyncError

__all__ = ["CheckResult", "run_checks", "worst_exit_code"]


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    exit_code: int = EXIT_OK
    warning: bool = False


Check = Callable[[LoadedSettings], Iterator[CheckResult]]


def _config(loaded: LoadedSettings) -> Iterator[CheckResult]:
    yield CheckResult("config", True, f"valid ({loaded.source})")
    for warning in loaded.warnings:
        yield CheckResult("config", True, warning, warning=True)


def _database(loaded: LoadedSettings) -> Iterator[CheckResult]:
    from sfsync.warehouse import open_warehouse
    from sfsync.warehouse.migrate import current_revision, head_revision

    settings = loaded.settings.database
    try:
        warehouse = open_warehouse(settings, require_head=False)
    except SfsyncError as exc:
        yield CheckResult("database", False, exc.message, exc.exit_code)
        return
    try:
        yield CheckResult(
            "database", True, f"reachable: {warehouse.dialect} {settings.display_url()}"
        )
        with warehouse.engine.connect() as conn:
            current = current_revision(conn)
        head = head_revision()
        if current == head:
            yield CheckResult("schema", True, f"at head revision {head}")
        else:
            from sfsync.warehouse.migrate import require_head_revision

            try:
                with warehouse.engine.connect() as conn:
                    require_head_revision(conn)
            except SfsyncError as exc:
                yield CheckResult("schema", False, exc.message, exc.exit_code)
    finally:
        warehouse.dispose()


CHECKS: list[Check] = [_config, _database]


def run_checks(loaded: LoadedSettings) -> list[CheckResult]:
    """Run every registered check in order and collect the results."""
    results: list[CheckResult] = []
    for check in CHECKS:
        results.extend(check(loaded))
    return results


def worst_exit_code(results: list[CheckResult]) -> int:
    """The exit code of the first failed check whose code is most severe (3 before 2)."""
    failed = [r.exit_code for r in results if not r.ok]
    if not failed:
        return EXIT_OK
    return max(failed)
