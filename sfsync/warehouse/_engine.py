"""Engines, sessions, and the schema-revision gate every warehouse command goes through."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)

from sfsync.config import DatabaseSettings
from sfsync.errors import (
    ConfigError,
    DatabaseUnreachable,
    DataFileError,
    SchemaError,
    SfsyncError,
)
from sfsync.logging import redact_text

if TYPE_CHECKING:
    # The ORM is imported by the first session (`sfsync runs` reads with Core alone).
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["Warehouse", "create_warehouse_engine", "database_failure", "open_warehouse"]


@dataclass
class Warehouse:
    """An open warehouse: the engine plus a session factory."""

    engine: Engine
    settings: DatabaseSettings

    def __post_init__(self) -> None:
        self._sessions: sessionmaker[Session] | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error."""
        if self._sessions is None:
            from sqlalchemy.orm import sessionmaker

            self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


SQLITE_PRAGMAS = (
    # WAL lets readers (reports, `sfsync findings`) run beside a sync.
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    # Checkpoint every ~40 MB rather than ~4 MB: a sync commits a page at a time, and
    # a checkpoint (with its fsync) after almost every page halved the ingest rate.
    "PRAGMA wal_autocheckpoint=10000",
    # Wait out short write locks instead of failing with "database is locked".
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=ON",
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


# SQLite's primary result codes (sqlite3.h) for trouble with the file or the disk under it.
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26

# The first 16 bytes of every SQLite database file (an empty file is an empty database).
SQLITE_HEADER = b"SQLite format 3\x00"

# PostgreSQL SQLSTATEs: the server shut down or is starting / stopping; its disk is full.
_PG_SHUTDOWN = frozenset({"57P01", "57P02", "57P03"})
_PG_DISK_FULL = "53100"

_KEPT = (
    "the change in progress was rolled back and nothing of it is recorded as done; "
    "what was committed before is kept"
)


def first_line(exc: BaseException) -> str:
    """The driver's own message, first line only (no SQL, no row values), redacted."""
    source = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(source).strip().splitlines()
    return redact_text(lines[0].strip() if lines else type(source).__name__)


def database_failure(exc: BaseException, settings: DatabaseSettings) -> SfsyncError | None:
    """The error to report when the database itself failed under a command, else None.

    A full disk, a file SQLite can no longer read or write, a PostgreSQL server that
    went away or stopped accepting connections: the environment, not a bug in
    sfsync. The message names the database (``display_url``: never the password)
    and what happened; anything else (a constraint, a syntax error) is not mapped.
    """
    if not isinstance(exc, DBAPIError):
        return None
    where = f"{settings.display_url()!r} (database.url)"
    reason = first_line(exc)
    sqlite_code = getattr(exc.orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        primary = sqlite_code & 0xFF
        if primary == _SQLITE_FULL:
            return DatabaseUnreachable(
                f"the disk holding the database {where} is full (SQLite: {reason}); "
                f"{_KEPT}. Free some space (or raise the file system's quota) and run the "
                "command again"
            )
        if primary in (_SQLITE_NOTADB, _SQLITE_CORRUPT):
            what = "is not a SQLite database" if primary == _SQLITE_NOTADB else "is damaged"
            return DataFileError(
                f"the warehouse {_sqlite_name(settings)} (database.url) {what} (SQLite: "
                f"{reason}). Point database.url at the warehouse, or restore it from a backup"
            )
        if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return DatabaseUnreachable(
                f"the database {where} stayed locked by another process for longer than "
                f"SQLite waits (SQLite: {reason}); {_KEPT}. Another program is writing to "
                "the file (an sfsync run holds the run lock and says so): run the command "
                "again when it is done"
            )
        if primary in (_SQLITE_IOERR, _SQLITE_CANTOPEN):
            return DatabaseUnreachable(
                f"cannot read or write the database {where} (SQLite: {reason}); {_KEPT}. "
                "Check the disk and the file's permissions, then run the command again"
            )
        return None
    if make_url(settings.url).get_backend_name() != "postgresql":
        return None
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate == _PG_DISK_FULL:
        return DatabaseUnreachable(
            f"the disk of the database server of {where} is full ({reason}); {_KEPT}. "
            "Free some space on the server and run the command again"
        )
    gone = (
        exc.connection_invalidated
        or (isinstance(sqlstate, str) and sqlstate.startswith("08"))
        or sqlstate in _PG_SHUTDOWN
        # psycopg gives no SQLSTATE when it cannot talk to the server at all.
        or (sqlstate is None and isinstance(exc, OperationalError))
    )
    if gone:
        return DatabaseUnreachable(
            f"the database server went away during the command: {where} cannot be "
            f"reached ({reason}); {_KEPT}. Run the command again when the server is back"
        )
    return None


def _sqlite_name(settings: DatabaseSettings) -> str:
    path = sqlite_path(settings)
    return repr(str(path)) if path is not None else repr(settings.display_url())


def _refuse_non_database(path: Path, settings: DatabaseSettings) -> None:
    """Raise :class:`DataFileError` for a file that is not a SQLite database.

    Checked before SQLite opens it: the connect pragmas (``journal_mode=WAL``...)
    must never be the first thing to touch a file ``database.url`` names by mistake.
    An empty file is an empty database; a file we cannot read is left to SQLite.
    """
    try:
        with path.open("rb") as stream:
            head = stream.read(len(SQLITE_HEADER))
    except IsADirectoryError:
        head = b"(a directory)"
    except OSError:
        return
    if head and head != SQLITE_HEADER:
        raise DataFileError(
            f"the warehouse {str(path)!r} (database.url) is not a SQLite database (it does "
            "not start with SQLite's header); nothing was written to it. Point database.url "
            "at the warehouse, or move this file away and run `sfsync db upgrade` to create "
            "a new one"
        )


def create_warehouse_engine(settings: DatabaseSettings) -> Engine:
    """An engine for ``database.url``; a URL SQLAlchemy cannot use is a ConfigError."""
    url = make_url(settings.effective_url())
    kwargs: dict[str, Any] = {"echo": settings.echo, "future": True}
    if url.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": settings.connect_timeout_s}
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigError([f"database.url: cannot use {settings.display_url()!r}: {exc}"]) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def sqlite_path(settings: DatabaseSettings) -> Path | None:
    """The file of a file-backed SQLite URL, else None."""
    url = make_url(settings.url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def _create_private_file(path: Path, settings: DatabaseSettings) -> None:
    """Create the SQLite file empty (a valid empty database), mode 0600 whatever the umask.

    The warehouse holds the org's data: only its owner may read it. SQLite gives
    the -wal, -shm and -journal files it makes beside it the database file's
    mode, so they are 0600 too. A file that exists meanwhile is left as it is.
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise DatabaseUnreachable(
            f"cannot create the database {settings.display_url()!r} (database.url): "
            f"{exc.strerror or type(exc).__name__}"
        ) from None
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def open_warehouse(
    settings: DatabaseSettings, *, require_head: bool = True, create: bool = False
) -> Warehouse:
    """Connect, and (unless told otherwise) insist the schema is at this sfsync's head.

    Raises :class:`DatabaseUnreachable` (exit 3) when the server cannot be reached
    or refuses the credentials, :class:`SchemaError` (exit 2) when the schema is
    missing, older, or from a newer sfsync, :class:`DataFileError` (exit 2) when
    the SQLite file is not a database (checked before SQLite touches it). Never
    creates a SQLite file unless ``create`` (only ``sfsync db upgrade`` does); it is
    created 0600.
    """
    path = sqlite_path(settings)
    if path is not None and not path.exists():
        if not create:
            raise SchemaError(
                f"the warehouse {str(path)!r} does not exist: run `sfsync db upgrade` to create it"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        _create_private_file(path, settings)
    if path is not None:
        _refuse_non_database(path, settings)
    warehouse = Warehouse(create_warehouse_engine(settings), settings)
    try:
        with warehouse.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            if require_head:
                from sfsync.warehouse.migrate import require_head_revision

                require_head_revision(conn)
    except SchemaError:
        warehouse.dispose()
        raise
    except SQLAlchemyError as exc:
        warehouse.dispose()
        data_error = database_failure(exc, settings)
        if isinstance(data_error, DataFileError):  # damaged: a data error, not "unreachable"
            raise data_error from None
        if isinstance(exc, OperationalError):
            reason = redact_text(str(exc.orig or exc).strip().splitlines()[0])
            raise DatabaseUnreachable(
                f"cannot connect to the database {settings.display_url()!r} (database.url): "
                f"{reason}"
            ) from None
        raise DatabaseUnreachable(
            f"the database {settings.display_url()!r} (database.url) failed: "
            f"{redact_text(str(exc).splitlines()[0])}"
        ) from None
    return warehouse
