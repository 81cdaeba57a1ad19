"""The Dockerfile: hadolint-clean, a pinned base, a real non-root user and group, no
dev-org extras, the health check copied in, and no secrets in the build context."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess

from tests.deploy._kit import IMAGE_HEALTHCHECK, ROOT, repo_files, tool

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), " ".join(rest.split())))
    return found


def test_hadolint_finds_nothing_at_warning_or_above() -> None:
    result = subprocess.run(
        [
            tool("hadolint"),
            "--no-color",
            "--failure-threshold",
            "warning",
            "-f",
            "json",
            DOCKERFILE,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    serious = [f for f in findings if f["level"] in ("warning", "error")]
    assert serious == [], serious
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_base_image_is_pinned_to_a_python_patch_release() -> None:
    args = {
        a.split("=", 1)[0]: a.split("=", 1)[1] for k, a in instructions() if k == "ARG" and "=" in a
    }
    bases = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            image = rest.split()[0]
            variable = re.fullmatch(r"\$\{?(\w+)\}?", image)
            bases.append(args[variable.group(1)] if variable else image)
    assert bases, "no FROM"
    for base in bases:
        assert re.fullmatch(r"python:3\.\d+\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), (
            f"{base}: pin a Python patch release (and optionally its digest), never latest"
        )


def test_a_real_group_and_user_10001_and_the_image_runs_as_them() -> None:
    runs = " ".join(rest for keyword, rest in instructions() if keyword == "RUN")
    assert re.search(r"groupadd (?:\S+ )*--gid 10001 sfsync", runs)
    assert re.search(r"useradd (?:\S+ )*--uid 10001 (?:\S+ )*--gid 10001 ", runs)
    users = [rest for keyword, rest in instructions() if keyword == "USER"]
    assert users == ["10001:10001"]
    assert "--system" not in runs, "a system account's gid would not be 10001"


def test_the_image_installs_sfsync_without_extras() -> None:
    installs = [
        rest for keyword, rest in instructions() if keyword == "RUN" and "pip install" in rest
    ]
    assert len(installs) == 1
    assert "[" not in installs[0], "no extras: the dev org (sfsync[devorg]) stays out"
    assert "--no-index" in installs[0], "only the wheels built in the build stage"


def test_the_health_check_is_the_shipped_script_in_exec_form() -> None:
    copies = [rest for keyword, rest in instructions() if keyword == "COPY"]
    assert f"deploy/healthcheck.py {IMAGE_HEALTHCHECK}" in copies
    (check,) = [rest for keyword, rest in instructions() if keyword == "HEALTHCHECK"]
    command = json.loads(check.split(" CMD ", 1)[1])
    assert command[:2] == ["python", IMAGE_HEALTHCHECK]
    env = " ".join(rest for keyword, rest in instructions() if keyword == "ENV")
    assert "SFSYNC_SCHEDULE__HEALTH_FILE=/tmp/" in env, "the worker writes where / is read-only"


def _matches(candidate: str, pattern: str) -> bool:
    if pattern.startswith("**/"):
        rest = pattern[3:]
        return fnmatch.fnmatchcase(candidate, rest) or fnmatch.fnmatchcase(candidate, f"*/{rest}")
    return fnmatch.fnmatchcase(candidate, pattern)


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps ``path`` out of the build context (last match wins;
    a pattern matching a directory covers what is under it)."""
    result = False
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        if any(_matches(candidate, pattern) for candidate in candidates):
            result = not negated
    return result


def dockerignore() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_what_the_dockerfile_copies_is_in_the_build_context() -> None:
    patterns = dockerignore()
    files = repo_files()
    for keyword, rest in instructions():
        if keyword != "COPY" or rest.startswith("--from"):
            continue
        *sources, _target = [w for w in rest.split() if not w.startswith("--")]
        for source in sources:
            inside = [f for f in files if f == source or f.startswith(source.rstrip("/") + "/")]
            assert inside, f"COPY {source}: not in the repository"
            kept = [f for f in inside if not ignored(f, patterns)]
            assert kept, f"COPY {source}: excluded by .dockerignore"


def test_secrets_and_site_config_never_reach_the_build_context() -> None:
    patterns = dockerignore()
    for path in [
        "deploy/secrets/sf_client_secret",
        "deploy/secrets/db_password",
        "deploy/sfsync.yaml",
        "deploy/kubernetes-cronjob.local.yaml",
        "secrets/db_password",
        "config/sfsync.yaml",
        ".git/config",
    ]:
        assert ignored(path, patterns), path
    assert not ignored("deploy/healthcheck.py", patterns)
    assert not ignored("sfsync/__init__.py", patterns)
