"""Benchmark: how long ``sfsync`` takes to start and answer its quickest commands.

    python tests/bench/bench_startup.py [--runs 21]

Runs, round-robin so that the load of the machine weighs on each alike:

* ``python -c pass`` (the interpreter alone: the baseline);
* ``sfsync --version``;
* ``sfsync --help``;
* ``sfsync runs`` on a small SQLite warehouse (a few hundred opportunities and
  eight recorded runs, filled here; the settings from a config file, as in
  production);

each ``--runs`` times as a fresh process (``python -m sfsync``), and prints per
command the median and the best wall-clock seconds, the median CPU seconds (user +
system, less sensitive to other processes than wall clock) and the ratio of the
medians to the baseline's. The targets of issue 17 are printed beside them: under
0.2 s for ``--version`` and 0.3 s for ``runs``. Not collected by pytest: a timing
is a figure to read, never an assertion.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

ROOT = Path(__file__).resolve().parents[2]
# Seconds each command should stay under (issue 17), on the machine it was measured on.
TARGETS = {"sfsync --version": 0.2, "sfsync runs": 0.3}


@dataclass
class Samples:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def small_warehouse(directory: Path) -> Path:
    """A config file naming a SQLite warehouse with a few hundred deals and eight runs."""
    from sfsync.config import DatabaseSettings
    from sfsync.warehouse import open_warehouse, upgrade
    from tests.integration.report.bulk import fill_bulk

    url = f"sqlite:///{directory / 'warehouse.db'}"
    warehouse = open_warehouse(DatabaseSettings(url=url), require_head=False, create=True)
    try:
        with warehouse.engine.begin() as conn:
            upgrade(conn)
        fill_bulk(warehouse, opportunities=400, owners=20, as_of=date(2025, 3, 14), audits=8)
    finally:
        warehouse.dispose()
    config = directory / "sfsync.yaml"
    config.write_text(f"database:\n  url: {url}\nlogging:\n  format: json\n", encoding="utf-8")
    return config


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one process; fails loudly if the command does."""
    started = time.perf_counter()
    child = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tempfile.gettempdir()
    )
    assert child.stderr is not None
    errors = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    child.stderr.close()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {child.returncode}: {errors.decode()}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="processes per command")
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="sfsync-bench-startup-") as tmp:
        config = small_warehouse(Path(tmp))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SFSYNC_")}
        # Bytecode as an installed sfsync has it: with PYTHONDONTWRITEBYTECODE the warm-up
        # could not write it, and every process would compile each source file edited
        # since its .pyc was written (0.1 s and more, varying with what was edited).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["SFSYNC_CONFIG"] = str(config)
        env["PYTHONPATH"] = str(ROOT)
        commands = {
            "python -c pass": [python, "-c", "pass"],
            "sfsync --version": [python, "-m", "sfsync", "--version"],
            "sfsync --help": [python, "-m", "sfsync", "--help"],
            "sfsync runs": [python, "-m", "sfsync", "runs"],
        }
        samples = {name: Samples() for name in commands}
        for argv in commands.values():  # warm the page cache and the bytecode files
            run_once(argv, env)
        for _ in range(args.runs):
            for name, argv in commands.items():
                wall, cpu = run_once(argv, env)
                samples[name].wall.append(wall)
                samples[name].cpu.append(cpu)
    base = statistics.median(samples["python -c pass"].wall)
    print(
        f"{args.runs} runs each, round-robin; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    print(f"{'command':<18} {'median':>8} {'best':>8} {'cpu':>8} {'x pass':>8}  target")
    for name, taken in samples.items():
        median = statistics.median(taken.wall)
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            verdict = f"< {target:.1f}s " + ("ok" if median < target else "MISSED")
        print(
            f"{name:<18} {median:>7.3f}s {min(taken.wall):>7.3f}s "
            f"{statistics.median(taken.cpu):>7.3f}s {median / base:>7.1f}x  {verdict}"
        )


if __name__ == "__main__":
    main()
