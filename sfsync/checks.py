"""``sfsync check``: preflight checks, each a named result rather than an exception.

Every check runs even when an earlier one failed (a config error aside, which
stops everything), so one ``sfsync check`` shows an operator all that is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

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


def _salesforce(loaded: LoadedSettings) -> Iterator[CheckResult]:
    """Login, the integration user, API version, objects and fields, remaining calls."""
    from sfsync.errors import EXIT_USAGE
    from sfsync.extract import plan_objects
    from sfsync.salesforce import ApiBudget, RetryPolicy, SalesforceClient

    settings = loaded.settings
    sf = settings.salesforce
    missing = sf.missing_for_flow()
    if missing:
        yield CheckResult(
            "salesforce",
            False,
            f"not configured for auth {sf.auth}: set {', '.join(missing)}",
            EXIT_USAGE,
        )
        return
    # A preflight must report the remaining allowance even below sync.api_floor.
    client = SalesforceClient(sf, ApiBudget(1.0, 0), RetryPolicy.from_settings(settings.sync))
    try:
        client.login()
    except SfsyncError as exc:
        yield CheckResult("salesforce login", False, exc.message, exc.exit_code)
        return
    try:
        assert client.session is not None
        yield CheckResult("salesforce login", True, f"{sf.auth} at {client.instance_url}")
        yield from _salesforce_details(client, loaded, plan_objects)
    except SfsyncError as exc:
        yield CheckResult("salesforce", False, exc.message, exc.exit_code)
    finally:
        client.close()


def _salesforce_details(
    client: Any, loaded: LoadedSettings, plan_objects: Any
) -> Iterator[CheckResult]:
    from sfsync.errors import EXIT_USAGE, ConfigError
    from sfsync.salesforce import soql

    settings = loaded.settings
    user_id = client.integration_user_id
    if user_id:
        rows = client.query_all(
            soql.select(
                ["Id", "Username", "Name", "IsActive"], "User", where=[soql.equals("Id", user_id)]
            )
        )
        who = rows[0] if rows else {}
        yield CheckResult(
            "integration user",
            bool(rows),
            f"{who.get('Name')} <{who.get('Username')}> ({user_id})"
            if rows
            else f"{user_id} not found",
            0 if rows else EXIT_USAGE,
        )
    else:
        yield CheckResult(
            "integration user", False, "Salesforce did not say who we are logged in as", EXIT_USAGE
        )
    versions = client.versions()
    wanted = settings.salesforce.api_version
    yield CheckResult(
        "api version",
        wanted in versions,
        f"{wanted} (the org serves {versions[0]}..{versions[-1]})"
        if versions and wanted in versions
        else f"{wanted} is not served by this org (salesforce.api_version); "
        f"it serves {', '.join(versions[-5:])}",
        0 if wanted in versions else EXIT_USAGE,
    )
    limits = client.limits()
    daily = limits.get("DailyApiRequests", {})
    remaining, maximum = daily.get("Remaining"), daily.get("Max")
    if remaining is not None and maximum:
        share = int(remaining * settings.sync.max_api_share)
        low = remaining <= settings.sync.api_floor
        yield CheckResult(
            "api budget",
            not low,
            f"{remaining:,} of {maximum:,} daily calls left; a run may use {share:,} "
            f"(sync.max_api_share {settings.sync.max_api_share:g}, sync.api_floor "
            f"{settings.sync.api_floor:,})",
            4 if low else 0,
        )
    try:
        plans, skipped = plan_objects(settings, client, list(settings.sync.objects))
    except ConfigError as exc:
        for problem in exc.problems:
            yield CheckResult("fields", False, problem, EXIT_USAGE)
        return
    fields = sum(len(p.fields) for p in plans.values())
    absent = f"; not in this org: {', '.join(skipped)}" if skipped else ""
    yield CheckResult("objects", True, f"{len(plans)} readable, {fields} fields{absent}")
    missing = _missing_needed_fields(settings, plans)
    for key, name in missing:
        yield CheckResult(
            "fields",
            False,
            f"{key}: Opportunity.{name} does not exist in this org or the integration user "
            "cannot read it; every audit (or write-back) would fail on it",
            EXIT_USAGE,
        )
    named = {f"(from {key})" for key, _ in missing}
    for plan in plans.values():
        for warning in plan.warnings:
            if not any(mark in warning for mark in named):
                yield CheckResult("fields", True, warning, warning=True)
    yield from _writeback_targets(client, loaded, plans)


def _missing_needed_fields(settings: Any, plans: dict[str, Any]) -> list[tuple[str, str]]:
    """The fields an enabled rule or the write-back needs that the org does not serve."""
    from sfsync.audit.rules import required_fields as audit_fields
    from sfsync.writeback import required_fields as writeback_fields

    opportunity = plans.get("Opportunity")
    served = {f.name.lower() for f in opportunity.fields} if opportunity is not None else set()
    needed = audit_fields(settings.audit) + writeback_fields(settings)
    return [(key, name) for key, name in needed if name.lower() not in served]


def _writeback_targets(
    client: Any, loaded: LoadedSettings, plans: dict[str, Any]
) -> Iterator[CheckResult]:
    from sfsync.errors import EXIT_USAGE
    from sfsync.salesforce import soql

    writeback = loaded.settings.writeback
    if not writeback.enabled:
        yield CheckResult("write-back", True, "disabled (writeback.enabled: false)")
        return
    task = plans.get("Task")
    key = writeback.task_key_field
    if key and task is not None:
        has_key = any(f.name.lower() == key.lower() for f in task.fields)
        yield CheckResult(
            "write-back",
            True,
            f"Task.{key} present: Tasks are upserted on it"
            if has_key
            else f"Task.{key} (writeback.task_key_field) does not exist: Tasks are created and "
            "reconciled by subject, opportunity and owner instead",
            warning=not has_key,
        )
    if writeback.fallback_owner_id:
        rows = client.query_all(
            soql.select(
                ["Id", "IsActive"],
                "User",
                where=[soql.equals("Id", writeback.fallback_owner_id)],
            )
        )
        ok = bool(rows) and bool(rows[0].get("IsActive"))
        yield CheckResult(
            "fallback owner",
            ok,
            f"{writeback.fallback_owner_id} is active"
            if ok
            else f"writeback.fallback_owner_id {writeback.fallback_owner_id} "
            + ("is inactive" if rows else "does not exist"),
            0 if ok else EXIT_USAGE,
        )


CHECKS: list[Check] = [_config, _database, _salesforce]


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
