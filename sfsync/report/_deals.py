"""The deals behind the open findings: per rule, who owns them, what they are worth, a link.

One streamed pass over the open findings (with the owner, amount and currency of
their opportunity) gives every total; only the listed rows (the largest amounts,
at most ``ReportLimits.rule_rows`` per rule) are then read in full, with one
``IN`` query per 500 findings.

Amounts are converted to the corporate currency by the audit's own
:class:`~sfsync.audit.CurrencyRates` (docs/rules.md, "big"). Each converted amount
is rounded to cents once, so every total is exactly the sum of the amounts it
covers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, select

from sfsync.audit import CurrencyRates
from sfsync.audit.rules import get_rule, rule_ids
from sfsync.audit.rules.close_date_past import CloseDatePastDetails
from sfsync.audit.rules.close_date_slipping import CloseDateSlippingDetails
from sfsync.audit.rules.missing_rev_rec_terms import MissingRevRecTermsDetails
from sfsync.audit.rules.stale_last_modified import StaleLastModifiedDetails
from sfsync.config import Settings
from sfsync.formats import is_salesforce_id
from sfsync.warehouse.models import Finding, Opportunity, User, table_of

__all__ = [
    "DealValue",
    "FlaggedDeal",
    "PipelineAtRisk",
    "RecordLinks",
    "RuleDeals",
    "ValueColumn",
    "cents",
    "flagged_deals",
    "host_of",
    "record_links",
]

_OPP = table_of(Opportunity)
_USER = table_of(User)
_FINDING = table_of(Finding)

_CENT = Decimal("0.01")
_ZERO = Decimal("0.00")

# Hosts that only log users in: a record URL needs the org's own (My Domain) host.
_GENERIC_LOGIN_HOSTS = frozenset({"login.salesforce.com", "test.salesforce.com"})


# --------------------------------------------------------------------------- links


@dataclass(frozen=True)
class RecordLinks:
    """Where the page links records: ``https://<host>/lightning/r/Opportunity/<id>/view``.

    sfsync's warehouse and run records do not keep the instance the client logged
    in to, so the host comes from the settings: ``salesforce.instance_url``, else
    ``salesforce.login_url`` when it is the org's My Domain. The generic login hosts
    cannot open a record, so with them (and no ``instance_url``) there are no links.
    """

    host: str | None
    source: str

    def opportunity(self, record_id: str) -> str | None:
        if self.host is None or not is_salesforce_id(record_id):
            return None
        return f"https://{self.host}/lightning/r/Opportunity/{record_id}/view"


def host_of(url: str | None) -> str | None:
    """``host[:port]`` of a URL: never its scheme, user name or password."""
    if not url:
        return None
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    return parts.hostname if parts.port in (None, 443) else f"{parts.hostname}:{parts.port}"


def record_links(settings: Settings) -> RecordLinks:
    sf = settings.salesforce
    if sf.instance_url:
        return RecordLinks(host_of(sf.instance_url), "salesforce.instance_url")
    host = host_of(sf.login_url)
    if host is None or host.lower() in _GENERIC_LOGIN_HOSTS:
        return RecordLinks(
            None,
            f"salesforce.login_url is the generic login host {host}; set "
            "salesforce.instance_url (the org's My Domain) to link the deals to Salesforce",
        )
    return RecordLinks(host, "salesforce.login_url")


# --------------------------------------------------------------------------- currency


def cents(value: float | None) -> Decimal | None:
    """A converted amount (:meth:`CurrencyRates.convert`) rounded once, to the cent."""
    return None if value is None else Decimal(value).quantize(_CENT, ROUND_HALF_EVEN)


# --------------------------------------------------------------------------- the rows


@dataclass(frozen=True)
class ValueColumn:
    """A column of a rule's list holding one of the values behind its findings."""

    label: str
    numeric: bool = False  # sorts by number (DealValue.sort)
    words: bool = False  # a number shown in words, which may wrap


@dataclass(frozen=True)
class DealValue:
    """One value behind a finding: the text shown, and what it sorts by (numbers: data-v)."""

    text: str
    sort: int | float | None = None
    lower_bound: bool = False


@dataclass(frozen=True)
class FlaggedDeal:
    """An opportunity with an open finding of one rule, as the list shows it."""

    rule: str
    finding_id: int
    opportunity_id: str
    in_warehouse: bool
    deleted: bool
    name: str | None
    owner_id: str | None
    owner_name: str | None
    stage: str | None
    close_date: date | None
    amount: float | None
    currency: str | None
    converted_amount: Decimal | None
    values: tuple[DealValue, ...]
    url: str | None


@dataclass(frozen=True)
class RuleDeals:
    """The open findings of one rule: the listed deals (largest first) and the full totals."""

    rule: str
    title: str
    columns: tuple[ValueColumn, ...]
    deals: tuple[FlaggedDeal, ...]
    total: int
    at_risk: Decimal
    without_rate: int
    cap: int

    @property
    def listed_at_risk(self) -> Decimal:
        """The sum of the listed deals' converted amounts (what the table's total row says)."""
        return sum((d.converted_amount or _ZERO for d in self.deals), _ZERO)

    @property
    def capped(self) -> bool:
        return len(self.deals) < self.total

    @property
    def cap_statement(self) -> str | None:
        """What the page says when it lists fewer deals than the rule flags."""
        if not self.capped:
            return None
        return (
            f"showing {len(self.deals):,} of {self.total:,} (the largest amounts; at most "
            f"{self.cap:,} per rule); the full list: "
            f"`sfsync findings --rule {self.rule} --format csv`"
        )


@dataclass(frozen=True)
class PipelineAtRisk:
    """Converted amounts of the deals with an open finding, each deal counted once."""

    currency: str | None
    currency_source: str
    deals: int
    total: Decimal
    by_owner: Mapping[str | None, Decimal]
    without_rate: int


# --------------------------------------------------------------------------- the values


def _number(value: int | None, suffix: str = "") -> DealValue:
    return DealValue("—" if value is None else f"{value:,}{suffix}", value)


def _yes_no(value: bool | None) -> DealValue:
    return DealValue("—" if value is None else ("yes" if value else "no"))


def _value_filter(big: bool | None, instrument: bool | None) -> DealValue:
    """Why a deal is in scope of a value-filtered rule: big, with an instrument, or both."""
    if big is None and instrument is None:
        return DealValue("—")
    reasons = [name for name, flag in (("big", big), ("instrument", instrument)) if flag]
    return DealValue(" + ".join(reasons) or "neither")


def _iso_day(value: str | None) -> DealValue:
    return DealValue(value[:10] if value else "—")


def _quarter(k: int | None) -> DealValue:
    if k is None:
        return DealValue("—")
    if k == 0:
        text = "the current quarter"
    elif k < 0:
        text = f"{-k} quarter{'s' if k != -1 else ''} ago"
    else:
        text = f"current quarter +{k}"
    return DealValue(text, k)


def _days_between(start: str | None, end: str | None) -> int | None:
    try:
        return (date.fromisoformat(str(end)[:10]) - date.fromisoformat(str(start)[:10])).days
    except ValueError:
        return None


def _close_date_past(d: Any) -> tuple[DealValue, ...]:
    assert isinstance(d, CloseDatePastDetails)
    return (
        _number(_days_between(d.close_date, d.today)),
        _quarter(d.k),
        _value_filter(d.big, d.has_instrument),
    )


def _stale_last_modified(d: Any) -> tuple[DealValue, ...]:
    assert isinstance(d, StaleLastModifiedDetails)
    last = _iso_day(d.last_human_modified_date)
    if d.last_human_assumed and d.last_human_modified_date:
        last = DealValue(f"{last.text} (first sync)")
    return (
        _number(d.days_since_last_human_modification),
        _number(d.threshold_days),
        last,
        _value_filter(d.big, d.has_instrument),
    )


def _missing_rev_rec_terms(d: Any) -> tuple[DealValue, ...]:
    assert isinstance(d, MissingRevRecTermsDetails)
    return (DealValue(d.field or "—"), DealValue(d.min_stage or "—"), _yes_no(d.has_instrument))


def _close_date_slipping(d: Any) -> tuple[DealValue, ...]:
    assert isinstance(d, CloseDateSlippingDetails)
    extensions = _number(d.month_extensions)
    if d.lower_bound and d.month_extensions is not None:
        extensions = DealValue(f"≥ {d.month_extensions:,}", d.month_extensions, lower_bound=True)
    return (
        extensions,
        _number(d.min_extensions),
        _number(d.days_since_stage_change),
        _number(d.days_open),
    )


_Values = Callable[[Any], tuple[DealValue, ...]]

# Per rule: the columns its list shows from the finding's details (the rule's details class).
_RULE_VALUES: dict[str, tuple[tuple[ValueColumn, ...], _Values]] = {
    "close_date_past": (
        (
            ValueColumn("Days past the close date", numeric=True),
            ValueColumn("Close-date quarter", numeric=True, words=True),
            ValueColumn("Big or instrument"),
        ),
        _close_date_past,
    ),
    "stale_last_modified": (
        (
            ValueColumn("Days since a person updated it", numeric=True),
            ValueColumn("Limit (days)", numeric=True),
            ValueColumn("Last update by a person"),
            ValueColumn("Big or instrument"),
        ),
        _stale_last_modified,
    ),
    "missing_rev_rec_terms": (
        (
            ValueColumn("Rev Rec Terms field"),
            ValueColumn("Required from stage"),
            ValueColumn("Instrument"),
        ),
        _missing_rev_rec_terms,
    ),
    "close_date_slipping": (
        (
            ValueColumn("Month extensions", numeric=True),
            ValueColumn("Limit", numeric=True),
            ValueColumn("Days since stage change", numeric=True),
            ValueColumn("Days open", numeric=True),
        ),
        _close_date_slipping,
    ),
}

# Columns every list has already. A rule without its own columns above (one added since)
# shows the other values its Task lists (``Rule.explain``), labelled as there.
_SHOWN_ANYWAY = frozenset({"Stage", "Close date", "Amount"})


def _explained(rule: str, details: Any) -> dict[str, DealValue]:
    values: dict[str, DealValue] = {}
    for label, value in get_rule(rule).explain(details).values:
        if label in _SHOWN_ANYWAY:
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            values[label] = DealValue(f"{value:,}", value)
        else:
            values[label] = DealValue("—" if value is None or value == "" else str(value))
    return values


# --------------------------------------------------------------------------- the pass


@dataclass
class _Candidate:
    finding_id: int
    opportunity_id: str
    amount: float | None
    currency: str | None
    converted: Decimal | None


@dataclass
class _RuleTally:
    candidates: list[_Candidate] = field(default_factory=list)
    at_risk: Decimal = _ZERO
    without_rate: int = 0

    def listed(self, cap: int) -> list[_Candidate]:
        """The ``cap`` largest converted amounts (none last), then by opportunity id."""
        ranked = sorted(
            self.candidates,
            key=lambda c: (c.converted is None, -(c.converted or _ZERO), c.opportunity_id),
        )
        return ranked[: max(cap, 0)]


def _chunks(values: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def flagged_deals(
    conn: Connection, currency: CurrencyRates, links: RecordLinks, cap: int
) -> tuple[tuple[RuleDeals, ...], PipelineAtRisk]:
    """Per rule, its open findings' deals (the ``cap`` largest) and the pipeline at risk."""
    rules = rule_ids()
    tallies = {rule: _RuleTally() for rule in rules}
    by_owner: dict[str | None, Decimal] = {}
    counted: set[str] = set()
    total, without_rate = _ZERO, 0
    query = (
        select(
            _FINDING.c.id,
            _FINDING.c.rule,
            _FINDING.c.opportunity_id,
            _OPP.c.owner_id,
            _OPP.c.amount,
            _OPP.c.currency_iso_code,
        )
        .select_from(_FINDING.outerjoin(_OPP, _OPP.c.id == _FINDING.c.opportunity_id))
        .where(_FINDING.c.status == "open", _FINDING.c.rule.in_(rules))
        .order_by(_FINDING.c.id)
    )
    result = conn.execute(query.execution_options(yield_per=2000))
    try:
        for row in result:
            amount = None if row.amount is None else float(row.amount)
            converted = cents(currency.convert(amount, row.currency_iso_code))
            no_rate = converted is None and amount is not None
            tally = tallies[row.rule]
            tally.candidates.append(
                _Candidate(row.id, row.opportunity_id, amount, row.currency_iso_code, converted)
            )
            tally.at_risk += converted or _ZERO
            tally.without_rate += no_rate
            if row.opportunity_id not in counted:  # a deal at risk counts once, whatever the rules
                counted.add(row.opportunity_id)
                total += converted or _ZERO
                without_rate += no_rate
                by_owner[row.owner_id] = by_owner.get(row.owner_id, _ZERO) + (converted or _ZERO)
    finally:
        result.close()
    kept = {rule: tally.listed(cap) for rule, tally in tallies.items()}
    rows = _listed_rows(conn, [c.finding_id for listed in kept.values() for c in listed])
    lists = tuple(
        _rule_deals(rule, tallies[rule], [(c, rows[c.finding_id]) for c in kept[rule]], links, cap)
        for rule in rules
    )
    pipeline = PipelineAtRisk(
        currency=currency.corporate,
        currency_source=currency.source,
        deals=len(counted),
        total=total,
        by_owner=by_owner,
        without_rate=without_rate,
    )
    return lists, pipeline


def _listed_rows(conn: Connection, finding_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The findings' details and their opportunity's name, owner, stage and close date."""
    rows: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(sorted(finding_ids), 500):
        query = (
            select(
                _FINDING.c.id,
                _FINDING.c.details,
                _OPP.c.id.label("present"),
                _OPP.c.is_deleted,
                _OPP.c.name,
                _OPP.c.owner_id,
                _USER.c.name.label("owner_name"),
                _OPP.c.stage_name,
                _OPP.c.close_date,
            )
            .select_from(
                _FINDING.outerjoin(_OPP, _OPP.c.id == _FINDING.c.opportunity_id).outerjoin(
                    _USER, _USER.c.id == _OPP.c.owner_id
                )
            )
            .where(_FINDING.c.id.in_(list(chunk)))
        )
        for row in conn.execute(query):
            rows[row.id] = dict(row._mapping)
    return rows


def _rule_deals(
    rule: str,
    tally: _RuleTally,
    listed: Sequence[tuple[_Candidate, Mapping[str, Any]]],
    links: RecordLinks,
    cap: int,
) -> RuleDeals:
    spec = get_rule(rule)
    details = [spec.parse_details(row["details"] or {}) for _, row in listed]
    if rule in _RULE_VALUES:
        columns, extract = _RULE_VALUES[rule]
        values = [extract(d) for d in details]
    else:
        explained = [_explained(rule, d) for d in details]
        labels = list(explained[0]) if explained else []
        columns = tuple(ValueColumn(label) for label in labels)
        values = [tuple(e.get(label, DealValue("—")) for label in labels) for e in explained]
    deals = tuple(
        _deal(rule, candidate, row, row_values, links)
        for (candidate, row), row_values in zip(listed, values, strict=True)
    )
    return RuleDeals(
        rule=rule,
        title=spec.title,
        columns=columns,
        deals=deals,
        total=len(tally.candidates),
        at_risk=tally.at_risk,
        without_rate=tally.without_rate,
        cap=cap,
    )


def _deal(
    rule: str,
    candidate: _Candidate,
    row: Mapping[str, Any],
    values: tuple[DealValue, ...],
    links: RecordLinks,
) -> FlaggedDeal:
    present = row["present"] is not None
    deleted = bool(row["is_deleted"])
    return FlaggedDeal(
        rule=rule,
        finding_id=candidate.finding_id,
        opportunity_id=candidate.opportunity_id,
        in_warehouse=present,
        deleted=deleted,
        name=row["name"],
        owner_id=row["owner_id"],
        owner_name=row["owner_name"],
        stage=row["stage_name"],
        close_date=row["close_date"],
        amount=candidate.amount,
        currency=candidate.currency,
        converted_amount=candidate.converted,
        values=values,
        url=links.opportunity(candidate.opportunity_id) if present and not deleted else None,
    )
