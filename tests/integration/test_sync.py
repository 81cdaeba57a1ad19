"""Sync against the dev org: exact copies, incremental changes, deletes, faults, budget, crashes."""

from __future__ import annotations

import math
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
from sqlalchemy import event, func, select

from sfsync.chaos import CRASH_EXIT_CODE
from sfsync.devorg import FaultSpec
from sfsync.devorg._http import Request, Response
from sfsync.extract import run_sync
from sfsync.extract.specs import object_specs
from sfsync.formats import soql_quote
from sfsync.warehouse.models import Opportunity, Run, SyncState, table_of
from tests.cli_helpers import run_sfsync
from tests.integration.conftest import OrgFactory
from tests.integration.sync_helpers import mismatches, random_changes, settle
from tests.reliability.kills import ARRIVAL_TIMEOUT_S, KILLED, Gate, finish, sfsync_process

# The incremental objects sfsync always reads through REST (their ObjectSpec: bulk=False).
NEVER_BULK = frozenset({"User", "Product2", "Task"})


def test_full_sync_matches_the_org_exactly(running_org: OrgFactory) -> None:
    """Row counts and a checksum of Id + SystemModstamp per object match the org."""
    org = running_org(400)
    warehouse = org.warehouse()
    result = run_sync(warehouse, org.settings)
    assert result.status == "ok"
    assert mismatches(org.org, org.settings, warehouse) == {}
    assert result.objects["Opportunity"].upserted == 400
    never_bulk = {
        n for n, s in object_specs(org.settings).items() if s.mode == "incremental" and not s.bulk
    }
    assert never_bulk == NEVER_BULK
    # Two composite calls (describes, reference queries, counts or first pages), then a call
    # per 2,000 rows; the first page of an object that never goes through Bulk came with them.
    pages = sum(
        max(math.ceil(r.upserted / 2000) - (name in NEVER_BULK), 0)
        for name, r in result.objects.items()
        if r.mode == "rest"
    )
    assert result.api_calls == 2 + pages
    with warehouse.session() as session:
        run = session.get(Run, result.run_id)
        assert run is not None
        assert run.status == "ok"
        assert run.api_calls == result.api_calls == org.server.api_calls - 0
        assert run.counts["sync"]["objects"]["Opportunity"]["upserted"] == 400


def test_incremental_sync_after_changes_during_a_sync(running_org: OrgFactory) -> None:
    """Updates, soft deletes, purges and creates made *while* a sync runs are all caught next time.

    The changes are made when the sync asks for its first OpportunityLineItem page: every
    opportunity has been read by then (so each purged one is in the warehouse and must be
    marked deleted), and the sync is still running. Never after a sleep: on a loaded
    machine a sleeping mutator purged opportunities the sync had not read yet.
    """
    org = running_org(1500)
    warehouse = org.warehouse()
    rng = random.Random(5)
    changes: dict[str, int] = {}

    def change_the_org(phase: str, req: Request, _response: Response | None) -> None:
        query = req.param("q") or ""
        if phase == "before" and not changes and re.search(r"\bFROM OpportunityLineItem\b", query):
            changes.update(
                random_changes(org.org, rng, updates=500, soft_deletes=50, purges=20, creates=100)
            )

    org.server.add_hook(change_the_org)
    first = run_sync(warehouse, org.settings)
    settle()
    assert first.status == "ok"
    assert changes == {"updates": 500, "soft_deletes": 50, "purges": 20, "creates": 100}
    calls_before = org.server.api_calls
    second = run_sync(warehouse, org.settings)
    assert mismatches(org.org, org.settings, warehouse) == {}
    # Proportional to the changes: a handful of overhead calls plus pages of changed rows,
    # nowhere near the ~60 pages a full re-pull of this org takes.
    assert org.server.api_calls - calls_before == second.api_calls
    assert second.api_calls <= 2 + 8
    with warehouse.session() as session:
        deleted = session.scalars(
            select(Opportunity.id).where(Opportunity.is_deleted.is_(True))
        ).all()
    assert len(deleted) == 70


@pytest.mark.slow
def test_a_100k_org_syncs_exactly_and_changes_during_a_sync_are_caught_next_time(
    running_org: OrgFactory,
) -> None:
    """Issue 5's scale check: 100,000 opportunities (Bulk where it pays), then user changes."""
    org = running_org(100_000, seed=3, extra={"sync": {"bulk_poll_s": 0.2}})
    first = run_sfsync("sync", env=org.env, timeout=1200)
    assert first.exit_code == 0, first.stderr
    warehouse = org.warehouse()
    assert mismatches(org.org, org.settings, warehouse) == {}
    with warehouse.session() as session:
        assert session.scalar(select(func.count()).select_from(Opportunity)) == 100_000

    # 500 updates, 50 soft deletes, 20 purges, 100 creates, made while the next sync runs.
    rng = random.Random(100)
    changes: dict[str, int] = {}
    started = threading.Event()

    def change_the_org() -> None:
        changes.update(random_changes(org.org, rng, updates=100))
        started.set()
        more = random_changes(org.org, rng, updates=400, soft_deletes=50, purges=20, creates=100)
        changes["updates"] += more["updates"]
        changes.update({k: v for k, v in more.items() if k != "updates"})

    mutator = threading.Thread(target=change_the_org)
    mutator.start()
    started.wait(timeout=60)
    during = run_sfsync("sync", env=org.env, timeout=600)
    mutator.join()
    assert during.exit_code == 0, during.stderr[-2000:]
    assert changes == {"updates": 500, "soft_deletes": 50, "purges": 20, "creates": 100}
    settle()
    calls_before = org.server.api_calls
    after = run_sync(warehouse, org.settings)
    assert after.status == "ok"
    assert mismatches(org.org, org.settings, warehouse) == {}
    # Proportional to the changes (at most ~670 changed opportunities plus their cascades),
    # not to the org: a full pull of it takes hundreds of pages.
    assert org.server.api_calls - calls_before == after.api_calls <= 2 + 12


def test_nothing_changed_costs_only_the_overhead_calls(running_org: OrgFactory) -> None:
    org = running_org(200)
    warehouse = org.warehouse()
    run_sync(warehouse, org.settings)
    again = run_sync(warehouse, org.settings)
    # Describes, reference queries, counts and getDeleted: two composite calls, nothing else.
    assert again.api_calls == 2
    assert all(r.upserted == 0 for r in again.objects.values() if r.mode != "reference")


_SYNCED_TABLES = ("opportunity", "opportunity_line_item", "opportunity_history", "task", "user")


def _whole_table_reads(
    warehouse: Any, run: Callable[[], Any], *, rows_only: bool = False
) -> dict[str, list[str]]:
    """The synced tables that ``run`` read whole (SQLite's query plans), by statement.

    ``rows_only``: only reads of the rows themselves count, not a scan of a covering
    index (a few bytes a row, against the row with its ``raw`` document) or of the
    partial index of the rows marked deleted."""
    seen: list[tuple[str, Any]] = []

    def capture(
        _conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, many: bool
    ) -> None:
        if not many and statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE")):
            seen.append((statement, params))

    event.listen(warehouse.engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        event.remove(warehouse.engine, "before_cursor_execute", capture)
    scans: dict[str, list[str]] = {}
    with warehouse.engine.connect() as conn:
        for statement, params in seen:
            for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params):
                words = str(row[3]).split()
                if rows_only and (
                    words[2:4] == ["USING", "COVERING"] or words[-1].endswith("_deleted")
                ):
                    continue
                if words[0] == "SCAN" and words[1] in _SYNCED_TABLES:
                    scans.setdefault(words[1], []).append(" ".join(statement.split())[:120])
    return scans


def _live_rows(org: Any, warehouse: Any) -> tuple[dict[str, int | None], dict[str, int]]:
    """Per object: the live rows ``sync_state`` records, and the live rows there are."""
    specs = object_specs(org.settings)
    with warehouse.session() as session:
        recorded = {s.object: s.rows for s in session.scalars(select(SyncState))}
        counted = {}
        for name in recorded:
            table = table_of(specs[name].model)
            counted[name] = session.scalar(
                select(func.count()).select_from(table).where(table.c.is_deleted.is_(False))
            )
    return recorded, counted


def _synced_without_look_back(running_org: OrgFactory) -> tuple[Any, Any]:
    """An org of 300 opportunities and its warehouse after a first sync, with no look-back
    or lag: a night re-reads no row of the night before (rows stamped within the
    look-back of the last window's end are read again, and then counted again)."""
    org = running_org(300, extra={"sync": {"lookback_s": 0, "lag_s": 0}})
    warehouse = org.warehouse()
    run_sync(warehouse, org.settings)
    return org, warehouse


def _change(org: Any, seed: int, **changes: int) -> None:
    """``random_changes`` in a second of their own, before and after the sync windows."""
    settle()  # without a look-back, a change in the second the last window ended is missed
    random_changes(org.org, random.Random(seed), **changes)
    settle()


def test_a_night_with_nothing_changed_reads_no_synced_table_whole(
    running_org: OrgFactory,
) -> None:
    """Its cost follows the changes, not the org: at a million opportunities, counting the
    live rows of OpportunityHistory and finding the opportunities to snapshot read
    millions of rows a night. The live row counts (``sync_state.rows``) stay right."""
    org, warehouse = _synced_without_look_back(running_org)
    assert _whole_table_reads(warehouse, lambda: run_sync(warehouse, org.settings)) == {}
    _change(org, 8, updates=20, soft_deletes=3, creates=4)
    assert run_sync(warehouse, org.settings).status == "ok"
    assert mismatches(org.org, org.settings, warehouse) == {}
    recorded, counted = _live_rows(org, warehouse)
    assert recorded == counted
    assert _whole_table_reads(warehouse, lambda: run_sync(warehouse, org.settings)) == {}
    assert _live_rows(org, warehouse) == (recorded, counted)


def test_a_night_with_changes_counts_live_rows_without_reading_the_rows(
    running_org: OrgFactory,
) -> None:
    """Counting the live rows of a changed table read every row for its ``is_deleted``:
    0.035 s for 100,000 opportunities, 0.09 s for 520,000 history rows, a night, on
    SQLite. Counted as all rows (through the smallest index) less those marked deleted
    (a partial index that holds only them), the count reads no row."""
    org, warehouse = _synced_without_look_back(running_org)
    _change(org, 9, updates=20, soft_deletes=3, creates=4)
    changed = _whole_table_reads(
        warehouse, lambda: run_sync(warehouse, org.settings), rows_only=True
    )
    assert changed == {}
    assert mismatches(org.org, org.settings, warehouse) == {}
    recorded, counted = _live_rows(org, warehouse)
    assert recorded == counted
    assert counted["Opportunity"] < 300 + 4  # soft deletes are not counted


def test_live_rows_a_killed_run_did_not_count_are_counted_the_next_night(
    running_org: OrgFactory, tmp_path: Path
) -> None:
    """Killed after Opportunity's changes committed, before its rows were counted: the
    next night reads nothing new for it, and still records the right live rows."""
    org, warehouse = _synced_without_look_back(running_org)
    _change(org, 11, updates=10, soft_deletes=5, creates=6)
    # User, Product2, then Opportunity reach the point (reference objects never do).
    killed = sfsync_process(
        "sync", env=org.env, log=tmp_path / "sync.log", crash_at="sync.object_committed:3"
    )
    assert finish(killed) == CRASH_EXIT_CODE
    again = run_sync(warehouse, org.settings)
    assert again.status == "ok"
    assert again.objects["Opportunity"].upserted == again.objects["Opportunity"].deleted == 0
    assert mismatches(org.org, org.settings, warehouse) == {}
    recorded, counted = _live_rows(org, warehouse)
    assert recorded == counted


def test_a_nightly_window_that_fits_one_page_costs_no_call_of_its_own(
    running_org: OrgFactory,
) -> None:
    """An incremental window's first page comes in the planning composite (where the count
    used to): a night with a few edits per object costs the two composite calls, nothing else."""
    org = running_org(300)
    warehouse = org.warehouse()
    run_sync(warehouse, org.settings)
    random_changes(org.org, random.Random(8), updates=40, creates=5)
    settle()
    calls_before = org.server.api_calls
    again = run_sync(warehouse, org.settings)
    assert again.status == "ok"
    assert again.objects["Opportunity"].upserted >= 45
    assert again.objects["Opportunity"].mode == "rest"
    assert again.api_calls == org.server.api_calls - calls_before == 2
    assert mismatches(org.org, org.settings, warehouse) == {}


@pytest.mark.parametrize("full", [False, True], ids=["first", "full"])
def test_a_first_or_full_pull_of_an_object_bulk_never_reads_starts_from_the_planning_page(
    running_org: OrgFactory, full: bool
) -> None:
    """User, Product2 and Task always go through REST: their planning composite asks for
    the window's first page rather than its count, as a nightly window does, and that
    page is not asked for again (here each fits one page: no call of their own)."""
    org = running_org(300)
    warehouse = org.warehouse()
    if full:
        run_sync(warehouse, org.settings)
    org.server.clear_requests()
    result = run_sync(warehouse, org.settings, full=full)
    assert result.status == "ok"
    for name in ("User", "Product2"):
        outcome = result.objects[name]
        assert (outcome.mode, outcome.api_calls) == ("rest", 0), outcome
        assert outcome.upserted == outcome.total > 0
    queries = [unquote_plus(r.query) for r in org.server.requests if r.method == "GET"]
    assert not [q for q in queries if re.search(r"\bFROM (User|Product2)\b", q)]
    assert mismatches(org.org, org.settings, warehouse) == {}


def test_the_planning_composites_are_in_flight_together(running_org: OrgFactory) -> None:
    """Salesforce takes 5 queries a composite call, so a run plans in two; the second does
    not wait for the first's answer (on a real org, a night's run costs one round trip
    for its planning, not two). The first call is held until the second arrives."""
    # Calls that outlast the hold: a failing run waits it out and is not retried.
    org = running_org(200, extra={"salesforce": {"timeout_s": 120}})
    warehouse = org.warehouse()
    run_sync(warehouse, org.settings)
    lock = threading.Lock()
    in_flight = most = 0
    together = threading.Event()

    def hold_until_both(phase: str, req: Request, _response: Response | None) -> None:
        nonlocal in_flight, most
        if not req.path.endswith("/composite"):
            return
        with lock:
            in_flight += 1 if phase == "before" else -1
            most = max(most, in_flight)
            if in_flight >= 2:
                together.set()
        if phase == "before":
            together.wait(60)  # only a failing run waits this out

    remove = org.server.add_hook(hold_until_both)
    try:
        again = run_sync(warehouse, org.settings)
    finally:
        remove()
    assert again.status == "ok"
    assert again.api_calls == 2
    assert most == 2, "the second planning composite waited for the first's answer"


def test_a_nightly_window_of_several_pages_goes_on_from_the_first_one(
    running_org: OrgFactory,
) -> None:
    """The window's later pages follow the first page's cursor: one call per further page,
    and the first page has ``sync.page_size`` rows like the others."""
    org = running_org(2600, extra={"sync": {"bulk_threshold": 100_000, "page_size": 1000}})
    warehouse = org.warehouse()
    run_sync(warehouse, org.settings)
    random_changes(org.org, random.Random(9), updates=2300)
    settle()
    org.server.clear_requests()
    again = run_sync(warehouse, org.settings)
    assert again.status == "ok"
    assert again.objects["Opportunity"].upserted == 2300
    assert again.objects["Opportunity"].api_calls == 2  # rows 1,001-2,000 and 2,001-2,300
    assert mismatches(org.org, org.settings, warehouse) == {}
    # No query of its own: the composite brought page 1, page 2 came by its locator.
    queries = [unquote_plus(r.query) for r in org.server.requests if r.method == "GET"]
    assert not [q for q in queries if re.search(r"\bFROM Opportunity\b", q)]


def test_purged_without_trace_is_found_by_the_id_sweep(running_org: OrgFactory) -> None:
    """A record erased beyond getDeleted's reach is marked deleted by Id reconciliation."""
    org = running_org(200, extra={"sync": {"reconcile_every_days": 0.00001}})
    warehouse = org.warehouse()
    run_sync(warehouse, org.settings)
    victim = org.org.query("SELECT Id FROM Opportunity ORDER BY Id LIMIT 1")[0]["Id"]
    org.org.erase("Opportunity", victim)
    settle()
    result = run_sync(warehouse, org.settings)
    assert result.objects["Opportunity"].reconciled
    with warehouse.session() as session:
        row = session.get(Opportunity, victim)
        assert row is not None
        assert row.is_deleted
    assert mismatches(org.org, org.settings, warehouse) == {}


def test_full_resync_reconciles(running_org: OrgFactory) -> None:
    org = running_org(200)
    warehouse = org.warehouse()
    run_sync(warehouse, org.settings)
    victim = org.org.query("SELECT Id FROM Opportunity ORDER BY Id DESC LIMIT 1")[0]["Id"]
    org.org.erase("Opportunity", victim)
    result = run_sync(warehouse, org.settings, full=True)
    assert result.objects["Opportunity"].deleted >= 1
    assert mismatches(org.org, org.settings, warehouse) == {}


def test_bulk_path_matches_and_resumes_nothing_left_over(running_org: OrgFactory) -> None:
    """Above the threshold, objects come through Bulk 2.0 jobs with the same result."""
    org = running_org(
        800, extra={"sync": {"bulk_threshold": 500, "bulk_page_size": 1000, "bulk_poll_s": 0.05}}
    )
    warehouse = org.warehouse()
    result = run_sync(warehouse, org.settings)
    assert result.objects["Opportunity"].mode == "bulk"
    assert result.objects["OpportunityHistory"].mode == "bulk"
    assert mismatches(org.org, org.settings, warehouse) == {}
    with warehouse.session() as session:
        assert all(s.resume is None for s in session.scalars(select(SyncState)))


def test_a_bulk_page_commits_once_however_many_chunks_it_arrives_in(
    running_org: OrgFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks keep memory flat; the page is the unit of commit (with its locator). A
    transaction per chunk made SQLite rewrite the indexes' hot pages at every chunk."""
    monkeypatch.setattr("sfsync.salesforce._bulk.CHUNK_ROWS", 100)
    org = running_org(
        800, extra={"sync": {"bulk_threshold": 500, "bulk_page_size": 1000, "bulk_poll_s": 0.05}}
    )
    commits: list[str] = []
    monkeypatch.setattr(
        "sfsync.extract._sync.crash_point",
        lambda name: commits.append(name) if "page" in name else None,
    )
    org.server.clear_requests()
    warehouse = org.warehouse()
    result = run_sync(warehouse, org.settings)
    assert result.objects["OpportunityHistory"].mode == "bulk"
    assert result.objects["OpportunityHistory"].upserted > 2000  # pages of 10+ chunks
    pages = [
        r
        for r in org.server.requests
        if r.method == "GET"
        and (r.path.endswith("/results") or ("/query" in r.path and "jobs" not in r.path))
    ]
    # A first page that came with the planning composite commits without a request.
    planned = [n for n, r in result.objects.items() if n in NEVER_BULK and r.upserted]
    assert len(commits) == len(pages) + len(planned)
    assert mismatches(org.org, org.settings, warehouse) == {}


def test_every_bulk_job_is_created_before_the_other_objects_are_pulled(
    running_org: OrgFactory,
) -> None:
    """On a real org a Bulk job processes for seconds to minutes: sfsync creates them all
    first, pulls the REST and reference objects meanwhile, then reads each job's pages.
    (Products enough for a second REST page: the first comes with the planning composite.)"""
    org = running_org(
        800,
        extra={
            "sync": {
                "bulk_threshold": 500,
                "bulk_page_size": 1000,
                "bulk_poll_s": 0.05,
                "page_size": 200,
            }
        },
    )
    for n in range(250):
        org.org.create("Product2", {"Name": f"Product {n}", "IsActive": True})
    settle()
    org.server.clear_requests()
    warehouse = org.warehouse()
    result = run_sync(warehouse, org.settings)
    bulk = [n for n, r in result.objects.items() if r.mode == "bulk"]
    assert len(bulk) >= 2, result.objects
    requests = list(org.server.requests)
    created = [
        i for i, r in enumerate(requests) if r.method == "POST" and r.path.endswith("/jobs/query")
    ]
    results = [i for i, r in enumerate(requests) if r.path.endswith("/results")]
    rest_pages = [
        i
        for i, r in enumerate(requests)
        if "/query" in r.path and r.method == "GET" and "jobs" not in r.path
    ]
    assert len(created) == len(bulk)
    assert max(created) < min(results), "a job was created after results were read"
    assert rest_pages, "no REST object was pulled"
    assert max(created) < min(rest_pages), "REST objects waited for a job"
    assert mismatches(org.org, org.settings, warehouse) == {}


def test_a_bulk_job_in_progress_is_polled_again_when_its_progress_says_it_is_done(
    running_org: OrgFactory,
) -> None:
    """Jobs that take 3 s: the first in turn is asked once while it runs and once when its
    numberRecordsProcessed says it is complete (here [2, 1, 1] polls); a growing back-off
    from 0.1 s asked it 7 times. The bound leaves room for one estimate that comes out a
    little early (the client can only place the server's moment within each call), and
    for a later job still finishing at its turn."""
    org = running_org(
        800, extra={"sync": {"bulk_threshold": 500, "bulk_page_size": 1000, "bulk_poll_s": 0.1}}
    )
    org.server.bulk_delay = 3.0
    try:
        org.server.clear_requests()
        warehouse = org.warehouse()
        result = run_sync(warehouse, org.settings)
    finally:
        org.server.bulk_delay = 0.0
    bulk = [n for n, r in result.objects.items() if r.mode == "bulk"]
    assert len(bulk) >= 2, result.objects
    polls = [
        r.path.rsplit("/", 1)[1]
        for r in org.server.requests
        if r.method == "GET" and re.search(r"/jobs/query/[^/]+$", r.path)
    ]
    per_job = list(Counter(polls).values())  # in the order of each job's first poll
    assert len(per_job) == len(bulk)
    assert max(per_job) <= 3, per_job
    assert mismatches(org.org, org.settings, warehouse) == {}


def test_faults_do_not_change_the_result(running_org: OrgFactory) -> None:
    """10% 5xx, 100 ms latency and sessions that expire mid-run: same warehouse, more calls."""
    org = running_org(
        400, faults=FaultSpec(error_rate=0.1, latency_ms=100, session_ttl=1.5, seed=11)
    )
    warehouse = org.warehouse()
    result = run_sync(warehouse, org.settings)
    assert result.status == "ok"
    org.server.set_faults(FaultSpec())
    assert mismatches(org.org, org.settings, warehouse) == {}


def test_api_limit_running_out_stops_cleanly_with_exit_4(running_org: OrgFactory) -> None:
    """The org's daily limit runs out mid-sync: rows so far are kept, the run is partial."""
    org = running_org(
        1500,
        api_limit=10,
        extra={"sync": {"page_size": 200, "max_api_share": 1.0, "api_floor": 0}},
    )
    outcome = run_sfsync("sync", env=org.env)
    assert outcome.exit_code == 4, outcome.stderr
    # Either sfsync's guard stops one call short, or the org refuses: both stop cleanly.
    assert "API budget reached" in outcome.stderr or "daily API limit" in outcome.stderr
    warehouse = org.warehouse()
    with warehouse.session() as session:
        run = session.scalars(select(Run).order_by(Run.id.desc())).first()
        assert run is not None
        assert run.status == "partial"
        synced = session.scalars(select(Opportunity.id)).all()
    assert 0 < len(synced) < 1500  # committed pages survive


def test_budget_share_stops_before_the_limit(running_org: OrgFactory) -> None:
    """sync.max_api_share keeps a run far from the org's limit (exit 4, run partial)."""
    org = running_org(1500, api_limit=60, extra={"sync": {"max_api_share": 0.1, "api_floor": 0}})
    outcome = run_sfsync("sync", env=org.env)
    assert outcome.exit_code == 4
    assert "max_api_share" in outcome.stderr
    assert org.server.api_calls <= 6


@pytest.mark.postgres
@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_sfsync_writes_do_not_make_a_deal_look_fresh(
    running_org: OrgFactory, dialect: str, request: Any
) -> None:
    """When the integration user edits an opportunity, the last human modification is kept
    (on PostgreSQL through the staged upsert of a page)."""
    url = request.getfixturevalue("postgres_url") if dialect == "postgresql" else None
    org = running_org(100, database_url=url)
    warehouse = org.warehouse()
    run_sync(warehouse, org.settings)
    opp_id = org.org.query("SELECT Id FROM Opportunity WHERE IsClosed = false ORDER BY Id LIMIT 1")[
        0
    ]["Id"]
    with warehouse.session() as session:
        before = session.get(Opportunity, opp_id)
        assert before is not None
        human_before = (before.last_human_modified_date, before.last_human_modified_by_id)
    settle()
    org.org.update("Opportunity", opp_id, {"Description": "touched by sfsync"})  # integration user
    settle()
    run_sync(warehouse, org.settings)
    with warehouse.session() as session:
        after = session.get(Opportunity, opp_id)
        assert after is not None
        assert after.last_modified_by_id == org.org.integration_user_id
        assert (after.last_human_modified_date, after.last_human_modified_by_id) == human_before


def test_fields_outside_the_columns_are_kept_in_raw(running_org: OrgFactory) -> None:
    """Extra fields (sync.extra_fields) land in raw only; long values survive intact."""
    org = running_org(50, extra={"sync": {"extra_fields": {"Opportunity": ["Description"]}}})
    opp_id = org.org.query("SELECT Id FROM Opportunity ORDER BY Id LIMIT 1")[0]["Id"]
    long_name = "x" * 120
    org.org.update("Opportunity", opp_id, {"Name": long_name, "Description": "y" * 3000})
    settle()
    settings = org.settings
    warehouse = org.warehouse()
    result = run_sync(warehouse, settings)
    assert result.status == "ok"
    with warehouse.session() as session:
        row = session.get(Opportunity, opp_id)
        assert row is not None
        assert row.raw["Name"] == long_name
        assert row.name == long_name
        assert row.raw["Description"] == "y" * 3000


def test_sync_cli_prints_a_summary(running_org: OrgFactory) -> None:
    org = running_org(100)
    outcome = run_sfsync("sync", env=org.env)
    assert outcome.exit_code == 0, outcome.stderr
    assert "Opportunity" in outcome.stdout
    assert "API calls" in outcome.stdout
    assert '"event": "sync.object.done"' in outcome.stderr
    again = run_sfsync("sync", "--object", "Opportunity", env=org.env)
    assert again.exit_code == 0
    assert "OpportunityHistory" not in again.stdout
    bad = run_sfsync("sync", "--object", "Opportunty", env=org.env)
    assert bad.exit_code == 2
    assert "'Opportunty'" in bad.stderr


@pytest.mark.postgres
def test_full_and_incremental_sync_on_postgres(running_org: OrgFactory, postgres_url: str) -> None:
    org = running_org(300, database_url=postgres_url)
    warehouse = org.warehouse()
    run_sync(warehouse, org.settings)
    random_changes(org.org, random.Random(1), updates=40, soft_deletes=5, purges=2, creates=10)
    settle()
    run_sync(warehouse, org.settings)
    assert mismatches(org.org, org.settings, warehouse) == {}


@pytest.mark.postgres
@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_bulk_page_cut_short_and_read_again_is_upserted_once_per_id(
    running_org: OrgFactory, monkeypatch: pytest.MonkeyPatch, dialect: str, request: Any
) -> None:
    """A result page breaks off after some of its chunks were handed out; it is read again
    and those chunks come twice. On PostgreSQL the page is staged (COPY) and upserted in
    one statement, which may meet each Id only once."""
    monkeypatch.setattr("sfsync.salesforce._bulk.CHUNK_ROWS", 100)
    url = request.getfixturevalue("postgres_url") if dialect == "postgresql" else None
    org = running_org(
        800,
        database_url=url,
        extra={"sync": {"bulk_threshold": 500, "bulk_page_size": 1000, "bulk_poll_s": 0.05}},
    )
    cut: list[str] = []

    def cut_the_first_history_page(phase: str, req: Request, response: Response | None) -> None:
        if phase != "after" or cut or response is None or not req.path.endswith("/results"):
            return
        body = response.body
        text = body if isinstance(body, bytes) else b"".join(body or [])
        if text.count(b"\n") < 900:  # not a full page of 1,000 rows
            response.body = text
            return
        response.body = text[: len(text) * 6 // 10]  # 600 of 1,000 rows: 6 chunks handed out
        cut.append(req.path)

    org.server.add_hook(cut_the_first_history_page)
    warehouse = org.warehouse()
    result = run_sync(warehouse, org.settings)
    assert cut, "no full result page was served"
    assert result.status == "ok"
    assert result.objects["OpportunityHistory"].mode == "bulk"
    assert mismatches(org.org, org.settings, warehouse) == {}


def test_snapshots_record_open_opportunities_and_their_close_date_moves(
    running_org: OrgFactory,
) -> None:
    """The warehouse keeps its own change log of close dates: the slip fallback."""
    from sfsync.warehouse.models import OpportunitySnapshot

    org = running_org(150)
    warehouse = org.warehouse()
    run_sync(warehouse, org.settings)
    open_ids = {r["Id"] for r in org.org.query("SELECT Id FROM Opportunity WHERE IsClosed = false")}
    with warehouse.session() as session:
        snapped = set(session.scalars(select(OpportunitySnapshot.opportunity_id)))
    assert snapped == open_ids
    moved = sorted(open_ids)[0]
    soql = f"SELECT OwnerId FROM Opportunity WHERE Id = {soql_quote(moved)}"
    owner = org.org.query(soql)[0]["OwnerId"]
    org.org.update("Opportunity", moved, {"CloseDate": "2031-01-15"}, as_user=owner)
    settle()
    run_sync(warehouse, org.settings)
    with warehouse.session() as session:
        rows = session.scalars(
            select(OpportunitySnapshot).where(OpportunitySnapshot.opportunity_id == moved)
        ).all()
        total = session.scalar(select(func.count()).select_from(OpportunitySnapshot))
    assert [str(r.close_date) for r in rows][-1] == "2031-01-15"
    assert total == len(
        open_ids
    )  # same day: the moved one was updated in place, nothing else added


def test_purge_while_a_bulk_pull_is_interrupted_is_not_undone_by_the_resumed_job(
    running_org: OrgFactory, tmp_path: Path
) -> None:
    """A resumed job's snapshot may still hold purged rows: deletes are applied after the pull."""
    org = running_org(
        400, extra={"sync": {"bulk_threshold": 100, "bulk_page_size": 1000, "bulk_poll_s": 0.05}}
    )
    warehouse = org.warehouse()

    def history_resume() -> dict[str, object] | None:
        with warehouse.session() as session:
            state = session.get(SyncState, "OpportunityHistory")
            return state.resume if state is not None else None

    # Hold the request for History's second page; once its first page and locator are
    # committed (observed in the warehouse), kill the sync there.
    def second_page(req: Request) -> bool:
        return req.path.endswith("/results") and "locator=" in req.raw_query

    gate = Gate(org.server, second_page)
    sync = sfsync_process("sync", env=org.env, log=tmp_path / "sync.log")
    try:
        assert gate.arrived.wait(ARRIVAL_TIMEOUT_S), "the second Bulk page was never asked for"
        for _ in range(int(ARRIVAL_TIMEOUT_S / 0.05)):
            resume = history_resume()
            if resume and resume.get("locator"):
                break
            time.sleep(0.05)
        sync.kill()
        assert finish(sync) == KILLED
    finally:
        gate.release()
    resume = history_resume()
    assert resume is not None
    assert resume.get("locator")
    victims = [
        r["Id"] for r in org.org.query("SELECT Id FROM Opportunity ORDER BY Id DESC LIMIT 3")
    ]
    for victim in victims:
        org.org.hard_delete("Opportunity", victim)
    settle()
    second = run_sync(warehouse, org.settings)
    assert second.status == "ok"
    assert mismatches(org.org, org.settings, warehouse) == {}
