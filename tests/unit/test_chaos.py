"""The SFSYNC_CRASH_AT chaos knob: exit 137 at the named point, on the n-th time only."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sfsync.chaos import crash_point

SCRIPT = """
from sfsync.chaos import crash_point
for n in range(1, 4):
    print(n, flush=True)
    crash_point("writeback.after_send")
    crash_point("writeback.before_send")
"""


@pytest.mark.parametrize(
    ("spec", "code", "printed"),
    [
        ("writeback.after_send", 137, "1\n"),
        ("writeback.after_send:2", 137, "1\n2\n"),
        ("writeback.before_send:3", 137, "1\n2\n3\n"),
        ("writeback.after_send:9", 0, "1\n2\n3\n"),
        ("writeback.elsewhere", 0, "1\n2\n3\n"),
    ],
)
def test_the_process_dies_at_the_named_point(spec: str, code: int, printed: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={"SFSYNC_CRASH_AT": spec, "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (proc.returncode, proc.stdout) == (code, printed)


def test_unset_it_does_nothing() -> None:
    crash_point("writeback.after_send")  # still here


def test_every_crash_point_is_placed_and_every_placed_point_is_known() -> None:
    """Tests name points from CRASH_POINTS; each must exist in the code, and no other."""
    import re
    from pathlib import Path

    import sfsync
    from sfsync.chaos import CRASH_POINTS

    root = Path(sfsync.__file__).parent
    placed = {
        match
        for path in root.rglob("*.py")
        for match in re.findall(r'crash_point\("([a-z_.]+)"\)', path.read_text(encoding="utf-8"))
    }
    assert placed == set(CRASH_POINTS)
