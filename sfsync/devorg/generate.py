"""``sfsync devorg generate``: a deterministic, realistic synthetic Salesforce org.

The same (opportunities, seed, as-of date, options) always give the same bytes.
The file is the dev org's data file (docs/contracts.md, "Dev org data file"), laid out one
record per line so that it can be read as a stream::

    {"integration_user_id":"005...",
    "custom_fields":{...},
    "records":{
    "Organization":[
    {...}
    ],
    "User":[
    ...
    ]}}

Memory stays flat whatever the size: opportunities are written as they are built,
and their line items, history rows and Tasks go to temporary spill files that are
appended after the Opportunity array. The file appears atomically (a temporary
file in the same directory, then ``os.replace``).

Every timestamp lies before midnight UTC at the start of the as-of date, so an org
generated "as of today" never holds a stamp later than the real clock.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any, TextIO, cast

import click

from sfsync.devorg._catalog import DATA_FILE_OBJECTS
from sfsync.devorg._gen_base import (
    DAY,
    FiscalCalendar,
    Formatter,
    encode,
    to_epoch_day,
)
from sfsync.devorg._gen_catalog import build_catalog
from sfsync.devorg._gen_opportunity import OpportunityStream
from sfsync.errors import UsageError
from sfsync.files import atomic_text_file
from sfsync.formats import parse_date

__all__ = ["CUSTOM_FIELDS", "OBJECT_ORDER", "GenerateStats", "generate_command", "generate_org"]

# The order of the arrays in the file (docs/contracts.md): parents first.
OBJECT_ORDER = DATA_FILE_OBJECTS
_SETUP_OBJECTS = OBJECT_ORDER[:6]
_SPILLED_OBJECTS = OBJECT_ORDER[7:]

# Declared so that the fields exist even where no record sets them.
CUSTOM_FIELDS: dict[str, dict[str, dict[str, Any]]] = {
    "Opportunity": {
        "Rev_Rec_Terms__c": {"type": "picklist"},
        "Region__c": {"type": "picklist"},
    },
    "Task": {
        "Sfsync_Key__c": {"type": "string", "length": 80, "externalId": True, "unique": True},
    },
}

# Opportunities built between writes (and between progress reports).
_CHUNK = 2_000
# How far back opportunities are created, and when the org was set up before that.
_HISTORY_DAYS = 1_095
_SETUP_DAYS_BEFORE = 1_200
# Show a progress bar on a terminal from this many opportunities on.
_PROGRESS_FROM = 20_000


@dataclass(frozen=True)
class GenerateStats:
    """What :func:`generate_org` wrote."""

    out: Path
    counts: dict[str, int]
    bytes_written: int
    seconds: float
    as_of: date
    integration_user_id: str

    def summary(self) -> str:
        """One line: counts, size, time."""
        counts = ", ".join(f"{n:,} {name}" for name, n in self.counts.items())
        return (
            f"wrote {self.out} ({_human_size(self.bytes_written)}, as of {self.as_of}) "
            f"in {self.seconds:.1f} s: {counts}"
        )


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class _ArrayWriter:
    """Writes JSON array elements one per line, with the commas between them."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.count = 0
        self._pending: list[str] = []

    def add(self, encoded: str) -> None:
        self._pending.append(encoded)

    def extend(self, encoded: list[str]) -> None:
        self._pending.extend(encoded)

    def flush(self) -> None:
        if not self._pending:
            return
        lead = ",\n" if self.count else "\n"
        self.stream.write(lead + ",\n".join(self._pending))
        self.count += len(self._pending)
        self._pending.clear()


def _today_utc() -> date:
    return datetime.now(UTC).date()


def _validate(opportunities: int, as_of: date, fiscal_year_start_month: int) -> None:
    if isinstance(opportunities, bool) or not isinstance(opportunities, int) or opportunities < 1:
        raise UsageError(f"opportunities must be a whole number >= 1, got {opportunities!r}")
    if as_of > _today_utc():
        raise UsageError(
            f"as-of date {as_of} is after today (UTC): the org would hold timestamps "
            "later than the real clock"
        )
    if not 1 <= fiscal_year_start_month <= 12:
        raise UsageError(f"fiscal year start month must be 1..12, got {fiscal_year_start_month}")


@contextlib.contextmanager
def _atomic_output(out: Path) -> Iterator[TextIO]:
    """A text stream to a temporary file next to ``out``, renamed to ``out`` on success.

    The file is 0600: it holds the org's records (and maybe credentials).
    """
    with contextlib.ExitStack() as stack:
        try:
            stream = stack.enter_context(
                atomic_text_file(out, mode=0o600, encoding="ascii", newline="\n", buffering=1 << 20)
            )
        except OSError as exc:
            raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from exc
        yield stream


def generate_org(
    *,
    opportunities: int,
    seed: int,
    out: Path,
    as_of: date | None = None,
    multi_currency: bool = True,
    fiscal_year_start_month: int = 1,
    progress: Callable[[int], None] | None = None,
) -> GenerateStats:
    """Write a synthetic org with ``opportunities`` opportunities to ``out``.

    Deterministic in (opportunities, seed, as_of, multi_currency,
    fiscal_year_start_month); ``as_of`` defaults to today (UTC) and may not be
    later. ``progress`` is called with the number of opportunities written so far,
    every few thousand and once at the end. Raises
    :class:`~sfsync.errors.UsageError` for bad arguments or an unwritable ``out``.
    """
    started = time.perf_counter()
    as_of = as_of if as_of is not None else _today_utc()
    _validate(opportunities, as_of, fiscal_year_start_month)
    out = Path(out)
    if out.is_dir():
        raise UsageError(f"cannot write {out}: it is a directory")

    rng = random.Random(seed)
    fmt = Formatter()
    as_of_day = to_epoch_day(as_of)
    horizon = as_of_day * DAY - 1  # 23:59:59 UTC the day before as-of
    fiscal = FiscalCalendar(fiscal_year_start_month)
    catalog = build_catalog(
        rng,
        fmt,
        opportunities=opportunities,
        setup_start=(as_of_day - _SETUP_DAYS_BEFORE) * DAY,
        horizon=horizon,
        fiscal_year_start_month=fiscal_year_start_month,
        multi_currency=multi_currency,
    )
    stream = OpportunityStream(
        rng,
        fmt,
        catalog,
        as_of_day=as_of_day,
        horizon=horizon,
        fiscal=fiscal,
        multi_currency=multi_currency,
    )
    counts: dict[str, int] = {}

    with _atomic_output(out) as main, contextlib.ExitStack() as spills_stack:
        spills = {
            name: cast(
                TextIO,
                spills_stack.enter_context(
                    tempfile.TemporaryFile(
                        "w+", encoding="ascii", newline="\n", buffering=1 << 20, dir=out.parent
                    )
                ),
            )
            for name in _SPILLED_OBJECTS
        }
        main.write(
            f'{{"integration_user_id":{encode(catalog.integration_user_id)},\n'
            f'"custom_fields":{encode(CUSTOM_FIELDS)},\n"records":{{'
        )
        for name in _SETUP_OBJECTS:
            main.write(f"\n{encode(name)}:[")
            writer = _ArrayWriter(main)
            writer.extend([encode(r) for r in catalog.records[name]])
            writer.flush()
            counts[name] = writer.count
            main.write("\n],")

        main.write('\n"Opportunity":[')
        opp_writer = _ArrayWriter(main)
        item_writer = _ArrayWriter(spills["OpportunityLineItem"])
        history_writer = _ArrayWriter(spills["OpportunityHistory"])
        task_writer = _ArrayWriter(spills["Task"])
        for index in range(opportunities):
            built = stream.build(index)
            opp_writer.add(built.opportunity)
            if built.line_items:
                item_writer.extend(built.line_items)
            if built.history:
                history_writer.extend(built.history)
            if built.tasks:
                task_writer.extend(built.tasks)
            if (index + 1) % _CHUNK == 0:
                for writer in (opp_writer, item_writer, history_writer, task_writer):
                    writer.flush()
                if progress is not None:
                    progress(index + 1)
        for writer in (opp_writer, item_writer, history_writer, task_writer):
            writer.flush()
        counts["Opportunity"] = opp_writer.count
        main.write("\n]")

        for name, writer in zip(
            _SPILLED_OBJECTS, (item_writer, history_writer, task_writer), strict=True
        ):
            spill = spills[name]
            main.write(f",\n{encode(name)}:[")
            spill.flush()
            spill.seek(0)
            main.flush()
            shutil.copyfileobj(spill.buffer, main.buffer, 1 << 22)
            main.write("\n]")
            counts[name] = writer.count
        main.write("}}\n")
    if progress is not None and opportunities % _CHUNK:
        progress(opportunities)

    return GenerateStats(
        out=out,
        counts={name: counts[name] for name in OBJECT_ORDER},
        bytes_written=out.stat().st_size,
        seconds=time.perf_counter() - started,
        as_of=as_of,
        integration_user_id=catalog.integration_user_id,
    )


def _parse_as_of(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        parsed = parse_date(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a date YYYY-MM-DD") from exc
    if parsed > _today_utc():
        raise click.BadParameter(
            f"{value} is after today (UTC): the org would hold timestamps later than now"
        )
    return parsed


@click.command("generate")
@click.option(
    "--opportunities",
    "-n",
    type=click.IntRange(min=1),
    required=True,
    help="How many opportunities (about 40 per rep, ~5 history rows each).",
)
@click.option("--seed", type=int, required=True, help="Seed: the same seed gives the same file.")
@click.option(
    "--as-of",
    "as_of",
    callback=_parse_as_of,
    metavar="YYYY-MM-DD",
    help="The date the org is 'today' for (default: today, UTC). Not in the future.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=Path("org.json"),
    show_default=True,
    help="Where to write the data file.",
)
@click.option(
    "--multi-currency/--no-multi-currency",
    default=True,
    show_default=True,
    help="Whether the org has CurrencyType rows and CurrencyIsoCode fields.",
)
@click.option(
    "--fiscal-year-start-month",
    type=click.IntRange(1, 12),
    default=1,
    show_default=True,
    help="Organization.FiscalYearStartMonth.",
)
def generate_command(
    opportunities: int,
    seed: int,
    as_of: date | None,
    out: Path,
    multi_currency: bool,
    fiscal_year_start_month: int,
) -> None:
    """Write a deterministic, realistic synthetic org for `sfsync devorg serve`."""
    show_bar = opportunities >= _PROGRESS_FROM and sys.stderr.isatty()
    with contextlib.ExitStack() as stack:
        report: Callable[[int], None] | None = None
        if show_bar:
            bar = stack.enter_context(
                click.progressbar(length=opportunities, label="opportunities", file=sys.stderr)
            )
            done = [0]

            def report(n: int) -> None:
                bar.update(n - done[0])
                done[0] = n

        try:
            stats = generate_org(
                opportunities=opportunities,
                seed=seed,
                out=out,
                as_of=as_of,
                multi_currency=multi_currency,
                fiscal_year_start_month=fiscal_year_start_month,
                progress=report,
            )
        except UsageError as exc:
            raise click.BadParameter(exc.message, param_hint="'--out'") from exc
    click.echo(stats.summary())


if __name__ == "__main__":  # pragma: no cover - `python -m sfsync.devorg.generate`
    generate_command()
