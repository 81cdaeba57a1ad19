"""Write the report atomically: a temporary file beside the target, then a rename."""

from __future__ import annotations

import contextlib
import os
import secrets
from datetime import date
from pathlib import Path

from sfsync.config import Settings
from sfsync.errors import UsageError
from sfsync.logging import get_logger
from sfsync.report._data import ReportLimits, build_report
from sfsync.report._html import render_html
from sfsync.warehouse._engine import Warehouse

__all__ = ["write_report"]


def _cannot_write(out: Path, exc: OSError) -> UsageError:
    reason = exc.strerror or type(exc).__name__
    return UsageError(f"--out: cannot write the report to {str(out)!r}: {reason}")


def write_report(
    warehouse: Warehouse,
    settings: Settings,
    out: Path,
    *,
    as_of: date | None = None,
    limits: ReportLimits | None = None,
) -> Path:
    """Build, render and write the report to ``out``; return ``out``.

    The temporary file is created first, so an unwritable path fails (exit 2,
    naming it) before any query runs; readers of ``out`` see the old page or the
    new one, never half of one. The file is 0600 (owner only; the umask does not
    matter): it shows the org's deals and people. A file already at ``out`` is
    replaced, so its mode is not kept: one the user had made 0640 becomes 0600.
    """
    out = Path(out)
    if out.is_dir():
        raise UsageError(
            f"--out: {str(out)!r} is a directory; give a file name such as report.html"
        )
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise _cannot_write(out, exc) from None
    try:
        os.fchmod(fd, 0o600)  # exactly, whatever the umask
        data = build_report(warehouse, settings, as_of=as_of, limits=limits)
        page = render_html(data).encode("utf-8")
        with os.fdopen(fd, "wb") as handle:
            fd = -1
            handle.write(page)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            tmp.replace(out)
        except OSError as exc:
            raise _cannot_write(out, exc) from None
    finally:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    get_logger().info(
        "report.written",
        path=str(out),
        bytes=len(page),
        as_of=data.as_of.isoformat(),
        open_findings=data.totals.open_findings,
        open_opportunities=data.totals.open_opportunities,
    )
    return out
