"""Every command and every config key is documented (sqlite-utils' test_docs habit)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from sfsync.cli import cli
from sfsync.config import SECRET_KEYS, Settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "sfsync.example.yaml"
README = ROOT / "README.md"


def leaves(document: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(document, dict) and document and all(isinstance(k, str) for k in document):
        out: dict[str, Any] = {}
        for key, value in document.items():
            out.update(leaves(value, f"{prefix}.{key}" if prefix else key))
        return out
    return {prefix: document}


def test_example_config_is_valid_and_states_every_default() -> None:
    """The example loads, and it is exactly the built-in defaults (so it documents them)."""
    example = yaml.safe_load(EXAMPLE.read_text())
    assert Settings.model_validate(example) == Settings()
    defaults = leaves(Settings().model_dump(mode="json"))
    documented = leaves(example)
    assert sorted(defaults) == sorted(documented)


def test_example_config_names_each_secret_file_variant() -> None:
    text = EXAMPLE.read_text()
    for _section, key in SECRET_KEYS:
        assert f"{key}_file" in text, key


def commands(group: click.Group, prefix: str = "sfsync") -> list[str]:
    ctx = click.Context(group)
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        if command.hidden:
            continue
        found.append(f"{prefix} {name}")
        if isinstance(command, click.Group):
            found.extend(commands(command, f"{prefix} {name}"))
    return found


@pytest.mark.parametrize("command", commands(cli))
def test_every_command_is_in_the_readme(command: str) -> None:
    assert re.search(rf"`{re.escape(command)}\b", README.read_text()), command


def test_documents_link_only_inside_the_repository() -> None:
    """Users only have the repository: every relative link resolves inside it."""
    documents = [README, *(ROOT / "docs").glob("*.md"), *(ROOT / "sfsync").rglob("*.md")]
    documents += list((ROOT / "tests").rglob("*.md"))
    outside = []
    for document in documents:
        text = document.read_text(encoding="utf-8")
        assert "/work/" not in text, f"{document}: a path of a development machine"
        for target in re.findall(r"\]\(([^)#\s]+)", text):
            if re.match(r"^[a-z]+:", target):
                continue  # a URL; none point at this machine
            resolved = (document.parent / target).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                outside.append(f"{document.relative_to(ROOT)} -> {target}")
    assert outside == []


def test_the_code_cites_only_documents_the_repository_has() -> None:
    """Comments, docstrings and fixtures cite docs/*.md; each cited document exists."""
    cited: set[str] = set()
    for path in [*ROOT.glob("sfsync/**/*"), *ROOT.glob("tests/**/*"), *ROOT.glob("docs/*")]:
        if path.suffix not in (".py", ".md", ".json", ".yaml") or "__pycache__" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        if path.name != "test_docs.py":
            for name in ("DESIGN.md", "RULES.md", "SALESFORCE_API.md", "STYLE.md", "shared/"):
                assert name not in text, f"{path.relative_to(ROOT)} cites {name}"
        cited.update(re.findall(r"docs/[a-z0-9-]+\.md", text))
    assert cited
    assert sorted(c for c in cited if not (ROOT / c).is_file()) == []
