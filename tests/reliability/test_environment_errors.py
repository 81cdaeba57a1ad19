"""The environment failing under a command: exit 2 or 3 and a paragraph naming what, never 70.

Unreadable or bogus files, a full disk, a database server that goes away, a reader
that closes the pipe, a health file that cannot be written, a schema without its
revision, dates out of range, a warehouse file that is not a database.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import socket
import sqlite3
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from sfsync.audit import run_audit
from sfsync.config import DatabaseSettings, Settings
from sfsync.devorg._http import Request, Response
from sfsync.warehouse import _engine, head_revision, runs
from sfsync.warehouse.models import Opportunity, Run
from tests.cli_helpers import Outcome, run_cli, run_sfsync
from tests.integration.audit.load import load_org, new_warehouse
from tests.integration.conftest import OrgFactory
from tests.unit.audit.examples import examples_org
from tests.unit.audit.org import Org


def assert_no_bug(stderr: str) -> None:
    assert "bug" not in stderr, stderr
    assert "Traceback" not in stderr, stderr


def paragraph(stderr: str) -> str:
    """The error the user reads: the paragraph that ends stderr in console mode, or the
    message of the JSON ``error`` event (every stderr line is JSON in JSON mode)."""
    for line in reversed(stderr.splitlines()):
        if line.startswith("{"):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "error":
                return f"error: {event['message']}"
    start = stderr.rfind("error: ")
    assert start >= 0, stderr
    return stderr[start:]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFSYNC_")}
    env.update(extra)
    return env


# --------------------------------------------------------------------------- 1. ca_bundle


def test_a_ca_bundle_in_a_directory_this_user_cannot_read_exits_2(tmp_path: Path) -> None:
    """A real unreadable directory: chmod 0 as a user; as root, sfsync runs as ``nobody``."""
    locked = tmp_path / "locked"
    locked.mkdir()
    bundle = locked / "ca.pem"
    bundle.write_text("not read anyway\n")
    kwargs: dict[str, Any] = {}
    if os.geteuid() == 0:
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            pytest.skip("running as root and there is no 'nobody' user to drop to")
        # tmp_path is root's and 0700: nobody cannot search it.
        locked.chmod(0o700)
        kwargs = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    else:
        locked.chmod(0)
    env = clean_env(SFSYNC_SALESFORCE__CA_BUNDLE=str(bundle))
    if kwargs:
        # nobody cannot write root's coverage data (dev.py measures subprocesses).
        env = {k: v for k, v in env.items() if not k.startswith("COVERAGE_PROCESS_")}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "sfsync", "db", "current"],
            env=env,
            cwd="/",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **kwargs,
        )
    finally:
        locked.chmod(0o700)
    assert proc.returncode == 2, proc.stderr
    assert "salesforce.ca_bundle" in proc.stderr
    assert str(bundle) in proc.stderr
    assert_no_bug(proc.stderr)


def test_a_ca_bundle_that_is_not_a_certificate_exits_2(
    running_org: OrgFactory, tmp_path: Path
) -> None:
    org = running_org(20)
    bogus = tmp_path / "corporate-ca.pem"
    bogus.write_text("this is not a certificate\n")
    env = {**org.env, "SFSYNC_SALESFORCE__CA_BUNDLE": str(bogus)}
    for command in ("sync", "check"):
        outcome: Outcome = run_sfsync(command, env=env)
        assert outcome.exit_code == 2, outcome.output
        assert "salesforce.ca_bundle" in outcome.output
        assert str(bogus) in outcome.output
        assert "PEM" in outcome.output
        assert_no_bug(outcome.stderr)


# --------------------------------------------------------------------------- 2. the database fails


def page_count(database: Path) -> int:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return int(conn.execute("PRAGMA page_count").fetchone()[0])


def sfsync_runs(url: str) -> list[tuple[str, str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [(r.kind, r.status) for r in conn.execute(select(Run.kind, Run.status))]
    finally:
        engine.dispose()


@pytest.mark.parametrize("command", ["sync", "run"])
def test_a_full_disk_during_a_sync_exits_3_naming_the_database(
    running_org: OrgFactory, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """SQLite's max_page_count makes the disk "full" at the first page the sync needs."""
    org = running_org(300)
    database = org.tmp / "warehouse.db"
    full_at = f"PRAGMA max_page_count={page_count(database)}"
    monkeypatch.setattr(_engine, "SQLITE_PRAGMAS", (*_engine.SQLITE_PRAGMAS, full_at))
    outcome = run_cli(command, env=org.env)
    assert outcome.exit_code == 3, outcome.output
    assert str(database) in outcome.stderr
    assert "the disk holding" in outcome.stderr
    assert "database or disk is full" in outcome.stderr  # SQLite's own words, once
    assert "[SQL:" not in outcome.stderr  # no statement, no row values
    assert_no_bug(outcome.stderr)
    assert outcome.stdout == ""  # no summary claiming what was synced
    monkeypatch.undo()
    assert all(status != "ok" for _kind, status in sfsync_runs(org.database_url))


class KillablePostgres:
    """A TCP relay in front of PostgreSQL that the test can take down like a stopped server.

    ``stop()`` refuses new connections (the listening socket is gone) and cuts the
    open ones, as ``pg_ctl stop -m immediate`` looks to a client.
    """

    def __init__(self, url: str) -> None:
        self._target = make_url(url)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return self._target.set(host="127.0.0.1", port=self.port).render_as_string(
            hide_password=False
        )

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(
                (self._target.host or "127.0.0.1", self._target.port or 5432)
            )
            with self._lock:
                if self.stopped.is_set():
                    client.close()
                    upstream.close()
                    continue
                self._open += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        with self._lock:
            self.stopped.set()
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


@pytest.mark.postgres
@pytest.mark.parametrize("command", ["sync", "run"])
def test_postgres_stopping_mid_sync_exits_3_naming_the_database(
    running_org: OrgFactory, postgres_url: str, command: str
) -> None:
    """The server goes away when the first Opportunity page is requested."""
    server = KillablePostgres(postgres_url)
    org = running_org(300, database_url=server.url)

    def stop_postgres(phase: str, req: Request, _response: Response | None) -> None:
        query = req.param("q") or ""
        first = phase == "before" and not server.stopped.is_set()
        if first and re.search(r"\bFROM Opportunity\b", query):
            server.stop()

    org.server.add_hook(stop_postgres)
    secret = "pg-password-never-shown"
    outcome = run_sfsync(command, env={**org.env, "SFSYNC_DATABASE__PASSWORD": secret})
    assert server.stopped.is_set()
    assert outcome.exit_code == 3, outcome.output
    shown = make_url(server.url).render_as_string(hide_password=True)
    assert shown in outcome.stderr
    assert "went away" in outcome.stderr
    assert secret not in outcome.output
    assert_no_bug(outcome.stderr)
    assert outcome.stdout == ""
    # Nothing half-written is claimed: no run says ok, the Opportunity page is not there.
    assert all(status != "ok" for _kind, status in sfsync_runs(postgres_url))
    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Opportunity)).scalar() == 0
    engine.dispose()


@pytest.mark.parametrize("command", ["sync", "run"])
def test_a_run_that_cannot_be_recorded_still_reports_the_original_error(
    running_org: OrgFactory, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """The work fails (wrong client secret); recording the run then fails too (the database
    is gone): the user reads the first failure, not the second."""
    org = running_org(20)

    def database_gone(*_args: object, **_kwargs: object) -> None:
        raise OperationalError(
            "UPDATE run SET status=?", {}, sqlite3.OperationalError("disk I/O error")
        )

    # Every run records itself through warehouse.runs (record_counts, finish_run).
    monkeypatch.setattr(runs, "finish_run", database_gone)
    monkeypatch.setattr(runs, "record_counts", database_gone)
    env = {**org.env, "SFSYNC_SALESFORCE__CLIENT_SECRET": "not-the-secret"}
    outcome = run_cli(command, env=env)
    assert outcome.exit_code == 3, outcome.output
    assert "invalid_client" in outcome.stderr, outcome.stderr
    assert "disk I/O error" not in paragraph(outcome.stderr)
    assert_no_bug(outcome.stderr)


# --------------------------------------------------------------------------- 3. a closed pipe

PIPE_BUFFER = 64 * 1024  # Linux's default pipe capacity


@pytest.fixture
def many_findings(tmp_path: Path) -> dict[str, str]:
    """A warehouse with 3,000 open findings: every listing is far larger than a pipe holds."""
    url = f"sqlite:///{tmp_path / 'findings.db'}"
    warehouse = new_warehouse(url)
    org = Org.standard()
    for _ in range(3000):
        org.opportunity(close_date="2024-06-30", amount=5_000.0)
    load_org(warehouse, org)
    run_audit(warehouse, Settings(database=DatabaseSettings(url=url)), as_of=date(2024, 8, 15))
    warehouse.dispose()
    return {"SFSYNC_DATABASE_URL": url}


def close_the_pipe_early(
    args: list[str], env: dict[str, str], tmp_path: Path, *, read_first_line: bool
) -> tuple[int, bytes, str]:
    """Run sfsync with stdout on a pipe whose reader reads one line (or none) and closes it."""
    errors = tmp_path / "stderr.txt"
    with errors.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sfsync", *args],
            stdout=subprocess.PIPE,
            stderr=err,
            env=clean_env(**env),
        )
        assert proc.stdout is not None
        first = proc.stdout.readline() if read_first_line else b""
        proc.stdout.close()  # like `| head -1` exiting
        code = proc.wait(timeout=120)
    return code, first, errors.read_text()


@pytest.mark.parametrize(
    "args",
    [
        ["findings"],
        ["findings", "--format", "csv"],
        ["findings", "--format", "json"],
        ["writeback", "--show-skipped"],
        ["runs"],
    ],
    ids=lambda args: "-".join(args),
)
@pytest.mark.parametrize("read_first_line", [True, False], ids=["head-1", "closed-at-once"])
def test_a_reader_closing_the_pipe_ends_quietly_with_exit_0(
    many_findings: dict[str, str], tmp_path: Path, args: list[str], read_first_line: bool
) -> None:
    """``sfsync findings | head -1``: the reader going away is not an error (like ripgrep)."""
    code, first, stderr = close_the_pipe_early(
        args, many_findings, tmp_path, read_first_line=read_first_line
    )
    assert code == 0, stderr
    if read_first_line:
        assert first.strip()
    assert "BrokenPipe" not in stderr
    assert "Exception ignored" not in stderr
    assert '"event": "error"' not in stderr
    assert not any(line.startswith("error:") for line in stderr.splitlines()), stderr
    assert_no_bug(stderr)


def test_the_listings_are_larger_than_a_pipe_holds(many_findings: dict[str, str]) -> None:
    """What makes the ``head -1`` cases above deterministic: the writer is still writing."""
    for args in (["findings"], ["findings", "--format", "csv"], ["writeback", "--show-skipped"]):
        outcome = run_sfsync(*args, env=many_findings)
        assert outcome.exit_code == 0, outcome.stderr
        assert len(outcome.stdout.encode()) > 4 * PIPE_BUFFER
        assert_no_bug(outcome.stderr)


# --------------------------------------------------------------------------- 4. the health file


@pytest.mark.parametrize("case", ["a-directory", "missing-directory", "parent-is-a-file"])
def test_a_health_file_that_cannot_be_written_stops_the_worker_at_start(
    tmp_path: Path, case: str
) -> None:
    """Exit 2 naming schedule.health_file before any run, not a crash (or a guess) later."""
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    new_warehouse(url).dispose()
    if case == "a-directory":
        health = tmp_path / "health"
        health.mkdir()
    elif case == "missing-directory":
        health = tmp_path / "no-such-dir" / "health.json"
    else:
        (tmp_path / "plain-file").write_text("")
        health = tmp_path / "plain-file" / "health.json"
    env = clean_env(
        SFSYNC_DATABASE_URL=url,
        SFSYNC_SCHEDULE__CRON="*/2 * * * * *",
        SFSYNC_SCHEDULE__HEALTH_FILE=str(health),
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "sfsync", "worker", "--now"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker started with schedule.health_file = {str(health)!r}")
    assert proc.returncode == 2, proc.stderr
    assert "schedule.health_file" in proc.stderr
    assert str(health) in proc.stderr
    assert_no_bug(proc.stderr)
    assert '"event": "worker.start"' not in proc.stderr
    assert sfsync_runs(url) == []
    assert not (tmp_path / "no-such-dir").exists()


# --------------------------------------------------------------------------- 5. no recorded revision

REPO = Path(__file__).resolve().parents[2]


def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("how", ["table-dropped", "row-deleted"])
def test_sfsync_tables_without_a_recorded_revision_are_refused_untouched(
    db_url: str, how: str
) -> None:
    """``db upgrade`` would re-create existing tables; it says what is wrong and what to do."""
    new_warehouse(db_url).dispose()
    engine = create_engine(db_url)
    with engine.begin() as conn:
        if how == "table-dropped":
            conn.execute(text("DROP TABLE alembic_version"))
        else:
            conn.execute(text("DELETE FROM alembic_version"))
    engine.dispose()
    before = table_names(db_url)
    env = {"SFSYNC_DATABASE_URL": db_url}
    head = head_revision()

    upgrade_outcome = run_cli("db", "upgrade", env=env)
    assert upgrade_outcome.exit_code == 2, upgrade_outcome.output
    said = paragraph(upgrade_outcome.stderr)
    assert "alembic_version" in said
    assert "no recorded schema revision" in said
    assert "nothing was changed" in said.lower()
    assert f"stamp {head}" in said
    assert_no_bug(upgrade_outcome.stderr)
    assert table_names(db_url) == before

    # Every other command gives the same precise paragraph, not "run sfsync db upgrade".
    for command in (["findings"], ["db", "current"], ["runs"]):
        other = run_cli(*command, env=env)
        assert other.exit_code == 2, (command, other.output)
        assert paragraph(other.stderr) == said, command
    assert table_names(db_url) == before

    # The advice works: stamp from a checkout, then the warehouse is at head.
    alembic = [sys.executable, "-m", "alembic", "-c", "alembic.ini", "-x", f"url={db_url}"]
    stamp = subprocess.run(
        [*alembic, "stamp", head],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert stamp.returncode == 0, stamp.stderr
    again = run_cli("db", "upgrade", env=env)
    assert again.exit_code == 0, again.output
    assert f"already at revision {head}" in again.stdout


# --------------------------------------------------------------------------- 6. dates out of range


@pytest.fixture
def examples_env(tmp_path: Path) -> dict[str, str]:
    """A SQLite warehouse holding docs/rules.md's worked examples."""
    url = f"sqlite:///{tmp_path / 'examples.db'}"
    warehouse = new_warehouse(url)
    org, _ids = examples_org()
    load_org(warehouse, org)
    warehouse.dispose()
    return {"SFSYNC_DATABASE_URL": url}


@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01", "3000-01-01", "1899-12-31"])
@pytest.mark.parametrize(
    "command", [["audit"], ["run"], ["report", "--out", "report.html"]], ids=lambda c: c[0]
)
def test_an_as_of_outside_the_supported_range_is_a_usage_error(
    examples_env: dict[str, str], tmp_path: Path, command: list[str], value: str
) -> None:
    outcome = run_cli(*command, "--as-of", value, env=examples_env)
    assert outcome.exit_code == 2, outcome.output
    said = paragraph(outcome.stderr)
    assert "--as-of" in said
    assert value in said
    assert "1900-01-01" in said
    assert "2999-12-31" in said
    assert_no_bug(outcome.stderr)
    assert sfsync_runs(examples_env["SFSYNC_DATABASE_URL"]) == []  # nothing started
    assert not (tmp_path / "report.html").exists()


@pytest.mark.parametrize("value", ["1900-01-01", "2999-12-31"])
def test_the_ends_of_the_as_of_range_work(
    examples_env: dict[str, str], tmp_path: Path, value: str
) -> None:
    audit = run_cli("audit", "--as-of", value, env=examples_env)
    assert audit.exit_code == 0, audit.output
    assert f"as of {value}" in audit.stdout
    assert_no_bug(audit.stderr)
    report = run_cli(
        "report", "--out", str(tmp_path / "r.html"), "--as-of", value, env=examples_env
    )
    assert report.exit_code == 0, report.output
    assert_no_bug(report.stderr)


def test_a_waiver_until_9999_12_31_means_forever_and_everything_still_works(
    examples_env: dict[str, str], tmp_path: Path
) -> None:
    """``--until 9999-12-31`` is the documented "forever"; audits, listings, the preview and
    the report must all cope with it."""
    assert run_cli("audit", "--as-of", "2024-08-15", "--record", env=examples_env).exit_code == 0
    listed = run_cli("findings", "--format", "json", env=examples_env)
    finding = json.loads(listed.stdout)[0]
    waived = run_cli(
        "waive",
        finding["rule"],
        finding["opportunity_id"],
        "--reason",
        "a standing exception",
        "--until",
        "9999-12-31",
        env=examples_env,
    )
    assert waived.exit_code == 0, waived.output
    assert "until 9999-12-31" in waived.stdout
    for args in (
        ["audit", "--as-of", "2999-12-31"],
        ["findings", "--status", "waived"],
        ["writeback"],
        ["report", "--out", str(tmp_path / "r.html"), "--as-of", "2999-12-31"],
    ):
        outcome = run_cli(*args, env=examples_env)
        assert outcome.exit_code == 0, (args, outcome.output)
        assert_no_bug(outcome.stderr)
    past = run_cli(
        "waive",
        finding["rule"],
        finding["opportunity_id"],
        "--reason",
        "x",
        "--until",
        "0001-01-01",
        env=examples_env,
    )
    assert past.exit_code == 2
    assert "--until" in paragraph(past.stderr)
    assert "0001-01-01" in paragraph(past.stderr)
    assert_no_bug(past.stderr)


# --------------------------------------------------------------------------- 7. not a database


@pytest.mark.parametrize("content", ["random-bytes", "sqlite-header-then-garbage"])
@pytest.mark.parametrize(
    "command",
    [["db", "upgrade"], ["sync"], ["findings"], ["db", "current"], ["check"]],
    ids=lambda c: "-".join(c),
)
def test_a_warehouse_file_that_is_not_a_database_is_a_data_error_left_untouched(
    tmp_path: Path, command: list[str], content: str
) -> None:
    """Exit 2 (data error, not "unreachable"), the file named, and not one byte written."""
    warehouse = tmp_path / "warehouse.db"
    junk = os.urandom(4096)
    if content == "sqlite-header-then-garbage":
        junk = b"SQLite format 3\x00" + junk[16:]
    warehouse.write_bytes(junk)
    outcome = run_sfsync(*command, env={"SFSYNC_DATABASE_URL": f"sqlite:///{warehouse}"})
    assert outcome.exit_code == 2, outcome.output
    assert str(warehouse) in outcome.output
    assert "is not a SQLite database" in outcome.output
    assert_no_bug(outcome.stderr)
    assert warehouse.read_bytes() == junk
    assert sorted(p.name for p in tmp_path.iterdir()) == ["warehouse.db"]  # no -wal, -shm
