"""Every log event README.md names is emitted, with its key fields, by the path it describes.

EVENT_TESTS maps each documented event to the test asserting it (here against the dev
org, in-process; the cheap ones in tests/unit/test_log_events.py).
test_every_event_readme_names_has_a_test fails when README.md names an event (a
backticked dotted name that is not a setting) that no test asserts.
"""

from __future__ import annotations

import ast
import re
import typing
from pathlib import Path

from pydantic import BaseModel
from structlog.typing import EventDict

from sfsync.audit import finding_columns
from sfsync.config import Settings
from sfsync.extract import run_sync
from sfsync.runner import run_once
from sfsync.warehouse.models import Base
from tests.integration.conftest import OrgFactory

ROOT = Path(__file__).resolve().parents[2]
UNIT = "tests/unit/test_log_events.py"
HERE = "tests/integration/test_log_events.py"

EVENT_TESTS: dict[str, str] = {
    # README "Logs"
    "sync.object.done": f"{HERE}::test_a_sync_logs_sync_object_done_per_object",
    "run.stage": f"{HERE}::test_a_run_logs_run_stage_for_each_stage",
    "salesforce.retry": f"{UNIT}::test_a_retried_call_logs_salesforce_retry",
    # README "The nightly worker"
    "worker.health_not_written": f"{UNIT}::test_a_failed_health_write_logs_worker_health_not_written",
    # described there without their names: a lock "is taken over (and logged)", runs of
    # dead processes "are then marked interrupted"
    "lock.taken_over": f"{UNIT}::test_a_stale_lock_taken_over_logs_lock_taken_over",
    "run.interrupted_found": f"{UNIT}::test_runs_left_running_log_run_interrupted_found",
}

_BACKTICKED_DOTTED = re.compile(r"`([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)`")


def named(events: list[EventDict], name: str) -> list[EventDict]:
    return [e for e in events if e["event"] == name]


def test_a_sync_logs_sync_object_done_per_object(
    running_org: OrgFactory, log_events: list[EventDict]
) -> None:
    org = running_org()
    settings = org.settings
    result = run_sync(org.warehouse(), settings)
    assert result.status == "ok"
    done = named(log_events, "sync.object.done")
    assert sorted(e["object"] for e in done) == sorted(result.objects)  # once each
    assert set(result.objects) == set(settings.sync.objects)
    for event in done:
        counts = result.objects[event["object"]].counts()
        assert event["log_level"] == "info"
        assert event["run_id"] == result.run_id
        for key in ("mode", "upserted", "deleted", "api_calls"):
            assert event[key] == getattr(counts, key), (event, key)
        assert event["seconds"] >= 0
    assert sum(e["upserted"] for e in done) > 0


def test_a_run_logs_run_stage_for_each_stage(
    running_org: OrgFactory, log_events: list[EventDict]
) -> None:
    org = running_org()
    outcome = run_once(org.warehouse(), org.settings)
    assert outcome.status == "ok", outcome.error
    stages = named(log_events, "run.stage")
    assert [e["stage"] for e in stages] == ["sync", "audit", "writeback"]
    assert {e["run_id"] for e in stages} == {outcome.run_id}
    assert {e["log_level"] for e in stages} == {"info"}
    assert stages[-1]["apply"] is False


def _is_setting(name: str) -> bool:
    """``sync.api_floor``, ``audit.rules.close_date_past``: a path through Settings."""
    model: type[BaseModel] = Settings
    parts = name.split(".")
    for depth, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        if depth == len(parts) - 1:
            return True
        annotation = field.annotation
        if typing.get_origin(annotation) is dict:
            return True  # keys are free: audit.rules.<rule>.<setting>
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return False
        model = annotation
    return False


_FILE_NAME = re.compile(r"\.(py|md|ya?ml|json|toml|txt|html|csv|db)$")


def _is_column(name: str) -> bool:
    """``run.counts``: a warehouse table's column."""
    table, _, column = name.partition(".")
    found = Base.metadata.tables.get(table)
    return found is not None and column in found.columns


def _is_findings_column(name: str) -> bool:
    """``close_date_past.k``: a column of ``sfsync findings``, a rule's value."""
    return name in {column.name for column in finding_columns()}


_EMITTED = re.compile(r"\.(?:debug|info|warning|error|exception)\(\s*\"([a-z_]+)\.[a-z_.]+\"")


def event_namespaces() -> set[str]:
    """The first parts of the events sfsync logs (``sync`` of ``sync.object.done``)."""
    sources = (ROOT / "sfsync").rglob("*.py")
    return {m for path in sources for m in _EMITTED.findall(path.read_text())}


def readme_events() -> set[str]:
    names = set(_BACKTICKED_DOTTED.findall((ROOT / "README.md").read_text()))
    namespaces = event_namespaces()
    return {
        name
        for name in names
        if name.split(".", 1)[0] in namespaces
        and not (
            _is_setting(name)
            or _is_column(name)
            or _is_findings_column(name)
            or _FILE_NAME.search(name)
        )
    }


def _test_source(node_id: str) -> str | None:
    path, _, name = node_id.partition("::")
    text = (ROOT / path).read_text()
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return ast.get_source_segment(text, node)
    return None


def test_every_event_readme_names_has_a_test() -> None:
    documented = readme_events()
    assert {"sync.object.done", "run.stage", "worker.health_not_written"} <= documented
    missing = sorted(documented - set(EVENT_TESTS))
    assert not missing, f"README.md names log events no test asserts: {missing}"
    for event, node_id in EVENT_TESTS.items():
        source = _test_source(node_id)
        assert source is not None, f"{event}: no test {node_id}"
        assert f'"{event}"' in source, f"{node_id} does not assert {event}"


def test_settings_are_not_taken_for_events() -> None:
    assert _is_setting("sync.api_floor")
    assert _is_setting("audit.rules.close_date_past")
    assert _is_setting("audit.rules.missing_rev_rec_terms.min_stage")
    assert not _is_setting("sync.object.done")
    assert not _is_setting("salesforce.retry")
    assert not _is_setting("worker.health_not_written")
