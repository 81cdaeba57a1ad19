"""deploy/healthcheck.py, the image's HEALTHCHECK: fresh and ok is healthy; stale, a
failed last run, or a worker without its file is not; a one-shot container is."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.deploy._kit import DEPLOY

SCRIPT = DEPLOY / "healthcheck.py"
NOW = 1_800_000_000.0  # a fixed "now": no test depends on the clock


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sfsync_deploy_healthcheck", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


hc = _load()


def health_file(tmp_path: Path, *, age_s: float, **state: object) -> Path:
    """A health file as sfsync worker writes it, last modified ``age_s`` before NOW."""
    path = tmp_path / "sfsync-health.json"
    document = {"status": "idle", "runs": 1, "pid": 1, "running_for_s": None, **state}
    path.write_text(json.dumps(document), encoding="utf-8")
    os.utime(path, (NOW - age_s, NOW - age_s))
    return path


def test_fresh_and_last_run_ok_is_healthy(tmp_path: Path) -> None:
    path = health_file(tmp_path, age_s=5, last_status="ok", last_exit=0)
    verdict = hc.evaluate(path, now=NOW, max_age_s=60, worker_running=True)
    assert (verdict.exit_code, verdict.healthy) == (0, True)
    assert "ok" in verdict.reason


def test_a_worker_that_has_not_run_yet_is_healthy(tmp_path: Path) -> None:
    path = health_file(tmp_path, age_s=0, status="starting", runs=0)
    assert hc.evaluate(path, now=NOW, max_age_s=60).exit_code == 0


@pytest.mark.parametrize(("age_s", "code"), [(59.9, 0), (60, 0), (60.1, 1), (3600, 1)])
def test_a_stale_file_is_a_hung_worker(tmp_path: Path, age_s: float, code: int) -> None:
    path = health_file(tmp_path, age_s=age_s, last_status="ok")
    verdict = hc.evaluate(path, now=NOW, max_age_s=60, worker_running=True)
    assert verdict.exit_code == code
    if code:
        assert "hung" in verdict.reason


def test_a_failed_last_run_is_unhealthy_though_the_file_is_fresh(tmp_path: Path) -> None:
    path = health_file(
        tmp_path, age_s=1, last_status="failed", last_exit=3, last_error="cannot connect"
    )
    verdict = hc.evaluate(path, now=NOW, max_age_s=60, worker_running=True)
    assert verdict.exit_code == 1
    assert "last run failed" in verdict.reason
    assert "cannot connect" in verdict.reason


@pytest.mark.parametrize("status", ["ok", "partial", "interrupted", "skipped (locked)"])
def test_only_failed_counts_as_a_failed_run(tmp_path: Path, status: str) -> None:
    path = health_file(tmp_path, age_s=1, last_status=status)
    assert hc.evaluate(path, now=NOW, max_age_s=60).exit_code == 0


def test_no_health_file_in_a_one_shot_container_is_healthy(tmp_path: Path) -> None:
    # sfsync run / check / db upgrade write no health file: never unhealthy for that.
    missing = tmp_path / "sfsync-health.json"
    verdict = hc.evaluate(missing, now=NOW, max_age_s=60, worker_running=False)
    assert verdict.exit_code == 0
    assert "one-shot" in verdict.reason


def test_a_worker_without_its_health_file_is_unhealthy(tmp_path: Path) -> None:
    missing = tmp_path / "sfsync-health.json"
    assert hc.evaluate(missing, now=NOW, max_age_s=60, worker_running=True).exit_code == 1


def test_no_health_file_configured_is_healthy() -> None:
    assert hc.evaluate(None, now=NOW, worker_running=True).exit_code == 0


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", ""])
def test_a_health_file_that_is_not_a_json_object_is_unhealthy(tmp_path: Path, text: str) -> None:
    path = tmp_path / "sfsync-health.json"
    path.write_text(text, encoding="utf-8")
    os.utime(path, (NOW, NOW))
    assert hc.evaluate(path, now=NOW, max_age_s=60).exit_code == 1


def test_a_run_going_on_longer_than_max_run_is_stuck(tmp_path: Path) -> None:
    path = health_file(tmp_path, age_s=1, status="running", running_for_s=7300)
    assert hc.evaluate(path, now=NOW, max_age_s=60).exit_code == 0  # off by default
    verdict = hc.evaluate(path, now=NOW, max_age_s=60, max_run_s=7200)
    assert verdict.exit_code == 1
    assert "stuck" in verdict.reason
    assert hc.evaluate(path, now=NOW, max_age_s=60, max_run_s=8000).exit_code == 0


@pytest.mark.parametrize(
    ("argv", "worker"),
    [
        (["/usr/local/bin/python", "/usr/local/bin/sfsync", "worker"], True),
        (
            ["/usr/local/bin/python3", "/usr/local/bin/sfsync", "--log-format", "json", "worker"],
            True,
        ),
        (["python", "-m", "sfsync", "worker", "--now"], True),
        (["/usr/local/bin/python", "/usr/local/bin/sfsync", "run", "--apply"], False),
        (["/usr/local/bin/python", "/usr/local/bin/sfsync", "check"], False),
        (["python", "/usr/local/lib/sfsync/healthcheck.py", "--max-age", "60"], False),
        (["worker"], False),
        ([], False),
    ],
)
def test_which_processes_are_the_worker(argv: list[str], worker: bool) -> None:
    assert hc.is_sfsync_worker(argv) is worker


def fake_proc(tmp_path: Path, *commands: list[str]) -> Path:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    for pid, argv in enumerate(commands, start=1):
        (proc / str(pid)).mkdir()
        (proc / str(pid) / "cmdline").write_bytes(b"".join(a.encode() + b"\0" for a in argv))
    return proc


def test_worker_running_reads_the_process_table(tmp_path: Path) -> None:
    worker = fake_proc(tmp_path / "a", ["/usr/local/bin/python", "/usr/local/bin/sfsync", "worker"])
    one_shot = fake_proc(tmp_path / "b", ["/usr/local/bin/python", "/usr/local/bin/sfsync", "run"])
    assert hc.worker_running(worker) is True
    assert hc.worker_running(one_shot) is False
    assert hc.worker_running(tmp_path / "no-proc") is False


def test_main_reads_the_path_from_the_image_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = health_file(tmp_path, age_s=120, last_status="ok")
    proc = fake_proc(tmp_path, ["python", "/usr/local/bin/sfsync", "worker"])
    monkeypatch.setenv(hc.HEALTH_FILE_ENV, str(path))
    assert hc.main(["--proc", str(proc)], now=NOW) == 1
    assert hc.main(["--proc", str(proc), "--max-age", "300"], now=NOW) == 0
    assert "ok: worker idle" in capsys.readouterr().out
    monkeypatch.setenv(hc.HEALTH_FILE_ENV, "")
    assert hc.main(["--proc", str(proc)], now=NOW) == 0  # nothing configured
    monkeypatch.setenv(hc.HEALTH_FILE_ENV, str(tmp_path / "absent.json"))
    assert hc.main(["--proc", str(proc)], now=NOW) == 1  # a worker, no file
    assert hc.main(["--proc", str(tmp_path / "empty-proc")], now=NOW) == 0  # one-shot


def run_script(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The script as the image's HEALTHCHECK runs it: its own process, its exit code."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--proc", "/nonexistent-proc", *args],
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_script_exits_0_or_1(tmp_path: Path) -> None:
    # Clock-independent: "fresh" has an hour of margin, "stale" is from 1970.
    fresh = tmp_path / "fresh.json"
    fresh.write_text(json.dumps({"status": "idle", "last_status": "ok"}), encoding="utf-8")
    failed = tmp_path / "failed.json"
    failed.write_text(json.dumps({"status": "idle", "last_status": "failed"}), encoding="utf-8")
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps({"status": "idle", "last_status": "ok"}), encoding="utf-8")
    os.utime(stale, (0, 0))
    env = {hc.HEALTH_FILE_ENV: str(fresh)}
    assert run_script("--max-age", "3600", env=env).returncode == 0
    assert run_script("--max-age", "3600", env={hc.HEALTH_FILE_ENV: str(failed)}).returncode == 1
    assert run_script("--max-age", "3600", env={hc.HEALTH_FILE_ENV: str(stale)}).returncode == 1
    absent = run_script(env={hc.HEALTH_FILE_ENV: str(tmp_path / "absent.json")})
    assert absent.returncode == 0, absent.stdout + absent.stderr
    assert run_script("--file", str(stale), env={}).returncode == 1
    assert run_script(env={}).returncode == 0
