"""Write-back throughput: N new Tasks against a dev org, in API calls and seconds.

Run on demand (not collected by pytest)::

    .venv/bin/python tests/bench/bench_writeback.py            # N = 10,000
    .venv/bin/python tests/bench/bench_writeback.py --tasks 2000 --no-key-field

It generates an org, syncs it into a SQLite warehouse through the real client,
puts N open findings on its open opportunities (up to one per rule each: the
audit is not what is measured here), then:

1. applies the write-back (``--force``: N is above ``max_tasks_per_run``) and
   compares the API calls with ceil(N / 200) collection calls + 1 describe;
2. marks every ledger row ``sent`` again, as a crash between Salesforce's answer
   and the ledger commit would leave them, and applies once more: the Tasks are
   found by key (ceil(N / 100) ``queryAll`` calls) and nothing is re-sent.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import insert, select, update

from sfsync.audit.rules import rule_ids
from sfsync.config import load_settings
from sfsync.devorg import DevOrg, DevOrgServer, write_config
from sfsync.devorg.generate import generate_org
from sfsync.extract import run_sync
from sfsync.logging import configure_logging
from sfsync.warehouse import open_warehouse, upgrade
from sfsync.warehouse.models import Finding, Opportunity, WritebackLedger
from sfsync.writeback import run_writeback

DETAILS: dict[str, dict[str, Any]] = {
    "close_date_past": {
        "stage": "Negotiate",
        "close_date": "2024-08-01",
        "k": 0,
        "today": "2024-08-15",
    },
    "stale_last_modified": {
        "stage": "Qualify",
        "days_since_last_human_modification": 20,
        "threshold_days": 14,
        "k": 0,
    },
    "missing_rev_rec_terms": {
        "stage": "Prove",
        "min_stage": "Prove",
        "has_instrument": True,
        "field": "Rev_Rec_Terms__c",
    },
    "close_date_slipping": {
        "stage": "Qualify",
        "month_extensions": 4,
        "min_extensions": 3,
        "days_open": 200,
        "days_since_stage_change": 90,
    },
}


def _seed_findings(warehouse: Any, n: int) -> int:
    with warehouse.engine.begin() as conn:
        opps = [
            r[0]
            for r in conn.execute(
                select(Opportunity.id)
                .where(Opportunity.is_closed.is_(False), Opportunity.is_deleted.is_(False))
                .order_by(Opportunity.id)
            )
        ]
        pairs = [(opp, rule) for opp in opps for rule in rule_ids()][:n]
        now = datetime.now(UTC)
        conn.execute(
            insert(Finding),
            [
                {
                    "rule": rule,
                    "opportunity_id": opp,
                    "status": "open",
                    "profile": "global",
                    "severity": "warn",
                    "details": DETAILS[rule],
                    "settings_hash": "bench",
                    "opened_at": now,
                }
                for opp, rule in pairs
            ],
        )
    return len(pairs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000, help="N, the Tasks to create")
    parser.add_argument("--opportunities", type=int, default=12_000, help="size of the org")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every API call")
    parser.add_argument("--no-key-field", action="store_true", help="Task without Sfsync_Key__c")
    args = parser.parse_args()
    configure_logging("console", level="WARNING")

    with tempfile.TemporaryDirectory(prefix="sfsync-bench-") as tmp_name:
        tmp = Path(tmp_name)
        started = time.monotonic()
        data_file = tmp / "org.json"
        generate_org(opportunities=args.opportunities, seed=args.seed, out=data_file)
        if args.no_key_field:
            import json

            data = json.loads(data_file.read_text())
            data["custom_fields"]["Task"].pop("Sfsync_Key__c", None)
            org = DevOrg.from_data(data)
        else:
            org = DevOrg.load(data_file)
        from sfsync.devorg import FaultSpec

        with DevOrgServer(org, ca_dir=tmp / "ca") as server:
            config = tmp / "sfsync.yaml"
            write_config(
                config,
                server,
                database_url=f"sqlite:///{tmp / 'warehouse.db'}",
                extra={
                    "sync": {"lag_s": 0},
                    "logging": {"level": "WARNING"},
                    "writeback": {"fallback_owner_id": org.integration_user_id},
                },
            )
            settings = load_settings(config, environ={}).settings
            warehouse = open_warehouse(settings.database, require_head=False, create=True)
            with warehouse.engine.begin() as conn:
                upgrade(conn)
            assert run_sync(warehouse, settings).status == "ok"
            n = _seed_findings(warehouse, args.tasks)
            print(
                f"org: {args.opportunities:,} opportunities, {n:,} open findings "
                f"(setup {time.monotonic() - started:.1f}s)"
            )
            if n < args.tasks:
                print(
                    f"note: only {n:,} (opportunity, rule) pairs available; use more --opportunities"
                )
            server.set_faults(FaultSpec(latency_ms=args.latency_ms))

            clock = time.monotonic()
            result = run_writeback(warehouse, settings, apply=True, force=True)
            seconds = time.monotonic() - clock
            batches = math.ceil(n / 200)
            print(
                f"apply ({result.mode}): created {result.created:,} Tasks in {seconds:.2f}s "
                f"({result.created / seconds:,.0f}/s); API calls {result.api_calls} vs "
                f"ceil(N/200) = {batches} (+1 describe); failed {result.failed}"
            )
            tasks = org.count("Task")

            with warehouse.engine.begin() as conn:
                conn.execute(
                    update(WritebackLedger)
                    .where(WritebackLedger.state == "confirmed")
                    .values(state="sent")
                )
            clock = time.monotonic()
            again = run_writeback(warehouse, settings, apply=True, force=True)
            seconds = time.monotonic() - clock
            if result.mode == "upsert":
                expected = f"ceil(N/100) = {math.ceil(n / 100)} queries by key"
            else:
                opportunities = math.ceil(n / len(rule_ids()))
                expected = (
                    f"ceil(opportunities/100) = {math.ceil(opportunities / 100)} queries by "
                    "WhatId (+ pages over 2,000 rows)"
                )
            print(
                f"after a simulated crash (all {n:,} rows in doubt): reconciled "
                f"{again.reconciled:,}, created {again.created}, in {seconds:.2f}s; API calls "
                f"{again.api_calls} vs {expected} (+1 describe)"
            )
            print(f"Tasks in the org before/after the re-run: {tasks:,} / {org.count('Task'):,}")
            warehouse.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
