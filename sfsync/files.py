"""Writing a file so that readers see the old content or the new, never part of it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

__all__ = ["atomic_text_file"]


@contextmanager
def atomic_text_file(
    path: Path,
    *,
    mode: int = 0o600,
    encoding: str = "utf-8",
    newline: str | None = None,
    buffering: int = -1,
) -> Iterator[TextIO]:
    """A text stream to a temporary file beside ``path``, renamed over it on success.

    The temporary file is created when the block is entered, so an unwritable
    directory fails before any work. On any failure it is removed and ``path`` is
    left as it was.

    The file gets exactly ``mode`` (set with fchmod, so the umask does not
    matter): by default 0600, owner only, since sfsync's files hold org data or
    secrets; pass 0o644 for a file others should read. A file already at
    ``path`` is replaced, not rewritten, so its mode is not kept: a file the user
    had made 0640 becomes ``mode`` too.
    """
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temporary = Path(name)
    try:
        os.fchmod(handle, mode)
        with os.fdopen(
            handle, "w", encoding=encoding, newline=newline, buffering=buffering
        ) as stream:
            yield stream
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
