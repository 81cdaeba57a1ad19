"""The CLI's frame: the :class:`App` every command gets, the error paragraph, shared helpers.

Every failure ends with one readable paragraph on stderr (and an ``error`` event
in JSON log mode) and the exit code of :mod:`sfsync.errors`; a traceback only
with ``-v``. The global options (:func:`global_options`) are accepted before the
subcommand and after it, by every command and group. Only :mod:`sfsync.cli` and
its command modules import this.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import click

from sfsync.cli import _startup
from sfsync.errors import EXIT_OK, SfsyncError, UsageError, exit_code_for
from sfsync.logging import LogFormat, configure_logging, get_logger, redact_text, register_secrets

if TYPE_CHECKING:
    # The settings model (pydantic, the rule registry, SQLAlchemy for the URL) is
    # imported when a command first reads the settings: `sfsync --version` and
    # `--help` never do.
    from sfsync.config import LoadedSettings, Settings

__all__ = [
    "AS_OF_RANGE",
    "App",
    "RulesCommand",
    "SfsyncGroup",
    "global_options",
    "parse_iso_date",
    "pass_app",
    "reader_went_away",
    "with_global_options",
]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    """What every command gets: the global options and lazily loaded settings."""

    config_path: Path | None = None
    verbose: int = 0
    log_format: LogFormat | None = None
    _loaded: LoadedSettings | None = field(default=None, repr=False)
    _logging_ready: bool = field(default=False, repr=False)

    def add_options(
        self, config_path: Path | None, verbose: int, log_format: LogFormat | None
    ) -> None:
        """The global options given at one more level of the command line.

        A ``--config`` or ``--log-format`` given later (after the subcommand) wins;
        ``-v`` counts add up. The settings are read on first use, after every level.
        """
        assert self._loaded is None, "the global options come before the settings are read"
        if config_path is not None:
            self.config_path = config_path
        self.verbose += verbose
        if log_format is not None:
            self.log_format = log_format

    @property
    def loaded(self) -> LoadedSettings:
        if self._loaded is None:
            from sfsync.config import load_settings

            loaded = load_settings(self.config_path)
            register_secrets(loaded.settings.secret_values())
            configure_logging(
                self.log_format or loaded.settings.logging.format,
                level=loaded.settings.logging.level,
                verbosity=self.verbose,
            )
            self._logging_ready = True
            for warning in loaded.warnings:
                get_logger().warning("config.warning", message=warning)
            self._loaded = loaded
            _startup.started()
        return self._loaded

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    def ensure_logging(self) -> None:
        """Logging as the global options say, also when the settings could not be read."""
        if not self._logging_ready:
            configure_logging(self.log_format or "auto", verbosity=self.verbose)
            self._logging_ready = True

    def tell(self, text: str, *, event: str, level: str = "info", **fields: Any) -> None:
        """A line for the person at the terminal: on stderr in console mode, an event in
        JSON mode (where every line on stderr is JSON)."""
        if self.json_logs:
            self.ensure_logging()
            getattr(get_logger(), level)(event, message=text, **fields)
        else:
            click.echo(text, err=True)

    @property
    def json_logs(self) -> bool:
        if self.log_format is not None:
            return self.log_format == "json"
        if self._loaded is not None and self._loaded.settings.logging.format != "auto":
            return self._loaded.settings.logging.format == "json"
        return not sys.stderr.isatty()


def _fail(app: App | None, exc: BaseException) -> NoReturn:
    from sfsync.console import printable

    code = exit_code_for(exc)
    if isinstance(exc, SfsyncError):
        message = redact_text(exc.message)
    else:
        message = redact_text(
            f"internal error: {type(exc).__name__}: {exc}. This is a bug in sfsync; "
            "run again with -v and report the traceback."
        )
    trace = None
    if app is not None and app.verbose:
        trace = redact_text("".join(traceback.format_exception(exc)))
    if app is not None and app.json_logs:
        # A log collector reads stderr line by line: the error is one JSON event.
        app.ensure_logging()
        fields = {"traceback": trace} if trace is not None else {}
        get_logger().error("error", message=message, exit_code=code, **fields)
        sys.exit(code)
    if trace is not None:
        sys.stderr.write(printable(trace, newlines=True))
    # Messages quote Salesforce's answers and record values: no control characters.
    click.echo(f"error: {printable(message, newlines=True)}", err=True)
    sys.exit(code)


class SfsyncGroup(click.Group):
    """Turns sfsync errors (and bugs) into a paragraph and an exit code; loads commands lazily.

    ``lazy_commands`` maps a command's name to ``"module:attribute"``: the module is
    imported only when the command runs or its own help is shown, so start-up stays
    fast. ``lazy_summaries`` maps a name to the first sentence of the command's help:
    the group's ``--help`` lists a command by it without importing the command (a
    command without one is imported to be listed).
    """

    def __init__(
        self,
        *args: Any,
        lazy_commands: Mapping[str, str] | None = None,
        lazy_summaries: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})
        self.lazy_summaries = dict(lazy_summaries or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            module, attribute = self.lazy_commands[cmd_name].split(":")
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's list of commands, each shortened from its summary where one is given."""
        listed: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            summary = self.lazy_summaries.get(name)
            # A stand-in with the same first sentence: click shortens it the same way.
            command = (
                click.Command(name, help=summary)
                if summary is not None
                else self.get_command(ctx, name)
            )
            if command is not None and not command.hidden:
                listed.append((name, command))
        if listed:
            limit = formatter.width - 6 - max(len(name) for name, _ in listed)
            with formatter.section("Commands"):
                formatter.write_dl(
                    [(name, command.get_short_help_str(limit)) for name, command in listed]
                )

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            app = ctx.find_object(App)
            if app is None or not app.json_logs:
                raise
            app.ensure_logging()
            get_logger().error("error", message=exc.format_message(), exit_code=exc.exit_code)
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            app = ctx.find_object(App)
            if app is not None:
                app.tell("interrupted", event="interrupted", level="warning")
            else:
                click.echo("interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            reader_went_away(EXIT_OK)
        except Exception as exc:
            app = ctx.find_object(App)
            _fail(app, _environment_failure(app, exc) or exc)


class RulesCommand(click.Command):
    """A command about rules: its ``--help`` ends with the rule ids (read from the registry
    only when the help is shown, so that other commands do not pay for it)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        from sfsync.audit.rules import all_rules

        with formatter.section("Rules"):
            formatter.write_dl([(rule.id, rule.title) for rule in all_rules()])


def _silence_stdout() -> None:
    """Point stdout's descriptor at /dev/null: what is still buffered goes nowhere, quietly."""
    with contextlib.suppress(OSError, ValueError):  # in-process runners have no real fd
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)


def reader_went_away(code: int) -> NoReturn:
    """stdout's reader closed the pipe (``sfsync findings | head -1``): not an error.

    Exit quietly, like ripgrep: no message, and nothing left for Python to fail to
    flush at shutdown ("Exception ignored ... BrokenPipeError").
    """
    _silence_stdout()
    sys.exit(code)


def _environment_failure(app: App | None, exc: Exception) -> SfsyncError | None:
    """A database that failed under the command (full disk, server gone) as an sfsync error.

    Every command gets this one mapping; the original stays the cause (``-v`` shows it).
    """
    if app is None or app._loaded is None:
        return None
    from sfsync.warehouse import database_failure

    mapped = database_failure(exc, app._loaded.settings.database)
    if mapped is not None:
        mapped.__cause__ = exc
    return mapped


pass_app = click.make_pass_decorator(App)


# The global options, by parameter names no command uses for its own options.
_GLOBAL_OPTIONS = (
    click.option(
        "--config",
        "sfsync_config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Config file (else $SFSYNC_CONFIG, else config/sfsync.yaml, else defaults).",
    ),
    click.option(
        "-v", "--verbose", "sfsync_verbose", count=True, help="More output; tracebacks on errors."
    ),
    click.option(
        "--log-format",
        "sfsync_log_format",
        type=click.Choice(["auto", "json", "console"]),
        default=None,
        help="JSON lines or console logs (default: JSON unless stderr is a terminal).",
    ),
)


def _taking_global_options(callback: F) -> F:
    """``callback`` preceded by: the global options of its level go into the :class:`App`.

    The first level (the ``sfsync`` group, or the ``devorg`` group run on its own)
    creates the App; each level that gives an option configures logging again.
    """

    @functools.wraps(callback)
    def merged(*args: Any, **kwargs: Any) -> Any:
        config_path = cast(Path | None, kwargs.pop("sfsync_config_path"))
        verbose = cast(int, kwargs.pop("sfsync_verbose"))
        log_format = cast(LogFormat | None, kwargs.pop("sfsync_log_format"))
        ctx = click.get_current_context()
        app = ctx.find_object(App)
        if app is None:
            app = ctx.obj = App()
        elif config_path is None and not verbose and log_format is None:
            return callback(*args, **kwargs)
        app.add_options(config_path, verbose, log_format)
        configure_logging(app.log_format or "auto", verbosity=app.verbose)
        return callback(*args, **kwargs)

    return cast(F, merged)


def global_options(callback: F) -> F:
    """Add ``--config``, ``-v/--verbose`` and ``--log-format`` to a command or group.

    Every command and group takes them, before its subcommand and after it
    (``sfsync --config x.yaml findings``, ``sfsync findings --config x.yaml``):
    place this under the command's own options, so that the help lists them last.
    """
    decorated = _taking_global_options(callback)
    for option in reversed(_GLOBAL_OPTIONS):
        decorated = option(decorated)
    return decorated


def with_global_options(command: click.Command) -> click.Command:
    """A copy of ``command`` (defined outside the CLI) that takes the global options too."""
    copied = copy.copy(command)
    copied.params = list(command.params)
    for option in _GLOBAL_OPTIONS:
        option(copied)  # on a Command, click appends the option to its params
    if command.callback is not None:
        copied.callback = _taking_global_options(command.callback)
    return copied


# The dates an ``--as-of`` may name: the audit, the report and the write-back count
# quarters, months and days around it, which must stay inside Python's years 1..9999.
AS_OF_RANGE = (date(1900, 1, 1), date(2999, 12, 31))


def parse_iso_date(
    value: str | None, option: str, *, within: tuple[date, date] | None = AS_OF_RANGE
) -> date | None:
    """``YYYY-MM-DD`` only (docs/contracts.md), inside ``within`` (``None``: any date).

    Anything else is a usage error naming the option, the value and the range.
    """
    if value is None:
        return None
    from sfsync.formats import parse_date

    try:
        day = parse_date(value)
    except ValueError:
        raise UsageError(f"{option}: {value!r} is not a date in the form YYYY-MM-DD") from None
    if within is not None and not within[0] <= day <= within[1]:
        raise UsageError(
            f"{option}: {value} is outside the supported range "
            f"{within[0].isoformat()} .. {within[1].isoformat()}"
        )
    return day
