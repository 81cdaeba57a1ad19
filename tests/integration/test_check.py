"""sfsync check against the dev org: every preflight item, and each failure named."""

from __future__ import annotations

import yaml

from sfsync.devorg.testing import INACTIVE_USER_ID, sample_org_data
from tests.cli_helpers import run_cli, run_sfsync
from tests.integration.conftest import OrgFactory


def test_check_reports_login_user_version_budget_and_fields(running_org: OrgFactory) -> None:
    org = running_org(50)
    outcome = run_cli("check", env=org.env)
    assert outcome.exit_code == 0, outcome.output
    for item in (
        "salesforce login",
        "integration user",
        "api version",
        "api budget",
        "objects",
        "write-back",
    ):
        assert f"] {item}:" in outcome.stdout, item
    assert org.server.client_secret not in outcome.output


def test_refused_credentials_exit_3_without_the_secret(running_org: OrgFactory) -> None:
    org = running_org(50)
    config = yaml.safe_load(org.config_path.read_text())
    config["salesforce"]["client_secret"] = "wrong-secret-value"
    org.config_path.write_text(yaml.safe_dump(config))
    outcome = run_cli("check", env=org.env)
    assert outcome.exit_code == 3
    assert "salesforce login" in outcome.stdout
    assert "Check salesforce.client_id and the secret" in outcome.stdout
    assert "wrong-secret-value" not in outcome.output


def test_unserved_api_version_and_inactive_fallback_owner_are_named(
    running_org: OrgFactory,
) -> None:
    org = running_org(
        data=sample_org_data(5),
        extra={"writeback": {"fallback_owner_id": INACTIVE_USER_ID}},
    )
    outcome = run_cli("check", env={**org.env, "SFSYNC_SALESFORCE__API_VERSION": "20.0"})
    assert outcome.exit_code == 3  # the retired version answers 410/404: unreachable API
    good_version = run_cli("check", env=org.env)
    assert good_version.exit_code == 2
    assert f"writeback.fallback_owner_id {INACTIVE_USER_ID} is inactive" in good_version.stdout


def test_missing_credentials_are_a_usage_error(running_org: OrgFactory) -> None:
    org = running_org(20)
    outcome = run_cli("check", env={**org.env, "SFSYNC_SALESFORCE__CLIENT_ID": ""})
    assert outcome.exit_code == 2
    assert "salesforce.client_id" in outcome.stdout


def test_no_secret_appears_in_any_output_of_a_verbose_run(running_org: OrgFactory) -> None:
    """Client secret, password, security token and session tokens: in no log line, at debug level."""
    org = running_org(100)
    outputs = [
        run_sfsync("-v", "--log-format", "json", "sync", env=org.env),
        run_sfsync("-v", "--log-format", "json", "check", env=org.env),
        run_sfsync("-v", "--log-format", "console", "run", "--apply", env=org.env),
        run_sfsync(
            "-v", "sync", env={**org.env, "SFSYNC_SALESFORCE__CLIENT_SECRET": "wrong-but-secret"}
        ),
    ]
    secrets = [
        org.server.client_secret,
        org.server.password,
        org.server.security_token,
        "wrong-but-secret",
    ]
    tokens = list(org.server._sessions)  # every access token the dev org issued
    assert tokens
    for outcome in outputs:
        text = outcome.stdout + outcome.stderr
        for secret in secrets + tokens:
            assert secret not in text


def test_a_field_a_rule_or_the_writeback_needs_that_the_org_lacks_fails_check_with_exit_2(
    running_org: OrgFactory,
) -> None:
    """An audit would fail on it (exit 2) every night: check must fail first, naming it."""
    org = running_org(
        data=sample_org_data(5),
        extra={
            "audit": {"fields": {"rev_rec_terms": "Rev_Rec_Termz__c"}},
            "writeback": {"flags": {"enabled": True, "rules_field": "No_Such_Flags__c"}},
        },
    )
    outcome = run_cli("check", env=org.env)
    assert outcome.exit_code == 2, outcome.output
    failed = [line for line in outcome.stdout.splitlines() if "FAIL" in line or "✗" in line]
    text = "\n".join(failed) or outcome.stdout
    assert "audit.fields.rev_rec_terms" in text
    assert "Rev_Rec_Termz__c" in text
    assert "writeback.flags.rules_field" in text
    assert "No_Such_Flags__c" in text


def test_a_field_only_a_disabled_rule_needs_does_not_fail_check(running_org: OrgFactory) -> None:
    org = running_org(
        data=sample_org_data(5),
        extra={
            "audit": {
                "fields": {"rev_rec_terms": "Rev_Rec_Termz__c"},
                "rules": {"missing_rev_rec_terms": {"enabled": False}},
            }
        },
    )
    outcome = run_cli("check", env=org.env)
    assert outcome.exit_code == 0, outcome.output
