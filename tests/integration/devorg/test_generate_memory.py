"""`sfsync devorg generate` streams: its memory does not grow with the org's size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

_CHILD = """
import json, resource, sys
from datetime import date
from pathlib import Path
from sfsync.devorg.generate import generate_org

stats = generate_org(opportunities=int(sys.argv[1]), seed=1, out=Path(sys.argv[2]),
                     as_of=date(2024, 8, 15))
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(json.dumps({"peak_kb": peak_kb, "bytes": stats.bytes_written, "counts": stats.counts}))
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
@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
def test_peak_memory_stays_flat_from_20k_to_50k_opportunities(tmp_path: Path) -> None:
    """2.5 times the records (and file size) costs almost no extra memory."""
    small = _generate_in_child(20_000, tmp_path / "20k.json")
    large = _generate_in_child(50_000, tmp_path / "50k.json")
    assert large["bytes"] > 2.3 * small["bytes"]
    growth_kb = large["peak_kb"] - small["peak_kb"]
    # The users (one per 40 opportunities) are the only thing that grows: well
    # under a tenth of the extra file size, where holding records would be several times it.
    assert growth_kb * 1024 < 0.1 * (large["bytes"] - small["bytes"])
    assert large["peak_kb"] < 200 * 1024
