"""Benchmark: ``run_audit`` of one rule against one hand-written SQL statement for it.

    python tests/bench/bench_audit.py [--opportunities N] [--dialect sqlite|postgresql|both]
        [--repeat R] [--seed S]

(default: 100,000 opportunities, both databases: a few minutes; the target is stated
for ``--opportunities 1000000``.)

Fills a fresh warehouse with N synthetic opportunities (deterministic seed;
about 5 history rows and 1.5 line items each, users, stages, currencies,
products, snapshots for the 5 % without history) using bulk inserts (SQLite
``executemany`` in one transaction, PostgreSQL ``COPY``), then measures:

* the first audit of all rules (every finding is new);
* per rule, the obvious minimal single SQL statement returning the flagged ids
  ("hand SQL"), and the rule's own query alone ("rule SQL"); on PostgreSQL both
  without JIT, as the audit runs its queries;
* per rule, ``run_audit(rules=[rule])`` in two scenarios: nothing changed since the
  last audit of the same day (evaluate, compare, write nothing), and 10 % of the
  rule's findings changed (half of those opportunities closed, so their findings
  resolve; the other half moved to another open stage, so their details change);
  then the same 10 % changed back (those findings open anew, the others change
  back), also timed;
* three following nights: an audit of all rules as of one, two and three days
  later, nothing else changed. Most findings are rewritten each night, because
  their details hold the day's figures (today, days since a change, days open);

and prints seconds, then a table of the ratios run_audit / hand SQL measured in this
run (target <= 1.5x for every rule on both databases). Not collected by pytest.
PostgreSQL: ``SFSYNC_TEST_POSTGRES_URL`` or a throwaway cluster from
``tests/_postgres.py``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import bindparam, func, select, text, update

from sfsync.audit import run_audit
from sfsync.audit._calendar import quarter_start, start_of_local_day
from sfsync.audit._context import build_context
from sfsync.audit._lifecycle import no_jit
from sfsync.audit.rules import get_rule
from sfsync.config import AuditSettings, DatabaseSettings
from sfsync.warehouse import Warehouse, open_warehouse, upgrade
from sfsync.warehouse.models import Finding, Opportunity
from tests._postgres import scratch_database

AS_OF = date(2024, 8, 15)
SETTINGS = AuditSettings()
SYNCED = datetime(2024, 8, 16, 3, 0, tzinfo=UTC)
STAGES = (  # api name, sort order, closed, weight
    ("Create", 1, False, 15),
    ("Qualify", 2, False, 20),
    ("Develop", 3, False, 15),
    ("Prove", 4, False, 12),
    ("Negotiate", 5, False, 8),
    ("Closed Won", 6, True, 15),
    ("Closed Lost", 7, True, 10),
    ("Closed Abandoned", 8, True, 5),
)
CURRENCIES = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 151.4, "CHF": 0.88}
RECORD_TYPES = (
    ("Direct_Standard", "Direct Standard"),
    ("Indirect_Standard", "Indirect Standard"),
    ("Direct_Field_Services", "Direct Field Services"),
    ("Indirect_Field_Services", "Indirect Field Services"),
    ("Renewal", "Renewal"),
    ("Internal", "Internal"),
)
CHUNK = 50_000


def _id(prefix: str, n: int) -> str:
    return f"{prefix}{n:015d}"


# --------------------------------------------------------------------------- data


def _reference_rows() -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    base = ["id", "raw", "is_deleted", "synced_at"]
    rows["organization"] = (
        [*base, "name", "fiscal_year_start_month"],
        [(_id("00D", 1), "{}", False, SYNCED, "Bench", 1)],
    )
    rows["user"] = (
        [*base, "name", "is_active"],
        [(_id("005", i), "{}", False, SYNCED, f"User {i}", True) for i in range(1000)],
    )
    rows["opportunity_stage"] = (
        [*base, "api_name", "sort_order", "is_closed", "is_active"],
        [
            (_id("01J", i), "{}", False, SYNCED, name, order, closed, True)
            for i, (name, order, closed, _) in enumerate(STAGES)
        ],
    )
    rows["record_type"] = (
        [*base, "developer_name", "name", "sobject_type"],
        [
            (_id("012", i), "{}", False, SYNCED, dev, name, "Opportunity")
            for i, (dev, name) in enumerate(RECORD_TYPES)
        ],
    )
    rows["currency_type"] = (
        [*base, "iso_code", "conversion_rate", "is_corporate", "is_active"],
        [
            (_id("01L", i), "{}", False, SYNCED, code, rate, code == "USD", True)
            for i, (code, rate) in enumerate(CURRENCIES.items())
        ],
    )
    families = ["Instrument"] * 10 + ["Consumables"] * 20 + ["Service"] * 20
    rows["product2"] = (
        [*base, "name", "family", "is_active"],
        [
            (_id("01t", i), "{}", False, SYNCED, f"P{i}", family, True)
            for i, family in enumerate(families)
        ],
    )
    return rows


OPP_COLUMNS = [
    "id", "raw", "is_deleted", "synced_at", "name", "owner_id", "record_type_id", "stage_name",
    "close_date", "amount", "currency_iso_code", "is_closed", "is_won", "created_date",
    "last_modified_date", "last_modified_by_id", "rev_rec_terms", "last_human_modified_date",
    "last_human_modified_by_id", "last_human_assumed",
]  # fmt: skip
HISTORY_COLUMNS = [
    "id", "raw", "is_deleted", "synced_at", "opportunity_id", "stage_name", "close_date",
    "created_date",
]  # fmt: skip
LINE_COLUMNS = ["id", "raw", "is_deleted", "synced_at", "opportunity_id", "product2_id"]
SNAPSHOT_COLUMNS = [
    "opportunity_id",
    "captured_on",
    "close_date",
    "stage_name",
    "is_closed",
    "captured_at",
]


def generate(n: int, seed: int) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """Yield (table, rows) chunks of a deterministic synthetic org."""
    rng = random.Random(seed)
    stage_names = [s[0] for s in STAGES]
    weights = [s[3] for s in STAGES]
    closed = {s[0]: s[2] for s in STAGES}
    currencies = list(CURRENCIES)
    currency_weights = [50, 25, 10, 10, 5]
    rev_rec = [None, None, None, None, "", " ", "Net 30", "Net 30", "50/50", "Net 60"]
    now = datetime.combine(AS_OF, datetime.min.time(), UTC)
    opps: list[tuple[Any, ...]] = []
    history: list[tuple[Any, ...]] = []
    lines: list[tuple[Any, ...]] = []
    snaps: list[tuple[Any, ...]] = []
    hist_n = line_n = 0
    for i in range(n):
        opp_id = _id("006", i)
        stage = rng.choices(stage_names, weights)[0]
        created = now - timedelta(days=rng.randint(1, 900), seconds=rng.randint(0, 86_399))
        age = (now - created).days
        close = created.date() + timedelta(days=rng.randint(10, 200))
        amount = None if rng.random() < 0.03 else round(rng.lognormvariate(9.5, 1.2), 2)
        modified = created + timedelta(days=rng.randint(0, age), seconds=rng.randint(0, 3600))
        assumed = rng.random() < 0.05
        terms = rng.choice(rev_rec)
        # History: the creation row, then changes (pushes, pull-ins, stage moves).
        rows_here = 0 if rng.random() < 0.05 else rng.randint(1, 9)
        at, current_close, current_stage = created, close, stage_names[rng.randint(0, 2)]
        for r in range(rows_here):
            if r:
                at = at + timedelta(days=rng.randint(1, max(1, age // rows_here)))
                current_close = current_close + timedelta(days=rng.randint(-20, 60))
                if rng.random() < 0.3:
                    current_stage = rng.choices(stage_names, weights)[0]
            history.append(
                (_id("008", hist_n), "{}", False, SYNCED, opp_id, current_stage, current_close, at)
            )
            hist_n += 1
        if rows_here:
            close = current_close + timedelta(days=rng.randint(-5, 40))
        else:
            for s in range(3):
                snaps.append(
                    (opp_id, created.date() + timedelta(days=s), close, stage, False, created)
                )
        raw = json.dumps({"Id": opp_id, "Rev_Rec_Terms__c": terms})
        opps.append(
            (
                opp_id, raw, False, SYNCED, f"Opportunity {i}", _id("005", rng.randint(0, 999)),
                _id("012", rng.randint(0, 5)), stage, close, amount,
                rng.choices(currencies, currency_weights)[0], closed[stage],
                stage == "Closed Won", created, modified, _id("005", 0), terms,
                modified, None if assumed else _id("005", 7), assumed,
            )
        )  # fmt: skip
        for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
            lines.append(
                (_id("00k", line_n), "{}", False, SYNCED, opp_id, _id("01t", rng.randint(0, 49)))
            )
            line_n += 1
        if len(opps) >= CHUNK:
            yield "opportunity", opps
            yield "opportunity_history", history
            yield "opportunity_line_item", lines
            yield "opportunity_snapshot", snaps
            opps, history, lines, snaps = [], [], [], []
    yield "opportunity", opps
    yield "opportunity_history", history
    yield "opportunity_line_item", lines
    yield "opportunity_snapshot", snaps


COLUMNS = {
    "opportunity": OPP_COLUMNS,
    "opportunity_history": HISTORY_COLUMNS,
    "opportunity_line_item": LINE_COLUMNS,
    "opportunity_snapshot": SNAPSHOT_COLUMNS,
}


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def fill(warehouse: Warehouse, n: int, seed: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    with warehouse.engine.connect() as conn:
        dbapi: Any = conn.connection.dbapi_connection
        postgres = warehouse.dialect == "postgresql"

        def write(table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
            if not rows:
                return
            counts[table] = counts.get(table, 0) + len(rows)
            quoted = ", ".join(columns)
            if postgres:
                with dbapi.cursor() as cur, cur.copy(f'COPY "{table}" ({quoted}) FROM STDIN') as cp:
                    for row in rows:
                        cp.write_row(row)
            else:
                marks = ", ".join("?" for _ in columns)
                dbapi.executemany(
                    f'INSERT INTO "{table}" ({quoted}) VALUES ({marks})',
                    [tuple(_sqlite_value(v) for v in row) for row in rows],
                )

        if not postgres:
            dbapi.execute("PRAGMA synchronous=OFF")
        for table, (columns, rows) in _reference_rows().items():
            write(table, columns, rows)
        for table, rows in generate(n, seed):
            write(table, COLUMNS[table], rows)
        dbapi.commit()
    with warehouse.engine.connect() as conn:
        if warehouse.dialect == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        else:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    return counts


# --------------------------------------------------------------------------- hand-written SQL


def hand_queries(dialect: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """The obvious minimal statement per rule (default settings, global profile)."""
    tz = SETTINGS.timezone
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    created_before = start_of_local_day(AS_OF + timedelta(days=1), zone)
    params: dict[str, Any] = {
        "today": AS_OF,
        "q0": quarter_start(AS_OF, 1, 0),
        "q1": quarter_start(AS_OF, 1, 1),
        "q2": quarter_start(AS_OF, 1, 2),
        "cb": created_before,
        "cut14": start_of_local_day(AS_OF - timedelta(days=14), zone),
        "cut30": start_of_local_day(AS_OF - timedelta(days=30), zone),
        "cut45": start_of_local_day(AS_OF - timedelta(days=45), zone),
        "threshold": 50_000.0,
    }
    if dialect == "sqlite":
        for key in ("cb", "cut14", "cut30", "cut45"):
            params[key] = params[key].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        params["today"], params["q0"], params["q1"], params["q2"] = (
            params[k].isoformat() for k in ("today", "q0", "q1", "q2")
        )
    false = "0" if dialect == "sqlite" else "false"
    month = (
        (lambda c: f"strftime('%Y-%m', {c})")
        if dialect == "sqlite"
        else (lambda c: f"date_trunc('month', {c})")
    )
    trim = "trim" if dialect == "sqlite" else "btrim"
    open_ = f"o.is_deleted = {false} AND o.is_closed = {false} AND o.created_date < :cb"
    big = "coalesce(o.amount, 0) / c.conversion_rate * 1.0 > :threshold"
    instrument = (
        "EXISTS (SELECT 1 FROM opportunity_line_item li JOIN product2 p ON p.id = li.product2_id "
        f"WHERE li.opportunity_id = o.id AND li.is_deleted = {false} AND p.is_deleted = {false} "
        "AND p.family = 'Instrument')"
    )
    currency = "JOIN currency_type c ON c.iso_code = o.currency_iso_code"
    qualify_on = "('Qualify', 'Develop', 'Prove', 'Negotiate', 'Closed Won', 'Closed Lost', 'Closed Abandoned')"
    prove_on = "('Prove', 'Negotiate', 'Closed Won', 'Closed Lost', 'Closed Abandoned')"
    return {
        "close_date_past": (
            f"SELECT o.id FROM opportunity o {currency} WHERE {open_} AND o.close_date < :today "
            f"AND (o.close_date < :q0 OR {big} OR {instrument})",
            params,
        ),
        "stale_last_modified": (
            f"SELECT o.id FROM opportunity o {currency} WHERE {open_} "
            f"AND o.stage_name IN {qualify_on} AND ({big} OR {instrument}) "
            "AND o.last_human_modified_date < CASE WHEN o.close_date < :q1 THEN :cut14 "
            "WHEN o.close_date < :q2 THEN :cut30 ELSE :cut45 END",
            params,
        ),
        "missing_rev_rec_terms": (
            f"SELECT o.id FROM opportunity o WHERE {open_} AND o.stage_name IN {prove_on} "
            f"AND (o.rev_rec_terms IS NULL OR {trim}(o.rev_rec_terms) = '') AND {instrument}",
            params,
        ),
        "close_date_slipping": (
            "WITH h AS (SELECT opportunity_id, close_date, "
            "LAG(close_date) OVER w AS prev, LEAD(id) OVER w AS nxt FROM opportunity_history "
            f"WHERE is_deleted = {false} AND created_date < :cb "
            "WINDOW w AS (PARTITION BY opportunity_id ORDER BY created_date, id)), "
            f"a AS (SELECT opportunity_id, SUM(CASE WHEN {month('close_date')} > {month('prev')} "
            f"THEN 1 ELSE 0 END) AS ext, MAX(CASE WHEN nxt IS NULL THEN {month('close_date')} END) "
            "AS last_m FROM h GROUP BY opportunity_id) "
            f"SELECT o.id FROM opportunity o JOIN a ON a.opportunity_id = o.id WHERE {open_} "
            f"AND a.ext + CASE WHEN {month('o.close_date')} > a.last_m THEN 1 ELSE 0 END >= 3",
            params,
        ),
    }


# --------------------------------------------------------------------------- measuring


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


Ratios = dict[str, dict[str, float]]  # rule -> scenario -> run_audit / hand SQL


def _changed_tenth(warehouse: Warehouse, rule: str) -> list[dict[str, Any]]:
    """Every tenth opportunity with a live finding of ``rule``, as it is now."""
    opp, finding = Opportunity.__table__, Finding.__table__
    with warehouse.engine.connect() as conn:
        rows = conn.execute(
            select(opp.c.id, opp.c.stage_name, opp.c.is_closed)
            .join(finding, finding.c.opportunity_id == opp.c.id)
            .where(finding.c.rule == rule, finding.c.status.in_(("open", "waived")))
            .order_by(opp.c.id)
        ).all()
    return [
        {"oid": r.id, "stage_name": r.stage_name, "is_closed": r.is_closed}
        for i, r in enumerate(rows)
        if i % 10 == 0
    ]


def _set_opportunities(warehouse: Warehouse, values: list[dict[str, Any]]) -> None:
    opp = Opportunity.__table__
    with warehouse.engine.begin() as conn:
        conn.execute(
            update(opp)
            .where(opp.c.id == bindparam("oid"))
            .values(stage_name=bindparam("stage_name"), is_closed=bindparam("is_closed")),
            values,
        )


def _change(original: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Half closed (their findings resolve), half moved to another open stage (their
    details change; Negotiate and Prove are at or past every rule's minimum stage)."""
    changed = []
    for i, row in enumerate(original):
        if i % 2 == 0:
            changed.append({**row, "stage_name": "Closed Lost", "is_closed": True})
        else:
            stage = "Prove" if row["stage_name"] == "Negotiate" else "Negotiate"
            changed.append({**row, "stage_name": stage})
    return changed


def bench(dialect: str, n: int, seed: int, repeat: int) -> Ratios:
    print(f"\n== {dialect}: {n:,} opportunities (seed {seed}) ==", flush=True)
    ratios: Ratios = {}
    with scratch_database(dialect, prefix="sfsync-bench-") as url:
        warehouse = open_warehouse(DatabaseSettings(url=url), require_head=False, create=True)
        with warehouse.engine.begin() as conn:
            upgrade(conn)
        seconds, counts = timed(lambda: fill(warehouse, n, seed))
        print(f"fill: {seconds:.1f}s  " + ", ".join(f"{t}={c:,}" for t, c in counts.items()))

        seconds, first = timed(lambda: run_audit(warehouse, SETTINGS, as_of=AS_OF))
        print(f"first audit, all rules (every finding new): {seconds:.2f}s", flush=True)
        for c in first.rules:
            print(f"  {c.rule:<22} open={c.open:>8,} new={c.new:>8,} {c.seconds:.2f}s")
        seconds, _ = timed(lambda: run_audit(warehouse, SETTINGS, as_of=AS_OF))
        print(f"re-audit, all rules, nothing changed: {seconds:.2f}s")

        queries = hand_queries(dialect)
        with warehouse.engine.connect() as conn:
            ctx = build_context(
                conn, SETTINGS, as_of=AS_OF, rules=tuple(c.rule for c in first.rules)
            )
        print(
            f"{'rule':<22} {'hand SQL':>9} {'rule SQL':>9} {'unchanged':>10} "
            f"{'10% chg':>9} {'10% back':>9}  rows"
        )
        for c in first.rules:
            sql, params = queries[c.rule]

            def audit(rule: str = c.rule) -> Any:
                return run_audit(warehouse, SETTINGS, as_of=AS_OF, rules=[rule])

            def hand(sql: str = sql, params: dict[str, Any] = params) -> int:
                # The audit runs its queries without JIT on PostgreSQL (no_jit), so
                # the hand-written statement does too: with the server's default JIT,
                # compiling it can take longer than running it (0.65 s against 0.21 s
                # for close_date_past at 200,000 opportunities), which would flatter
                # every ratio.
                with warehouse.engine.connect() as conn:
                    if conn.dialect.name == "postgresql":
                        no_jit(conn)
                    return len(conn.execute(text(sql), params).fetchall())

            def rule_sql(rule: str = c.rule) -> int:
                # The statement run_audit evaluates, alone: same settings as the audit
                # transaction (JIT off on PostgreSQL), rows fetched, no findings work.
                with warehouse.engine.connect() as conn:
                    if conn.dialect.name == "postgresql":
                        no_jit(conn)
                    return len(
                        conn.execute(get_rule(rule).query(ctx, conn.dialect.name)).fetchall()
                    )

            runs = [timed(hand) for _ in range(repeat)]
            theirs = min(r[0] for r in runs)
            sql_only = min(timed(rule_sql)[0] for _ in range(repeat))
            unchanged = min(timed(audit)[0] for _ in range(repeat))
            rows = runs[0][1]
            live = c.open + c.waived
            check = "" if rows == live else f"  (!= {live:,} findings)"

            original = _changed_tenth(warehouse, c.rule)
            changed, back, hand_changed = [], [], []
            for _ in range(repeat):
                _set_opportunities(warehouse, _change(original))
                hand_changed.append(timed(hand)[0])
                seconds, summary = timed(audit)
                changed.append(seconds)
                tally = summary.rules[0]
                _set_opportunities(warehouse, original)
                back.append(timed(audit)[0])
            ratios[c.rule] = {
                "unchanged": unchanged / theirs,
                "10% changed": min(changed) / min(hand_changed),
                "10% back": min(back) / theirs,
            }
            print(
                f"{c.rule:<22} {theirs:>8.2f}s {sql_only:>8.2f}s {unchanged:>9.2f}s "
                f"{min(changed):>8.2f}s {min(back):>8.2f}s  {rows:,}{check}; 10 %: "
                f"{len(original):,} changed (resolved {tally.resolved:,})",
                flush=True,
            )
        for day in (1, 2, 3):
            as_of = AS_OF + timedelta(days=day)
            seconds, night = timed(partial(run_audit, warehouse, SETTINGS, as_of=as_of))
            print(
                f"night {day} (as of {as_of}), all rules: {seconds:.2f}s, "
                f"{_written(warehouse, night.run_id):,} findings written; "
                + ", ".join(f"{c.rule} {c.seconds:.2f}s" for c in night.rules),
                flush=True,
            )
        warehouse.dispose()
    return ratios


def _written(warehouse: Warehouse, run_id: int | None) -> int:
    """Findings an audit opened or rewrote (it stamps them with its run)."""
    finding = Finding.__table__
    with warehouse.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(finding.c.last_seen_run_id == run_id)
            ).scalar_one()
        )


def print_ratios(n: int, results: dict[str, Ratios]) -> None:
    scenarios = ("unchanged", "10% changed", "10% back")
    print(f"\nrun_audit / hand SQL, {n:,} opportunities (target <= 1.5x):")
    header = f"{'rule':<22}" + "".join(
        f" {f'{d} {s}':>{max(len(d) + len(s) + 1, 8)}}" for d in results for s in scenarios
    )
    print(header)
    rules = next(iter(results.values())).keys() if results else []
    for rule in rules:
        line = f"{rule:<22}"
        for dialect, ratios in results.items():
            for s in scenarios:
                width = max(len(dialect) + len(s) + 1, 8)
                line += f" {f'{ratios[rule][s]:.2f}x':>{width}}"
        print(line)
    worst = max(
        (r[s] for ratios in results.values() for r in ratios.values() for s in r), default=0
    )
    print(f"worst: {worst:.2f}x {'(target met)' if worst <= 1.5 else '(above the 1.5x target)'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opportunities", type=int, default=100_000)
    parser.add_argument("--dialect", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seed", type=int, default=20240815)
    parser.add_argument("--repeat", type=int, default=2, help="best of N timings per rule")
    args = parser.parse_args()
    dialects = ["sqlite", "postgresql"] if args.dialect == "both" else [args.dialect]
    results = {d: bench(d, args.opportunities, args.seed, args.repeat) for d in dialects}
    print_ratios(args.opportunities, results)


if __name__ == "__main__":
    main()
