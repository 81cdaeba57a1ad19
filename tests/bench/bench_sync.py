"""Sync benchmark (issues 5, 17): throughput, API calls vs the minimum, ingest and CPU per
row vs bare inserts, memory.

    python tests/bench/bench_sync.py [--sizes 50000,200000] [--mode rest|bulk|auto]
                                     [--dialect sqlite|postgresql] [--keep DIR]

For each size: generate an org (cached), serve it from a separate process (so the
sync's own memory is what is measured), run one full ``sfsync sync`` into a fresh
warehouse (SQLite, or a fresh PostgreSQL database: ``SFSYNC_TEST_POSTGRES_URL`` or a
throwaway cluster from ``tests/_postgres.py``) in a child process, then write the very
same rows as CSV text and, timed, parse that CSV and insert it with a bare DB-API
``executemany`` into a fresh copy of the schema on the same database, and print:

- rows/s of the sync (all objects, wall clock, HTTPS + JSON/CSV + conversion + upsert);
- API calls used vs the minimum: ceil(rows / 2000) per REST object, and
  job create + one poll + ceil(rows / page) locator pages per Bulk object;
- the bare parse + executemany rate and the ratio sync / bare (target >= 0.5);
- CPU microseconds per row: the sync process's own (user + system, ``getrusage`` in
  the child: start-up, TLS, parsing, conversion, upsert) and the bare baseline's
  (``process_time``), and their ratio (issue 17's target: <= 2);
- the sync process's peak RSS per size (target: about equal across sizes, < 400 MB).

Every figure is measured in the same run, on the same machine. The sync's child and
the timed part of the baseline both collect garbage as the ``sfsync`` command's process
does (``sfsync/cli/_startup.py``).
"""

from __future__ import annotations

import argparse
import csv
import gc
import io
import json
import math
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, resource, sys, time
# The collector as the sfsync command sets it (sfsync/cli/_startup.py).
from sfsync.cli._startup import started, starting
starting()
from sfsync.config import load_settings
from sfsync.warehouse import open_warehouse, upgrade
from sfsync.extract import run_sync
from sfsync.logging import configure_logging
configure_logging("json", level="WARNING")
settings = load_settings(sys.argv[1], environ={}).settings
started()
w = open_warehouse(settings.database, require_head=False, create=True)
with w.engine.begin() as c:
    upgrade(c)
started = time.perf_counter()
result = run_sync(w, settings)
seconds = time.perf_counter() - started
print(json.dumps({
    "seconds": seconds,
    "status": result.status,
    "api_calls": result.api_calls,
    "objects": {n: {"mode": r.mode, "rows": r.upserted, "calls": r.api_calls, "seconds": r.seconds}
                for n, r in result.objects.items()},
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across fork and exec, so a child would
    # report the benchmark parent's own peak (it loads whole tables for the baseline).
    "peak_rss_mb": int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024,
    "cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
}))
"""

TABLES = [
    "organization",
    "user",
    "record_type",
    "opportunity_stage",
    "currency_type",
    "product2",
    "opportunity",
    "opportunity_line_item",
    "opportunity_history",
    "task",
]


def generate(size: int, cache: Path) -> Path:
    out = cache / f"bench-org-{size}.json"
    if not out.exists():
        print(f"generating {size:,} opportunities -> {out}", flush=True)
        subprocess.run(
            [
                PY,
                "-m",
                "sfsync",
                "devorg",
                "generate",
                "--opportunities",
                str(size),
                "--seed",
                "1",
                "--out",
                str(out),
            ],
            check=True,
            cwd=ROOT,
        )
    return out


def serve(
    data: Path, work: Path, *options: str, log: Path | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    """``devorg serve`` the data file (with extra ``options``) until its config is written;
    its stderr goes to ``log`` if given."""
    config = work / "devorg.yaml"
    config.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "sfsync",
            "devorg",
            "serve",
            "--data",
            str(data),
            "--port",
            "0",
            "--write-config",
            str(config),
            *options,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if log is None else log.open("w"),
    )
    started = time.perf_counter()
    while not config.exists():
        if proc.poll() is not None:
            said = f": {log.read_text()[-2000:]}" if log else ""
            raise SystemExit(f"the dev org exited with {proc.returncode}{said}")
        time.sleep(0.2)
    print(
        f"  dev org serving after {time.perf_counter() - started:.1f}s (load of {data.name})",
        flush=True,
    )
    return proc, config


def minimum_calls(objects: dict[str, Any], page: int) -> int:
    total = 0
    for r in objects.values():
        if r["mode"] == "bulk":
            total += 2 + max(1, math.ceil(r["rows"] / page))
        elif r["mode"] in ("rest", "rest (bulk failed)"):
            total += max(1, math.ceil(r["rows"] / 2000))
    return total


@dataclass
class Bare:
    rows: int = 0
    seconds: float = 0.0
    cpu_s: float = 0.0


def _as_csv(rows: list[Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:  # JSON columns (``raw``) come back from psycopg as objects
        writer.writerow([json.dumps(v) if isinstance(v, dict | list) else v for v in row])
    return out.getvalue()


def _parse_and_insert(bare: Bare, text: str, insert: Any, commit: Any) -> None:
    """The baseline's timed part: parse CSV, insert 2,000 rows a transaction (as the sync)."""
    started, cpu = time.perf_counter(), time.process_time()
    reader = csv.reader(io.StringIO(text))
    while batch := [[v if v != "" else None for v in row] for row in islice(reader, 2000)]:
        insert(batch)
        commit()
        bare.rows += len(batch)
    bare.seconds += time.perf_counter() - started
    bare.cpu_s += time.process_time() - cpu


@contextmanager
def collecting_as_sfsync() -> Iterator[None]:
    """The collector as in the sfsync command's process (sfsync/cli/_startup.py): what
    exists so far frozen, the young generation collected every WORK_THRESHOLD objects.
    The baseline is timed under it too, so that the ratios compare like with like."""
    from sfsync.cli._startup import WORK_THRESHOLD

    saved = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(WORK_THRESHOLD, *saved[1:])
    try:
        yield
    finally:
        gc.set_threshold(*saved)
        gc.unfreeze()


def _copy_tables(select: Any, mark: str, executemany: Any, commit: Any) -> Bare:
    """Every object table's rows (``select``) as CSV, then timed: parse and insert them
    (``executemany`` with ``mark`` placeholders) into the copy."""
    bare = Bare()
    for table in TABLES:
        rows = select(f'SELECT * FROM "{table}"').fetchall()
        if not rows:
            continue
        sql = f'INSERT INTO "{table}" VALUES ({",".join([mark] * len(rows[0]))})'
        text = _as_csv(rows)
        del rows
        with collecting_as_sfsync():
            _parse_and_insert(bare, text, lambda batch, sql=sql: executemany(sql, batch), commit)
    return bare


def bare_sqlite(warehouse: Path, scratch: Path) -> Bare:
    """Parse every object table's rows as CSV and insert them with executemany into an
    empty copy of the schema (tables and indexes, the engine's pragmas)."""
    src = sqlite3.connect(warehouse)
    dst_path = scratch / "bare.db"
    dst_path.unlink(missing_ok=True)
    schema = [
        r[0]
        for r in src.execute(
            "SELECT sql FROM sqlite_master WHERE type IN ('table', 'index') AND sql IS NOT NULL "
            "ORDER BY type DESC"  # tables before indexes
        )
    ]
    dst = sqlite3.connect(dst_path)
    from sfsync.warehouse._engine import SQLITE_PRAGMAS

    for pragma in SQLITE_PRAGMAS:  # the same database settings as sfsync's own engine
        dst.execute(pragma)
    for statement in schema:
        dst.execute(statement)
    dst.commit()
    return _copy_tables(src.execute, "?", dst.executemany, dst.commit)


def bare_postgresql(warehouse_url: str, server: str) -> Bare:
    """The same on PostgreSQL: a fresh database with sfsync's schema, psycopg's executemany."""
    import psycopg
    from sqlalchemy.engine import make_url

    from tests._postgres import create_database

    def dsn(url: str) -> str:
        return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    target = create_database(server)
    from sfsync.config import DatabaseSettings
    from sfsync.warehouse import open_warehouse, upgrade

    empty = open_warehouse(DatabaseSettings(url=target), require_head=False, create=True)
    with empty.engine.begin() as conn:
        upgrade(conn)
    empty.dispose()
    with (
        psycopg.connect(dsn(warehouse_url)) as src,
        psycopg.connect(dsn(target)) as dst,
        dst.cursor() as cursor,
    ):
        return _copy_tables(src.execute, "%s", cursor.executemany, dst.commit)


def bench(
    size: int, mode: str, cache: Path, keep: Path | None, pg_server: str | None
) -> dict[str, Any]:
    data = generate(size, cache)
    work = Path(tempfile.mkdtemp(prefix=f"sfsync-bench-{size}-", dir=keep))
    if pg_server is None:
        url = f"sqlite:///{work / 'warehouse.db'}"
    else:
        from tests._postgres import create_database

        url = create_database(pg_server)
    server, config = serve(data, work)
    try:
        import yaml

        document = yaml.safe_load(config.read_text())
        document["database"] = {"url": url}
        threshold = {"rest": 10**9, "bulk": 1000, "auto": 50_000}[mode]
        document["sync"] = {
            "bulk_threshold": threshold,
            "bulk_poll_s": 0.5,
            "lag_s": 0,
            "max_api_share": 1.0,
            "api_floor": 0,
        }
        document["logging"] = {"level": "WARNING"}
        config.write_text(yaml.safe_dump(document))
        child = subprocess.run(
            [PY, "-c", CHILD, str(config)], capture_output=True, text=True, cwd=ROOT, check=False
        )
        if child.returncode != 0:
            raise SystemExit(child.stderr[-3000:])
        result = json.loads(child.stdout.strip().splitlines()[-1])
    finally:
        server.terminate()
        server.wait()
    rows = sum(r["rows"] for r in result["objects"].values())
    print(f"  sync: {rows:,} rows in {result['seconds']:.1f}s; the baseline...", flush=True)
    if pg_server is None:
        bare = bare_sqlite(work / "warehouse.db", work)
    else:
        bare = bare_postgresql(url, pg_server)
    result.update(
        size=size,
        rows=rows,
        rows_per_s=rows / result["seconds"],
        minimum_calls=minimum_calls(
            result["objects"], int(document["sync"].get("bulk_page_size", 20_000))
        ),
        bare_rows=bare.rows,
        bare_rows_per_s=bare.rows / bare.seconds,
        cpu_us_per_row=result["cpu_s"] / rows * 1e6,
        bare_cpu_us_per_row=bare.cpu_s / bare.rows * 1e6,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="50000,200000")
    parser.add_argument("--mode", choices=["rest", "bulk", "auto"], default="auto")
    parser.add_argument("--dialect", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "sfsync-bench")
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep warehouses under this directory"
    )
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    with ExitStack() as stack:
        pg_server = None
        if args.dialect == "postgresql":
            from tests._postgres import postgres_server

            pg_server = stack.enter_context(postgres_server())
        results = [bench(size, args.mode, args.cache, args.keep, pg_server) for size in sizes]
    print(f"\nsync benchmark ({args.mode} mode, {args.dialect}), {os.cpu_count()} cores")
    header = (
        f"{'opps':>9} {'rows':>10} {'sec':>7} {'rows/s':>8} {'calls':>6} {'min':>6} "
        f"{'calls/min':>9} {'bare rows/s':>11} {'sync/bare':>9} {'cpu us/row':>10} "
        f"{'bare us/row':>11} {'cpu ratio':>9} {'peak MB':>8}"
    )
    print(header)
    for r in results:
        print(
            f"{r['size']:>9,} {r['rows']:>10,} {r['seconds']:>7.1f} {r['rows_per_s']:>8,.0f} "
            f"{r['api_calls']:>6} {r['minimum_calls']:>6} "
            f"{r['api_calls'] / r['minimum_calls']:>9.3f} {r['bare_rows_per_s']:>11,.0f} "
            f"{r['rows_per_s'] / r['bare_rows_per_s']:>9.3f} {r['cpu_us_per_row']:>10.1f} "
            f"{r['bare_cpu_us_per_row']:>11.1f} "
            f"{r['cpu_us_per_row'] / r['bare_cpu_us_per_row']:>9.2f} {r['peak_rss_mb']:>8.0f}"
        )
    for r in results:
        modes = ", ".join(
            f"{n} {o['mode']} {o['rows']:,} rows/{o['calls']} calls/{o['seconds']:.1f}s"
            for n, o in r["objects"].items()
            if o["rows"]
        )
        print(f"  {r['size']:,}: {modes}")
    if len(results) > 1:
        print(
            f"peak RSS ratio largest/smallest: {results[-1]['peak_rss_mb'] / results[0]['peak_rss_mb']:.2f}"
        )


if __name__ == "__main__":
    main()
