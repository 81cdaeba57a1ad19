"""``sfsync check``: the preflight, one line per check, the worst exit code."""

from __future__ import annotations

import sys

import click

from sfsync.cli._app import App, global_options, pass_app
from sfsync.logging import redact_text

__all__ = ["check"]


@click.command("check")
@global_options
@pass_app
def check(app: App) -> None:
    """Preflight: config, database, schema, Salesforce login, fields, API budget."""
    from sfsync.checks import run_checks, worst_exit_code
    from sfsync.console import printable

    results = run_checks(app.loaded)
    for result in results:
        mark = "warn" if result.warning else ("ok" if result.ok else "FAIL")
        click.echo(f"[{mark:>4}] {result.name}: {printable(redact_text(result.detail))}")
    code = worst_exit_code(results)
    if code:
        failed = sum(1 for r in results if not r.ok)
        app.tell(f"{failed} check(s) failed", event="check.failed", level="error", failed=failed)
        sys.exit(code)
