"""What a rule is, and the registry every part of sfsync reads the rules from.

A rule is one module under ``sfsync/audit/rules/`` with one :class:`Rule` subclass
registered by :func:`register`. It declares, in one place:

- its id and title, and its default severity and Task settings;
- its settings model (``audit.rules.<id>``: ``enabled``, ``severity`` and its own
  keys), from which the config validates and documents them;
- the settings that decide it (hashed into every finding);
- its query (one set-based SELECT over the warehouse) and the typed details of a
  match (a frozen dataclass: a misspelt key is a type error), computed from the
  query's columns in SQL (:meth:`Rule.details_sql`, so an audit stores its findings
  without a row passing through Python) and in Python (:meth:`Rule.details`, the
  reference the SQL is tested against, and what a rule without SQL details uses);
- what its Task says: what is wrong, the values seen, how to fix it.

The config, the audit, the write-back and the report all iterate :func:`all_rules`,
so a fifth rule is one new module (plus its tests). This module stays light (no
database code): the config validates rule settings through it.
"""

from __future__ import annotations

import dataclasses
import difflib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from sfsync.config import AuditSettings, Profile, RuleSettings, Severity
from sfsync.errors import UsageError

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.engine import Row

    from sfsync.audit._context import AuditContext, ProfileName
    from sfsync.warehouse.dialect import JsonField

__all__ = [
    "Explanation",
    "Profile",
    "Rule",
    "RuleMatch",
    "RuleSettings",
    "Severity",
    "TaskDefaults",
    "all_rules",
    "check_rule_ids",
    "get_rule",
    "register",
    "registered",
    "rule_ids",
    "select_rules",
]


@dataclass(frozen=True)
class TaskDefaults:
    """``writeback.rules.<id>`` defaults: when a rule's Task is due, and its priority."""

    due_in_days: int = 7
    priority: str = "Normal"


@dataclass(frozen=True)
class Explanation:
    """What a rule's Task says: what is wrong, the values seen (label, value), the fix."""

    what: str
    values: list[tuple[str, Any]]
    fix: str


@dataclass(frozen=True)
class RuleMatch:
    """One opportunity a rule flags, with the profile used and the values seen."""

    rule: str
    opportunity_id: str
    profile: ProfileName
    details: dict[str, Any]


S = TypeVar("S", bound=RuleSettings)
D = TypeVar("D")


class Rule(ABC, Generic[S, D]):
    """One audit rule. Subclasses set the class attributes and implement the methods."""

    id: ClassVar[str]
    title: ClassVar[str]
    # Where the rule stands in summaries and reports (then by id).
    order: ClassVar[int] = 100
    settings_model: ClassVar[type[RuleSettings]]
    details_type: ClassVar[type[Any]]
    task: ClassVar[TaskDefaults] = TaskDefaults()
    # Whether "has instrument" decides the rule (audit.instrument.field must then exist).
    uses_instrument: ClassVar[bool] = False

    # ------------------------------------------------------------------ settings

    def settings(self, audit: AuditSettings) -> S:
        """This rule's settings from ``audit``, as its own settings model."""
        return cast(S, audit.rule(self.id))

    def required_fields(self, audit: AuditSettings) -> list[tuple[str, str]]:
        """``(config key, Opportunity field)`` pairs that synced records must carry."""
        return []

    def hash_inputs(self, ctx: AuditContext, profile: ProfileName) -> dict[str, Any]:
        """Every effective setting that decides this rule under ``profile`` (besides the
        rule id, the profile and the time zone, which every hash includes)."""
        return self.settings(ctx.settings).model_dump(mode="json", exclude={"enabled"})

    # ------------------------------------------------------------------ evaluation

    @abstractmethod
    def query(self, ctx: AuditContext, dialect: str) -> Select[Any]:
        """One row per flagged opportunity, with the values the rule looked at."""

    @abstractmethod
    def details(self, ctx: AuditContext, row: Row[Any]) -> D:
        """The typed details of one flagged row."""

    def details_sql(self, ctx: AuditContext, row: Any, dialect: str) -> list[JsonField] | None:
        """The details :meth:`match` stores, as SQL over the query's columns (``row``: the
        query as a subquery's ``.c``), key for key in the details class's order; None (the
        default): the audit runs :meth:`details` on every row instead."""
        return None

    def match(self, ctx: AuditContext, row: Row[Any]) -> RuleMatch:
        details = self.details(ctx, row)
        stored = {
            f.name: getattr(details, f.name)
            for f in dataclasses.fields(details)  # type: ignore[arg-type]
            if not (f.metadata.get("omit_if_none") and getattr(details, f.name) is None)
        }
        return RuleMatch(self.id, str(row.id), ctx.profile_of(row.scope_value), stored)

    def parse_details(self, stored: Mapping[str, Any]) -> D:
        """Details as a finding stored them (older rows may lack keys: they are None)."""
        names = {f.name for f in dataclasses.fields(self.details_type)}
        known = {k: v for k, v in stored.items() if k in names}
        missing = {n: None for n in names if n not in known}
        return self.details_type(**known, **missing)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ the Task

    @abstractmethod
    def explain(self, details: D) -> Explanation:
        """What the rule's Task says about one finding."""


# --------------------------------------------------------------------------- registry

_RULES: dict[str, Rule[Any, Any]] = {}


def register(rule: Rule[Any, Any]) -> Rule[Any, Any]:
    """Add a rule (in order: the order of reports and summaries)."""
    if rule.id in _RULES:
        raise ValueError(f"rule {rule.id!r} is registered twice")
    _RULES[rule.id] = rule
    return rule


@contextmanager
def registered(rule: Rule[Any, Any]) -> Iterator[Rule[Any, Any]]:
    """A rule registered for the block only (tests, experiments)."""
    register(rule)
    try:
        yield rule
    finally:
        _RULES.pop(rule.id, None)


def all_rules() -> tuple[Rule[Any, Any], ...]:
    """Every registered rule, in ``order`` (then by id)."""
    return tuple(sorted(_RULES.values(), key=lambda r: (r.order, r.id)))


def rule_ids() -> tuple[str, ...]:
    return tuple(rule.id for rule in all_rules())


def get_rule(rule_id: str) -> Rule[Any, Any]:
    try:
        return _RULES[rule_id]
    except KeyError:
        raise KeyError(f"unknown rule {rule_id!r}") from None


# --------------------------------------------------------------------------- choosing rules


def check_rule_ids(rules: Sequence[str], option: str = "--rule") -> list[str]:
    """The ids, deduplicated; an unknown one is a usage error naming it (exit 2)."""
    known = rule_ids()
    for rule in rules:
        if rule not in known:
            close = difflib.get_close_matches(rule, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(
                f"{option}: unknown rule id {rule!r}{hint}; the rules are {', '.join(known)}"
            )
    return list(dict.fromkeys(rules))


def select_rules(settings: AuditSettings, rules: Sequence[str] | None) -> tuple[str, ...]:
    """The rule ids to evaluate, in the registry's order; unknown or disabled ids are exit 2."""
    if rules is None:
        return tuple(r for r in rule_ids() if settings.rule(r).enabled)
    chosen = check_rule_ids(rules)
    for rule in chosen:
        if not settings.rule(rule).enabled:
            raise UsageError(
                f"--rule: rule {rule!r} is disabled (audit.rules.{rule}.enabled is false)"
            )
    return tuple(r for r in rule_ids() if r in chosen)


def required_fields(
    settings: AuditSettings, rules: Sequence[str] | None = None
) -> list[tuple[str, str]]:
    """``(config key, Opportunity field)`` pairs the audit of ``rules`` (default: the enabled
    ones) reads: each rule's own, the instrument field when a rule uses it, the scope field."""
    chosen = select_rules(settings, None) if rules is None else tuple(rules)
    wanted: list[tuple[str, str]] = []
    for rule in chosen:
        wanted += [w for w in get_rule(rule).required_fields(settings) if w not in wanted]
    uses_instrument = any(get_rule(r).uses_instrument for r in chosen)
    if settings.instrument.field is not None and uses_instrument:
        wanted.append(("audit.instrument.field", settings.instrument.field))
    if settings.scope.field is not None and chosen:
        wanted.append(("audit.scope.field", settings.scope.field))
    return wanted
