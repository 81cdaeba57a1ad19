"""``sfsync writeback``: preview the planned Tasks and flags, or ``--apply`` them.

A few lines over the write-back stage (:func:`sfsync.writeback.run`); the preview and the apply
show the same plan object. Kept import-light: the library is imported when the
command runs.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

import click

from sfsync.cli._app import App, global_options, pass_app
from sfsync.errors import BudgetExhausted, Interrupted, PartialFailure
from sfsync.stop import StopSignal

if TYPE_CHECKING:
    from sfsync.writeback import PlannedAction, WritebackResult

__all__ = ["writeback_command"]


def _short(text: str | None, width: int) -> str:
    from sfsync.console import printable

    text = printable(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _owner(action: PlannedAction) -> str:
    if action.original_owner_id and action.owner_id != action.original_owner_id:
        return f"{action.owner_id} (for {action.original_owner_id})"
    return action.owner_id or ""


def _what(action: PlannedAction) -> str:
    if action.action in ("set_flag", "clear_flag") or (action.action == "skip" and action.fields):
        return ", ".join(f"{k}={v!r}" for k, v in action.fields.items())
    return _short(action.subject or action.opportunity_name, 70)


def _print_preview(result: WritebackResult, show_skipped: bool) -> None:
    from sfsync.console import print_table, printable

    plan = result.plan
    counts = plan.counts()
    verb = "applied" if result.applied else "planned"
    click.echo(
        f"write-back {verb} for {plan.today.isoformat()}: {counts['create_task']} Task(s) to "
        f"create, {counts['complete_task']} to complete, {counts['set_flag']} flag(s) to set, "
        f"{counts['clear_flag']} to clear, {counts['skip']} skipped"
    )
    writes = [a for a in plan.actions if a.is_write]
    if writes:
        print_table(
            "planned writes",
            ["action", "rule", "opportunity", "owner", "due", "subject / fields", "reason"],
            [
                [
                    a.action,
                    a.rule or "",
                    a.opportunity_id,
                    _owner(a),
                    a.due_date.isoformat() if a.due_date else "",
                    _what(a),
                    printable(
                        f"{a.reason}; {a.reassigned_reason}" if a.reassigned_reason else a.reason
                    ),
                ]
                for a in writes
            ],
        )
    skips = [a for a in plan.actions if a.action == "skip"]
    if skips and show_skipped:
        print_table(
            "skipped",
            ["rule", "opportunity", "why", "reason"],
            [
                [a.rule or "flags", a.opportunity_id, a.skip_code, printable(a.reason)]
                for a in skips
            ],
        )
    elif skips:
        reasons = ", ".join(f"{code} {n}" for code, n in plan.skip_reasons().items())
        click.echo(f"skipped: {printable(reasons)} (--show-skipped lists them)")
    by_rule = plan.counts_by_rule()
    if by_rule:
        columns = ["create_task", "complete_task", "set_flag", "clear_flag", "skip"]
        print_table(
            "per rule",
            ["rule", *columns],
            [[rule, *(row[c] for c in columns)] for rule, row in by_rule.items()],
        )
    if plan.failures:
        print_table(
            "failures on record from earlier runs (failed: retried, see retry_later skips; "
            "abandoned: given up)",
            ["state", "action", "rule", "opportunity", "attempts", "error"],
            [
                [
                    f.state,
                    f.action,
                    f.rule,
                    f.opportunity_id,
                    f.attempts,
                    printable(f"{f.error_code}: {f.error_message}"),
                ]
                for f in plan.failures
            ],
        )


def _print_applied(result: WritebackResult) -> None:
    from sfsync.console import print_table, printable

    outcomes = Counter(f.outcome for f in result.failures)
    click.echo(
        f"write-back run {result.run_id}: {result.status}"
        f"{' (interrupted)' if result.interrupted else ''}; mode {result.mode or '-'}; "
        f"created {result.created}, completed {result.completed}, flags set "
        f"{result.flags_set}, cleared {result.flags_cleared}, reconciled {result.reconciled}, "
        f"reassigned {result.reassigned_total}, failed {result.failed} "
        f"({outcomes['retry']} retried next run, {outcomes['retry_later']} after a back-off, "
        f"{outcomes['in_doubt']} in doubt, {outcomes['gave_up']} given up); "
        f"{result.api_calls} API calls in {result.seconds:.1f}s"
    )
    if result.reassignments:
        print_table(
            "reassigned by Salesforce's answer",
            ["opportunity", "rule", "owner", "instead of", "reason"],
            [
                [r["opportunity_id"], r["rule"], r["owner_id"], r["original_owner_id"], r["reason"]]
                for r in result.reassignments
            ],
        )
    if result.failures:
        print_table(
            "failed writes (recorded in the ledger)",
            ["outcome", "action", "rule", "opportunity", "attempts", "error"],
            [
                [
                    f.outcome,
                    f.action,
                    f.rule or "flags",
                    f.opportunity_id,
                    f.attempts,
                    printable(f"{f.code}: {f.message}"),
                ]
                for f in result.failures
            ],
        )


@click.command("writeback")
@click.option(
    "--apply", "apply_", is_flag=True, help="Perform the planned writes (default: preview)."
)
@click.option(
    "--force",
    is_flag=True,
    help="Apply even above writeback.max_tasks_per_run or after a partial sync.",
)
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json: one JSON document on stdout (the plan, and what was applied).",
)
@click.option("--show-skipped", is_flag=True, help="List every skipped finding in the table.")
@global_options
@pass_app
def writeback_command(app: App, apply_: bool, force: bool, output: str, show_skipped: bool) -> None:
    """Preview (default) or apply the Tasks and flags the findings call for.

    Exit 2 when a safety gate refuses (too many Tasks, partial sync) and nothing was
    written; exit 5 when some writes failed (they are in the ledger and retried).
    """
    from sfsync import writeback
    from sfsync.console import printable
    from sfsync.context import run_context

    stop = StopSignal()
    # With --apply, SIGTERM finishes the current batch; what is left stays planned.
    with (
        stop.on_signals(signal.SIGTERM) if apply_ else contextlib.nullcontext(),
        run_context(app.settings, stop=stop) as ctx,
    ):
        result = writeback.run(ctx, apply=apply_, force=force)
    for warning in result.warnings:
        app.tell(f"warning: {printable(warning)}", event="writeback.warning", level="warning")
    if output == "json":
        document: dict[str, Any] = result.as_dict()
        json.dump(document, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        _print_preview(result, show_skipped)
        if result.applied:
            _print_applied(result)
    budget = result.budget_message()
    if budget is not None:
        raise BudgetExhausted(budget)
    if result.applied and result.interrupted:
        raise Interrupted(
            f"the write-back stopped on request after {result.written()}; the writes not "
            "sent stay in the ledger and the next `sfsync writeback --apply` sends them"
        )
    if result.applied and result.failures:
        raise PartialFailure(
            f"the write-back had {result.failed} failed write(s); they are recorded in the "
            "ledger and retried by later runs (`sfsync writeback` shows when)"
        )
