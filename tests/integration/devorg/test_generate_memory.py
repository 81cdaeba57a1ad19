"""`sfsync devorg generate` streams: its memory does not grow with the org's size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Measures the generation alone: the peak (VmHWM) is reset after the imports,
# whose footprint (and .pyc compilation, in a tree others are editing) is noise here.
_CHILD = """
import json, sys
from datetime import date
from pathlib import Path
from sfsync.devorg.generate import generate_org

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key))

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets the peak RSS to the current RSS
base_kb = status("VmRSS:")
stats = generate_org(opportunities=int(sys.argv[1]), seed=1, out=Path(sys.argv[2]),
                     as_of=date(2024, 8, 15))
print(json.dumps({"used_kb": status("VmHWM:") - base_kb, "bytes": stats.bytes_written}))
"""


def _generate_in_child(opportunities: int, out: Path) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(opportunities), str(out)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    result: dict[str, int] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.slow
@pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc peak-RSS reset"
)
def test_peak_memory_stays_flat_from_20k_to_50k_opportunities(tmp_path: Path) -> None:
    """2.5 times the records (and file size) costs almost no extra memory."""
    small = _generate_in_child(20_000, tmp_path / "20k.json")
    large = _generate_in_child(50_000, tmp_path / "50k.json")
    assert large["bytes"] > 2.3 * small["bytes"]
    growth_kb = large["used_kb"] - small["used_kb"]
    # Only the users (one per 40 opportunities) grow: far under a tenth of the
    # extra file size, where holding the records would take several times it.
    assert growth_kb * 1024 < 0.1 * (large["bytes"] - small["bytes"])
    assert large["used_kb"] < 64 * 1024
