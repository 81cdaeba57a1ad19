"""structlog set-up: JSON lines off a TTY, readable console output on one.

Events are dotted nouns with key-value context (``log.info("sync.page",
object="Opportunity", rows=2000)``); ``run_id`` is bound for the whole of a
run. A redaction processor replaces registered secret values and secret-named
keys wherever they appear: a second line of defence behind never logging them.
"""

from __future__ import annotations

import functools
import logging as stdlib_logging
import re
import sys
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, TextIO, cast

if TYPE_CHECKING:
    from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

# structlog (and the rich and asyncio it imports) is imported where it is used, not
# here: `sfsync --version` and `--help` import this module for redact_text and never
# log, so they do not pay for it. configure_logging, too, leaves structlog's set-up
# for the first event when structlog is not imported yet: `sfsync runs` never logs
# unless something goes wrong.

__all__ = [
    "LogFormat",
    "bind_run",
    "configure_logging",
    "get_logger",
    "redact_text",
    "register_secrets",
    "reset_logging",
    "unbind_run",
]

LogFormat = Literal["auto", "json", "console"]

REDACTED = "[redacted]"
_SECRET_KEY_RE = re.compile(
    r"(password|secret|token|session_id|sessionid|authorization|private_key|api_key|assertion)",
    re.IGNORECASE,
)
_BEARER_RE = re.compile(r"(Bearer\s+)[A-Za-z0-9!._\-]+", re.IGNORECASE)
_secrets: set[str] = set()
_secrets_lock = threading.Lock()
# Libraries on the standard logging module whose INFO chatter configure_logging silences.
_QUIET_LIBRARIES = ("alembic", "apscheduler", "urllib3", "httpx", "simple_salesforce")


def register_secrets(values: Iterable[str]) -> None:
    """Remember secret values so that they are masked in every log line and error."""
    with _secrets_lock:
        # Very short values would mask innocent text; real secrets are longer.
        _secrets.update(v for v in values if v and len(v) >= 4)


def redact_text(text: str) -> str:
    """``text`` with registered secrets and bearer tokens replaced by ``[redacted]``."""
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _BEARER_RE.sub(r"\1" + REDACTED, text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            k: (REDACTED if _SECRET_KEY_RE.search(str(k)) else _redact_value(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(v) for v in value)
    return value


def redact_secrets(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask secret-named keys and registered secret values."""
    for key in list(event_dict):
        if key != "event" and _SECRET_KEY_RE.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact_value(event_dict[key])
    return event_dict


# One lock for every line written, from structlog and from the standard library
# alike, so that two threads' lines never interleave.
_write_lock = threading.Lock()


def _write_line(stream: TextIO | None, line: str) -> None:
    target = stream or sys.stderr
    with _write_lock:
        target.write(line + "\n")
        target.flush()


class _StderrLogger:
    """Writes each rendered line to the *current* ``sys.stderr`` (pytest swaps it)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def msg(self, message: str) -> None:
        _write_line(self._stream, message)

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


class _StderrLoggerFactory:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def __call__(self, *args: Any) -> _StderrLogger:
        return _StderrLogger(self._stream)


class _StdlibHandler(stdlib_logging.Handler):
    """The root handler: stdlib records rendered by structlog, to the same stream as its events.

    Like :class:`_StderrLogger`, without a stream it writes to the *current*
    ``sys.stderr``. Its formatter is set with structlog's configuration (see
    :func:`configure_logging`): the first record completes a deferred set-up.
    """

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__()
        self._stream = stream

    def emit(self, record: stdlib_logging.LogRecord) -> None:
        try:
            if self.formatter is None:
                _complete_setup()
            line = self.format(record)
            _write_line(self._stream, line)
        except Exception:
            self.handleError(record)


def _install_stdlib_handler(handler: stdlib_logging.Handler) -> None:
    """Put ``handler`` on the root logger in place of the one a previous call installed.

    Handlers others added (pytest's capture, say) are left alone.
    """
    root = stdlib_logging.getLogger()
    for previous in list(root.handlers):
        if isinstance(previous, _StdlibHandler):
            root.removeHandler(previous)
    root.addHandler(handler)


# structlog's set-up that configure_logging deferred (structlog was not imported yet),
# completed by the first event: get_logger, bind_run, a standard library record.
_pending: Callable[[], None] | None = None
# Held while the set-up runs: another thread's first event waits for it to finish.
# Re-entrant, so that a record logged by the set-up itself does not wait for itself.
_pending_lock = threading.RLock()
_setting_up = False


def _complete_setup() -> None:
    """Finish the set-up configure_logging deferred, if any (once, whichever thread asks)."""
    global _pending, _setting_up
    if _pending is None:
        return
    with _pending_lock:
        if _pending is None or _setting_up:
            return
        _setting_up = True
        try:
            _pending()
        finally:
            _setting_up = False
            _pending = None


def configure_logging(
    fmt: LogFormat = "auto",
    *,
    level: str = "INFO",
    verbosity: int = 0,
    stream: TextIO | None = None,
) -> None:
    """Configure structlog for this process. Safe to call again (the CLI does, after config).

    Records of the standard library's ``logging`` (alembic, apscheduler, urllib3,
    httpx, simple_salesforce) go through the same processors (redaction included)
    and renderer, with a ``logger`` key naming their logger: in JSON mode every
    line is a JSON object. Each call replaces the root handler the last one
    installed rather than adding another.

    When structlog is not imported yet, importing and configuring it waits for the
    first event (:func:`get_logger`, :func:`bind_run`, a standard library record
    reaching the root handler): what is decided (the format, whether the stream
    is a terminal, the levels, the handler) is decided now, as if done at once.
    """
    global _pending
    target = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if _isatty(target) else "json"
    if verbosity > 0:
        level = "DEBUG"
    levelno = stdlib_logging.getLevelNamesMapping()[level]
    colors = _isatty(target)
    handler = _StdlibHandler(stream)
    with _pending_lock:
        _pending = functools.partial(_configure_structlog, fmt, levelno, colors, stream, handler)
    _install_stdlib_handler(handler)
    # Libraries that use the standard logging module (alembic, apscheduler) stay quiet
    # unless -vv: their INFO chatter is not part of sfsync's event stream. Others
    # keep the root logger's level (WARNING unless someone changed it).
    quiet = stdlib_logging.DEBUG if verbosity > 1 else stdlib_logging.WARNING
    for name in _QUIET_LIBRARIES:
        stdlib_logging.getLogger(name).setLevel(quiet)
    if "structlog" in sys.modules:  # already paid for: configure it now
        _complete_setup()


def _configure_structlog(
    fmt: LogFormat, levelno: int, colors: bool, stream: TextIO | None, handler: _StdlibHandler
) -> None:
    """structlog's configuration and ``handler``'s formatter (see :func:`configure_logging`)."""
    import structlog
    from structlog.tracebacks import ExceptionDictTransformer

    # Exceptions become data *before* redaction, so a traceback (its message, its text)
    # is redacted like everything else; frame locals are never rendered (a token in a
    # local variable would otherwise reach the log).
    tracebacks: Processor
    renderer: Processor
    if fmt == "json":
        tracebacks = structlog.processors.ExceptionRenderer(
            ExceptionDictTransformer(show_locals=False)
        )
        renderer = structlog.processors.JSONRenderer(sort_keys=False, default=str)
    else:
        tracebacks = structlog.processors.format_exc_info
        renderer = structlog.dev.ConsoleRenderer(colors=colors)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        tracebacks,
        redact_secrets,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(levelno),
        logger_factory=_StderrLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # The standard library's records: the same processors and renderer, plus the
    # logger's name (sfsync's own events do not carry one).
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )


def reset_logging() -> None:
    """Undo this process's logging state: what a test leaves behind for the next.

    Forgets the secrets :func:`register_secrets` remembered, puts structlog back to
    its defaults, clears context bound with :func:`bind_run`, and removes the root
    handler and library levels :func:`configure_logging` installed.
    """
    global _pending
    import structlog

    with _secrets_lock:
        _secrets.clear()
    with _pending_lock:
        _pending = None
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root = stdlib_logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StdlibHandler):
            root.removeHandler(handler)
    for name in _QUIET_LIBRARIES:
        stdlib_logging.getLogger(name).setLevel(stdlib_logging.NOTSET)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def get_logger(**initial: Any) -> FilteringBoundLogger:
    """A structlog bound logger (``make_filtering_bound_logger``'s class, as configured)."""
    import structlog

    _complete_setup()

    return cast("FilteringBoundLogger", structlog.get_logger(**initial))


def bind_run(run_id: int | str, **extra: Any) -> None:
    """Bind ``run_id`` (and extra context) to every event of this run."""
    import structlog

    _complete_setup()

    structlog.contextvars.bind_contextvars(run_id=run_id, **extra)


def unbind_run(*keys: str) -> None:
    import structlog

    structlog.contextvars.unbind_contextvars("run_id", *keys)
