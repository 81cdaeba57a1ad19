"""``sfsync devorg serve --host``: loopback only unless ``--allow-remote``, and say where it listens.

The dev org holds fake credentials and answers anyone who reaches it: it must not
be put on the network by a mistyped ``--host``.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from sfsync.devorg import DevOrg, DevOrgServer
from sfsync.devorg.testing import sample_org_data

ANY_V4 = "0.0.0.0"  # noqa: S104 - binding everywhere is what these tests are about


def _data(tmp_path: Path) -> Path:
    path = tmp_path / "org.json"
    path.write_text(json.dumps(sample_org_data(5)))
    return path


def _serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sfsync.devorg", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    return stderr


@pytest.mark.parametrize("host", [ANY_V4, "::", "", "192.0.2.10", "example.com"])
def test_a_non_loopback_host_is_refused_without_allow_remote(tmp_path: Path, host: str) -> None:
    config = tmp_path / "c.yaml"
    proc = _serve("--data", str(_data(tmp_path)), "--host", host, "--write-config", str(config))
    assert proc.stdout is not None
    url = proc.stdout.readline()  # "" (end of output) when refused; a URL when serving
    if url:
        _stop(proc)
        pytest.fail(f"serve --host {host!r} listened without --allow-remote: {url.strip()}")
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 2, stderr
    assert stderr.startswith(f"error: --host {host!r}")
    assert "--allow-remote" in stderr
    assert not config.exists()


def test_all_interfaces_with_allow_remote_says_so_and_names_the_real_address(
    tmp_path: Path,
) -> None:
    config = tmp_path / "c.yaml"
    proc = _serve(
        "--data", str(_data(tmp_path)), "--host", ANY_V4, "--allow-remote",
        "--write-config", str(config),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        # stdout and the config keep a URL this machine can use with the certificate...
        assert url.startswith("https://127.0.0.1:")
        port = int(url.rsplit(":", 1)[1])
        settings = yaml.safe_load(config.read_text())["salesforce"]
        assert settings["login_url"] == url
        answer = requests.get(f"{url}/services/data", verify=settings["ca_bundle"], timeout=10)
        assert answer.status_code == 200
    finally:
        stderr = _stop(proc)
    # ...and stderr says what is really open, and to whom the certificate is good.
    assert f"listening on all interfaces (0.0.0.0:{port})" in stderr
    assert f"https://{socket.gethostname()}:{port}" in stderr
    assert "certificate covers only localhost, 127.0.0.1 and ::1" in stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_hosts_need_no_flag_and_print_no_warning(tmp_path: Path, host: str) -> None:
    proc = _serve("--data", str(_data(tmp_path)), "--host", host)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
    finally:
        stderr = _stop(proc)
    shown = f"[{host}]" if ":" in host else host
    assert url.startswith(f"https://{shown}:"), stderr
    assert "listening on" not in stderr
    assert "certificate covers only" not in stderr


@pytest.mark.parametrize(
    ("host", "url_host"),
    [("127.0.0.1", "127.0.0.1"), (ANY_V4, "127.0.0.1"), ("::1", "[::1]"), ("::", "[::1]")],
)
def test_server_url_reaches_what_it_binds(tmp_path: Path, host: str, url_host: str) -> None:
    org = DevOrg.load(_data(tmp_path))
    try:
        with DevOrgServer(org, host=host) as server:
            assert server.url == f"https://{url_host}:{server.port}"
            assert server.listen_address == (host, server.port)
            assert server.ca_path is not None
            answer = requests.get(
                f"{server.url}/services/data", verify=str(server.ca_path), timeout=10
            )
            assert answer.status_code == 200
    finally:
        org.close()
