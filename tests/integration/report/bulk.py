"""A large, realistic warehouse written with bulk Core inserts (no dev org, no sync).

Deterministic for a seed. Open and closed opportunities, in US dollars (the
corporate currency), euros and pounds, spread over several hundred owners; most have OpportunityHistory whose close dates get pushed
month after month at random, the rest only warehouse snapshots (their figures
are lower bounds). Findings open, get waived and resolve across a series of
nightly runs whose ``counts`` look like the runner's.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, insert

from sfsync.audit.rules import rule_ids
from sfsync.warehouse import Warehouse
from sfsync.warehouse.models import (
    CurrencyType,
    Finding,
    Opportunity,
    OpportunityHistory,
    OpportunitySnapshot,
    OpportunityStage,
    Organization,
    Run,
    User,
    table_of,
)

__all__ = ["BulkOrg", "fill_bulk"]

_OPEN_STAGES = ("Create", "Qualify", "Prove", "Negotiate")
_CLOSED_STAGES = ("Closed Won", "Closed Lost")
_COMPANIES = (
    "Oxted Manufacturing",
    "Åland Clinics",
    "Monarch Labs",
    "Smith & Jones Research",
    "Kobe Bioscience",
    "Nordlicht Pharma",
    "Rio Analytics",
    "Tallinn Instruments",
    "Baker <Street> Diagnostics",
    "O'Neill Genomics",
    "Zürich Materials",
    "Lagos Health",
)
_PRODUCTS = (
    "Spectra X1 Mass Spectrometer",
    "Preventive Maintenance Plan",
    "Capacity Upgrade",
    "Chromatography Suite",
    "Service Renewal",
    "Reagent Supply 2025",
    "Field Service",
)
_FIRST = ("Olga", "Lucia", "Giulia", "Kenji", "Amara", "Sven", "Priya", "Tomás", "Chen", "Noor")
_LAST = ("Rossi", "Lopez", "Tanaka", "Okafor", "Berg", "Nair", "Silva", "Wang", "Haddad", "Kim")

_BATCH = 10_000

# CurrencyType: units per corporate unit (US dollars), as Salesforce keeps them.
CURRENCY_RATES = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79}
CORPORATE_CURRENCY = "USD"


@dataclass(frozen=True)
class BulkOrg:
    opportunities: int
    open_opportunities: int
    history_rows: int
    findings: int
    runs: int


def _ts(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _months_later(day: date, months: int, dom: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(dom, 28))


def _insert(conn: Connection, table: Table, rows: Iterator[dict[str, Any]]) -> int:
    batch: list[dict[str, Any]] = []
    count = 0
    for row in rows:
        batch.append(row)
        if len(batch) >= _BATCH:
            conn.execute(insert(table), batch)
            count += len(batch)
            batch = []
    if batch:
        conn.execute(insert(table), batch)
        count += len(batch)
    return count


def fill_bulk(
    warehouse: Warehouse,
    *,
    opportunities: int,
    as_of: date,
    owners: int = 400,
    audits: int = 8,
    finding_share: float = 0.2,
    seed: int = 8,
) -> BulkOrg:
    """Fill an empty warehouse; ``finding_share`` of the opportunities get a live finding."""
    rng = random.Random(seed)
    synced = _ts(as_of, 3)

    def obj(record_id: str, **values: Any) -> dict[str, Any]:
        return {
            "id": record_id,
            "raw": {"Id": record_id},
            "is_deleted": False,
            "system_modstamp": synced,
            "synced_at": synced,
            **values,
        }

    user_ids = [f"005{i:012d}AAA" for i in range(owners)]
    users = (
        obj(
            uid,
            name=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
            username=f"user{i}@example.test",
            is_active=rng.random() > 0.05,
        )
        for i, uid in enumerate(user_ids)
    )
    stages = [
        obj(
            f"01J{i:012d}AAA",
            api_name=name,
            master_label=name,
            sort_order=i,
            is_active=True,
            is_closed=name in _CLOSED_STAGES,
            is_won=name == "Closed Won",
        )
        for i, name in enumerate(_OPEN_STAGES + _CLOSED_STAGES, start=1)
    ]
    open_ids: list[str] = []
    facts: dict[str, dict[str, Any]] = {}  # what the findings' details say of open deals
    history: list[dict[str, Any]] = []
    snapshots: list[dict[str, Any]] = []

    def opportunity_rows() -> Iterator[dict[str, Any]]:
        for i in range(opportunities):
            oid = f"006{i:012d}AAA"
            created = as_of - timedelta(days=rng.randint(1, 900))
            closed = rng.random() < 0.3
            stage = rng.choice(_CLOSED_STAGES if closed else _OPEN_STAGES)
            first_close = created + timedelta(days=rng.randint(30, 120))
            pushes = min(int(rng.expovariate(0.7)), 12)
            dates = [first_close]
            for _ in range(pushes):
                dates.append(_months_later(dates[-1], rng.randint(1, 3), rng.randint(1, 28)))
            close = dates[-1]
            if not closed:
                open_ids.append(oid)
            if rng.random() < 0.85:
                span = max(1, (as_of - created).days)
                # The creation row, then one row per push; the last one holds the current value.
                steps = [0, *sorted(rng.randint(1, span) for _ in range(len(dates) - 1))]
                for n, close_value in enumerate(dates):
                    day = created + timedelta(days=steps[n])
                    history.append(
                        obj(
                            f"008{len(history):012d}AAA",
                            opportunity_id=oid,
                            stage_name=_OPEN_STAGES[min(n, 3)],
                            close_date=close_value,
                            created_date=_ts(day, 8 + n % 8),
                        )
                    )
            elif not closed:
                for n, close_value in enumerate(dates[-3:]):
                    snapshots.append(
                        {
                            "opportunity_id": oid,
                            "captured_on": as_of - timedelta(days=30 * (3 - n)),
                            "close_date": close_value,
                            "stage_name": stage,
                            "amount": None,
                            "is_closed": False,
                            "captured_at": _ts(as_of - timedelta(days=30 * (3 - n)), 2),
                        }
                    )
            row = obj(
                oid,
                name=f"{rng.choice(_COMPANIES)} - {rng.choice(_PRODUCTS)}",
                owner_id=rng.choice(user_ids),
                stage_name=stage,
                close_date=close,
                amount=float(rng.choice((5_000, 20_000, 50_000, 80_000, 250_000))),
                currency_iso_code=rng.choice(("USD", "USD", "EUR", "GBP")),
                is_closed=closed,
                is_won=stage == "Closed Won",
                created_date=_ts(created),
                last_modified_date=_ts(as_of - timedelta(days=rng.randint(0, 90))),
            )
            if not closed:
                facts[oid] = {
                    "stage": stage,
                    "close_date": close,
                    "created": created,
                    "amount": row["amount"],
                    "currency": row["currency_iso_code"],
                    "month_extensions": pushes,
                }
            yield row

    with warehouse.engine.begin() as conn:
        conn.execute(
            insert(table_of(Organization)),
            [obj("00D000000000001EAA", name="Bulk Test Org", fiscal_year_start_month=1)],
        )
        _insert(conn, table_of(User), users)
        conn.execute(
            insert(table_of(CurrencyType)),
            [
                obj(
                    f"01L{i:012d}AAA",
                    iso_code=code,
                    conversion_rate=rate,
                    decimal_places=2,
                    is_active=True,
                    is_corporate=code == CORPORATE_CURRENCY,
                )
                for i, (code, rate) in enumerate(CURRENCY_RATES.items())
            ],
        )
        conn.execute(insert(table_of(OpportunityStage)), stages)
        total = _insert(conn, table_of(Opportunity), opportunity_rows())
        history_rows = _insert(conn, table_of(OpportunityHistory), iter(history))
        _insert(conn, table_of(OpportunitySnapshot), iter(snapshots))
        runs, findings = _runs_and_findings(
            conn, rng, open_ids, facts, as_of, audits, finding_share, random.Random(seed + 1)
        )
    return BulkOrg(total, len(open_ids), history_rows, findings, runs)


def _quarter_offset(close: date, today: date) -> int:
    return (close.year * 12 + close.month - 1) // 3 - (today.year * 12 + today.month - 1) // 3


def _details(rule: str, deal: dict[str, Any], day: date, rng: random.Random) -> dict[str, Any]:
    """A finding's details as the rule would store them (fiscal year = calendar year)."""
    close: date = deal["close_date"]
    k = _quarter_offset(close, day)
    rate = CURRENCY_RATES[deal["currency"]]
    converted = deal["amount"] / rate
    instrument = rng.random() < 0.4
    values = {
        "stage": deal["stage"],
        "close_date": close.isoformat(),
        "k": k,
        "amount": deal["amount"],
        "currency": deal["currency"],
        "converted_amount": converted,
        "amount_threshold": 50_000.0,
        "big": converted > 50_000,
        "has_instrument": instrument,
    }
    if rule == "close_date_past":
        return {**values, "today": day.isoformat()}
    if rule == "stale_last_modified":
        threshold = (14, 30, 45, 45)[min(max(k, 0), 3)]
        days = threshold + rng.randint(1, 90)
        return {
            **values,
            "min_stage": "Qualify",
            "threshold_days": threshold,
            "days_since_last_human_modification": days,
            "last_human_modified_date": _ts(day - timedelta(days=days), 15).isoformat(),
            "last_human_modified_by_id": None,
            "last_human_assumed": rng.random() < 0.1,
        }
    if rule == "missing_rev_rec_terms":
        return {
            "stage": deal["stage"],
            "min_stage": "Prove",
            "has_instrument": True,
            "field": "Rev_Rec_Terms__c",
            "rev_rec_terms": None,
        }
    stage_days = rng.randint(0, max(0, (day - deal["created"]).days))
    return {
        "stage": deal["stage"],
        "close_date": close.isoformat(),
        "month_extensions": max(3, deal["month_extensions"]),
        "min_extensions": 3,
        "lower_bound": rng.random() < 0.15,
        "close_date_source": "history",
        "days_since_stage_change": stage_days,
        "days_open": (day - deal["created"]).days,
    }


def _runs_and_findings(
    conn: Connection,
    rng: random.Random,
    open_ids: list[str],
    facts: dict[str, dict[str, Any]],
    as_of: date,
    audits: int,
    share: float,
    details_rng: random.Random,
) -> tuple[int, int]:
    """Nightly runs (sync, audit, write-back counts) and the findings they opened and resolved.

    The findings' details have the keys of each rule's details class, with values like
    the audit's (drawn from ``details_rng``, so the rest of the org is as it was).
    """
    live_target = int(len(open_ids) * share)
    weights = {
        "close_date_past": 0.35,
        "stale_last_modified": 0.3,
        "missing_rev_rec_terms": 0.15,
        "close_date_slipping": 0.2,
    }
    runs: list[dict[str, Any]] = []
    findings: list[dict[str, Any]] = []
    live: dict[tuple[str, str], dict[str, Any]] = {}
    for night in range(audits):
        run_id = night + 1
        day = as_of - timedelta(days=audits - 1 - night)
        started = _ts(day, 2)
        resolved = dict.fromkeys(rule_ids(), 0)
        new = dict.fromkeys(rule_ids(), 0)
        for key in rng.sample(sorted(live), k=len(live) // 10):
            finding = live.pop(key)
            finding.update(
                status="resolved", resolved_run_id=run_id, resolved_at=started, resolved_as_of=day
            )
            resolved[key[0]] += 1
        while len(live) < live_target * (0.8 + 0.2 * night / max(1, audits - 1)):
            rule = rng.choices(list(weights), weights=list(weights.values()))[0]
            key = (rule, rng.choice(open_ids))
            if key in live:
                continue
            finding = {
                "rule": rule,
                "opportunity_id": key[1],
                "status": "waived" if rng.random() < 0.05 else "open",
                "profile": "global",
                "severity": "error" if rule == "close_date_past" else "warn",
                "details": _details(rule, facts[key[1]], day, details_rng),
                "settings_hash": "0" * 64,
                "opened_run_id": run_id,
                "resolved_run_id": None,
                "last_seen_run_id": run_id,
                "opened_at": started,
                "resolved_at": None,
                "opened_as_of": day,
                "resolved_as_of": None,
            }
            live[key] = finding
            findings.append(finding)
            new[rule] += 1
        per_rule = {
            rule: {
                "open": sum(1 for (r, _), f in live.items() if r == rule and f["status"] == "open"),
                "waived": sum(
                    1 for (r, _), f in live.items() if r == rule and f["status"] == "waived"
                ),
                "new": new[rule],
                "resolved": resolved[rule],
                "severity": "warn",
            }
            for rule in rule_ids()
        }
        sync = {
            "status": "ok",
            "api_calls": 40 + night,
            "seconds": 95.0,
            "warnings": [],
            "objects": {
                "Opportunity": {"upserted": 1200 + 37 * night, "deleted": 3, "problems": 0}
            },
        }
        failed = night == audits - 3
        runs.append(
            {
                "id": run_id,
                "kind": "run",
                "status": "failed" if failed else "ok",
                "started_at": started,
                "ended_at": started + timedelta(seconds=180 + 7 * night),
                "as_of": day,
                "api_calls": 60 + night,
                "counts": {
                    "sync": sync,
                    "audit": {
                        "as_of": day.isoformat(),
                        "rules": per_rule,
                        "settings": {"profile": "global"},
                    },
                    "writeback": {"planned": 40, "sent": 40, "confirmed": 39, "failed": 1},
                },
                "error": "PartialFailure: 1 Task write failed (FIELD_INTEGRITY_EXCEPTION)"
                if failed
                else None,
                "hostname": "worker-1",
                "pid": 1000 + night,
            }
        )
    conn.execute(insert(table_of(Run)), runs)
    _insert(conn, table_of(Finding), iter(findings))
    return len(runs), len(findings)
