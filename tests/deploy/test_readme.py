"""deploy/README.md works when followed literally: every file a step names exists in
the repository or was made by an earlier step, and the config samples it copies load."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import pytest
import yaml

from sfsync import __version__
from sfsync.config import load_settings
from tests.deploy._kit import (
    COMPOSE_FILE,
    DEPLOY,
    DEPLOY_README,
    MANIFESTS,
    inline_paths,
    markdown_links,
    repo_files,
    shell_blocks,
    walk_readme,
    yaml_documents,
)

README_TEXT = DEPLOY_README.read_text(encoding="utf-8")


def test_following_the_readme_literally_every_path_exists() -> None:
    walk = walk_readme(README_TEXT, repo_files())
    assert walk.clone is not None, "the walk starts in an empty directory with a clone"
    assert walk.problems == []


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        # issue 15: the compose file's comment copied a sample that did not exist
        ("cp deploy/no-such-sample.yaml config.yaml", "deploy/no-such-sample.yaml"),
        # ... and it needed secret files no step created
        ("export COMPOSE_FILE=deploy/docker-compose.yml\ndocker compose up -d", "secrets"),
        ("printf '%s' x > deploy/secrets/x", "directory sfsync/deploy/secrets"),
        ("kubectl apply -f deploy/kubernetes-nope.yaml", "kubernetes-nope.yaml"),
        ("docker compose up -d", "which compose file"),
        ("cd nowhere", "nowhere"),
    ],
)
def test_the_walk_catches_a_step_that_names_a_missing_file(steps: str, problem: str) -> None:
    markdown = f"```sh\ngit clone https://example.com/sfsync.git sfsync\ncd sfsync\n{steps}\n```\n"
    walk = walk_readme(markdown, repo_files())
    assert any(problem in p for p in walk.problems), walk.problems


def test_the_walk_follows_cd_mkdir_cp_and_redirections() -> None:
    markdown = (
        "```sh\ngit clone https://example.com/sfsync.git sfsync\ncd sfsync/deploy\n"
        "mkdir -p -m 0700 secrets\n(umask 077; printf '%s' x > secrets/a)\n"
        "cp sfsync.compose.yaml sfsync.yaml\ncat secrets/a sfsync.yaml\n```\n"
    )
    walk = walk_readme(markdown, repo_files())
    assert walk.problems == []
    made = {walk.repo_path(p) for p in walk.created}
    assert {"deploy/secrets/a", "deploy/sfsync.yaml"} <= made


def test_files_named_in_the_prose_exist() -> None:
    files = repo_files()
    walk = walk_readme(README_TEXT, files)
    known = files | {d for f in files for d in map(str, PurePosixPath(f).parents)}
    known |= {walk.repo_path(p) or "" for p in walk.created}
    for name in inline_paths(README_TEXT):
        pattern = name.rstrip("/")
        assert any(
            PurePosixPath(k).match(pattern) for k in known if k.count("/") == pattern.count("/")
        ), name


def test_links_resolve_inside_the_repository() -> None:
    root = DEPLOY.parent
    for target in markdown_links(README_TEXT):
        if re.match(r"^[a-z]+:", target):
            continue
        resolved = (DEPLOY / target).resolve()
        assert resolved.is_relative_to(root), target
        assert resolved.exists(), target


def test_anchors_of_links_exist() -> None:
    for target, anchor in re.findall(r"\]\(([^)#\s]*)#([^)\s]+)\)", README_TEXT):
        document = (DEPLOY / target) if target else DEPLOY_README
        headings = re.findall(r"^#+ (.+)$", document.read_text(encoding="utf-8"), re.MULTILINE)
        slugs = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
        assert anchor in slugs, f"{target}#{anchor}"


def test_the_walkthroughs_cover_schema_preflight_and_a_first_run() -> None:
    blocks = "\n".join(shell_blocks(README_TEXT))
    compose_part, kubernetes_part = README_TEXT.split("## 2b. Kubernetes")
    compose_steps = "\n".join(shell_blocks(compose_part))
    assert "docker compose run --rm migrate" in compose_steps  # sfsync db upgrade
    assert "docker compose run --rm worker check" in compose_steps
    assert "docker compose run --rm worker run" in compose_steps
    assert "docker compose up -d" in compose_steps
    kubernetes_steps = "\n".join(shell_blocks(kubernetes_part))
    assert "kubernetes-first-run-job" in kubernetes_steps  # db upgrade, check, run
    assert "kubernetes-cronjob" in kubernetes_steps
    # Secrets: files written owner-only, never a value on a command line.
    assert "--from-literal" not in blocks
    assert blocks.count("umask 077") >= 2
    assert "--from-file=" in kubernetes_steps
    assert not re.search(r"-e \w*SECRET\w*=|SECRET\w*=\S", blocks), "a secret on a command line"


def test_the_first_run_policy_and_every_exit_code_are_explained() -> None:
    assert "writeback.over_cap" in README_TEXT
    assert "`spread`" in README_TEXT
    assert "`refuse`" in README_TEXT
    assert "writeback.max_tasks_per_run" in README_TEXT
    table = README_TEXT.split("### The Job's exit codes")[1].split("\n## ")[0]
    codes = re.findall(r"^\| (\d+) \|", table, re.MULTILINE)
    assert codes == ["0", "1", "2", "3", "4", "5", "6", "70", "143"]


# --------------------------------------------------------------------------- config samples


def secret_env(environment: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The containers' SFSYNC_* variables, with each secret file made under tmp_path."""
    env = {}
    for key, value in environment.items():
        if key.endswith("_FILE"):
            secret = tmp_path / PurePosixPath(value).name
            secret.write_text(f"value-of-{secret.name}\n", encoding="utf-8")
            value = str(secret)
        env[key] = value
    return env


def test_the_compose_sample_loads_with_the_compose_environment(tmp_path: Path) -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    worker = compose["services"]["worker"]
    (mount,) = [v for v in worker["volumes"] if v.startswith("./sfsync.yaml:")]
    assert mount.split(":")[1] == "/var/lib/sfsync/config/sfsync.yaml"
    loaded = load_settings(
        DEPLOY / "sfsync.compose.yaml", environ=secret_env(worker["environment"], tmp_path)
    )
    settings = loaded.settings
    assert settings.schedule.apply is True, "the worker writes back"
    assert settings.database.url.startswith("postgresql+psycopg://sfsync@postgres:5432/")
    assert settings.salesforce.client_secret is not None
    assert settings.salesforce.client_secret.get_secret_value() == "value-of-sf_client_secret"
    assert settings.database.password is not None
    assert settings.database.password.get_secret_value() == "value-of-db_password"
    assert loaded.warnings == ()


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_the_kubernetes_sample_loads_with_each_pods_environment(
    manifest: Path, tmp_path: Path
) -> None:
    for doc in yaml_documents(manifest):
        if doc["kind"] not in ("CronJob", "Job"):
            continue
        spec = doc["spec"].get("jobTemplate", doc)["spec"]["template"]["spec"]
        for container in [*spec["initContainers"], *spec["containers"]]:
            env = {e["name"]: e["value"] for e in container["env"]}
            loaded = load_settings(
                DEPLOY / "sfsync.kubernetes.yaml", environ=secret_env(env, tmp_path)
            )
            secret = loaded.settings.salesforce.client_secret
            assert secret is not None
            assert secret.get_secret_value() == "value-of-sf_client_secret"
            assert loaded.warnings == ()


def test_image_tags_name_this_sfsync_version() -> None:
    """The kit tags and names the image with sfsync's version: a release updates them all."""
    root = DEPLOY.parent
    documents = [DEPLOY_README, COMPOSE_FILE, *MANIFESTS, root / "Dockerfile", root / "README.md"]
    for document in documents:
        for tag in re.findall(r"\bsfsync:(\d[\w.+-]*\w)", document.read_text(encoding="utf-8")):
            assert tag == __version__, f"{document.name}: sfsync:{tag}"
