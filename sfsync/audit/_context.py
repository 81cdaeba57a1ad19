"""Everything a rule needs besides the opportunities, resolved and validated once.

An audit first reads the small reference tables (organization, currencies,
record types, stages) and checks the settings against them. Any problem is a
``UsageError`` / ``ConfigError`` (exit 2) raised before a single finding is
touched. The result, :class:`AuditContext`, is immutable and holds plain
Python values that the rule queries bind as parameters.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, case, false, literal, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from sfsync.audit._calendar import quarter_start, start_of_local_day, today_in
from sfsync.config import SEVERITY_RANK, AuditSettings, Settings
from sfsync.errors import ConfigError, UsageError
from sfsync.warehouse.dialect import json_has_key
from sfsync.warehouse.models import (
    CurrencyType,
    Opportunity,
    OpportunityStage,
    Organization,
    RecordType,
    table_of,
)

__all__ = [
    "SEVERITY_RANK",
    "AuditContext",
    "CurrencyRates",
    "audit_settings",
    "build_context",
    "currency_rates",
]


ProfileName = Literal["global", "europe"]

OPP = table_of(Opportunity)
_STAGE = table_of(OpportunityStage)
_ORG = table_of(Organization)
_CURRENCY = table_of(CurrencyType)
_RECORD_TYPE = table_of(RecordType)


def audit_settings(settings: Settings | AuditSettings) -> AuditSettings:
    """Accept the whole settings object or just its ``audit`` section."""
    return settings.audit if isinstance(settings, Settings) else settings


@dataclass(frozen=True)
class CurrencyRates:
    """``CurrencyType`` rates; an org with none is single-currency (amounts as they are).

    ``source`` says where the corporate currency came from (``audit.corporate_currency``,
    ``CurrencyType.IsCorporate``, ``Organization.DefaultCurrencyIsoCode`` or ``not known``).
    """

    rates: dict[str, float]
    corporate: str | None
    corporate_rate: float
    source: str = "not known"

    @property
    def multi_currency(self) -> bool:
        return bool(self.rates)

    def convert(self, amount: float | None, currency: str | None) -> float | None:
        """``amount`` in the corporate currency, as the rules' SQL converts it
        (docs/rules.md, "big"): ``amount / rate(currency) * rate(corporate)``, a record
        without a currency being in the corporate one. None without an amount, or for
        a currency without a rate."""
        if amount is None:
            return None
        if not self.rates:
            return float(amount)
        rate = self.corporate_rate if currency is None else self.rates.get(currency)
        if rate is None:
            return None
        return float(amount) / rate * self.corporate_rate


@dataclass(frozen=True)
class AuditContext:
    """Validated settings plus the org's reference data, as plain bindable values."""

    settings: AuditSettings
    rules: tuple[str, ...]
    as_of: date
    tz: ZoneInfo
    fiscal_year_start_month: int
    fiscal_year_source: str
    currency: CurrencyRates
    sales_record_type_ids: tuple[str, ...]
    stage_ranks: dict[str, int]
    stage_source: str
    closed_stages: tuple[str, ...]

    # ------------------------------------------------------------------ time

    @property
    def created_before(self) -> datetime:
        """Rows created on or before ``as_of`` (business time zone) are before this instant."""
        return start_of_local_day(self.as_of + timedelta(days=1), self.tz)

    def quarter_start(self, k: int) -> date:
        return quarter_start(self.as_of, self.fiscal_year_start_month, k)

    # ------------------------------------------------------------------ profiles

    @property
    def default_profile(self) -> ProfileName:
        return self.settings.profile

    def profiles(self) -> tuple[ProfileName, ...]:
        """The profiles some opportunity can get: the default plus those of the scopes."""
        found: list[ProfileName] = [self.default_profile]
        if self.settings.scope.field is not None:
            for profile in self.settings.scope.profiles.values():
                if profile not in found:
                    found.append(profile)
        return tuple(found)

    def profile_of(self, scope_value: str | None) -> ProfileName:
        """The profile of an opportunity with this scope value (exact match)."""
        if self.settings.scope.field is None or scope_value is None:
            return self.default_profile
        return self.settings.scope.profiles.get(scope_value, self.default_profile)

    def profile_column(self, scope_value: ColumnElement[Any]) -> ColumnElement[Any]:
        """SQL for :meth:`profile_of` of an opportunity's scope value."""
        scope = self.settings.scope
        if scope.field is None or not scope.profiles:
            return literal(self.default_profile)
        by_profile: dict[str, list[str]] = {}
        for value, profile in sorted(scope.profiles.items()):
            if profile != self.default_profile:
                by_profile.setdefault(profile, []).append(value)
        if not by_profile:
            return literal(self.default_profile)
        return case(
            *[(scope_value.in_(values), literal(p)) for p, values in by_profile.items()],
            else_=literal(self.default_profile),
        )

    def profile_predicate(self, profile: ProfileName) -> ColumnElement[bool]:
        """SQL that holds for the opportunities audited with ``profile``."""
        scope = self.settings.scope
        column = OPP.c.scope_value
        if scope.field is None or not scope.profiles:
            return true() if profile == self.default_profile else false()
        mine = sorted(v for v, p in scope.profiles.items() if p == profile)
        others = sorted(v for v, p in scope.profiles.items() if p != profile)
        if profile == self.default_profile:
            if not others:
                return true()
            return or_(column.is_(None), column.not_in(others))
        return column.in_(mine) if mine else false()

    # ------------------------------------------------------------------ stages

    def stages_at_least(self, stage: str) -> list[str]:
        """Stage names ranked at or after ``stage`` (validated to exist)."""
        floor = self.stage_ranks[stage]
        return sorted(name for name, rank in self.stage_ranks.items() if rank >= floor)

    # ------------------------------------------------------------------ settings hash

    def rule_settings(self, rule: str, profile: ProfileName) -> dict[str, Any]:
        """Every effective setting that decides ``rule`` under ``profile``."""
        from sfsync.audit.rules import get_rule  # the rules import this module

        common: dict[str, Any] = {
            "rule": rule,
            "profile": profile,
            "timezone": self.settings.timezone,
        }
        return {**common, **get_rule(rule).hash_inputs(self, profile)}

    def settings_hash(self, rule: str, profile: ProfileName) -> str:
        """sha256 of the canonical JSON of :meth:`rule_settings`."""
        canonical = json.dumps(
            self.rule_settings(rule, profile), sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- building


def build_context(
    conn: Connection,
    settings: AuditSettings,
    *,
    as_of: date | None,
    rules: tuple[str, ...],
) -> AuditContext:
    """Read the reference tables and validate the settings against them (exit 2 on error)."""
    _check_synced(conn)
    tz = ZoneInfo(settings.timezone)
    fiscal_month, fiscal_source = _fiscal_year_start_month(conn, settings)
    stage_ranks, stage_source = _stage_ranks(conn, settings)
    for rule in rules:
        stage = getattr(settings.rule(rule), "min_stage", None)
        if isinstance(stage, str):
            _check_stage(rule, stage, stage_ranks, stage_source)
    _check_fields(conn, settings, rules)
    return AuditContext(
        settings=settings,
        rules=rules,
        as_of=as_of or today_in(tz),
        tz=tz,
        fiscal_year_start_month=fiscal_month,
        fiscal_year_source=fiscal_source,
        currency=currency_rates(conn, settings),
        sales_record_type_ids=_sales_record_type_ids(conn, settings),
        stage_ranks=stage_ranks,
        stage_source=stage_source,
        closed_stages=_closed_stages(conn),
    )


def _check_synced(conn: Connection) -> None:
    """An audit of a warehouse nothing was synced into is a usage error, said as such (not
    as the configuration problems it would otherwise trip over first)."""
    if conn.execute(select(OPP.c.id).limit(1)).first() is not None:
        return
    if conn.execute(select(_STAGE.c.id).limit(1)).first() is not None:
        return  # an org without opportunities, synced: the audit finds nothing
    raise UsageError(
        "the warehouse is empty: run `sfsync sync` first (no Opportunity and no "
        "OpportunityStage has been synced into it)"
    )


def _fiscal_year_start_month(conn: Connection, settings: AuditSettings) -> tuple[int, str]:
    synced = conn.execute(
        select(_ORG.c.fiscal_year_start_month, _ORG.c.id)
        .where(_ORG.c.is_deleted.is_(False), _ORG.c.fiscal_year_start_month.is_not(None))
        .order_by(_ORG.c.id)
        .limit(1)
    ).first()
    if synced is None:
        return settings.fiscal_year_start_month, "config"
    month = int(synced.fiscal_year_start_month)
    if not 1 <= month <= 12:
        raise UsageError(
            f"Organization {synced.id}: FiscalYearStartMonth is {month}, not a month (1-12); "
            "the synced organization record is wrong, so no quarter can be computed"
        )
    return month, "organization"


def _stage_ranks(conn: Connection, settings: AuditSettings) -> tuple[dict[str, int], str]:
    if settings.stages is not None:
        return {name: rank for rank, name in enumerate(settings.stages)}, "audit.stages"
    rows = conn.execute(
        select(_STAGE.c.api_name, _STAGE.c.sort_order).where(
            _STAGE.c.is_deleted.is_(False),
            _STAGE.c.api_name.is_not(None),
            _STAGE.c.sort_order.is_not(None),
        )
    )
    return {row.api_name: int(row.sort_order) for row in rows}, "OpportunityStage.SortOrder"


def _check_stage(rule: str, stage: str, ranks: dict[str, int], source: str) -> None:
    if stage in ranks:
        return
    key = f"audit.rules.{rule}.min_stage"
    if not ranks:
        raise ConfigError(
            [
                f"{key}: stage {stage!r} cannot be ranked: no OpportunityStage is synced "
                "(run `sfsync sync`, or list the stages in audit.stages)"
            ]
        )
    close = difflib.get_close_matches(stage, list(ranks), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    known = ", ".join(sorted(ranks, key=lambda n: ranks[n]))
    raise ConfigError(
        [f"{key}: stage {stage!r} is not one of the org's stages{hint}; from {source}: {known}"]
    )


def _closed_stages(conn: Connection) -> tuple[str, ...]:
    rows = conn.execute(
        select(_STAGE.c.api_name).where(
            _STAGE.c.is_deleted.is_(False),
            _STAGE.c.is_closed.is_(True),
            _STAGE.c.api_name.is_not(None),
        )
    )
    return tuple(sorted({row.api_name for row in rows}))


def _raw_has_key(conn: Connection, name: str) -> ColumnElement[bool]:
    return json_has_key(OPP.c.raw, name, conn.dialect.name)


def _check_fields(conn: Connection, settings: AuditSettings, rules: tuple[str, ...]) -> None:
    """Each configured custom field must appear in some synced opportunity's raw record.

    Salesforce returns every queried field, nulls included, so a field that is
    in no record was never pulled: a typo, or a field the org does not have.
    """
    from sfsync.audit.rules import required_fields  # the rules import this module

    wanted = required_fields(settings, rules)
    if not wanted:
        return
    live = OPP.c.is_deleted.is_(False)
    if conn.execute(select(OPP.c.id).where(live).limit(1)).first() is None:
        return  # nothing synced yet: nothing to audit, nothing to contradict
    problems = []
    for key, name in wanted:
        seen = conn.execute(select(OPP.c.id).where(live, _raw_has_key(conn, name)).limit(1))
        if seen.first() is None:
            problems.append(
                f"{key}: field {name!r} is on no synced Opportunity (check the spelling, "
                "that the org has it and that the integration user can read it)"
            )
    if problems:
        raise ConfigError(problems)


def currency_rates(
    conn: Connection, settings: AuditSettings, *, org_currency: str | None = None
) -> CurrencyRates:
    """The corporate currency and the ``CurrencyType`` rates: ``audit.corporate_currency``
    (which must be one of the org's currencies), else the corporate ``CurrencyType``; a
    single-currency org's amounts are taken as they are, in ``org_currency`` if given."""
    rows = list(
        conn.execute(
            select(_CURRENCY.c.iso_code, _CURRENCY.c.conversion_rate, _CURRENCY.c.is_corporate)
            .where(_CURRENCY.c.is_deleted.is_(False), _CURRENCY.c.iso_code.is_not(None))
            .order_by(_CURRENCY.c.iso_code)
        )
    )
    if not rows:  # a single-currency org
        if settings.corporate_currency:
            return CurrencyRates({}, settings.corporate_currency, 1.0, "audit.corporate_currency")
        if org_currency:
            return CurrencyRates({}, org_currency, 1.0, "Organization.DefaultCurrencyIsoCode")
        return CurrencyRates({}, None, 1.0)
    rates = {
        r.iso_code: float(r.conversion_rate)
        for r in rows
        if r.conversion_rate is not None and r.conversion_rate > 0
    }
    corporate = settings.corporate_currency
    source = "audit.corporate_currency"
    if corporate is None:
        corporate = next((r.iso_code for r in rows if r.is_corporate), None)
        source = "CurrencyType.IsCorporate" if corporate else "not known"
    elif corporate not in rates:
        raise ConfigError(
            [
                f"audit.corporate_currency: {corporate!r} is not one of the org's currencies "
                f"({', '.join(sorted(rates))})"
            ]
        )
    corporate_rate = rates.get(corporate, 1.0) if corporate is not None else 1.0
    return CurrencyRates(rates, corporate, corporate_rate, source)


def _sales_record_type_ids(conn: Connection, settings: AuditSettings) -> tuple[str, ...]:
    names = list(settings.sales_record_types)
    if not names:
        return ()
    rows = conn.execute(
        select(_RECORD_TYPE.c.id).where(
            _RECORD_TYPE.c.is_deleted.is_(False),
            or_(_RECORD_TYPE.c.developer_name.in_(names), _RECORD_TYPE.c.name.in_(names)),
        )
    )
    return tuple(sorted(row.id for row in rows))
