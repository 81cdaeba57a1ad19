"""The SFSYNC_CRASH_AT chaos knob: exit 137 at the named point, on the n-th time only."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sfsync.writeback import crash_point

SCRIPT = """
from sfsync.writeback import crash_point
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
