"""Benchmark: the HTML report of a large warehouse, as the library makes it and as the command does.

    python tests/bench/bench_report.py [--opportunities N] [--dialect sqlite|postgresql|both]
                                       [--repeat 3]

Fills a fresh warehouse with N opportunities (100,000 by default) and eight
nightly audits with ``fill_bulk`` (tests/integration/report/bulk.py, the data of
tests/integration/report/test_scale.py), then measures, each the median of
``--repeat`` timings:

* in this process: ``load_settings`` (a config file naming the warehouse),
  ``open_warehouse`` (with its schema check), ``build_report`` (the queries),
  ``render_html`` and ``write_report`` (build, render and the atomic write:
  what test_scale.py times);
* ``sfsync report --out FILE --as-of DAY`` as a fresh process: everything a user
  waits for (start-up, settings, the schema check, the report, the write), and
  ``sfsync --version`` beside it (start-up alone);

and prints seconds, the page's size and the ratio of the command to
``write_report``. The target of issue 17 is under 3 s for the command at 100,000
opportunities. Not collected by pytest. PostgreSQL: ``SFSYNC_TEST_POSTGRES_URL``
or a throwaway cluster from ``tests/_postgres.py`` (initdb/pg_ctl on PATH, run as
the ``postgres`` OS user when root).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sfsync.config import DatabaseSettings, load_settings
from sfsync.report import build_report, render_html, write_report
from sfsync.warehouse import open_warehouse, upgrade
from tests._postgres import scratch_database
from tests.integration.report.bulk import fill_bulk

ROOT = Path(__file__).resolve().parents[2]
AS_OF = date(2025, 3, 14)
TARGET_S = 3.0


def median_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """The median seconds of ``repeat`` calls, and the last call's value."""
    seconds = []
    value = None
    for _ in range(repeat):
        started = time.perf_counter()
        value = fn()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), value


def command_seconds(argv: list[str], env: dict[str, str], repeat: int) -> float:
    def once() -> None:
        done = subprocess.run(argv, env=env, capture_output=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()}")

    return median_of(repeat, once)[0]


def bench(dialect: str, n: int, repeat: int) -> None:
    print(f"\n== {dialect}: {n:,} opportunities ==", flush=True)
    with (
        scratch_database(dialect, prefix="sfsync-bench-report-") as url,
        tempfile.TemporaryDirectory(prefix="sfsync-bench-") as tmp,
    ):
        warehouse = open_warehouse(DatabaseSettings(url=url), require_head=False, create=True)
        try:
            with warehouse.engine.begin() as conn:
                upgrade(conn)
            started = time.perf_counter()
            org = fill_bulk(warehouse, opportunities=n, as_of=AS_OF, audits=8)
            print(f"fill: {time.perf_counter() - started:.1f}s  {org}", flush=True)
        finally:
            warehouse.dispose()

        config = Path(tmp) / "sfsync.yaml"
        config.write_text(f"database:\n  url: {url}\n", encoding="utf-8")
        out = Path(tmp) / "report.html"
        figures: dict[str, float] = {}
        figures["load_settings"], loaded = median_of(repeat, lambda: load_settings(config))
        settings = loaded.settings

        def open_and_close() -> None:
            open_warehouse(settings.database).dispose()

        figures["open_warehouse"], _ = median_of(repeat, open_and_close)
        warehouse = open_warehouse(settings.database)
        try:
            figures["build_report"], data = median_of(
                repeat, lambda: build_report(warehouse, settings, as_of=AS_OF)
            )
            figures["render_html"], page = median_of(repeat, lambda: render_html(data))
            figures["write_report"], _ = median_of(
                repeat, lambda: write_report(warehouse, settings, out, as_of=AS_OF)
            )
        finally:
            warehouse.dispose()

        env = {k: v for k, v in os.environ.items() if not k.startswith("SFSYNC_")}
        env.update(SFSYNC_CONFIG=str(config), PYTHONPATH=str(ROOT))
        sfsync = [sys.executable, "-m", "sfsync"]
        figures["sfsync --version"] = command_seconds([*sfsync, "--version"], env, repeat)
        figures["sfsync report"] = command_seconds(
            [*sfsync, "report", "--out", str(out), "--as-of", AS_OF.isoformat()], env, repeat
        )
    for name, seconds in figures.items():
        print(f"  {name:<18} {seconds:>6.2f}s")
    command, library = figures["sfsync report"], figures["write_report"]
    verdict = "ok" if command < TARGET_S else "MISSED"
    print(
        f"  page {len(page.encode()) / 1024:,.0f} KiB; sfsync report / write_report "
        f"{command / library:.2f}x; target < {TARGET_S:.0f}s {verdict}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opportunities", type=int, default=100_000)
    parser.add_argument("--dialect", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3, help="median of N timings")
    args = parser.parse_args()
    dialects = ["sqlite", "postgresql"] if args.dialect == "both" else [args.dialect]
    for dialect in dialects:
        bench(dialect, args.opportunities, args.repeat)


if __name__ == "__main__":
    main()
