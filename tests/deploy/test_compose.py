"""deploy/docker-compose.yml: valid against the Compose Specification, hardened like
the restricted Pod Security Standard, secrets as files, and every file it names there."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy._kit import (
    COMPOSE_FILE,
    DEPLOY_README,
    IMAGE_HEALTHCHECK,
    ROOT,
    compose_references,
    repo_files,
    tool,
    walk_readme,
)


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def sfsync_services() -> dict[str, dict[str, Any]]:
    services = compose()["services"]
    found = {
        name: s for name, s in services.items() if str(s.get("image", "")).startswith("sfsync")
    }
    assert set(found) >= {"migrate", "worker"}
    return found


def test_valid_against_the_compose_specification() -> None:
    # The Compose Specification's JSON schema, as check-jsonschema ships it (offline).
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", COMPOSE_FILE],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_file_it_names_is_in_the_repository_or_made_by_the_readme() -> None:
    files = repo_files()
    walk = walk_readme(DEPLOY_README.read_text(encoding="utf-8"), files)
    made = {walk.repo_path(path) for path in walk.created}
    missing = []
    for reference in compose_references(compose()):
        resolved = (COMPOSE_FILE.parent / reference).resolve().relative_to(ROOT).as_posix()
        if resolved not in files and resolved not in made:
            missing.append(reference)
    assert missing == []


@pytest.mark.parametrize("name", ["migrate", "worker"])
def test_sfsync_services_are_locked_down(name: str) -> None:
    service = sfsync_services()[name]
    assert service["user"] == "10001:10001"
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert "cap_add" not in service
    assert "no-new-privileges:true" in service["security_opt"]
    assert any(t.split(":")[0] == "/tmp" for t in service["tmpfs"]), "sfsync writes to /tmp"
    assert not service.get("privileged")
    assert service.get("network_mode") != "host"
    assert service.get("pid") != "host"
    assert service.get("mem_limit")
    assert service.get("pids_limit")
    for volume in service.get("volumes", []):
        assert volume.endswith(":ro"), f"{volume}: mounts are read-only"


def test_images_are_pinned() -> None:
    for name, service in compose()["services"].items():
        image = service["image"]
        assert ":" in image.rsplit("/", 1)[-1] or "@sha256:" in image, f"{name}: no tag"
        assert not image.endswith(":latest"), f"{name}: {image}"


def test_secrets_are_files_and_sfsync_reads_them_from_there() -> None:
    document = compose()
    declared = document["secrets"]
    assert all("file" in s for s in declared.values())
    for name, service in document["services"].items():
        mounted = set(service.get("secrets", []))
        assert mounted <= set(declared), name
        for key, value in (service.get("environment") or {}).items():
            assert "SECRET" not in key or key.endswith("_FILE"), f"{name}: {key} as a value"
            if key.endswith("_FILE"):
                assert value.startswith("/run/secrets/"), (name, key)
                assert value.removeprefix("/run/secrets/") in mounted, (name, key)


def test_the_worker_has_the_image_health_check() -> None:
    worker = sfsync_services()["worker"]
    check = worker["healthcheck"]["test"]
    assert check[0] == "CMD"
    assert check[1:3] == ["python", IMAGE_HEALTHCHECK]
    assert worker["command"] == ["worker"]
    assert worker["restart"] == "unless-stopped"
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert sfsync_services()["migrate"]["command"] == ["db", "upgrade"]
