"""Output shared by the commands: tables, progress bars and CSV rows.

On a terminal: rich tables and progress bars. Piped: plain aligned text on
stdout (stable for scripts and tests) and structured events on stderr.

Record values (opportunity names, subjects, Salesforce's error messages) are data
anyone with a Salesforce login can set. Every printed one passes through
:func:`printable` (no control character reaches a terminal or a pipe) and rich
gets them as :class:`~rich.text.Text` (``[/bold]`` is text, not markup). Every
exported CSV cell passes through :func:`csv_safe` (no cell a spreadsheet runs as
a formula).
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TextIO, cast

if TYPE_CHECKING:
    from rich.progress import Progress

# rich (~20 ms) is imported where a terminal gets its tables and bars: piped output
# (scripts, `sfsync runs | ...`) never needs it (issue 17).

__all__ = ["TextSink", "csv_safe", "print_table", "printable", "sync_progress", "write_csv"]

# Line breaks and tabs become a space; every other C0 control, DEL and C1 control
# (ESC, BEL, the 8-bit CSI 0x9b...) becomes U+FFFD, visible but inert.
_BREAKS = "\t\n\r\v\f\x85\u2028\u2029"
_ONE_LINE: dict[int, str] = dict.fromkeys((*range(0x20), *range(0x7F, 0xA0)), "\ufffd")
_ONE_LINE.update({ord(c): " " for c in _BREAKS})
_LINES = {**_ONE_LINE, ord("\n"): "\n", ord("\r"): "\n"}

# OWASP's CSV-injection rule: a cell starting with one of these is a formula to a spreadsheet.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class TextSink(Protocol):
    """Anything text can be written to (a stream, or a line forwarder)."""

    def write(self, text: str, /) -> int: ...
    def flush(self) -> None: ...
    def isatty(self) -> bool: ...


def _isatty(stream: TextSink) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def printable(value: object, *, newlines: bool = False) -> str:
    """``value`` as text safe to print: no control characters, ``None`` as ``""``.

    Tabs and line breaks become a space (``newlines=True`` keeps line breaks, as
    ``\\n``, for a paragraph); ESC, BEL, DEL, C1 and the other controls become
    U+FFFD, so an escape sequence shows as text instead of acting on the terminal.
    """
    text = "" if value is None else str(value)
    return text.replace("\r\n", "\n").translate(_LINES if newlines else _ONE_LINE)


def print_table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    stream: TextSink | None = None,
) -> None:
    """A table (titled unless ``title`` is None): rich on a terminal, aligned text otherwise.

    Every cell and the title go through :func:`printable`; rich gets them as
    :class:`~rich.text.Text`, so brackets are printed, never read as markup.
    """
    out: TextSink = stream or sys.stdout
    heads = [printable(c) for c in columns]
    cells = [[printable(v) for v in row] for row in rows]
    caption = None if title is None else printable(title)
    if _isatty(out):
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(
            title=None if caption is None else Text(caption, style="table.title"),
            title_justify="left",
        )
        for index, column in enumerate(heads):
            numeric = bool(cells) and all(_numeric(r[index]) for r in cells)
            table.add_column(Text(column), justify="right" if numeric else "left")
        for row in cells:
            table.add_row(*(Text(v) for v in row))
        Console(file=cast(TextIO, out), markup=False, emoji=False, highlight=False).print(table)
        return
    widths = [len(c) for c in heads]
    for row in cells:
        widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
    if caption is not None:
        out.write(f"{caption}\n")
    out.write("  ".join(c.ljust(w) for c, w in zip(heads, widths, strict=True)).rstrip() + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
    out.flush()


def _numeric(value: str) -> bool:
    return value.replace(".", "", 1).replace(",", "").lstrip("-").isdigit() or value == ""


def csv_safe(value: object) -> object:
    """A CSV cell a spreadsheet will not run: a string starting ``= + - @``, tab or CR gets ``'``.

    Numbers (int, float) and other non-strings are returned as they are.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(stream: TextSink, rows: Iterable[Sequence[object]]) -> None:
    """CSV rows ending in LF, every cell through :func:`csv_safe`; ``None`` is empty.

    The csv module quotes a cell only for the characters of its line terminator:
    rows are formatted with CRLF (so a cell holding a CR or LF is quoted and stays
    in its row) and written with LF.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow(["" if cell is None else csv_safe(cell) for cell in row])
        stream.write(buffer.getvalue()[:-2] + "\n")
        buffer.seek(0)
        buffer.truncate()
    stream.flush()


class _RichSyncProgress:
    """One bar per object while it syncs."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def start(self, name: str, total: int | None, mode: str) -> None:
        self.tasks[name] = self.progress.add_task(f"{name} ({mode})", total=total or None)

    def advance(self, name: str, rows: int) -> None:
        if name in self.tasks:
            self.progress.advance(self.tasks[name], rows)

    def finish(self, name: str, result: Any) -> None:
        task = self.tasks.get(name)
        if task is not None:
            self.progress.update(
                task, total=max(result.upserted, 1), completed=max(result.upserted, 1)
            )


@contextmanager
def sync_progress(stream: TextIO | None = None) -> Iterator[Any | None]:
    """A progress reporter for a terminal, else None (the sync then logs events)."""
    target = stream or sys.stderr
    if not _isatty(target):
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=target),
        transient=False,
    )
    with progress:
        yield _RichSyncProgress(progress)
