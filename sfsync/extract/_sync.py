"""One sync: pull every configured object's changes into the warehouse.

The shape of a run, in API calls:

1. ``/limits`` (the budget and the server clock),
2. one ``/composite`` call describing every object (field lists, types),
3. one or two ``/composite`` calls with the small reference objects' queries,
   the first page of each incremental object's window (a ``COUNT()`` instead
   for a first or full pull, whose window is the whole object) and
   ``getDeleted`` per object,
4. the pages themselves: REST (2,000 rows a call) or, above
   ``sync.bulk_threshold`` rows, a Bulk 2.0 job (tens of thousands a call).
   A nightly window that fits its first page costs no call of its own.

Windows are half-open on the watermark field (``SystemModstamp``, or
``CreatedDate`` where an object has none): ``[watermark - lookback, now - lag)``
ordered by ``(watermark, Id)``, read with ``queryAll`` so soft deletes come
along. Each page's rows and the watermark they reach commit in one transaction:
a crash at any point loses nothing, and re-running is idempotent (upsert by Id).
The watermark a page reaches is its highest stamp *inside the window*: a row
edited while the pull runs comes back at its old place with a stamp past the
window's end, and must not carry the watermark past rows not yet read.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from sfsync.chaos import crash_point
from sfsync.config import SYNC_OBJECTS, Settings
from sfsync.context import RunContext
from sfsync.errors import (
    ApiError,
    BudgetExhausted,
    ConfigError,
    Interrupted,
    SfsyncError,
)
from sfsync.extract._convert import ConvertedBatch, RowConverter, csv_records
from sfsync.extract._load import (
    PageUpsert,
    id_scratch_table,
    mark_deleted,
    mark_missing_deleted,
    record_snapshots,
    upsert_rows,
)
from sfsync.extract._prefetch import in_parallel, prefetched
from sfsync.extract._writer import OrderedWriter
from sfsync.extract.specs import (
    ObjectPlan,
    ObjectSpec,
    assumed_plan,
    describe_memo,
    object_specs,
    plan_object,
)
from sfsync.formats import parse_datetime
from sfsync.logging import get_logger
from sfsync.salesforce import BulkJobFailed, SalesforceClient, SubResponse, soql
from sfsync.stop import ShouldStop, never
from sfsync.warehouse import Warehouse
from sfsync.warehouse.counts import ObjectCounts, RunStatus, SyncCounts
from sfsync.warehouse.models import Run, SyncState, live_rows, table_of
from sfsync.warehouse.runs import error_text

__all__ = [
    "ObjectResult",
    "SyncInterrupted",
    "SyncProgress",
    "SyncResult",
    "plan_objects",
    "run_sync",
]

log = get_logger()

_PROBLEM_LOG_LIMIT = 20


class SyncInterrupted(Interrupted):
    """A stop was requested (SIGTERM); the sync stopped after a committed page."""


class SyncProgress(Protocol):
    def start(self, name: str, total: int | None, mode: str) -> None: ...
    def advance(self, name: str, rows: int) -> None: ...
    def finish(self, name: str, result: ObjectResult) -> None: ...


class _EventProgress:
    """Progress as structured events (the default off a TTY)."""

    def start(self, name: str, total: int | None, mode: str) -> None:
        log.info("sync.object.start", object=name, total=total, mode=mode)

    def advance(self, name: str, rows: int) -> None:
        log.debug("sync.page", object=name, rows=rows)

    def finish(self, name: str, result: ObjectResult) -> None:
        log.info("sync.object.done", **result.counts().model_dump())


@dataclass
class ObjectResult:
    name: str
    mode: str = "rest"
    upserted: int = 0
    deleted: int = 0
    problems: int = 0
    api_calls: int = 0
    seconds: float = 0.0
    total: int | None = None
    reconciled: bool = False

    def counts(self) -> ObjectCounts:
        return ObjectCounts(
            object=self.name,
            mode=self.mode,
            upserted=self.upserted,
            deleted=self.deleted,
            problems=self.problems,
            api_calls=self.api_calls,
            seconds=round(self.seconds, 3),
            reconciled=self.reconciled,
        )


@dataclass
class SyncResult:
    run_id: int
    status: RunStatus = "running"
    objects: dict[str, ObjectResult] = field(default_factory=dict)
    api_calls: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    error: SfsyncError | None = None

    def counts(self) -> SyncCounts:
        """What ``run.counts`` records of this sync."""
        return SyncCounts(
            status=self.status,
            api_calls=self.api_calls,
            seconds=round(self.seconds, 3),
            objects={name: r.counts() for name, r in self.objects.items()},
            warnings=list(self.warnings),
        )


def run(
    ctx: RunContext,
    *,
    objects: list[str] | None = None,
    full: bool = False,
    progress: SyncProgress | None = None,
) -> SyncResult:
    """The sync stage: pull ``objects`` (default: ``sync.objects``) into the warehouse.

    Returns the result with status ``ok``, ``partial`` (API budget reached:
    ``result.error`` is the :class:`BudgetExhausted`) or ``interrupted`` (a stop
    was requested). Other failures mark the run ``failed`` (with their text) and
    are raised. On its own (no ``ctx.run_id``) the sync holds the run lock and is
    a ``sync`` run; inside ``sfsync run`` its counts go into the whole run's.
    """
    with ctx.stage("sync") as record:
        result = SyncResult(record.id)
        record.counts = result.counts
        started = time.monotonic()
        try:
            with ctx.salesforce() as sf:
                calls_before = sf.api_calls
                syncer = _Syncer(
                    ctx.warehouse,
                    ctx.settings,
                    sf,
                    result,
                    progress or _EventProgress(),
                    ctx.stop,
                    full=full,
                )
                try:
                    syncer.run(objects or list(ctx.settings.sync.objects))
                    result.status = "ok"
                except BudgetExhausted as exc:
                    result.status, result.error = "partial", exc
                    log.warning("sync.budget_reached", message=exc.message)
                except Interrupted as exc:
                    result.status, result.error = "interrupted", exc
                    log.warning("sync.interrupted")
                finally:
                    result.api_calls = sf.api_calls - calls_before
        except BaseException as exc:
            result.status = "failed"
            result.error = exc if isinstance(exc, SfsyncError) else None
            raise
        finally:
            result.seconds = time.monotonic() - started
        record.status = result.status
        record.api_calls = result.api_calls
        record.error = error_text(result.error) if result.error else None
    return result


def run_sync(
    warehouse: Warehouse,
    settings: Settings,
    *,
    client: SalesforceClient | None = None,
    objects: list[str] | None = None,
    full: bool = False,
    run_id: int | None = None,
    progress: SyncProgress | None = None,
    should_stop: ShouldStop | None = None,
) -> SyncResult:
    """:func:`run` for a caller holding a warehouse and settings (scripts, tests)."""
    ctx = RunContext(settings, warehouse, should_stop or never, run_id=run_id, client=client)
    return run(ctx, objects=objects, full=full, progress=progress)


def sync_order(specs: Mapping[str, ObjectSpec], names: Iterable[str]) -> list[str]:
    """Reference objects first (the rules join on them), then the others, parents before
    children: the catalogue's order (config.SYNC_OBJECTS) within each group."""
    wanted = set(names)
    chosen = [n for n in SYNC_OBJECTS if n in wanted]
    return sorted(chosen, key=lambda n: specs[n].mode != "reference")


def plan_objects(
    settings: Settings, client: SalesforceClient, names: list[str]
) -> tuple[dict[str, ObjectPlan], list[str]]:
    """Describe ``names`` in one composite call and resolve their specs.

    Returns the plans and the names skipped because the org lacks the object
    (CurrencyType in a single-currency org). Required fields missing from the org
    are one :class:`ConfigError` listing all of them.
    """
    _check_names(settings, names)
    answers = _composite(client, [(f"describe:{n}", f"sobjects/{n}/describe") for n in names])
    return _resolve_plans(settings, client, names, answers)


def _check_names(settings: Settings, names: list[str]) -> None:
    specs = object_specs(settings)
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ConfigError([f"sync.objects: unknown object {n!r}" for n in unknown])


def _resolve_plans(
    settings: Settings,
    client: SalesforceClient,
    names: list[str],
    answers: dict[str, SubResponse],
) -> tuple[dict[str, ObjectPlan], list[str]]:
    specs = object_specs(settings, integration_user_id=client.integration_user_id)
    plans: dict[str, ObjectPlan] = {}
    skipped: list[str] = []
    errors: list[str] = []
    for name in names:
        answer = answers[f"describe:{name}"]
        spec = specs[name]
        if answer.status == 404 and spec.only_if_object:
            skipped.append(name)
            continue
        body = answer.raise_for_error(f"describe {name}")
        client.remember_describe(name, body)
        plan = plan_object(spec, body, task_key_field=settings.writeback.task_key_field)
        errors.extend(plan.errors)
        plans[name] = plan
    if errors:
        raise ConfigError(
            [f"{e} (required by sfsync; check the integration user's field access)" for e in errors]
        )
    return plans, skipped


# Planning calls sent together: a run has two or three (5 queries a call).
_COMPOSITES_IN_FLIGHT = 4


def _composite(
    client: SalesforceClient, requests: list[tuple[str, str]], *, page_size: int | None = None
) -> dict[str, SubResponse]:
    """GET subrequests packed into as few composite calls as Salesforce allows (queries
    answer with pages of ``page_size`` rows), the calls in flight together.

    A run's planning takes two or three calls (5 queries a call); none depends on
    another's answer, so they cost one round trip rather than one each.
    """
    chunks: list[list[tuple[str, str]]] = [[]]
    queries = 0
    for ref, path in requests:
        is_query = client.is_query_path(path)
        if len(chunks[-1]) == 25 or (is_query and queries == 5):
            chunks.append([])
            queries = 0
        chunks[-1].append((ref, path))
        queries += is_query

    def send(chunk: list[tuple[str, str]]) -> dict[str, SubResponse]:
        return client.composite_get(chunk, page_size=page_size)

    answers: dict[str, SubResponse] = {}
    for answered in in_parallel(send, chunks, limit=_COMPOSITES_IN_FLIGHT):
        answers.update(answered)
    return answers


@dataclass
class _Window:
    lower: datetime | None
    upper: datetime | None

    def conditions(self, field_name: str) -> list[str]:
        parts = []
        if self.lower is not None:
            parts.append(soql.at_least(field_name, self.lower))
        if self.upper is not None:
            parts.append(soql.before(field_name, self.upper))
        return parts


class _Syncer:
    def __init__(
        self,
        warehouse: Warehouse,
        settings: Settings,
        client: SalesforceClient,
        result: SyncResult,
        progress: SyncProgress,
        should_stop: Callable[[], bool],
        *,
        full: bool,
    ) -> None:
        self.warehouse = warehouse
        self.settings = settings
        self.sync = settings.sync
        self.client = client
        self.result = result
        self.progress = progress
        self.should_stop = should_stop
        self.full = full
        self._problem_logs: dict[str, int] = {}
        # Objects whose window's first page (not its count) the planning composite asks for.
        self._first_pages: set[str] = set()
        # Objects whose recorded live rows (sync_state.rows) are right as the run starts.
        self._rows_known: set[str] = set()

    # ---------------------------------------------------------------- the run

    def run(self, names: list[str]) -> None:
        """Describe, query references, count and list deletes in few calls; then pull.

        The first composite calls go out together with the describes, on the
        assumption that the org has every field sfsync names (``assumed_plan``);
        whatever the real describe changes is asked again. The window's end comes
        from the server's clock as the login response told it.
        """
        _check_names(self.settings, names)
        specs = object_specs(self.settings, integration_user_id=self.client.integration_user_id)
        ordered = sync_order(specs, names)
        key_field = self.settings.writeback.task_key_field
        states = self._states(ordered)
        self._rows_known = self._rows_counted(states)
        now = self.client.server_now()
        upper = now - timedelta(seconds=self.sync.lag_s)
        # A window depends only on the stored state: the same for the assumed and real plans.
        windows = {
            n: self._window(states[n], upper) for n in ordered if specs[n].mode == "incremental"
        }
        assumed = {
            n: assumed_plan(specs[n], task_key_field=key_field, remembered=states[n].described)
            for n in ordered
        }
        first = [(f"describe:{n}", f"sobjects/{n}/describe") for n in ordered]
        first += self._requests(assumed, states, windows, now)
        answers = _composite(self.client, first, page_size=self.sync.page_size)
        plans, skipped = _resolve_plans(self.settings, self.client, ordered, answers)
        sent = dict(first)
        again = [
            (ref, path)
            for ref, path in self._requests(plans, states, windows, now)
            if sent.get(ref) != path
        ]
        if again:
            answers.update(_composite(self.client, again, page_size=self.sync.page_size))
        with self.warehouse.session() as session:
            for name, plan in plans.items():
                memo = describe_memo(answers[f"describe:{name}"].body, plan.spec, key_field)
                if memo != states[name].described:
                    self._save_state(session, name, described=memo)
        for name in skipped:
            self.result.objects[name] = ObjectResult(name, mode="absent")
            log.info("sync.object.absent", object=name)
        for plan in plans.values():
            for warning in plan.warnings:
                self.result.warnings.append(warning)
                log.warning("sync.field_skipped", object=plan.name, message=warning)
        # Bulk jobs first, all at once: Salesforce processes them (seconds to minutes on a
        # real org) while the REST and reference objects are pulled; then each job's pages.
        bulk = [n for n, p in plans.items() if self._uses_bulk(p, answers.get(f"window:{n}"))]
        self._start_bulk_jobs([plans[n] for n in bulk], states, windows)
        order = [n for n in plans if n not in bulk] + bulk
        run_started = datetime.now(UTC)
        for name in order:
            plan = plans[name]
            self._check_stop()
            outcome = ObjectResult(name)
            self.result.objects[name] = outcome
            calls, clock = self.client.api_calls, time.monotonic()
            try:
                if plan.spec.mode == "reference":
                    self._refresh_reference(plan, answers[f"ref:{name}"], outcome)
                else:
                    self._sync_incremental(plan, states[name], windows[name], answers, now, outcome)
            except (BudgetExhausted, Interrupted):
                # A clean stop keeps what was committed, snapshots of it included.
                if name == "Opportunity":
                    self._snapshot(now, run_started, plan, windows.get(name))
                raise
            else:
                if name == "Opportunity":
                    self._snapshot(now, run_started, plan, windows.get(name))
            finally:
                outcome.api_calls = self.client.api_calls - calls
                outcome.seconds = time.monotonic() - clock
                self.progress.finish(name, outcome)

    def _uses_bulk(self, plan: ObjectPlan, window: SubResponse | None) -> bool:
        """An incremental object whose window holds more than ``sync.bulk_threshold`` rows
        (``window``: the answer to its count or first page, both with ``totalSize``)."""
        if plan.spec.mode != "incremental" or not plan.spec.bulk or window is None:
            return False
        if window.status >= 300 or not isinstance(window.body, dict):
            return False  # the object's own pull reports the error
        return int(window.body.get("totalSize", 0)) > self.sync.bulk_threshold

    def _start_bulk_jobs(
        self, plans: list[ObjectPlan], states: dict[str, SyncState], windows: dict[str, _Window]
    ) -> None:
        """Create the Bulk jobs of up to ``sync.bulk_jobs_ahead`` objects now, each remembered
        (as a job to resume) before anything else happens, like a job created in turn."""
        for plan in plans[: self.sync.bulk_jobs_ahead]:
            self._check_stop()
            state = states[plan.name]
            query, fingerprint = self._bulk_query(plan, windows[plan.name])
            resume = state.resume if isinstance(state.resume, dict) else None
            if resume and resume.get("soql") == fingerprint:
                continue  # a job of this very query is there to resume
            try:
                job_id = self.client.bulk_create(query, include_deleted=plan.has_is_deleted)
            except BulkJobFailed as exc:
                log.warning("sync.bulk_not_started", object=plan.name, reason=exc.message)
                continue  # its turn tries again, and falls back to REST if it must
            state.resume = {"soql": fingerprint, "job_id": job_id, "locator": None}
            with self.warehouse.session() as session:
                self._save_state(session, plan.name, resume=state.resume)
            crash_point("sync.bulk_job_created")

    def _bulk_query(self, plan: ObjectPlan, window: _Window) -> tuple[str, str]:
        """The SOQL of an object's Bulk job and the fingerprint its resume state keeps."""
        assert plan.watermark_field is not None
        query = plan.soql(*window.conditions(plan.watermark_field), order=False)
        return query, hashlib.sha256(query.encode()).hexdigest()[:16]

    def _snapshot(
        self, now: datetime, since: datetime, plan: ObjectPlan, window: _Window | None
    ) -> None:
        """Snapshot the open opportunities this run touched (the slip-metrics fallback).

        Every row this run wrote came from its window (a resumed Bulk job is one of the
        same window), so it is stamped at or after the window's start: the index on
        SystemModstamp finds them without reading the table whole.
        """
        stamped_since = None
        if window is not None and plan.watermark_field == "SystemModstamp":
            stamped_since = window.lower
        with self.warehouse.session() as session:
            captured = record_snapshots(
                session,
                now.astimezone(UTC).date(),
                datetime.now(UTC),
                since,
                stamped_since=stamped_since,
            )
        log.info("sync.snapshots", captured=captured)

    def _check_stop(self) -> None:
        if self.should_stop():
            raise SyncInterrupted("the sync was asked to stop; everything so far is committed")

    # ---------------------------------------------------------------- state

    def _states(self, names: list[str]) -> dict[str, SyncState]:
        with self.warehouse.session() as session:
            found = {
                s.object: s
                for s in session.scalars(select(SyncState).where(SyncState.object.in_(names)))
            }
            for name in names:
                if name not in found:
                    state = SyncState(object=name, rows=0)
                    session.add(state)
                    found[name] = state
            session.flush()
            return found

    def _rows_counted(self, states: dict[str, SyncState]) -> set[str]:
        """The objects whose recorded live rows (``sync_state.rows``) are right.

        Every write to an object's table commits with its state row, which names the
        run; a run that ends ok has counted the rows of every object it wrote.
        """
        last_runs = {s.last_run_id for s in states.values() if s.last_run_id is not None}
        with self.warehouse.session() as session:
            ended_ok = set(
                session.scalars(select(Run.id).where(Run.id.in_(last_runs), Run.status == "ok"))
            )
        return {name for name, s in states.items() if s.last_run_id in ended_ok}

    def _save_state(self, session: Session, name: str, **values: Any) -> None:
        values["updated_at"] = datetime.now(UTC)
        values["last_run_id"] = self.result.run_id
        session.execute(update(SyncState).where(SyncState.object == name).values(**values))

    def _window(self, state: SyncState, upper: datetime) -> _Window:
        if self.full:
            # No upper bound: every live row comes back, so unseen rows are purged ones.
            return _Window(None, None)
        if state.watermark is None:
            return _Window(None, upper)
        lower = state.watermark - timedelta(seconds=self.sync.lookback_s)
        return _Window(lower, max(upper, lower + timedelta(seconds=1)))

    # ---------------------------------------------------------------- prefetch

    def _requests(
        self,
        plans: dict[str, ObjectPlan],
        states: dict[str, SyncState],
        windows: dict[str, _Window],
        now: datetime,
    ) -> list[tuple[str, str]]:
        """Reference queries, each window's first page or count, and getDeleted, as composite
        GET subrequests."""
        requests: list[tuple[str, str]] = []
        for name, plan in plans.items():
            if plan.spec.mode == "reference":
                requests.append(
                    (f"ref:{name}", _query_path(plan.soql(), deleted=plan.has_is_deleted))
                )
                continue
            assert plan.watermark_field is not None
            conditions = windows[name].conditions(plan.watermark_field)
            if self._first_page_ahead(plan, states[name], windows[name]):
                query = plan.soql(*conditions)
                self._first_pages.add(name)
            else:
                query = soql.count(name, where=[*conditions, plan.spec.where])
            requests.append((f"window:{name}", _query_path(query, deleted=plan.has_is_deleted)))
            start = self._deleted_start(states[name], now)
            if start is not None:
                path = f"sobjects/{name}/deleted/?start={quote(_iso(start))}&end={quote(_iso(now))}"
                requests.append((f"deleted:{name}", path))
        return requests

    def _first_page_ahead(self, plan: ObjectPlan, state: SyncState, window: _Window) -> bool:
        """Whether the planning composite asks for the window's first page rather than its
        count: for a nightly window (usually small), and for any window of an object that
        never goes through Bulk. A first or full pull of a Bulk object, or a Bulk job to
        resume, asks the count: their first page would be thrown away for the job's."""
        if state.resume:
            return False
        return window.lower is not None or not plan.spec.bulk

    def _deleted_start(self, state: SyncState, now: datetime) -> datetime | None:
        """Where getDeleted should start, or None when it cannot or need not be used."""
        # deleted_checked_to is set when an object's first pull starts, so a first pull that
        # was interrupted and resumes (perhaps from an older Bulk snapshot) is covered too.
        if self.full or state.deleted_checked_to is None:
            return None
        start = state.deleted_checked_to - timedelta(seconds=self.sync.lookback_s)
        if now - start > timedelta(days=self.sync.deleted_window_days):
            return None  # beyond the recycle-bin window: an Id sweep does the job instead
        # Salesforce needs start to precede end by more than a minute; a wider window
        # only lists some deletes again, and marking them twice is harmless.
        return min(start, now - timedelta(seconds=61))

    # ---------------------------------------------------------------- reference objects

    def _refresh_reference(
        self, plan: ObjectPlan, answer: SubResponse, outcome: ObjectResult
    ) -> None:
        """Small objects: pull all rows each run, mark rows no longer returned deleted."""
        outcome.mode = "reference"
        body = answer.raise_for_error(f"query {plan.name}")
        refresh_started = datetime.now(UTC)
        converter = RowConverter(
            plan,
            integration_user_id=self.client.integration_user_id,
            dialect=self.warehouse.dialect,
        )
        pages: list[dict[str, Any]] = [body]
        while not pages[-1].get("done", True):
            pages.append(self.client.next_page(str(pages[-1]["nextRecordsUrl"])))
        self.progress.start(plan.name, int(body.get("totalSize", 0)), "reference")
        with self.warehouse.session() as session:
            for page in pages:
                batch = converter.convert(page.get("records", []), datetime.now(UTC))
                self._note_problems(plan.name, batch, outcome)
                outcome.upserted += upsert_rows(session, plan.spec.model, batch.rows)
            table = table_of(plan.spec.model)
            gone = session.execute(
                update(table)
                .where(table.c.synced_at < refresh_started, table.c.is_deleted.is_(False))
                .values(is_deleted=True, synced_at=refresh_started)
            )
            outcome.deleted += int(getattr(gone, "rowcount", 0) or 0)
            self._save_state(
                session,
                plan.name,
                rows=self._live_rows(session, plan),
                last_full_sync_at=refresh_started,
            )
        crash_point("sync.reference_committed")
        self.progress.advance(plan.name, outcome.upserted)

    # ---------------------------------------------------------------- incremental objects

    def _sync_incremental(
        self,
        plan: ObjectPlan,
        state: SyncState,
        window: _Window,
        answers: dict[str, SubResponse],
        now: datetime,
        outcome: ObjectResult,
    ) -> None:
        name = plan.name
        # Where this window ends (a full pull has no upper bound in its query, but rows
        # stamped after this moment changed during the pull all the same).
        upper = window.upper or now - timedelta(seconds=self.sync.lag_s)
        answer = answers[f"window:{name}"]
        body = answer.raise_for_error(f"query {name}")
        total = int(body.get("totalSize", 0))
        outcome.total = total
        # The window's first page, when the planning composite brought it.
        first = body if name in self._first_pages else None
        first_sync = state.watermark is None
        use_bulk = self._uses_bulk(plan, answer)
        outcome.mode = "bulk" if use_bulk else "rest"
        self.progress.start(name, total, outcome.mode)
        pull_started = datetime.now(UTC)
        if first_sync and state.deleted_checked_to is None:
            # Nothing can have been deleted from an empty warehouse before now.
            with self.warehouse.session() as session:
                self._save_state(session, name, deleted_checked_to=now)
        if total == 0 and not state.resume:
            outcome.mode = "none"  # nothing changed in the window: no page to fetch
        elif use_bulk:
            try:
                self._pull_bulk(plan, state, window, outcome)
            except BulkJobFailed as exc:
                log.warning("sync.bulk_fallback", object=name, reason=exc.message)
                outcome.mode = "rest (bulk failed)"
                with self.warehouse.session() as session:
                    self._save_state(session, name, resume=None)  # that job is of no more use
                self._pull_rest(plan, window, upper, outcome)
        else:
            self._pull_rest(plan, window, upper, outcome, first=first)
        # Deletes after the pull: a page from an older snapshot (a resumed Bulk job, a cursor)
        # may still carry a record deleted since; marking afterwards wins over it, while a
        # record restored and changed since the deletion keeps its newer stamp and stays live.
        deleted_answer = answers.get(f"deleted:{name}")
        if deleted_answer is not None:
            self._apply_deleted(plan, deleted_answer, outcome)
        reconcile = self._needs_sweep(state, now) and not self.full
        with self.warehouse.session() as session:
            values: dict[str, Any] = {"watermark": upper}
            if self.full:
                # A complete, unbounded pull: live rows it did not return are purged ones.
                table = table_of(plan.spec.model)
                gone = session.execute(
                    update(table)
                    .where(table.c.synced_at < pull_started, table.c.is_deleted.is_(False))
                    .values(is_deleted=True, synced_at=datetime.now(UTC))
                )
                outcome.deleted += int(getattr(gone, "rowcount", 0) or 0)
                outcome.reconciled = True
                values.update(last_full_sync_at=now, last_reconciled_at=now, deleted_checked_to=now)
            elif first_sync:
                values.update(last_full_sync_at=now, last_reconciled_at=now)
            self._save_state(session, name, **values)
        if reconcile:
            self._sweep(plan, outcome)
        crash_point("sync.object_committed")
        # Counting reads the whole table (5 million OpportunityHistory rows at a million
        # opportunities): only when this run changed it, or the count may be stale (the
        # run that last changed it did not end ok: killed before it counted, say).
        wrote = outcome.upserted or outcome.deleted or self.full or first_sync
        if wrote or name not in self._rows_known:
            with self.warehouse.session() as session:
                self._save_state(session, name, rows=self._live_rows(session, plan))

    def _needs_sweep(self, state: SyncState, now: datetime) -> bool:
        """An Id sweep when getDeleted cannot cover the gap, and periodically anyway."""
        if state.watermark is None:
            return False  # first sync: the pull itself is complete
        if state.deleted_checked_to is None:
            return True
        if now - state.deleted_checked_to > timedelta(days=self.sync.deleted_window_days):
            return True
        last = state.last_reconciled_at
        return last is None or now - last > timedelta(days=self.sync.reconcile_every_days)

    def _apply_deleted(self, plan: ObjectPlan, answer: SubResponse, outcome: ObjectResult) -> None:
        body = answer.raise_for_error(f"getDeleted {plan.name}")
        deleted = [
            (str(item["id"]), _maybe_datetime(item.get("deletedDate")))
            for item in body.get("deletedRecords", [])
            if isinstance(item, dict) and item.get("id")
        ]
        covered = _maybe_datetime(body.get("latestDateCovered"))
        with self.warehouse.session() as session:
            outcome.deleted += mark_deleted(session, plan.spec.model, deleted, datetime.now(UTC))
            # The state row is written either way: it names the run that changed the table.
            values = {} if covered is None else {"deleted_checked_to": covered}
            self._save_state(session, plan.name, **values)
        log.info("sync.deleted", object=plan.name, listed=len(deleted), covered_to=str(covered))

    def _pull_rest(
        self,
        plan: ObjectPlan,
        window: _Window,
        ceiling: datetime,
        outcome: ObjectResult,
        *,
        first: dict[str, Any] | None = None,
    ) -> None:
        """Pages in ``(watermark, Id)`` order; each commits with the watermark it safely reached.

        ``first``: the window's first page, already fetched; the pull goes on from it.

        That watermark is the highest stamp of the page below ``ceiling`` (the window's
        end): a row changed during the pull carries a later stamp at its old position,
        ahead of unread rows, so it must not move the watermark. A restart after an
        expired cursor starts from the same safe value.
        """
        assert plan.watermark_field is not None
        converter = RowConverter(
            plan,
            integration_user_id=self.client.integration_user_id,
            dialect=self.warehouse.dialect,
            stamp_ceiling=ceiling,
        )
        lower = window.lower
        attempts = self.client.retry.max_attempts  # restarts after an expired cursor
        for attempt in range(attempts):
            query = plan.soql(*_Window(lower, window.upper).conditions(plan.watermark_field))
            try:
                pages = self.client.query_pages(
                    query,
                    include_deleted=plan.has_is_deleted,
                    page_size=self.sync.page_size,
                    first=first,
                )
                first = None  # a restart queries anew, from where the reading stopped
                with self._writer(plan, outcome) as writer:
                    for page in prefetched(pages):
                        batch = converter.convert(page.get("records", []), datetime.now(UTC))
                        self._note_problems(plan.name, batch, outcome)
                        writer.put((batch, {"watermark": batch.last_stamp}, True))
                        if batch.last_stamp is not None:
                            lower = batch.last_stamp
                        self._check_stop()
                return
            except ApiError as exc:
                if exc.error_code != "INVALID_QUERY_LOCATOR" or attempt == attempts - 1:
                    raise
                log.warning("sync.cursor_expired", object=plan.name, restart_from=str(lower))

    def _pull_bulk(
        self, plan: ObjectPlan, state: SyncState, window: _Window, outcome: ObjectResult
    ) -> None:
        query, fingerprint = self._bulk_query(plan, window)
        resume = state.resume if isinstance(state.resume, dict) else None
        job_id: str | None = None
        locator: str | None = None
        if resume and resume.get("soql") == fingerprint:
            job_id, locator = resume.get("job_id"), resume.get("locator")
            log.info("sync.bulk_resume", object=plan.name, job_id=job_id, locator=locator)
        elif resume:
            with self.warehouse.session() as session:
                self._save_state(session, plan.name, resume=None)

        current = {"job_id": job_id}

        def remember_job(new_job: str) -> None:
            current["job_id"] = new_job
            with self.warehouse.session() as session:
                self._save_state(
                    session,
                    plan.name,
                    resume={"soql": fingerprint, "job_id": new_job, "locator": None},
                )
            crash_point("sync.bulk_job_created")

        converter = RowConverter(
            plan,
            integration_user_id=self.client.integration_user_id,
            dialect=self.warehouse.dialect,
        )
        try:
            pages = self.client.bulk_query(
                query,
                include_deleted=plan.has_is_deleted,
                page_size=self.sync.bulk_page_size,
                poll_s=self.sync.bulk_poll_s,
                timeout_s=self.sync.bulk_timeout_s,
                on_job=remember_job,
                job_id=job_id,
                locator=locator,
                expected_rows=outcome.total,
            )
            with self._writer(plan, outcome) as writer:
                for chunk in prefetched(pages):
                    records = csv_records(chunk.header, chunk.rows, plan.field_types)
                    batch = converter.convert(records, datetime.now(UTC))
                    self._note_problems(plan.name, batch, outcome)
                    if not chunk.page_complete:
                        writer.put((batch, {}, False))
                    else:
                        # A whole page is in: its rows and the next page's locator commit together.
                        resume_state = (
                            {
                                "soql": fingerprint,
                                "job_id": current["job_id"],
                                "locator": chunk.next_locator,
                            }
                            if chunk.next_locator
                            else None
                        )
                        writer.put((batch, {"resume": resume_state}, True))
                    self._check_stop()
        except ApiError as exc:
            if job_id is not None and exc.status in (400, 404):
                # The job we were resuming is gone (jobs live 7 days): pull the window anew.
                with self.warehouse.session() as session:
                    self._save_state(session, plan.name, resume=None)
                state.resume = None
                raise BulkJobFailed(f"resumed job {job_id} is gone: {exc.message}") from None
            raise

    def _writer(self, plan: ObjectPlan, outcome: ObjectResult) -> OrderedWriter:
        """Writes ``(batch, progress marker, page ends)`` items in order: the rows of one page
        in one transaction, committed with the page's marker when the page ends.

        A Bulk page arrives in chunks (memory stays flat) but commits once: a
        transaction per chunk cost 40 % more time on SQLite (each commit writes the
        indexes' hot pages again). A page that never ends (an error, a stop) is rolled
        back; its locator was never stored, so the next run reads it again.
        """
        page = ExitStack()  # holds the open page's session (its transaction)
        session: Session | None = None
        pending = 0  # rows written in the open page, counted once it commits
        rows = PageUpsert(plan.spec.model)

        def write(item: tuple[ConvertedBatch, dict[str, Any], bool]) -> None:
            nonlocal session, pending
            batch, marker, ends = item
            if session is None:
                session = page.enter_context(self.warehouse.session())
            pending += rows.add(session, batch.rows)
            if ends:
                rows.finish(session)
                values = {k: v for k, v in marker.items() if k == "resume" or v is not None}
                # Even without a marker: the state row names the run that wrote the page.
                self._save_state(session, plan.name, **values)
                session = None
                page.close()  # commits
                outcome.upserted += pending
                pending = 0
                crash_point("sync.page_committed")
            self.progress.advance(plan.name, len(batch.rows))

        def abandon() -> None:
            nonlocal session
            if session is not None:
                session.rollback()
                session = None
                page.close()
                rows.discard()

        return OrderedWriter(write, finish=abandon)

    def _sweep(self, plan: ObjectPlan, outcome: ObjectResult) -> None:
        """Id reconciliation: every live Id from the org; warehouse rows not among them are gone."""
        sweep_started = self.client.server_now() - timedelta(seconds=self.sync.lookback_s)
        ids_soql = soql.select(["Id"], plan.name, where=[plan.spec.where])
        scratch = id_scratch_table(f"sfsync_seen_{plan.name.lower()}")
        with self.warehouse.engine.connect() as conn:
            scratch.drop(conn, checkfirst=True)
            scratch.create(conn)
            conn.commit()
            for page in self.client.query_pages(ids_soql, page_size=self.sync.page_size):
                ids = [{"id": r["Id"]} for r in page.get("records", []) if r.get("Id")]
                if ids:
                    conn.execute(insert(scratch), ids)
                    conn.commit()
                self._check_stop()
            with Session(bind=conn) as session:
                gone = mark_missing_deleted(
                    session, plan.spec.model, scratch, datetime.now(UTC), sweep_started
                )
                self._save_state(session, plan.name, last_reconciled_at=self.client.server_now())
                session.commit()
            scratch.drop(conn)
            conn.commit()
        outcome.deleted += gone
        outcome.reconciled = True
        log.info("sync.reconciled", object=plan.name, marked_deleted=gone)

    # ---------------------------------------------------------------- helpers

    def _live_rows(self, session: Session, plan: ObjectPlan) -> int:
        return int(session.scalar(live_rows(table_of(plan.spec.model))) or 0)

    def _note_problems(self, name: str, batch: ConvertedBatch, outcome: ObjectResult) -> None:
        if not batch.problems:
            return
        outcome.problems += len(batch.problems)
        logged = self._problem_logs.get(name, 0)
        for record_id, field_name, problem in batch.problems:
            if logged >= _PROBLEM_LOG_LIMIT:
                break
            log.warning(
                "sync.field_error", object=name, id=record_id, field=field_name, problem=problem
            )
            logged += 1
        if logged >= _PROBLEM_LOG_LIMIT and self._problem_logs.get(name, 0) < _PROBLEM_LOG_LIMIT:
            log.warning(
                "sync.field_error.more",
                object=name,
                message="further problems are counted, not logged",
            )
        self._problem_logs[name] = logged


def _query_path(query: str, *, deleted: bool) -> str:
    return f"{'queryAll' if deleted else 'query'}/?q={quote(query, safe='')}"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _maybe_datetime(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return parse_datetime(str(value))
    except ValueError:
        return None
