"""The Kubernetes manifests: valid for pinned Kubernetes versions, every pod within the
restricted Pod Security Standard, and consistent with the steps of deploy/README.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.deploy._kit import DEPLOY_README, MANIFESTS, shell_blocks, yaml_documents

# The oldest Kubernetes the kit supports (podFailurePolicy is GA from 1.31) and a recent
# one; the schemas ship in the kubernetes-validate wheel, so this runs offline.
KUBERNETES_VERSIONS = ("1.31.0", "1.35.0")
# Volume types the restricted standard allows.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def resources() -> list[tuple[Path, dict[str, Any]]]:
    found = [(path, doc) for path in MANIFESTS for doc in yaml_documents(path)]
    assert {doc["kind"] for _, doc in found} >= {"Namespace", "CronJob", "Job"}
    return found


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for path, doc in resources():
        if doc["kind"] == "CronJob":
            specs.append((path.name, doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
        elif doc["kind"] == "Job":
            specs.append((path.name, doc["spec"]["template"]["spec"]))
    return specs


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def one(kind: str) -> dict[str, Any]:
    (found,) = [doc for _, doc in resources() if doc["kind"] == kind]
    return found


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_valid_against_the_kubernetes_schema(manifest: Path, version: str) -> None:
    for doc in yaml_documents(manifest):
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{manifest.name} ({version}): {exc.path}: {exc.message}")


@pytest.mark.parametrize("name_spec", pod_specs(), ids=lambda item: item[0])
def test_pods_meet_the_restricted_pod_security_standard(
    name_spec: tuple[str, dict[str, Any]],
) -> None:
    name, spec = name_spec
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        assert isinstance(pod[key], int), key
        assert pod[key] > 0, key
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    for host in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
        assert host not in spec or (host == "hostUsers" and spec[host] is False), host
    assert "sysctls" not in pod
    assert spec["automountServiceAccountToken"] is False
    for volume in spec["volumes"]:
        kinds = set(volume) - {"name"}
        assert kinds <= RESTRICTED_VOLUMES, f"{name}: volume {volume['name']}: {kinds}"
    tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
    for container in containers(spec):
        where = f"{name}: container {container['name']}"
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, where
        assert "ALL" in context["capabilities"]["drop"], where
        assert set(context["capabilities"].get("add", [])) <= {"NET_BIND_SERVICE"}, where
        assert context["readOnlyRootFilesystem"] is True, where
        assert context.get("runAsNonRoot", True) is True, where
        assert context.get("runAsUser", 1) != 0, where
        assert not context.get("privileged"), where
        assert context.get("seccompProfile", pod["seccompProfile"])["type"] == "RuntimeDefault"
        assert all("hostPort" not in port for port in container.get("ports", [])), where
        image = container["image"]
        assert not image.endswith(":latest"), where
        assert re.search(r":[\w.-]+$|@sha256:[0-9a-f]{64}$", image.rsplit("/", 1)[-1]), where
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{where}: {kind}"
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/tmp"]["name"] in tmp_volumes, f"{where}: /tmp must be an emptyDir"
        assert all(m.get("readOnly") for p, m in mounts.items() if p != "/tmp"), where


def test_the_namespace_enforces_the_restricted_standard() -> None:
    labels = one("Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    namespace = one("Namespace")["metadata"]["name"]
    for _, doc in resources():
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace


def test_the_cronjob_never_overlaps_and_bounds_each_run() -> None:
    cronjob = one("CronJob")["spec"]
    assert cronjob["concurrencyPolicy"] == "Forbid"
    job = cronjob["jobTemplate"]["spec"]
    assert isinstance(job["backoffLimit"], int)
    assert job["activeDeadlineSeconds"] > 0
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["terminationGracePeriodSeconds"] >= 60, "SIGTERM lets the batch finish"
    (main,) = pod["containers"]
    assert main["args"] == ["run", "--apply"]
    assert [c["args"] for c in pod["initContainers"]] == [["db", "upgrade"]]
    fail_at_once = [
        rule["onExitCodes"]["values"]
        for rule in job["podFailurePolicy"]["rules"]
        if rule["action"] == "FailJob"
    ]
    assert 2 in fail_at_once[0], "a refused plan or a config error: retrying cannot help"


def test_the_first_run_job_previews() -> None:
    pod = one("Job")["spec"]["template"]["spec"]
    (main,) = pod["containers"]
    assert main["args"] == ["run"], "a preview: no --apply"
    assert [c["args"] for c in pod["initContainers"]] == [["db", "upgrade"], ["check"]]


def test_the_cronjob_comment_explains_every_exit_code() -> None:
    manifest = next(p for p in MANIFESTS if "cronjob" in p.name)
    comments = "\n".join(
        line for line in manifest.read_text(encoding="utf-8").splitlines() if line.startswith("#")
    )
    for code in ("0", "1", "2", "3", "4", "5", "6", "70", "143"):
        assert re.search(rf"^#\s+{code}\s", comments, re.MULTILINE), code


def readme_commands() -> str:
    return "\n".join(shell_blocks(DEPLOY_README.read_text(encoding="utf-8"))).replace("\\\n", " ")


def test_the_pods_read_the_secret_and_config_the_readme_creates() -> None:
    commands = readme_commands()
    (secret,) = re.findall(r"create secret generic (\S+)", commands)
    secret_keys = set(re.findall(r"--from-file=(\w+)=", commands.split("create secret")[1]))
    (config_map,) = re.findall(r"create configmap (\S+)", commands)
    assert "--from-literal" not in commands
    for name, spec in pod_specs():
        volumes = {v["name"]: v for v in spec["volumes"]}
        secret_volume = next(v for v in volumes.values() if "secret" in v)
        assert secret_volume["secret"]["secretName"] == secret, name
        assert next(v for v in volumes.values() if "configMap" in v)["configMap"]["name"] == (
            config_map
        )
        for container in containers(spec):
            mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
            assert mounts[next(k for k, v in volumes.items() if "configMap" in v)] == (
                "/var/lib/sfsync/config"
            ), "sfsync reads config/sfsync.yaml in its working directory"
            secret_dir = mounts[secret_volume["name"]]
            for env in container["env"]:
                if env["name"].endswith("_FILE"):
                    directory, _, key = env["value"].rpartition("/")
                    assert directory == secret_dir, (name, env)
                    assert key in secret_keys, (name, env)
