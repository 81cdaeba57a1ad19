"""One validated settings object, loaded from YAML and ``SFSYNC_*`` environment variables.

Where the settings come from, first match wins:

1. ``--config FILE`` (the file must exist),
2. ``$SFSYNC_CONFIG``,
3. ``config/sfsync.yaml`` in the working directory, if present,
4. the built-in defaults.

Any key can then be overridden from the environment as ``SFSYNC_<SECTION>__<KEY>``
(``__`` separates nesting levels, e.g.
``SFSYNC_AUDIT__RULES__CLOSE_DATE_SLIPPING__MIN_EXTENSIONS``);
``SFSYNC_DATABASE_URL`` is accepted as a short form of ``SFSYNC_DATABASE__URL``.

Secrets are :class:`~pydantic.SecretStr` and may be given as ``<key>_file`` paths
(Kubernetes/Docker secrets). A bad configuration raises one :class:`ConfigError`
listing every problem with its key path; secret values are never echoed.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)

from sfsync.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "SECRET_KEYS",
    "SEVERITY_RANK",
    "SYNC_OBJECTS",
    "AuditSettings",
    "DatabaseSettings",
    "LoadedSettings",
    "LoggingSettings",
    "SalesforceSettings",
    "ScheduleSettings",
    "Settings",
    "SyncSettings",
    "WritebackSettings",
    "load_settings",
    "normalize_database_url",
]

DEFAULT_CONFIG_PATH = Path("config/sfsync.yaml")

# The catalogue of objects sfsync syncs, parents first: the warehouse has a table for
# each, the dev org's data file holds them in this order, and the sync pulls the
# reference objects, then the others, in it.
SYNC_OBJECTS = (
    "Organization",
    "User",
    "RecordType",
    "OpportunityStage",
    "CurrencyType",
    "Product2",
    "Opportunity",
    "OpportunityLineItem",
    "OpportunityHistory",
    "Task",
)

# (section, key) pairs that hold secrets; each also accepts "<key>_file".
SECRET_KEYS: tuple[tuple[str, str], ...] = (
    ("salesforce", "client_secret"),
    ("salesforce", "password"),
    ("salesforce", "security_token"),
    ("salesforce", "session_id"),
    ("salesforce", "private_key"),
    ("database", "password"),
)

# Which secrets each Salesforce auth flow uses; the others are ignored with a warning.
_FLOW_SECRETS: dict[str, frozenset[str]] = {
    "client_credentials": frozenset({"client_secret"}),
    "jwt": frozenset({"private_key"}),
    "password": frozenset({"client_secret", "password", "security_token"}),
    "session": frozenset({"session_id"}),
}

_API_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


# --------------------------------------------------------------------------- validators


def _api_name(value: str) -> str:
    """A Salesforce field API name: letters, digits, underscores; custom ones end ``__c``."""
    if not _API_NAME_RE.match(value) or value.endswith("_") or "___" in value:
        raise ValueError(f"{value!r} is not a Salesforce field API name")
    if "__" in value and not value.endswith("__c"):
        raise ValueError(f"{value!r} is not a Salesforce field API name (custom fields end in __c)")
    return value


def _custom_field_name(value: str) -> str:
    _api_name(value)
    if not value.endswith("__c"):
        raise ValueError(f"{value!r} must be a custom field API name ending in __c")
    return value


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)"
        ) from None
    return value


def _record_id(value: str) -> str:
    from sfsync.formats import is_salesforce_id  # the package imports this module

    if not is_salesforce_id(value):
        raise ValueError(f"{value!r} is not a Salesforce record id (15 or 18 characters)")
    return value


def _readable_file(value: Path) -> Path:
    try:
        is_file = value.is_file()
    except OSError as exc:
        # is_file() answers False for a missing file but raises for a directory on the
        # way that this user may not search (EACCES): that is a config problem too.
        hint = (
            " (a directory on its path is not readable by this user)"
            if isinstance(exc, PermissionError)
            else ""
        )
        reason = exc.strerror or type(exc).__name__
        raise ValueError(f"file {str(value)!r} cannot be checked: {reason}{hint}") from None
    if not is_file:
        raise ValueError(f"file {str(value)!r} does not exist or is not a file")
    if not os.access(value, os.R_OK):
        raise ValueError(f"file {str(value)!r} is not readable")
    return value


ApiName = Annotated[str, AfterValidator(_api_name)]
CustomFieldName = Annotated[str, AfterValidator(_custom_field_name)]
TimeZoneName = Annotated[str, AfterValidator(_time_zone)]
RecordId = Annotated[str, AfterValidator(_record_id)]
ReadableFile = Annotated[Path, AfterValidator(_readable_file)]
Severity = Literal["warn", "error"]
SEVERITY_RANK: dict[str, int] = {"warn": 1, "error": 2}
Profile = Literal["global", "europe"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# --------------------------------------------------------------------------- salesforce


class SalesforceSettings(_Section):
    """How to reach and log in to the org. Key names are a fixed contract."""

    auth: Literal["client_credentials", "jwt", "password", "session"] = "client_credentials"
    login_url: str = "https://login.salesforce.com"
    api_version: str = Field(default="62.0", pattern=r"^\d{2,3}\.0$")
    client_id: str | None = None
    client_secret: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    private_key: SecretStr | None = None
    instance_url: str | None = None
    session_id: SecretStr | None = None
    ca_bundle: ReadableFile | None = None
    timeout_s: float = Field(default=60.0, gt=0, le=600)
    deadline_s: float = Field(default=600.0, gt=0, le=3600)
    max_response_mb: int = Field(default=32, ge=1, le=1024)

    @field_validator("login_url", "instance_url")
    @classmethod
    def _https_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https://[^/\s]+", value, re.IGNORECASE):
            raise ValueError(
                f"{value!r} is not an https:// URL (sfsync never sends credentials over plain HTTP)"
            )
        return value.rstrip("/")

    def missing_for_flow(self) -> list[str]:
        """Key paths the configured auth flow needs but that are not set."""
        need: dict[str, tuple[str, ...]] = {
            "client_credentials": ("client_id", "client_secret"),
            "jwt": ("client_id", "username", "private_key"),
            "password": ("username", "password"),
            "session": ("instance_url", "session_id"),
        }
        return [f"salesforce.{key}" for key in need[self.auth] if getattr(self, key) is None]


# --------------------------------------------------------------------------- database


def normalize_database_url(url: str) -> str:
    """Map ``postgres://`` and ``postgresql://`` to the psycopg 3 driver sfsync installs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class DatabaseSettings(_Section):
    """The warehouse. SQLite embedded by default; PostgreSQL in production."""

    url: str = Field(default="sqlite:///sfsync.db", repr=False)
    password: SecretStr | None = None
    echo: bool = False
    connect_timeout_s: int = Field(default=10, gt=0)

    @field_validator("url")
    @classmethod
    def _parse_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        value = normalize_database_url(value.strip())
        try:
            parsed = make_url(value)
        except ArgumentError:
            raise ValueError(
                "is not a database URL (expected e.g. sqlite:///sfsync.db or "
                "postgresql://user@host/db)"
            ) from None
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(
                f"database {parsed.get_backend_name()!r} is not supported "
                "(use sqlite or postgresql)"
            )
        return value

    def effective_url(self) -> str:
        """The URL with ``database.password`` filled in when the URL has none."""
        from sqlalchemy.engine import make_url

        parsed = make_url(self.url)
        if self.password is not None and parsed.password is None:
            parsed = parsed.set(password=self.password.get_secret_value())
        return parsed.render_as_string(hide_password=False)

    def display_url(self) -> str:
        """The URL with any password masked: safe for logs and errors."""
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)


# --------------------------------------------------------------------------- sync


class SyncSettings(_Section):
    """What to pull and how hard to lean on the org's API allowance."""

    objects: list[str] = Field(default_factory=lambda: list(SYNC_OBJECTS))
    extra_fields: dict[str, list[ApiName]] = Field(default_factory=dict)
    max_api_share: float = Field(default=0.2, gt=0, le=1)
    api_floor: int = Field(default=1000, ge=0)
    bulk_threshold: int = Field(default=50_000, ge=1)
    bulk_page_size: int = Field(default=20_000, ge=1000, le=250_000)
    bulk_poll_s: float = Field(default=2.0, gt=0, le=60)
    bulk_timeout_s: float = Field(default=7200.0, gt=0, le=86_400)
    # Bulk jobs created when the sync starts, so that Salesforce processes them while
    # the other objects are pulled (0: each job is created when its object's turn comes).
    bulk_jobs_ahead: int = Field(default=5, ge=0, le=20)
    page_size: int = Field(default=2000, ge=200, le=2000)
    lookback_s: int = Field(default=300, ge=0)
    lag_s: int = Field(default=30, ge=0)
    reconcile_every_days: float = Field(default=7, gt=0)
    deleted_window_days: float = Field(default=14, gt=0, le=15)
    max_attempts: int = Field(default=5, ge=1, le=20)
    backoff_base_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=60.0, ge=0)

    @field_validator("objects")
    @classmethod
    def _known_objects(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in SYNC_OBJECTS]
        if unknown:
            hints = []
            for name in unknown:
                close = difflib.get_close_matches(name, SYNC_OBJECTS, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                hints.append(f"{name!r}{hint}")
            raise ValueError(
                f"unknown object {', '.join(hints)}; sfsync syncs {', '.join(SYNC_OBJECTS)}"
            )
        return value

    @field_validator("extra_fields")
    @classmethod
    def _known_extra_objects(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = [name for name in value if name not in SYNC_OBJECTS]
        if unknown:
            raise ValueError(f"unknown object {unknown[0]!r} (one of {', '.join(SYNC_OBJECTS)})")
        return value


# --------------------------------------------------------------------------- audit


class RuleSettings(_Section):
    """``audit.rules.<id>``. Each rule's own model (in ``sfsync/audit/rules/``) adds its keys."""

    enabled: bool = True
    severity: Severity = "warn"


def _rules_by_id() -> dict[str, Any]:
    # The registry declares each rule's settings; imported when settings are validated
    # (the rules import this module for their types).
    from sfsync.audit.rules import all_rules

    return {rule.id: rule for rule in all_rules()}


def _rule_settings_defaults() -> dict[str, RuleSettings]:
    return {rule_id: rule.settings_model() for rule_id, rule in _rules_by_id().items()}


def _unknown_rule(key: object, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown rule id {key!r}{hint}; the rules are {', '.join(known)}"


class AuditFields(_Section):
    rev_rec_terms: CustomFieldName = "Rev_Rec_Terms__c"


class InstrumentSettings(_Section):
    product_families: list[str] = Field(default_factory=lambda: ["Instrument"])
    field: ApiName | None = None


class ScopeSettings(_Section):
    """Profile per scope: opportunities whose ``field`` value is listed use that profile."""

    field: ApiName | None = None
    profiles: dict[str, Profile] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _field_when_profiles(self) -> ScopeSettings:
        if self.profiles and self.field is None:
            raise ValueError("profiles are given but field is not set")
        return self


class AuditSettings(_Section):
    """The rule settings of docs/rules.md. Every choice the handbook leaves open is here."""

    profile: Profile = "global"
    scope: ScopeSettings = ScopeSettings()
    timezone: TimeZoneName = "UTC"
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    amount_threshold: float = Field(default=50_000, ge=0)
    corporate_currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    fields: AuditFields = AuditFields()
    instrument: InstrumentSettings = InstrumentSettings()
    sales_record_types: list[str] = Field(
        default_factory=lambda: [
            "Direct Standard",
            "Indirect Standard",
            "Direct Field Services",
            "Indirect Field Services",
        ]
    )
    stages: list[str] | None = None
    # Keyed by rule id, each value of that rule's own settings model.
    rules: dict[str, SerializeAsAny[RuleSettings]] = Field(default_factory=_rule_settings_defaults)

    @field_validator("rules", mode="before")
    @classmethod
    def _each_rule(cls, value: Any) -> Any:
        """Every registered rule's settings, from its defaults and what the file gives."""
        if not isinstance(value, Mapping):
            return value
        rules = _rules_by_id()
        unknown = [key for key in value if key not in rules]
        if unknown:
            raise ValueError(_unknown_rule(unknown[0], list(rules)))
        merged: dict[str, RuleSettings] = {}
        problems: list[str] = []
        for rule_id, rule in rules.items():
            given = value.get(rule_id)
            if isinstance(given, RuleSettings):
                merged[rule_id] = given
                continue
            try:
                merged[rule_id] = rule.settings_model.model_validate(given or {})
            except ValidationError as exc:
                problems += [_sub_problem(rule_id, rule.settings_model, e) for e in exc.errors()]
        if problems:
            raise ValueError("; ".join(problems))
        return merged

    def rule(self, rule_id: str) -> RuleSettings:
        """``audit.rules.<rule_id>`` (a rule registered after these settings: its defaults)."""
        found = self.rules.get(rule_id)
        if found is None:
            from sfsync.audit.rules import get_rule

            found = get_rule(rule_id).settings_model()
        return found

    @field_validator("stages")
    @classmethod
    def _unique_stages(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            seen: set[str] = set()
            for stage in value:
                if stage in seen:
                    raise ValueError(f"stage {stage!r} is listed twice")
                seen.add(stage)
        return value

    @model_validator(mode="after")
    def _stages_known(self) -> AuditSettings:
        if self.stages is None:
            return self
        for rule, rule_settings in self.rules.items():
            stage = getattr(rule_settings, "min_stage", None)
            if isinstance(stage, str) and stage not in self.stages:
                close = difflib.get_close_matches(stage, self.stages, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(
                    f"rules.{rule}.min_stage: stage {stage!r} is not in audit.stages{hint}"
                )
        return self


# --------------------------------------------------------------------------- write-back


class TaskRuleSettings(_Section):
    enabled: bool = True
    due_in_days: int = Field(default=7, ge=0, le=365)
    priority: str = "Normal"


def _task_defaults(rule: Any) -> TaskRuleSettings:
    return TaskRuleSettings(due_in_days=rule.task.due_in_days, priority=rule.task.priority)


def _default_task_rules() -> dict[str, TaskRuleSettings]:
    """Each rule's Task defaults, as the rule declares them."""
    return {rule_id: _task_defaults(rule) for rule_id, rule in _rules_by_id().items()}


class FlagSettings(_Section):
    enabled: bool = False
    rules_field: CustomFieldName = "Sfsync_Flags__c"
    extensions_field: CustomFieldName = "Sfsync_Month_Extensions__c"


class WritebackSettings(_Section):
    """Tasks (and optional flags) written back to the org."""

    enabled: bool = True
    tasks: bool = True
    max_tasks_per_run: int = Field(default=500, ge=0)
    # Over the cap: spread the backlog over runs (up to the cap each, errors and the
    # oldest findings first), or refuse the whole plan (exit 2) until --force.
    over_cap: Literal["spread", "refuse"] = "spread"
    fallback_owner_id: RecordId | None = None
    subject_prefix: str = Field(default="[sfsync]", max_length=40)
    task_key_field: CustomFieldName | None = "Sfsync_Key__c"
    open_status: str = "Not Started"
    completed_status: str = "Completed"
    renotify_after_days: int = Field(default=14, ge=0)
    batch_size: int = Field(default=200, ge=1, le=200)
    max_attempts: int = Field(default=5, ge=1)
    retry_max_days: int = Field(default=7, ge=1, le=90)
    rules: dict[str, TaskRuleSettings] = Field(default_factory=_default_task_rules)
    flags: FlagSettings = FlagSettings()

    def rule(self, rule_id: str) -> TaskRuleSettings:
        """``writeback.rules.<rule_id>`` (a rule registered after these settings: its defaults)."""
        found = self.rules.get(rule_id)
        if found is None:
            from sfsync.audit.rules import get_rule

            found = _task_defaults(get_rule(rule_id))
        return found

    @field_validator("rules", mode="before")
    @classmethod
    def _merge_rule_defaults(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        known = list(_rules_by_id())
        unknown = [key for key in value if key not in known]
        if unknown:
            raise ValueError(_unknown_rule(unknown[0], known))
        merged: dict[str, Any] = {k: v.model_dump() for k, v in _default_task_rules().items()}
        for key, overrides in value.items():
            if isinstance(overrides, Mapping):
                merged[key] = {**merged[key], **overrides}
            else:
                merged[key] = overrides
        return merged


# --------------------------------------------------------------------------- schedule, logging


class ScheduleSettings(_Section):
    """When ``sfsync worker`` runs."""

    cron: str = "0 2 * * *"
    timezone: TimeZoneName = "UTC"
    apply: bool = False
    misfire_grace_s: int = Field(default=3600, ge=1)
    health_file: Path | None = None

    @model_validator(mode="after")
    def _parse_cron(self) -> ScheduleSettings:
        from sfsync.cron import cron_trigger

        try:
            cron_trigger(self.cron, self.timezone)
        except ValueError as exc:
            raise ValueError(f"cron: {self.cron!r} is not a cron expression ({exc})") from None
        return self


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "console"] = "auto"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


# --------------------------------------------------------------------------- settings


class Settings(_Section):
    """Everything sfsync can be told. ``Settings()`` is the built-in defaults."""

    salesforce: SalesforceSettings = SalesforceSettings()
    database: DatabaseSettings = DatabaseSettings()
    sync: SyncSettings = SyncSettings()
    # Built when a Settings is (not when this module loads): they read the rule registry.
    audit: AuditSettings = Field(default_factory=AuditSettings)
    writeback: WritebackSettings = Field(default_factory=WritebackSettings)
    schedule: ScheduleSettings = ScheduleSettings()
    logging: LoggingSettings = LoggingSettings()

    def secret_values(self) -> list[str]:
        """Every secret value set, for the log redaction processor."""
        values: list[str] = []
        for section, key in SECRET_KEYS:
            secret = getattr(getattr(self, section), key)
            if isinstance(secret, SecretStr) and secret.get_secret_value():
                values.append(secret.get_secret_value())
        from sqlalchemy.engine import make_url

        url_password = make_url(self.database.url).password
        if url_password:
            values.append(str(url_password))
        return values


@dataclass(frozen=True)
class LoadedSettings:
    """Settings plus where they came from and what was odd about them."""

    settings: Settings
    source: str
    warnings: tuple[str, ...] = field(default=())


# --------------------------------------------------------------------------- loading


def load_settings(
    path: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    cwd: Path | None = None,
) -> LoadedSettings:
    """Load, merge and validate settings; raise :class:`ConfigError` listing every problem."""
    env = os.environ if environ is None else environ
    source, data = _read_source(path, env, cwd or Path.cwd())
    problems: list[str] = []
    env_keys = _apply_env(data, env, problems)
    _resolve_secret_files(data, problems, source)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems.extend(_describe(err, env_keys, data) for err in exc.errors())
        raise ConfigError(_dedupe(problems), source=source) from None
    if problems:
        raise ConfigError(_dedupe(problems), source=source)
    warnings = _flow_warnings(settings)
    if not isinstance(data.get("database"), dict) or data["database"].get("url") is None:
        where = (cwd or Path.cwd()) / "sfsync.db"
        warnings.append(
            f"no database is configured (database.url or SFSYNC_DATABASE_URL): using the "
            f"SQLite file {where}"
        )
    return LoadedSettings(settings, source, tuple(warnings))


T = TypeVar("T")


def _dedupe(items: list[T]) -> list[T]:
    return list(dict.fromkeys(items))


def _read_source(
    path: Path | str | None, env: Mapping[str, str], cwd: Path
) -> tuple[str, dict[str, Any]]:
    if path is not None:
        chosen, origin = Path(path), "--config"
    elif env.get("SFSYNC_CONFIG"):
        chosen, origin = Path(env["SFSYNC_CONFIG"]), "SFSYNC_CONFIG"
    elif (cwd / DEFAULT_CONFIG_PATH).is_file():
        chosen, origin = cwd / DEFAULT_CONFIG_PATH, ""
    else:
        return "built-in defaults", {}
    try:
        text = chosen.read_text(encoding="utf-8")
    except FileNotFoundError:
        via = f" (given by {origin})" if origin else ""
        raise ConfigError([f"config file {str(chosen)!r}{via} does not exist"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([f"config file {str(chosen)!r} cannot be read: {reason}"]) from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError([f"not valid YAML{where}: {problem}"], source=str(chosen)) from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            [f"the top level must be a mapping of sections, got {type(loaded).__name__}"],
            source=str(chosen),
        )
    return str(chosen), loaded


_ENV_IGNORED = {"SFSYNC_CONFIG", "SFSYNC_DATABASE_URL"}
# Variables that are not settings: fault injection (sfsync.chaos) and the test suite's.
_ENV_NOT_SETTINGS = {"SFSYNC_CRASH_AT", "SFSYNC_CHROMIUM"}
_ENV_TEST_PREFIX = "SFSYNC_TEST_"


def _apply_env(
    data: dict[str, Any], env: Mapping[str, str], problems: list[str]
) -> dict[tuple[str, ...], str]:
    """Merge ``SFSYNC_<SECTION>__<KEY>`` overrides into ``data``; return key path -> env name."""
    origin: dict[tuple[str, ...], str] = {}
    overrides: list[tuple[str, tuple[str, ...], str]] = []
    if env.get("SFSYNC_DATABASE_URL"):
        overrides.append(("SFSYNC_DATABASE_URL", ("database", "url"), env["SFSYNC_DATABASE_URL"]))
    for name in sorted(env):
        if not name.startswith("SFSYNC_") or name in _ENV_IGNORED or name in _ENV_NOT_SETTINGS:
            continue
        if name.startswith(_ENV_TEST_PREFIX):
            continue
        if "__" not in name:
            problems.append(_unknown_variable(name))
            continue
        keys = tuple(part.lower() for part in name[len("SFSYNC_") :].split("__"))
        if any(not part for part in keys):
            problems.append(f"{name}: empty key in environment variable name")
            continue
        overrides.append((name, keys, env[name]))
    sections = list(Settings.model_fields)
    for name, keys, raw in overrides:
        if keys[0] not in sections:
            close = difflib.get_close_matches(keys[0], sections, n=1)
            hint = f" (did you mean SFSYNC_{close[0].upper()}__...?)" if close else ""
            problems.append(f"{name}: unknown section {keys[0]!r}{hint}")
            continue
        node = data
        for part in keys[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[keys[-1]] = _env_value(raw)
        origin[keys] = name
    return origin


def _unknown_variable(name: str) -> str:
    known = sorted(_ENV_IGNORED | _ENV_NOT_SETTINGS)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
    hint = (
        f" (did you mean {close[0]}?)"
        if close
        else "; settings are SFSYNC_<SECTION>__<KEY>, e.g. SFSYNC_SYNC__API_FLOOR"
    )
    return f"{name}: unknown variable{hint}"


def _env_value(raw: str) -> Any:
    text = raw.strip()
    if text in ("", "null", "~"):
        return None
    if text[0] in "[{":
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            return raw
    return raw


def _resolve_secret_files(data: dict[str, Any], problems: list[str], source: str) -> None:
    """Replace each ``<secret>_file`` key by the file's content (trailing newline stripped)."""
    for section, key in SECRET_KEYS:
        node = data.get(section)
        if not isinstance(node, dict):
            continue
        file_key = f"{key}_file"
        if node.get(file_key) is None:
            node.pop(file_key, None)
            continue
        path_value = node.pop(file_key)
        where = f"{section}.{file_key}"
        if node.get(key) is not None:
            problems.append(f"{where}: both {section}.{key} and {file_key} are set; keep one")
            continue
        path = Path(str(path_value)).expanduser()
        if not path.is_absolute() and source not in ("built-in defaults",):
            # Relative secret paths are relative to the config file, like docker-compose.
            path = Path(source).parent / path
        try:
            node[key] = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            problems.append(f"{where}: cannot read {str(path)!r}: {exc.strerror or exc}")
        except UnicodeDecodeError:
            # Never the decoder's message: it quotes a byte of the secret.
            problems.append(
                f"{where}: {str(path)!r} is not UTF-8 text (the file must hold the secret "
                "as text, e.g. a PEM key or the client secret on one line)"
            )


def _flow_warnings(settings: Settings) -> list[str]:
    sf = settings.salesforce
    used = _FLOW_SECRETS[sf.auth]
    ignored = []
    for section, key in SECRET_KEYS:
        if section == "salesforce" and key not in used and getattr(sf, key) is not None:
            ignored.append(f"salesforce.{key} is ignored: auth is {sf.auth}")
    return ignored


_SECRET_NAMES = {key for _, key in SECRET_KEYS} | {"url"}
_NESTED_KEY_RE = re.compile(r"^([a-z_]+(?:\.[a-z_]+)*): ")


def _describe(err: Mapping[str, Any], env_keys: dict[tuple[str, ...], str], data: Any) -> str:
    """One line for one validation error: key path, what is wrong, the value (never secrets)."""
    loc = tuple(str(part) for part in err["loc"])
    path = ".".join(loc) or "(top level)"
    env_name = env_keys.get(loc)
    where = f"{path} (from {env_name})" if env_name else path
    kind = err["type"]
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{where}: unknown key{hint}"
    if kind == "missing":
        return f"{where}: required"
    message = str(err["msg"])
    message = message.removeprefix("Value error, ")
    nested = _NESTED_KEY_RE.match(message)
    if nested and kind == "value_error":
        # A model-level check names its own key ("cron: ..."): fold it into the path.
        path = f"{path}.{nested.group(1)}" if loc else nested.group(1)
        where = f"{path} (from {env_name})" if env_name else path
        message = message[nested.end() :]
    secret = any(part in _SECRET_NAMES for part in loc)
    if not secret and kind not in ("value_error", "assertion_error") and "input" in err:
        shown = err["input"]
        if isinstance(shown, str | int | float | bool) or shown is None:
            message += f" (got {shown!r})"
    return f"{where}: {message}"


def _sub_problem(rule_id: str, model: type[BaseModel], err: Mapping[str, Any]) -> str:
    """One problem of a rule's settings, as ``<rule>.<key>: <what>`` (never a secret)."""
    loc = ".".join(str(part) for part in err["loc"])
    path = f"{rule_id}.{loc}" if loc else rule_id
    if err["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(err["loc"][-1]), list(model.model_fields), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{path}: unknown key{hint}"
    message = str(err["msg"]).removeprefix("Value error, ")
    shown = err.get("input")
    if err["type"] != "value_error" and isinstance(shown, str | int | float | bool):
        message += f" (got {shown!r})"
    return f"{path}: {message}"


def _known_keys(loc: tuple[str, ...]) -> list[str]:
    """Field names of the settings model at ``loc`` (for did-you-mean hints)."""
    model: Any = Settings
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return []
        annotation = fields[part].annotation
        model = annotation if isinstance(annotation, type) else None
    fields = getattr(model, "model_fields", None)
    return list(fields) if fields else []
