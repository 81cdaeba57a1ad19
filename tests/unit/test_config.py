"""Settings: sources, env overrides, secrets, and every-problem-at-once errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sfsync.config import Settings, load_settings, normalize_database_url
from sfsync.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(exc: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return exc.value.problems


def test_defaults_when_nothing_is_given(tmp_path: Path) -> None:
    """With no file and no env, the built-in defaults are used."""
    loaded = load_settings(environ={}, cwd=tmp_path)
    assert loaded.source == "built-in defaults"
    assert loaded.settings == Settings()
    assert loaded.settings.database.url == "sqlite:///sfsync.db"
    assert loaded.settings.sync.max_api_share == 0.2
    assert loaded.settings.writeback.max_tasks_per_run == 500


def test_source_order_flag_then_env_then_default_file(tmp_path: Path) -> None:
    """--config beats $SFSYNC_CONFIG, which beats config/sfsync.yaml."""
    (tmp_path / "config").mkdir()
    write(tmp_path / "config" / "sfsync.yaml", "sync: {api_floor: 1}\n")
    env_file = write(tmp_path / "env.yaml", "sync: {api_floor: 2}\n")
    flag_file = write(tmp_path / "flag.yaml", "sync: {api_floor: 3}\n")
    assert load_settings(environ={}, cwd=tmp_path).settings.sync.api_floor == 1
    env = {"SFSYNC_CONFIG": str(env_file)}
    assert load_settings(environ=env, cwd=tmp_path).settings.sync.api_floor == 2
    assert load_settings(flag_file, environ=env, cwd=tmp_path).settings.sync.api_floor == 3


def test_env_overrides_nested_keys_and_short_database_url(tmp_path: Path) -> None:
    """SFSYNC_<SECTION>__<KEY> reaches any depth; SFSYNC_DATABASE_URL is a short form."""
    env = {
        "SFSYNC_AUDIT__RULES__CLOSE_DATE_SLIPPING__MIN_EXTENSIONS": "5",
        "SFSYNC_AUDIT__SALES_RECORD_TYPES": "[A, B]",
        "SFSYNC_DATABASE_URL": "postgres://u@h/db",
        "SFSYNC_WRITEBACK__ENABLED": "false",
    }
    settings = load_settings(environ=env, cwd=tmp_path).settings
    assert settings.audit.rule("close_date_slipping").min_extensions == 5  # type: ignore[attr-defined]
    assert settings.audit.sales_record_types == ["A", "B"]
    assert settings.database.url == "postgresql+psycopg://u@h/db"
    assert settings.writeback.enabled is False


def test_long_env_form_wins_over_short_database_url(tmp_path: Path) -> None:
    env = {"SFSYNC_DATABASE_URL": "sqlite:///a.db", "SFSYNC_DATABASE__URL": "sqlite:///b.db"}
    assert load_settings(environ=env, cwd=tmp_path).settings.database.url == "sqlite:///b.db"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d"),
        ("postgresql://h/d", "postgresql+psycopg://h/d"),
        ("postgresql+psycopg://h/d", "postgresql+psycopg://h/d"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_postgres_urls_use_the_installed_driver(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


def test_three_mistakes_are_all_reported_with_key_paths(tmp_path: Path) -> None:
    """A bad config reports every problem at once, each with its key path."""
    bad = write(
        tmp_path / "bad.yaml",
        "salesforce:\n  timeout_s: abc\n  auht: jwt\naudit:\n  fiscal_year_start_month: 13\n",
    )
    with pytest.raises(ConfigError) as exc:
        load_settings(bad, environ={}, cwd=tmp_path)
    problems = problems_of(exc)
    assert len(problems) == 3
    assert any(p.startswith("salesforce.timeout_s:") and "'abc'" in p for p in problems)
    assert any(p == "salesforce.auht: unknown key (did you mean 'auth'?)" for p in problems)
    assert any(p.startswith("audit.fiscal_year_start_month:") for p in problems)
    assert exc.value.exit_code == 2
    assert str(bad) in str(exc.value)


def test_unknown_nested_key_gets_did_you_mean(tmp_path: Path) -> None:
    bad = write(
        tmp_path / "c.yaml", "audit:\n  rules:\n    close_date_slipping:\n      min_extension: 2\n"
    )
    with pytest.raises(ConfigError) as exc:
        load_settings(bad, environ={}, cwd=tmp_path)
    assert problems_of(exc) == [
        "audit.rules.close_date_slipping.min_extension: unknown key"
        " (did you mean 'min_extensions'?)"
    ]


def test_unknown_rule_id_is_named(tmp_path: Path) -> None:
    bad = write(tmp_path / "c.yaml", "audit:\n  rules:\n    close_date_pasts: {}\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(bad, environ={}, cwd=tmp_path)
    assert "did you mean 'close_date_past'" in problems_of(exc)[0]


def test_env_problem_names_the_variable(tmp_path: Path) -> None:
    env = {"SFSYNC_SYNC__API_FLOOR": "lots", "SFSYNC_SYNCC__X": "1"}
    with pytest.raises(ConfigError) as exc:
        load_settings(environ=env, cwd=tmp_path)
    problems = problems_of(exc)
    assert any("(from SFSYNC_SYNC__API_FLOOR)" in p and "'lots'" in p for p in problems)
    assert any(p.startswith("SFSYNC_SYNCC__X: unknown section 'syncc'") for p in problems)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("salesforce: [1, 2\n", "not valid YAML at line"),
        ("- a\n- b\n", "top level must be a mapping"),
    ],
)
def test_unparseable_files_are_named(tmp_path: Path, text: str, fragment: str) -> None:
    bad = write(tmp_path / "c.yaml", text)
    with pytest.raises(ConfigError) as exc:
        load_settings(bad, environ={}, cwd=tmp_path)
    assert fragment in str(exc.value)
    assert "c.yaml" in str(exc.value)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", environ={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="given by SFSYNC_CONFIG"):
        load_settings(environ={"SFSYNC_CONFIG": str(tmp_path / "x.yaml")}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(tmp_path, environ={}, cwd=tmp_path)


def test_secrets_never_appear_in_repr_or_errors(tmp_path: Path) -> None:
    """A secret is masked in repr and never echoed by a validation error."""
    cfg = write(
        tmp_path / "c.yaml",
        "salesforce:\n  client_secret: s3cr3t-value\n  client_id: abc\n"
        "database:\n  url: postgresql://user:dbpass-xyz@h/db\n",
    )
    settings = load_settings(cfg, environ={}, cwd=tmp_path).settings
    assert "s3cr3t-value" not in repr(settings)
    assert "dbpass-xyz" not in repr(settings)
    assert "dbpass-xyz" not in settings.database.display_url()
    assert set(settings.secret_values()) == {"s3cr3t-value", "dbpass-xyz"}
    bad = write(tmp_path / "b.yaml", "salesforce:\n  password: [hunter2-secret]\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(bad, environ={}, cwd=tmp_path)
    assert "hunter2-secret" not in str(exc.value)


def test_secret_from_file_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("from-file-secret\n")
    cfg = write(tmp_path / "c.yaml", "salesforce:\n  client_secret_file: secret.txt\n")
    settings = load_settings(cfg, environ={}, cwd=tmp_path).settings
    assert settings.salesforce.client_secret is not None
    assert settings.salesforce.client_secret.get_secret_value() == "from-file-secret"


def test_secret_file_problems(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "c.yaml",
        "salesforce:\n  client_secret: a\n  client_secret_file: x\n  password_file: /nope\n",
    )
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, environ={}, cwd=tmp_path)
    problems = problems_of(exc)
    assert any(p.startswith("salesforce.client_secret_file: both") for p in problems)
    assert any(p.startswith("salesforce.password_file: cannot read '/nope'") for p in problems)


def test_secrets_of_unused_flow_are_ignored_with_a_warning(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", "salesforce:\n  auth: client_credentials\n  password: pw12\n")
    loaded = load_settings(cfg, environ={"SFSYNC_DATABASE_URL": "sqlite:///x.db"}, cwd=tmp_path)
    assert loaded.warnings == ("salesforce.password is ignored: auth is client_credentials",)


@pytest.mark.parametrize(
    ("yaml_text", "fragment"),
    [
        ("audit:\n  fields:\n    rev_rec_terms: 'Rev Rec'\n", "audit.fields.rev_rec_terms"),
        ("audit:\n  fields:\n    rev_rec_terms: Rev_Rec_Terms\n", "ending in __c"),
        ("audit:\n  instrument:\n    field: 1abc\n", "audit.instrument.field"),
        ("writeback:\n  task_key_field: 'x;y'\n", "writeback.task_key_field"),
        ("salesforce:\n  ca_bundle: /no/such.pem\n", "salesforce.ca_bundle"),
        ("audit:\n  timezone: Mars/Base\n", "unknown time zone 'Mars/Base'"),
        ("schedule:\n  cron: 'every day'\n", "schedule.cron"),
        ("schedule:\n  timezone: Nowhere\n", "schedule.timezone"),
        ("writeback:\n  fallback_owner_id: nobody\n", "writeback.fallback_owner_id"),
        ("sync:\n  objects: [Opportunty]\n", "did you mean 'Opportunity'"),
        ("audit:\n  stages: [A, B]\n", "rules.stale_last_modified.min_stage"),
        ("database:\n  url: 'not a url'\n", "database.url"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, yaml_text: str, fragment: str) -> None:
    cfg = write(tmp_path / "c.yaml", yaml_text)
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, environ={}, cwd=tmp_path)
    assert fragment in str(exc.value)


def test_writeback_rule_overrides_merge_with_defaults(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "c.yaml", "writeback:\n  rules:\n    close_date_past: {due_in_days: 1}\n"
    )
    rules = load_settings(cfg, environ={}, cwd=tmp_path).settings.writeback.rules
    assert rules["close_date_past"].due_in_days == 1
    assert rules["close_date_past"].priority == "High"
    assert rules["close_date_slipping"].due_in_days == 14


def test_stale_thresholds_keep_the_other_profile(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "c.yaml",
        "audit:\n  rules:\n    stale_last_modified:\n      thresholds: {europe: [1, 2]}\n",
    )
    rule = load_settings(cfg, environ={}, cwd=tmp_path).settings.audit.rules["stale_last_modified"]
    assert rule.thresholds == {"global": [14, 30, 45, 45], "europe": [1, 2]}


def test_flow_requirements_are_listed() -> None:
    from sfsync.config import SalesforceSettings

    assert SalesforceSettings().missing_for_flow() == [
        "salesforce.client_id",
        "salesforce.client_secret",
    ]
    assert SalesforceSettings(auth="session").missing_for_flow() == [
        "salesforce.instance_url",
        "salesforce.session_id",
    ]


def test_a_secret_file_that_is_not_text_names_the_key_and_file_not_its_bytes(
    tmp_path: Path,
) -> None:
    """A binary client_secret_file is a config error, and no byte of it is echoed."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\xcc\x81\xfe\xffsecret-bytes\x00\x9c")
    cfg = write(tmp_path / "c.yaml", f"salesforce:\n  client_secret_file: {secret}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(cfg, environ={}, cwd=tmp_path)
    message = str(caught.value)
    assert "salesforce.client_secret_file" in message
    assert str(secret) in message
    assert "UTF-8" in message
    for leak in ("0xcc", "\\xcc", "secret-bytes", "position"):
        assert leak not in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("login_url", "http://login.example.com"),
        ("login_url", "HTTP://LOGIN.EXAMPLE.COM"),
        ("login_url", "ftp://login.example.com"),
        ("instance_url", "http://acme.my.salesforce.com"),
    ],
)
def test_salesforce_urls_must_be_https(tmp_path: Path, key: str, value: str) -> None:
    """Credentials never go over plain HTTP: a config error naming the key (exit 2)."""
    cfg = write(tmp_path / "c.yaml", f"salesforce:\n  {key}: {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(cfg, environ={}, cwd=tmp_path)
    assert f"salesforce.{key}" in str(caught.value)
    assert "https" in str(caught.value)
    assert caught.value.exit_code == 2


def test_a_misspelt_short_variable_is_refused_with_a_did_you_mean(tmp_path: Path) -> None:
    """SFSYNC_DATABSE_URL was ignored: sfsync fell back to SQLite in the working directory."""
    env = {"SFSYNC_DATABSE_URL": "postgresql://u@h/db"}
    with pytest.raises(ConfigError) as exc:
        load_settings(environ=env, cwd=tmp_path)
    [problem] = problems_of(exc)
    assert problem.startswith("SFSYNC_DATABSE_URL: unknown variable")
    assert "did you mean SFSYNC_DATABASE_URL?" in problem


def test_the_variables_of_the_test_suite_and_chaos_testing_are_not_config(tmp_path: Path) -> None:
    env = {
        "SFSYNC_TEST_POSTGRES_URL": "postgresql://u@h/db",
        "SFSYNC_CRASH_AT": "writeback.after_send",
        "SFSYNC_CONFIG": "",
    }
    assert load_settings(environ=env, cwd=tmp_path).settings is not None


def test_the_sqlite_default_is_said_in_one_warning(tmp_path: Path) -> None:
    loaded = load_settings(environ={}, cwd=tmp_path)
    said = [w for w in loaded.warnings if "sfsync.db" in w]
    assert len(said) == 1
    assert "no database is configured" in said[0]
    assert "SFSYNC_DATABASE_URL" in said[0]
    configured = load_settings(environ={"SFSYNC_DATABASE_URL": "sqlite:///x.db"}, cwd=tmp_path)
    assert not [w for w in configured.warnings if "no database is configured" in w]
