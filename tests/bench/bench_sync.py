"""Sync benchmark (issue 5): throughput, API calls vs the minimum, ingest vs bare inserts, memory.

    python tests/bench/bench_sync.py [--sizes 50000,200000] [--mode rest|bulk|auto] [--keep DIR]

For each size: generate an org (cached), serve it from a separate process (so the
sync's own memory is what is measured), run one full ``sfsync sync`` into a fresh
SQLite warehouse in a child process, then insert the very same rows with a bare
DB-API ``executemany`` into a fresh copy of the schema, and print:

- rows/s of the sync (all objects, wall clock, HTTPS + JSON/CSV + conversion + upsert);
- API calls used vs the minimum: ceil(rows / 2000) per REST object, and
  job create + one poll + ceil(rows / page) locator pages per Bulk object;
- the bare executemany rate and the ratio sync / bare (target >= 0.5);
- the sync process's peak RSS per size (target: about equal across sizes).

Every figure is measured in the same run, on the same machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable

CHILD = r"""
import json, sys, time
from sfsync.config import load_settings
from sfsync.warehouse import open_warehouse, upgrade
from sfsync.extract import run_sync
from sfsync.logging import configure_logging
configure_logging("json", level="WARNING")
settings = load_settings(sys.argv[1], environ={}).settings
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
}))
"""


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


def serve(data: Path, work: Path) -> tuple[subprocess.Popen[bytes], Path]:
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
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = time.perf_counter()
    while not config.exists():
        if proc.poll() is not None:
            raise SystemExit(f"the dev org exited with {proc.returncode}")
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


def bare_insert_rate(warehouse: Path, scratch: Path) -> tuple[int, float]:
    """Copy every object table's rows into an empty copy of the schema with executemany."""
    src = sqlite3.connect(warehouse)
    dst_path = scratch / "bare.db"
    dst_path.unlink(missing_ok=True)
    # Tables *and* their indexes: the same database the sync writes into.
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
    tables = [
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
    rows_total, seconds = 0, 0.0
    for table in tables:
        rows = src.execute(f'SELECT * FROM "{table}"').fetchall()
        if not rows:
            continue
        marks = ",".join("?" * len(rows[0]))
        sql = f'INSERT INTO "{table}" VALUES ({marks})'
        started = time.perf_counter()
        for start in range(0, len(rows), 2000):  # the sync commits a page at a time too
            dst.executemany(sql, rows[start : start + 2000])
            dst.commit()
        seconds += time.perf_counter() - started
        rows_total += len(rows)
    return rows_total, seconds


def bench(size: int, mode: str, cache: Path, keep: Path | None) -> dict[str, Any]:
    data = generate(size, cache)
    work = Path(tempfile.mkdtemp(prefix=f"sfsync-bench-{size}-", dir=keep))
    server, config = serve(data, work)
    try:
        import yaml

        document = yaml.safe_load(config.read_text())
        document["database"] = {"url": f"sqlite:///{work / 'warehouse.db'}"}
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
    bare_rows, bare_seconds = bare_insert_rate(work / "warehouse.db", work)
    result.update(
        size=size,
        rows=rows,
        rows_per_s=rows / result["seconds"],
        minimum_calls=minimum_calls(
            result["objects"], int(document["sync"].get("bulk_page_size", 20_000))
        ),
        bare_rows=bare_rows,
        bare_rows_per_s=bare_rows / bare_seconds,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="50000,200000")
    parser.add_argument("--mode", choices=["rest", "bulk", "auto"], default="auto")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "sfsync-bench")
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep warehouses under this directory"
    )
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    results = [bench(int(s), args.mode, args.cache, args.keep) for s in args.sizes.split(",")]
    print(f"\nsync benchmark ({args.mode} mode), {os.cpu_count()} cores")
    header = f"{'opps':>8} {'rows':>9} {'sec':>7} {'rows/s':>8} {'calls':>6} {'min':>6} {'calls/min':>9} {'bare rows/s':>11} {'sync/bare':>9} {'peak MB':>8}"
    print(header)
    for r in results:
        print(
            f"{r['size']:>8,} {r['rows']:>9,} {r['seconds']:>7.1f} {r['rows_per_s']:>8,.0f} "
            f"{r['api_calls']:>6} {r['minimum_calls']:>6} {r['api_calls'] / r['minimum_calls']:>9.3f} "
            f"{r['bare_rows_per_s']:>11,.0f} {r['rows_per_s'] / r['bare_rows_per_s']:>9.3f} {r['peak_rss_mb']:>8.0f}"
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
