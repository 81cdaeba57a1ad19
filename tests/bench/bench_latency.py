"""Sync at a real org's latency (issue 17): wall time against the critical path, API calls
against the minimum, and a warehouse equal to the org after SIGKILLs.

    python tests/bench/bench_latency.py [--size 100000] [--latency-ms 200] [--bulk-delay 20]
                                        [--kills 5] [--cache DIR]

A real org answers a REST page in a few hundred milliseconds and keeps a Bulk job
InProgress for seconds to minutes. The dev org is served from a separate process with
``--fault latency=<ms>`` (every API call) and ``--bulk-delay <s>`` (every Bulk job), and:

1. a full ``sfsync sync`` into a fresh SQLite warehouse: its wall time against the
   **critical path**, the one thing no client can beat: one composite call, then the
   slowest single object's own minimum (a Bulk object: create + delay + poll + its
   result pages; a REST object: its pages; every call one latency);
   Beside it, the **ingest floor**: the critical path plus a bare parse-the-CSV-and-
   ``executemany`` of the very same rows into an empty copy of the schema (bench_sync's
   baseline, timed in this run). The big objects only arrive after their Bulk delay, so
   no single-writer client stores them sooner than that; the ratio to the floor is the
   part of the gap that is sfsync's own;
2. a nightly incremental run after edits to 1 % of the opportunities, against its own
   critical path;
3. API calls of both against the minimum (bench_sync's count, plus the composite calls);
4. a full sync into another fresh warehouse killed ``--kills`` times at named points
   (``SFSYNC_CRASH_AT``, so where it dies does not depend on timing), run to the end,
   then compared with the org: per object, the Id and SystemModstamp of every live row.

Every figure is measured in this one run; ratios are printed, nothing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench_sync import CHILD, PY, ROOT, bare_sqlite, generate, minimum_calls
from bench_sync import serve as serve_org

from sfsync.config import SYNC_OBJECTS, load_settings
from sfsync.extract import object_specs
from sfsync.formats import format_datetime
from sfsync.warehouse import open_warehouse
from sfsync.warehouse.models import OBJECT_MODELS, table_of

REST_PAGE = 2000
BULK_PAGE = 50_000
KILL_POINTS = [
    "sync.bulk_job_created:1",
    "sync.reference_committed:2",
    "sync.page_committed:4",
    "sync.object_committed:2",
    "sync.page_committed:12",
    "sync.bulk_job_created:2",
    "sync.page_committed:30",
]


def serve(data: Path, work: Path, latency_ms: float, bulk_delay: float) -> dict[str, Any]:
    log = work / "devorg.err"
    proc, config = serve_org(
        data,
        work,
        "--fault",
        f"latency={latency_ms:g}ms",
        "--bulk-delay",
        f"{bulk_delay:g}",
        "--ca-dir",
        str(work / "ca"),
        log=log,
    )
    while "admin token" not in log.read_text():
        if proc.poll() is not None:
            raise SystemExit(f"the dev org exited with {proc.returncode}: {log.read_text()}")
        time.sleep(0.2)
    token = re.search(r"admin token (\S+)", log.read_text())
    assert token is not None
    url = yaml.safe_load(config.read_text())["salesforce"]["login_url"]
    return {"proc": proc, "config": config, "token": token.group(1), "url": url, "work": work}


def admin(org: dict[str, Any], method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(
        method,
        f"{org['url']}/_devorg/{path}",
        json=body,
        headers={"X-Devorg-Admin": org["token"]},
        verify=str(org["work"] / "ca" / "devorg-ca.pem"),
        timeout=600,
    )
    response.raise_for_status()
    return response.json() if response.content else None


def config_for(org: dict[str, Any], warehouse: Path) -> Path:
    """A config for a new ``warehouse`` on ``org``, its schema created by ``db upgrade``."""
    document = yaml.safe_load(org["config"].read_text())
    document["database"] = {"url": f"sqlite:///{warehouse}"}
    document["sync"] = {
        "bulk_page_size": BULK_PAGE,
        "bulk_poll_s": 0.5,
        "lag_s": 0,
        "max_api_share": 1.0,
        "api_floor": 0,
    }
    document["logging"] = {"level": "WARNING"}
    path = warehouse.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(document))
    subprocess.run(
        [PY, "-m", "sfsync", "--config", str(path), "db", "upgrade"],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    return path


def sync(config: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SFSYNC_")}
    child_env.update(env or {})
    started = time.perf_counter()
    child = subprocess.run(
        [PY, "-c", CHILD, str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=child_env,
        check=False,
    )
    wall = time.perf_counter() - started
    if child.returncode != 0:
        return {"exit": child.returncode, "seconds": wall, "stderr": child.stderr[-2000:]}
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    result["exit"] = 0
    return result


def critical_path(objects: dict[str, Any], latency: float, delay: float) -> float:
    """One composite call, then the slowest single object's own minimum."""
    slowest = 0.0
    for r in objects.values():
        if r["mode"] == "bulk":
            own = delay + (2 + max(1, math.ceil(r["rows"] / BULK_PAGE))) * latency
        elif r["mode"] in ("rest", "rest (bulk failed)") and r["rows"]:
            own = math.ceil(r["rows"] / REST_PAGE) * latency
        else:
            own = 0.0
        slowest = max(slowest, own)
    return latency + slowest


def fingerprints_org(org: dict[str, Any], config: Path) -> dict[str, str]:
    settings = load_settings(config, environ={}).settings
    specs = object_specs(settings)
    result = {}
    for name in SYNC_OBJECTS:
        if name == "Organization":
            continue
        where = specs[name].where
        if name == "Task" and settings.writeback.task_key_field:
            where = f"({settings.writeback.task_key_field} != null OR {where})"
        soql = f"SELECT Id, SystemModstamp FROM {name}" + (f" WHERE {where}" if where else "")
        try:
            rows = admin(org, "POST", "query", {"q": soql})
        except httpx.HTTPStatusError:
            continue  # an object this org does not have (CurrencyType, single-currency)
        records = rows["records"] if isinstance(rows, dict) else rows
        result[name] = _digest([(r["Id"], r["SystemModstamp"]) for r in records])
    return result


def fingerprints_warehouse(config: Path, names: list[str]) -> dict[str, str]:
    settings = load_settings(config, environ={}).settings
    warehouse = open_warehouse(settings.database)
    result = {}
    with warehouse.engine.connect() as conn:
        for name in names:
            table = table_of(OBJECT_MODELS[name])
            rows = conn.execute(
                table.select()
                .with_only_columns(table.c.id, table.c.system_modstamp)
                .where(table.c.is_deleted.is_(False))
            ).all()
            result[name] = _digest([(r[0], format_datetime(r[1])) for r in rows])
    warehouse.dispose()
    return result


def _digest(pairs: list[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for record_id, stamp in sorted(pairs):
        h.update(f"{record_id}|{stamp}\n".encode())
    return f"{len(pairs)} rows, {h.hexdigest()[:12]}"


def edit_opportunities(org: dict[str, Any], share: float) -> int:
    ids = admin(org, "POST", "query", {"q": "SELECT Id FROM Opportunity WHERE IsClosed = false"})
    records = ids["records"] if isinstance(ids, dict) else ids
    chosen = records[:: max(1, int(1 / share))]
    for n, record in enumerate(chosen):
        admin(org, "PATCH", f"records/Opportunity/{record['Id']}", {"NextStep": f"bench {n}"})
    time.sleep(1.1)  # stamps have second precision; the sync's window ends before now
    return len(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--bulk-delay", type=float, default=20.0)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "sfsync-bench")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    latency, delay = args.latency_ms / 1000.0, args.bulk_delay
    data = generate(args.size, args.cache)
    work = Path(tempfile.mkdtemp(prefix="sfsync-latency-"))
    org = serve(data, work, args.latency_ms, delay)
    try:
        print(f"{args.size:,} opportunities, {args.latency_ms:g} ms a call, Bulk delay {delay:g} s")
        config = config_for(org, work / "full.db")
        full = sync(config)
        assert full["exit"] == 0, full
        report("full sync", full, latency, delay)
        bare = bare_sqlite(work / "full.db", work)
        floor = critical_path(full["objects"], latency, delay) + bare.seconds
        print(
            f"  ingest floor: critical path + bare parse and executemany of the same "
            f"{bare.rows:,} rows ({bare.seconds:.1f} s) = {floor:.1f} s -> full sync / floor "
            f"{full['seconds'] / floor:.2f}x"
        )

        edited = edit_opportunities(org, 0.01)
        incremental = sync(config)
        assert incremental["exit"] == 0, incremental
        print(f"  ({edited:,} opportunities edited before the incremental run)")
        report("incremental sync", incremental, latency, delay)

        killed_config = config_for(org, work / "killed.db")
        exits = []
        for point in KILL_POINTS[: args.kills]:
            outcome = sync(killed_config, {"SFSYNC_CRASH_AT": point})
            exits.append(f"{point} -> exit {outcome['exit']}")
        final = sync(killed_config)
        assert final["exit"] == 0, final
        expected = fingerprints_org(org, killed_config)
        actual = fingerprints_warehouse(killed_config, list(expected))
        differing = {n: (expected[n], actual[n]) for n in expected if expected[n] != actual[n]}
        print(f"after {len(exits)} kills ({'; '.join(exits)}) and a last run:")
        print(
            f"  warehouse equals the org: {not differing}" + (f" {differing}" if differing else "")
        )
    finally:
        org["proc"].terminate()
        org["proc"].wait(timeout=60)


def report(title: str, result: dict[str, Any], latency: float, delay: float) -> None:
    cp = critical_path(result["objects"], latency, delay)
    minimum = 1 + minimum_calls(result["objects"], BULK_PAGE)
    print(
        f"{title}: {result['seconds']:.1f} s, critical path {cp:.1f} s -> "
        f"{result['seconds'] / cp:.2f}x; API calls {result['api_calls']} vs minimum "
        f"{minimum} -> {result['api_calls'] / minimum:.2f}x; peak RSS "
        f"{result['peak_rss_mb']:.0f} MB"
    )
    for name, r in result["objects"].items():
        print(
            f"    {name:<22} {r['mode']:<8} {r['rows']:>9,} rows {r['calls']:>4} calls "
            f"{r['seconds']:7.1f} s"
        )


if __name__ == "__main__":
    main()
