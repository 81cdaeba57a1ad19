"""Terminal output shared by the commands: tables and progress bars.

On a terminal: rich tables and progress bars. Piped: plain aligned text on
stdout (stable for scripts and tests) and structured events on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TextIO, cast

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

__all__ = ["TextSink", "print_table", "sync_progress"]


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


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    stream: TextSink | None = None,
) -> None:
    """A titled table: rich on a terminal, aligned plain text otherwise."""
    out: TextSink = stream or sys.stdout
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    if _isatty(out):
        table = Table(title=title, title_justify="left")
        for index, column in enumerate(columns):
            numeric = bool(cells) and all(_numeric(r[index]) for r in cells)
            table.add_column(column, justify="right" if numeric else "left")
        for row in cells:
            table.add_row(*row)
        Console(file=cast(TextIO, out)).print(table)
        return
    widths = [len(c) for c in columns]
    for row in cells:
        widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
    out.write(f"{title}\n")
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
    out.flush()


def _numeric(value: str) -> bool:
    return value.replace(".", "", 1).replace(",", "").lstrip("-").isdigit() or value == ""


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
