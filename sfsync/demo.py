"""``sfsync demo``: the whole product on a laptop, with no config and no Salesforce account.

Generates a synthetic org (fixed seed), serves it over HTTPS on a free loopback
port, syncs it into a SQLite warehouse, audits, previews the write-back, applies
it to the dev org, writes the HTML report, and says where everything is.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sfsync.config import load_settings
from sfsync.console import print_table
from sfsync.errors import SfsyncError

__all__ = ["run_demo"]

Echo = Callable[[str], None]


def _step(echo: Echo, number: int, text: str) -> float:
    echo(f"\n[{number}/7] {text}")
    return time.monotonic()


def run_demo(directory: Path, *, opportunities: int, seed: int, echo: Echo) -> int:
    """Run the demo in ``directory``; return the exit code."""
    from sfsync import runner, writeback
    from sfsync.context import run_context
    from sfsync.devorg import DevOrg, DevOrgServer, write_config
    from sfsync.devorg.generate import generate_org
    from sfsync.warehouse import open_warehouse, upgrade

    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    org_file = directory / "org.json"
    warehouse_file = directory / "warehouse.db"
    config_file = directory / "sfsync.yaml"
    report_file = directory / "report.html"
    after = directory / "org-after.json"
    for stale in (warehouse_file, Path(f"{warehouse_file}-wal"), Path(f"{warehouse_file}-shm")):
        stale.unlink(missing_ok=True)  # every demo starts from an empty warehouse
    started = time.monotonic()

    clock = _step(
        echo, 1, f"Generating a synthetic org: {opportunities:,} opportunities, seed {seed}"
    )
    stats = generate_org(opportunities=opportunities, seed=seed, out=org_file)
    echo(
        f"      {org_file} ({stats.bytes_written / 1e6:.1f} MB) in {time.monotonic() - clock:.1f}s"
    )

    clock = _step(echo, 2, "Serving it as a Salesforce-compatible org on loopback (HTTPS)")
    org = DevOrg.load(org_file)
    server = DevOrgServer(org, ca_dir=directory / "ca").start()
    try:
        write_config(
            config_file,
            server,
            database_url=f"sqlite:///{warehouse_file}",
            extra={"logging": {"level": "WARNING"}},
        )
        settings = load_settings(config_file, environ={}).settings
        echo(f"      {server.url} (config: {config_file}) in {time.monotonic() - clock:.1f}s")

        warehouse = open_warehouse(settings.database, require_head=False, create=True)
        with warehouse.engine.begin() as conn:
            upgrade(conn)

        # Steps 3 to 5 are one recorded run, exactly what `sfsync run` (and the nightly
        # worker) does: sync, audit and a preview of the write-back.
        clock = _step(echo, 3, "Syncing into the SQLite warehouse")
        with run_context(settings, warehouse=warehouse) as ctx:
            outcome = runner.run(ctx, apply=False, force=True)
        synced, audit, preview = outcome.sync, outcome.audit, outcome.writeback
        assert synced is not None
        assert audit is not None
        assert preview is not None
        print_table(
            f"synced in {synced.seconds:.1f}s with {synced.api_calls} API calls",
            ["object", "mode", "rows", "API calls"],
            [[r.name, r.mode, r.upserted, r.api_calls] for r in synced.objects.values()],
            stream=_EchoStream(echo),
        )

        _step(echo, 4, "Auditing the pipeline (docs/rules.md, profile global)")
        audit_seconds = sum(c.seconds for c in audit.rules)
        print_table(
            f"audit as of {audit.as_of} in {audit_seconds:.1f}s",
            ["rule", "severity", "open", "new", "resolved", "waived"],
            [[c.rule, c.severity, c.open, c.new, c.resolved, c.waived] for c in audit.rules],
            stream=_EchoStream(echo),
        )

        _step(echo, 5, "Previewing the write-back (nothing is written yet)")
        planned = preview.plan.counts()
        echo("      planned: " + ", ".join(f"{n} {action}" for action, n in planned.items()))
        print_table(
            "planned write-back by rule",
            ["rule", *planned],
            [[rule, *row.values()] for rule, row in preview.plan.counts_by_rule().items()],
            stream=_EchoStream(echo),
        )
        echo(f"      (run {outcome.run_id}: {outcome.status}, in {time.monotonic() - clock:.1f}s)")

        clock = _step(echo, 6, "Applying the write-back to the dev org")
        with run_context(settings, warehouse=warehouse) as ctx:
            applied = writeback.run(ctx, apply=True, force=True)
        echo(
            f"      {applied.created} Tasks created, {applied.completed} completed, "
            f"{applied.failed} failed, {applied.reassigned_total} "
            f"reassigned, {applied.api_calls} API calls, in {time.monotonic() - clock:.1f}s"
        )
        org.save(after)

        clock = _step(echo, 7, "Writing the HTML report")
        from sfsync.report import write_report

        write_report(warehouse, settings, report_file)
        echo(f"      {report_file} in {time.monotonic() - clock:.1f}s")
        warehouse.dispose()
    except SfsyncError as exc:
        echo(f"\ndemo failed: {exc.message}")
        return exc.exit_code
    finally:
        server.stop()
        org.close()

    devorg_config = directory / "devorg.yaml"
    echo(
        "\n".join(
            [
                f"\nDone in {time.monotonic() - started:.0f}s. Everything is in {directory}:",
                f"  report      {report_file}",
                f"  warehouse   {warehouse_file}",
                f"  config      {config_file}",
                f"  dev org     {org_file} (as generated), {after} (with sfsync's Tasks)",
                "",
                "Try next:",
                *_path_hint(),
                f"  export SFSYNC_CONFIG={config_file}",
                "  sfsync findings --rule close_date_slipping   # findings with slip metrics",
                "  sfsync findings --format csv > findings.csv   # for a spreadsheet",
                "  sfsync runs                                   # the recorded runs",
                "  # serve the org again and run against it:",
                f"  sfsync devorg serve --data {after} --port 0 --write-config {devorg_config} &",
                f"  SFSYNC_CONFIG={devorg_config} \\",
                f"    SFSYNC_DATABASE_URL=sqlite:///{warehouse_file} sfsync run --apply",
            ]
        )
    )
    return 0


def _path_hint() -> list[str]:
    """How to get ``sfsync`` on PATH when the demo ran from a virtualenv that is not active."""
    if shutil.which("sfsync"):
        return []
    activate = Path(sys.executable).parent / "activate"
    if activate.is_file():
        return [f"  . {activate}   # puts sfsync on PATH"]
    return [f"  alias sfsync='{sys.executable} -m sfsync'"]


class _EchoStream:
    """A write()-able that forwards whole lines to ``echo`` (for print_table)."""

    def __init__(self, echo: Echo) -> None:
        self.echo = echo
        self.buffer = ""

    def write(self, text: str) -> int:
        self.buffer += text
        while "\n" in self.buffer:
            line, self.buffer = self.buffer.split("\n", 1)
            self.echo(f"      {line}")
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False
