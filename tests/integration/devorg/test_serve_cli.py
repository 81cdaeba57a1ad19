"""``sfsync devorg serve`` as a process: validate first, print the URL, save on SIGTERM."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
from pathlib import Path

import requests
import yaml

from sfsync.devorg import DevOrg
from sfsync.devorg.testing import sample_org_data


def _serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sfsync.devorg", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_writes_config_answers_and_saves_on_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "org.json"
    data.write_text(json.dumps(sample_org_data(30)))
    config, saved = tmp_path / "c.yaml", tmp_path / "saved.json"
    proc = _serve(
        "--data", str(data), "--port", "0", "--write-config", str(config), "--save", str(saved)
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("https://127.0.0.1:")
        settings = yaml.safe_load(config.read_text())["salesforce"]
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert settings["auth"] == "client_credentials"
        assert settings["login_url"] == url
        assert settings["api_version"] == "62.0"
        assert set(settings) == {
            "auth",
            "login_url",
            "api_version",
            "client_id",
            "client_secret",
            "username",
            "ca_bundle",
            "timeout_s",
        }
        session = requests.Session()
        session.verify = settings["ca_bundle"]
        session.trust_env = False
        token = session.post(
            f"{url}/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": settings["client_id"],
                "client_secret": settings["client_secret"],
            },
            timeout=10,
        ).json()
        created = session.post(
            f"{url}/services/data/v62.0/sobjects/Task",
            json={"Subject": "made while serving"},
            headers={"Authorization": f"Bearer {token['access_token']}"},
            timeout=10,
        )
        assert created.status_code == 201
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "devorg.request" in stderr
    assert settings["client_secret"] not in stderr
    org = DevOrg.load(saved)
    assert org.query("SELECT COUNT() FROM Task WHERE Subject = 'made while serving'") == [
        {"expr0": 1}
    ]


def test_a_bad_data_file_exits_2_before_anything_else(tmp_path: Path) -> None:
    data = sample_org_data(5)
    data["records"]["Opportunity"][3]["CloseDate"] = "2024/01/01"
    path = tmp_path / "org.json"
    path.write_text(json.dumps(data))
    config = tmp_path / "c.yaml"
    proc = _serve("--data", str(path), "--write-config", str(config))
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert stdout == ""
    assert stderr.strip() == (
        "error: org.json: Opportunity[3].CloseDate: expected a date YYYY-MM-DD, got '2024/01/01'"
    )
    assert not config.exists()


def test_write_credentials_lets_a_client_log_in_with_the_refresh_token(tmp_path: Path) -> None:
    """``--write-credentials``: JSON (mode 0600) with which a refresh_token grant succeeds."""
    data = tmp_path / "org.json"
    data.write_text(json.dumps(sample_org_data(5)))
    path = tmp_path / "creds.json"
    proc = _serve("--data", str(data), "--port", "0", "--write-credentials", str(path))
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        creds = json.loads(path.read_text())
        assert set(creds) >= {
            "instance_url",
            "token_url",
            "client_id",
            "client_secret",
            "username",
            "password",
            "security_token",
            "refresh_token",
            "ca_bundle",
        }
        assert creds["instance_url"] == url
        session = requests.Session()
        session.verify = creds["ca_bundle"]
        session.trust_env = False
        token = session.post(
            creds["token_url"],
            data={
                "grant_type": "refresh_token",
                "client_id": creds["client_id"],
                "client_secret": creds["client_secret"],
                "refresh_token": creds["refresh_token"],
            },
            timeout=10,
        )
        assert token.status_code == 200, token.text
        assert "refresh_token" not in token.json()
        limits = session.get(
            f"{token.json()['instance_url']}/services/data/v62.0/limits",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=10,
        )
        assert limits.status_code == 200
        password = session.post(
            creds["token_url"],
            data={
                "grant_type": "password",
                "client_id": creds["client_id"],
                "client_secret": creds["client_secret"],
                "username": creds["username"],
                "password": creds["password"] + creds["security_token"],
            },
            timeout=10,
        )
        assert password.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert creds["refresh_token"] not in stderr
