"""What Bulk API 1.0 (``/services/async``) and Bulk API 2.0 (``jobs/query``) query jobs share.

Both run a query to a snapshot when it is submitted (the org's cursor, with
Bulk's restrictions), report a job or batch complete once the server's configured
delay has passed, and stream the rows in 2,000-row blocks so a million-row result
never sits in memory: RFC 4180 CSV with every value quoted, or records.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from itertools import count
from typing import TYPE_CHECKING, Any

from sfsync.formats import id15_to_18

if TYPE_CHECKING:
    from sfsync.devorg._org import DevOrg, QueryCursor

__all__ = [
    "BLOCK_ROWS",
    "IdSequence",
    "completed",
    "csv_stream",
    "record_blocks",
]

#: Rows read from the store (and rendered) at a time.
BLOCK_ROWS = 2000


class IdSequence:
    """Ids for jobs, batches and result files: ``<prefix>DV<counter>``, 18 characters or 15."""

    def __init__(self, prefix: str, *, long: bool = True) -> None:
        self._prefix = prefix
        self._long = long
        self._next = count(1)

    def new(self) -> str:
        short = f"{self._prefix}DV{next(self._next):010d}"
        return id15_to_18(short) if self._long else short


def completed(created: float, delay: float) -> bool:
    """Whether work submitted at ``created`` (monotonic seconds) is done, given the delay."""
    return time.monotonic() - created >= delay


def csv_stream(
    org: DevOrg, cursor: QueryCursor, start: int, stop: int, newline: str = "\n"
) -> Iterator[bytes]:
    """Rows ``start:stop`` of a cursor as CSV with a header, every value quoted, nulls ``""``."""

    def render(rows: list[list[str]]) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator=newline)
        writer.writerows(rows)
        return buffer.getvalue().encode("utf-8")

    yield render([cursor.columns])
    for block in range(start, stop, BLOCK_ROWS):
        yield render(org.fetch_csv_rows(cursor, block, min(stop, block + BLOCK_ROWS)))


def record_blocks(
    org: DevOrg, cursor: QueryCursor, start: int, stop: int, version: str
) -> Iterator[list[dict[str, Any]]]:
    """Rows ``start:stop`` of a cursor as REST-shaped records, a block at a time."""
    for block in range(start, stop, BLOCK_ROWS):
        yield org.fetch_records(cursor, block, min(stop, block + BLOCK_ROWS), version)
