"""When a write Salesforce did not take is tried again: the one retry policy of the write-back.

Within a run a refused write is not sent again (it would be refused again at once).
Across runs nothing is given up for good while its finding still needs it:

- a transient failure (``UNABLE_TO_LOCK_ROW``, a timeout...) is retried at each of
  the next ``writeback.max_attempts`` runs;
- a refusal (a validation rule, a required field, a missing permission...) waits a
  day, then 2, 4... up to ``writeback.retry_max_days`` between attempts, so a rule
  an admin fixes is honoured within a day or so without hammering the org nightly;
- a transient failure that outlasts ``max_attempts`` backs off the same way.

The planner shows what is waiting (``skip_code`` ``retry_later``, with the day).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sfsync.config import WritebackSettings
from sfsync.salesforce import classify_record_error
from sfsync.writeback._model import LedgerView

__all__ = ["next_attempt_day"]


def next_attempt_day(row: LedgerView, wb: WritebackSettings, tz: ZoneInfo) -> date | None:
    """The first day (in ``tz``) a failed write may be sent again; None: at the next run."""
    transient = classify_record_error(row.error_code or "") == "transient"
    if transient and row.attempts < wb.max_attempts:
        return None
    backed_off = row.attempts - wb.max_attempts if transient else row.attempts - 1
    days = min(2 ** max(backed_off, 0), wb.retry_max_days)
    failed_at = row.updated_at or datetime.now(UTC)
    if failed_at.tzinfo is None:
        failed_at = failed_at.replace(tzinfo=UTC)
    return failed_at.astimezone(tz).date() + timedelta(days=days)
