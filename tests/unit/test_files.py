"""``atomic_text_file``: the old content or the new, never part of it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sfsync.files import atomic_text_file


def test_the_new_content_replaces_the_old_with_the_mode_asked_for(tmp_path: Path) -> None:
    target = tmp_path / "config.yaml"
    target.write_text("old\n")
    with atomic_text_file(target, mode=0o600) as out:
        out.write("new\n")
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


def test_a_failure_leaves_the_old_content_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "org.json"
    target.write_text("old\n")

    def interrupted_write() -> None:
        with atomic_text_file(target) as out:
            out.write("half of the new")
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        interrupted_write()
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["org.json"]


def test_an_unwritable_directory_fails_on_entry(tmp_path: Path) -> None:
    entered = []

    def write() -> None:
        with atomic_text_file(tmp_path / "missing" / "x.json"):
            entered.append(True)

    with pytest.raises(FileNotFoundError):
        write()
    assert entered == []
