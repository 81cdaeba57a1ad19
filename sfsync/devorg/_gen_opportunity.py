"""One opportunity at a time: its lifecycle, line items, field history and Tasks.

Each opportunity is planned end first (open or closed, final stage, amount,
line items, when a human last touched it) and then given a history that leads
to that end: a creation row, stage moves (mostly forward, sometimes back, rarely
via a closed stage and back), close-date pushes and pull-ins, amount changes.
The records come out as JSON strings, ready to be written, so nothing about an
opportunity outlives the call that built it.

A few opportunities (every 97th, cycling through :data:`EDGES`) are pinned to
the boundary cases of docs/rules.md: a close date of today, amounts of exactly
50,000, close dates on quarter boundaries, last modifications exactly 14/30/45
days old, whitespace-only Rev Rec Terms...
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Generic, TypeVar

from sfsync.devorg._gen_base import (
    DAY,
    KEY_PREFIXES,
    FiscalCalendar,
    Formatter,
    IdFactory,
    add_months,
    encode,
    month_end,
)
from sfsync.devorg._gen_catalog import (
    ABANDONED,
    CREATE,
    DEVELOP,
    LOST,
    NEGOTIATE,
    PROVE,
    QUALIFY,
    RECORD_TYPE_WEIGHTS,
    RECORD_TYPES,
    REGION_CURRENCIES,
    REGIONS,
    STAGES,
    USD,
    WON,
    Catalog,
    Currency,
    Product,
    UserInfo,
)

T = TypeVar("T")

EDGE_EVERY = 97
EDGE_OFFSET = 13

# Share of opportunities with no OpportunityHistory rows at all.
NO_HISTORY_SHARE = 0.02
# Share whose current CloseDate differs from the last history row's (docs/rules.md allows it).
CLOSE_DATE_DRIFT_SHARE = 0.004
# Share last modified by the integration user (after the last human edit).
INTEGRATION_LAST_SHARE = 0.10

REV_REC_TERMS = ("Ratable", "Upon Delivery", "Milestone", "Upon Acceptance")
# Chance that Rev Rec Terms is blank, by final stage: entered as deals progress.
_REV_REC_BLANK = (0.75, 0.62, 0.52, 0.45, 0.36, 0.10, 0.45, 0.60)
_LEAD_SOURCES = (
    "Web",
    "Phone Inquiry",
    "Partner Referral",
    "Trade Show",
    "Word of mouth",
    "Webinar",
    "Other",
    None,
)
_COMPANIES = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Wonka",
    "Gringotts",
    "Oscorp",
    "Aperture",
    "Black Mesa",
    "Nakatomi",
    "Monarch",
    "Pied Piper",
    "Massive Dynamic",
    "Kruger",
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Tailspin",
    "Adatum",
    "Litware",
    "Proseware",
    "Blue Yonder",
    "Lucerne",
    "Margie",
    "Alpine",
    "Fourth Coffee",
    "Coho",
    "Wingtip",
    "Müller & Söhne",
    "O'Neill",
    'Bayview "Central"',
    "Åland",
    "Smith\\Jones",
)
_COMPANY_KINDS = (
    "Labs",
    "Biotech",
    "Pharma",
    "Diagnostics",
    "University",
    "Hospital",
    "Research",
    "GmbH",
    "Ltd",
    "K.K.",
    "Clinics",
    "Institute",
)
_DEAL_THEMES = (
    "New Lab Build-out",
    "Expansion",
    "Capacity Upgrade",
    "Pilot",
    "Framework Agreement",
    "Replacement",
    "Core Facility",
)
_TASK_SUBJECTS = (
    "Call",
    "Send quote",
    "Follow up on proposal",
    "Schedule demo",
    "Confirm budget",
    "Send contract",
)


# StageName, Probability and ForecastCategory of a history row, per stage.
_STAGE_HISTORY_JSON = [
    f'"StageName":{encode(st.name)},"Probability":{st.probability!r},'
    f'"ForecastCategory":{encode(st.forecast_category)}'
    for st in STAGES
]


def _number(value: float | None) -> str:
    """A JSON number (``repr`` of a float is what json.dumps writes), or null."""
    return "null" if value is None else repr(value)


class _Weighted(Generic[T]):
    """A weighted choice with the cumulative table computed once."""

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        self.items = list(items)
        self.cumulative = list(accumulate(weights))
        self.total = self.cumulative[-1]

    def pick(self, rng: random.Random) -> T:
        return self.items[bisect.bisect(self.cumulative, rng.random() * self.total)]


@dataclass(frozen=True)
class Edge:
    """An opportunity pinned to a boundary case. ``close`` names an anchor date."""

    name: str
    stage: int
    close: str | None = None
    amount: int | None = None
    instrument: bool | None = None
    last_human_days: int | None = None
    integration_days: int | None = None
    rev_rec: str | None = None
    history: bool = True


EDGES = (
    Edge("close_today", DEVELOP, close="today", amount=80_000),
    Edge("close_prev_quarter_end", QUALIFY, close="prev_q_end", amount=5_000, instrument=False),
    Edge("close_quarter_start", PROVE, close="q0_start", amount=60_000),
    Edge("close_quarter_end", NEGOTIATE, close="q0_end", amount=60_000, last_human_days=10),
    Edge("close_next_quarter_start", DEVELOP, close="q1_start", amount=60_000),
    Edge("amount_50000_past", QUALIFY, close="yesterday", amount=50_000, instrument=False),
    Edge("amount_50001_past", QUALIFY, close="yesterday", amount=50_001, instrument=False),
    Edge("stale_14_k0", QUALIFY, close="q0_end", amount=60_000, last_human_days=14),
    Edge("stale_15_k0", QUALIFY, close="q0_end", amount=60_000, last_human_days=15),
    Edge("stale_30_k1", DEVELOP, close="q1_mid", amount=60_000, last_human_days=30),
    Edge("stale_31_k1", DEVELOP, close="q1_mid", amount=60_000, last_human_days=31),
    Edge("stale_45_k2", PROVE, close="q2_mid", amount=60_000, last_human_days=45),
    Edge("stale_46_k2", PROVE, close="q2_mid", amount=60_000, last_human_days=46),
    Edge("stale_100_k3", QUALIFY, close="q3_mid", amount=60_000, last_human_days=100),
    Edge("rev_rec_whitespace", PROVE, close="q1_mid", instrument=True, rev_rec="   "),
    Edge("rev_rec_empty", NEGOTIATE, close="q1_mid", instrument=True, rev_rec=""),
    Edge(
        "integration_last",
        QUALIFY,
        close="q1_mid",
        amount=90_000,
        last_human_days=60,
        integration_days=2,
    ),
    Edge("no_history", PROVE, amount=70_000, history=False),
)


def edge_for(index: int) -> Edge | None:
    """The boundary case the ``index``-th opportunity (from 0) is pinned to, if any."""
    if index % EDGE_EVERY != EDGE_OFFSET:
        return None
    return EDGES[(index // EDGE_EVERY) % len(EDGES)]


@dataclass
class Built:
    """One opportunity's records, JSON-encoded."""

    opportunity: str
    line_items: list[str]
    history: list[str]
    tasks: list[str]


class OpportunityStream:
    """Builds opportunity after opportunity from one seeded random stream."""

    def __init__(
        self,
        rng: random.Random,
        fmt: Formatter,
        catalog: Catalog,
        *,
        as_of_day: int,
        horizon: int,
        fiscal: FiscalCalendar,
        multi_currency: bool,
    ) -> None:
        self.rng = rng
        self.fmt = fmt
        self.catalog = catalog
        self.as_of_day = as_of_day
        self.horizon = horizon
        self.fiscal = fiscal
        self.multi_currency = multi_currency
        self.ids = {
            name: IdFactory(KEY_PREFIXES[name])
            for name in ("Opportunity", "OpportunityLineItem", "OpportunityHistory", "Task")
        }
        q0 = fiscal.quarter(as_of_day)
        self.anchors = {
            "today": as_of_day,
            "yesterday": as_of_day - 1,
            "prev_q_end": fiscal.quarter_end(q0 - 1),
            "q0_start": fiscal.quarter_start(q0),
            "q0_end": fiscal.quarter_end(q0),
            "q1_start": fiscal.quarter_start(q0 + 1),
            "q1_mid": fiscal.quarter_start(q0 + 1) + 40,
            "q2_mid": fiscal.quarter_start(q0 + 2) + 40,
            "q3_mid": fiscal.quarter_start(q0 + 3) + 40,
        }
        self._record_types = _Weighted(range(len(RECORD_TYPES)), RECORD_TYPE_WEIGHTS)
        self._currencies = {
            region: _Weighted(items, weights)
            for region, (items, weights) in REGION_CURRENCIES.items()
        }
        self._open_stages = _Weighted(range(CREATE, NEGOTIATE + 1), (18, 26, 22, 20, 14))
        self._closed_stages = _Weighted((WON, LOST, ABANDONED), (35, 45, 20))
        self._start_stages = _Weighted((CREATE, QUALIFY, DEVELOP), (75, 20, 5))
        self._won_peaks = _Weighted((NEGOTIATE, PROVE, DEVELOP), (70, 25, 5))
        self._item_counts = _Weighted(range(5), (35, 22, 20, 13, 10))
        self._other_families = [
            p for fam, ps in catalog.products_by_family.items() if fam != "Instrument" for p in ps
        ]
        self._instruments = catalog.products_by_family["Instrument"]

    # -- small draws ---------------------------------------------------------

    def _time_of_day(self) -> int:
        """Seconds into a (UTC) working day."""
        return self.rng.randrange(6 * 3600, 20 * 3600)

    def _editor(self, owner: UserInfo) -> str:
        """Who made a human edit: mostly the owner, else the manager or a colleague."""
        r = self.rng.random()
        if r < 0.8:
            return owner.id
        if r < 0.9 and owner.manager is not None:
            return owner.manager.id
        return self.rng.choice(self.catalog.active_reps).id

    def _round_amount(self, usd: float, currency: Currency) -> float:
        step = 10 if usd < 10_000 else 100 if usd < 100_000 else 1_000
        if currency.decimal_places == 0:
            step *= 100
        value = usd * currency.rate
        return float(max(step, round(value / step) * step))

    def _rev_rec(self, final_stage: int) -> str | None:
        rng = self.rng
        if rng.random() >= _REV_REC_BLANK[final_stage]:
            return rng.choice(REV_REC_TERMS)
        r = rng.random()
        return None if r < 0.7 else "" if r < 0.85 else rng.choice((" ", "  ", " \t "))

    def _climb(self, start: int, top: int) -> list[int]:
        path = [start]
        stage = start
        while stage < top:
            stage += 2 if stage + 2 <= top and self.rng.random() < 0.15 else 1
            path.append(stage)
        return path

    def _initial_close_day(self, created_day: int) -> int:
        rng = self.rng
        day = created_day + max(7, min(400, int(rng.lognormvariate(math.log(60), 0.6))))
        r = rng.random()
        if r < 0.35:
            return month_end(day)
        if r < 0.47:
            return self.fiscal.quarter_end(self.fiscal.quarter(day))
        if r < 0.50:
            return self.fiscal.quarter_start(self.fiscal.quarter(day) + 1)
        return day

    def _changed_close_day(self, close_day: int, today: int) -> int:
        """A rep edits the close date on ``today``: a push, a move within the month, a pull-in."""
        rng = self.rng
        r = rng.random()
        if close_day < today or r < 0.32:
            months = 1 if rng.random() < 0.65 else rng.randint(2, 5)
            new = add_months(close_day, months)
            while new < today:
                new = add_months(new, 1)
            return month_end(new) if rng.random() < 0.3 else new
        last = month_end(close_day)
        if r < 0.64 and close_day < last:
            return rng.randint(close_day + 1, last)
        earliest = max(today, close_day - 75)
        if earliest < close_day:
            return rng.randint(earliest, close_day - 1)
        return add_months(close_day, 1)

    # -- one opportunity -----------------------------------------------------

    def build(self, index: int) -> Built:
        rng = self.rng
        fmt = self.fmt
        cat = self.catalog
        as_of = self.as_of_day
        horizon = self.horizon
        edge = edge_for(index)
        opp_id = self.ids["Opportunity"].new()

        # Who and what.
        if cat.inactive_reps and rng.random() < 0.05:
            owner = rng.choice(cat.inactive_reps)
        else:
            owner = rng.choice(cat.active_reps)
        region = owner.region if rng.random() < 0.9 else rng.choice(REGIONS)
        rt_index = self._record_types.pick(rng)
        currency = self._currencies[region].pick(rng)  # drawn either way: same org, USD-only
        if not self.multi_currency:
            currency = USD
        age = 1 + int(1094 * rng.random() ** 1.15)
        created = (as_of - age) * DAY + self._time_of_day()
        p_open = (
            0.95
            if age < 45
            else 0.75
            if age < 120
            else 0.42
            if age < 240
            else 0.15
            if age < 365
            else 0.035
        )
        is_open = rng.random() < p_open
        final = self._open_stages.pick(rng) if is_open else self._closed_stages.pick(rng)
        n_items = self._item_counts.pick(rng)
        instrument = n_items > 0 and rng.random() < 0.4615
        rev_rec = self._rev_rec(final)
        has_history = rng.random() >= NO_HISTORY_SHARE
        by_integration = rng.random() < INTEGRATION_LAST_SHARE
        drift = rng.random() < CLOSE_DATE_DRIFT_SHARE
        amount_usd: float | None
        if n_items == 0 and rng.random() < 0.15:
            amount_usd = None
        elif rng.random() < 0.012:
            amount_usd = 50_000.0
            currency = USD
        else:
            amount_usd = rng.lognormvariate(math.log(26_000), 1.05) * (2.2 if instrument else 1)
            amount_usd = min(5_000_000.0, max(500.0, amount_usd))

        last_human_days: int | None = None
        integration_days: int | None = None
        forced_close: int | None = None
        if edge is not None:
            is_open, final, rt_index, currency = True, edge.stage, 0, USD
            has_history, by_integration, drift = edge.history, False, False
            if edge.instrument is not None:
                instrument = edge.instrument
                n_items = max(n_items, 1) if instrument else n_items
            if edge.amount is not None:
                amount_usd = float(edge.amount)
            elif amount_usd is None:
                amount_usd = 40_000.0
            if edge.rev_rec is not None:
                rev_rec = edge.rev_rec
            last_human_days = edge.last_human_days
            integration_days = edge.integration_days
            by_integration = integration_days is not None
            if edge.close is not None:
                forced_close = self.anchors[edge.close]
            if last_human_days is not None and created >= (as_of - last_human_days) * DAY:
                created = (as_of - last_human_days - rng.randint(20, 300)) * DAY
                created += self._time_of_day()

        # When it ended (closed) or when a human last touched it (open).
        created_day = created // DAY
        close_time: int | None = None
        if is_open:
            days = last_human_days
            if days is None:
                r = rng.random()
                days = (
                    rng.randint(1, 14)
                    if r < 0.55
                    else rng.randint(15, 30)
                    if r < 0.73
                    else rng.randint(31, 60)
                    if r < 0.85
                    else rng.randint(61, 180)
                    if r < 0.94
                    else rng.randint(181, 720)
                )
            if as_of - days <= created_day:
                last_human = created  # never edited since it was created
            else:
                last_human = (as_of - days) * DAY + self._time_of_day()
            if last_human_days is not None or rng.random() < 0.65:
                end = last_human
            else:  # the last edit touched untracked fields only
                end = last_human - rng.randrange(min(last_human - created, 60 * DAY) + 1)
        else:
            cycle = int(rng.lognormvariate(math.log(75), 0.7) * DAY)
            close_time = created + max(3600, cycle)
            if close_time > horizon:
                close_time = created + rng.randrange(60, horizon - created)
            end = close_time
            last_human = close_time
            if rng.random() < 0.3:
                last_human = min(horizon, close_time + rng.randrange(3600, 90 * DAY))

        # The stage path, from the creation row to the final stage.
        start = self._start_stages.pick(rng)
        if is_open:
            start = min(start, final)
            path = self._climb(start, final)
            if final >= DEVELOP and rng.random() < 0.005:
                path += [LOST, final]  # closed by mistake, reopened
        else:
            if final == WON:
                top = self._won_peaks.pick(rng) if rng.random() >= 0.03 else start
            elif final == LOST:
                top = rng.randint(start, NEGOTIATE) if start <= NEGOTIATE else start
            else:
                top = rng.randint(start, max(start, DEVELOP))
            path = self._climb(start, max(start, top))
            if rng.random() < 0.01:
                path += [LOST, NEGOTIATE]  # lost, reopened, then closed for good
            path.append(final)
        if len(path) > 2 and rng.random() < 0.06:
            at = rng.randrange(1, len(path) - 1)
            if CREATE < path[at] <= NEGOTIATE:
                path[at + 1 : at + 1] = [path[at] - 1, path[at]]  # a step back, then on

        # Changes other than stage moves: close dates and amounts.
        duration_days = (end - created) / DAY
        extra = int(rng.expovariate(1 / (0.5 + min(duration_days, 540) / 60)))
        extra = min(extra, 14)
        n_close = sum(rng.random() < 0.6 for _ in range(extra))
        if amount_usd is None:
            n_close = extra  # an amount that stays null never changes
        n_amount = extra - n_close
        kinds = ["S"] * (len(path) - 1) + ["D"] * n_close + ["A"] * n_amount
        if is_open:
            rng.shuffle(kinds)
        else:
            kinds.pop(0)  # the closing move goes last
            rng.shuffle(kinds)
            kinds.append("S")
        if forced_close is not None:
            kinds.append("F")
        if end - created - 1 < len(kinds):
            # No time for changes: created at its final stage, never changed.
            path = [final]
            kinds, n_amount = [], 0
        if kinds:
            times = sorted(rng.sample(range(created + 1, end), len(kinds) - 1))
            times.append(end)
        else:
            times = []

        # Amounts, from the final value backwards.
        amount_values: list[float | None]
        if amount_usd is None:
            amount_values = [None] * (n_amount + 1)
        else:
            final_amount = self._round_amount(amount_usd, currency)
            if edge is not None and edge.amount is not None:
                final_amount = float(edge.amount)
            amount_values = [final_amount]
            value = amount_usd
            for _ in range(n_amount):
                value *= rng.lognormvariate(0, 0.35)
                candidate = self._round_amount(value, currency)
                if candidate == amount_values[-1]:
                    candidate += self._round_amount(600, currency)
                amount_values.append(candidate)
            amount_values.reverse()
            if n_amount and rng.random() < 0.15:
                amount_values[0] = None  # created without an amount

        # Replay the changes as OpportunityHistory rows.
        owner_id = owner.id
        creator = (
            owner_id
            if rng.random() < 0.85
            else (cat.integration_user_id if rng.random() < 0.2 else self._editor(owner))
        )
        history: list[str] = []
        hist_ids = self.ids["OpportunityHistory"]
        currency_code = currency.iso_code
        stage = path[0]
        close_day = self._initial_close_day(created_day)
        amount = amount_values[0]
        path_pos = 0
        amount_pos = 0
        last_stage_change = created
        last_amount_change = created
        last_edit_by = creator

        currency_part = f'"CurrencyIsoCode":"{currency_code}",' if self.multi_currency else ""

        def row(when: int, by: str, prev_amount: float | None, prev_close: int | None) -> None:
            # Hand-formatted (every value is an id, a date, a number or a fixed
            # stage name): history is most of the file, and this is ~3x faster
            # than json.dumps. The tests parse it back.
            st = STAGES[stage]
            stamp = fmt.stamp(when)
            prev_close_json = "null" if prev_close is None else f'"{fmt.day(prev_close)}"'
            expected = "null" if amount is None else repr(round(amount * st.probability / 100, 2))
            history.append(
                f'{{"Id":"{hist_ids.new()}","OpportunityId":"{opp_id}",'
                f"{_STAGE_HISTORY_JSON[stage]},"
                f'"CloseDate":"{fmt.day(close_day)}","Amount":{_number(amount)},'
                f'"ExpectedRevenue":{expected},"PrevAmount":{_number(prev_amount)},'
                f'"PrevCloseDate":{prev_close_json},'
                f'{currency_part}"IsDeleted":false,"CreatedDate":"{stamp}",'
                f'"CreatedById":"{by}","SystemModstamp":"{stamp}"}}'
            )

        if has_history:
            row(created, creator, None, None)
        for kind, when in zip(kinds, times, strict=True):
            prev_amount, prev_close = amount, close_day
            today = when // DAY
            if kind == "S":
                path_pos += 1
                stage = path[path_pos]
                last_stage_change = when
                if STAGES[stage].is_closed and rng.random() < 0.75:
                    close_day = today
            elif kind == "D":
                close_day = self._changed_close_day(close_day, today)
            elif kind == "A":
                amount_pos += 1
                amount = amount_values[amount_pos]
                last_amount_change = when
            else:
                assert forced_close is not None
                if forced_close == close_day:
                    continue
                close_day = forced_close
            if (
                kind in "SA"
                and close_day < today
                and not STAGES[stage].is_closed
                and rng.random() < (0.8 if when == times[-1] else 0.25)
            ):
                close_day = self._changed_close_day(close_day, today)  # overdue: fix it too
            last_edit_by = self._editor(owner)
            if has_history:
                row(when, last_edit_by, prev_amount, prev_close)
        if drift and has_history and kinds:
            close_day += rng.randint(1, 40)
        if not kinds and forced_close is not None:
            close_day = forced_close

        # Line items: their total is the Amount, as Salesforce computes it.
        line_items, lead_product = self._line_items(
            opp_id,
            n_items if amount is not None else 0,
            instrument,
            amount,
            currency,
            created=last_amount_change
            if last_amount_change > created
            else min(horizon, created + rng.randrange(60, 3600)),
            owner_id=owner_id,
            close_day=close_day,
        )
        name = self._opportunity_name(lead_product, rt_index)

        # Last modification: the last human edit, perhaps followed by the integration user.
        modified, modified_by = last_human, self._editor(owner)
        if last_human == (times[-1] if times else created):
            modified_by = last_edit_by  # the last tracked change was the last edit
        if by_integration:
            if integration_days is not None:
                later = (as_of - integration_days) * DAY + self._time_of_day()
            elif horizon - last_human > 60:
                later = last_human + rng.randrange(60, horizon - last_human)
                if is_open:
                    later = min(later, last_human + rng.randrange(60, 40 * DAY))
            else:
                later = last_human
            if later > last_human:
                modified, modified_by = min(later, horizon), cat.integration_user_id
        modstamp = modified
        if rng.random() < 0.15:
            modstamp = min(horizon, modified + rng.randrange(1, 20 * DAY))

        st = STAGES[stage]
        developer_name = RECORD_TYPES[rt_index][0]
        opportunity: dict[str, Any] = {
            "Id": opp_id,
            "IsDeleted": False,
            "Name": name,
            "RecordTypeId": cat.record_type_ids[rt_index],
            "Type": "Renewal"
            if developer_name == "Renewal"
            else "Existing Business"
            if rng.random() < 0.35
            else "New Business",
            "LeadSource": rng.choice(_LEAD_SOURCES),
            "StageName": st.name,
            "Probability": st.probability,
            "ForecastCategory": st.forecast_category,
            "ForecastCategoryName": st.forecast_category_name,
            "IsClosed": st.is_closed,
            "IsWon": st.is_won,
            "CloseDate": fmt.day(close_day),
            "Amount": amount,
        }
        if self.multi_currency:
            opportunity["CurrencyIsoCode"] = currency_code
        opportunity.update(
            {
                "OwnerId": owner_id,
                "HasOpportunityLineItem": bool(line_items),
                "Region__c": region,
                "Rev_Rec_Terms__c": rev_rec,
                "LastStageChangeDate": fmt.stamp(last_stage_change),
                "CreatedDate": fmt.stamp(created),
                "CreatedById": creator,
                "LastModifiedDate": fmt.stamp(modified),
                "LastModifiedById": modified_by,
                "SystemModstamp": fmt.stamp(modstamp),
            }
        )
        tasks = self._tasks(opp_id, owner_id, created, close_day) if rng.random() < 0.03 else []
        return Built(encode(opportunity), line_items, history, tasks)

    def _opportunity_name(self, lead_product: Product | None, rt_index: int) -> str:
        rng = self.rng
        company = f"{rng.choice(_COMPANIES)} {rng.choice(_COMPANY_KINDS)}"
        if RECORD_TYPES[rt_index][0] == "Renewal":
            return f"{company} - Service Renewal"
        if lead_product is not None:
            return f"{company} - {lead_product.name}"
        return f"{company} - {rng.choice(_DEAL_THEMES)}"

    def _line_items(
        self,
        opp_id: str,
        count: int,
        instrument: bool,
        amount: float | None,
        currency: Currency,
        *,
        created: int,
        owner_id: str,
        close_day: int,
    ) -> tuple[list[str], Product | None]:
        """The line items (JSON) and the product of the first one."""
        if count == 0 or amount is None:
            return [], None
        rng = self.rng
        fmt = self.fmt
        scale = 10**currency.decimal_places
        total_minor = round(amount * scale)
        products: list[Product] = []
        for n in range(count):
            if n == 0 and instrument:
                products.append(rng.choice(self._instruments))
            else:
                products.append(rng.choice(self._other_families))
        quantities = [
            rng.randint(1, 3)
            if p.family == "Instrument"
            else rng.randint(5, 400)
            if p.family == "Consumable"
            else rng.randint(1, 20)
            for p in products
        ]
        quantities[-1] = 1  # the last line takes the rounding remainder
        shares = [rng.uniform(0.5, 1.5) for _ in products]
        if instrument:
            shares[0] *= 3
        weight = sum(shares)
        unit_prices = []
        spent = 0
        for share, quantity in zip(shares[:-1], quantities[:-1], strict=True):
            unit = max(1, round(total_minor * share / weight / quantity))
            unit_prices.append(unit)
            spent += unit * quantity
        remainder = total_minor - spent
        if remainder <= 0:
            # Rounding ate the last line: fall back to whole-line splits.
            quantities = [1] * count
            unit_prices = [total_minor // count] * (count - 1)
            remainder = total_minor - sum(unit_prices)
        unit_prices.append(remainder)
        stamp = fmt.stamp(created)
        items_ids = self.ids["OpportunityLineItem"]
        items = []
        for n, (product, quantity, unit) in enumerate(
            zip(products, quantities, unit_prices, strict=True)
        ):
            discount = rng.choice((0, 0, 0, 5, 10, 15, 20))
            list_minor = round(unit * 100 / (100 - discount))
            record: dict[str, Any] = {
                "Id": items_ids.new(),
                "IsDeleted": False,
                "OpportunityId": opp_id,
                "Product2Id": product.id,
                "Name": product.name,
                "ProductCode": product.code,
                "Quantity": float(quantity),
                "UnitPrice": unit / scale,
                "ListPrice": list_minor / scale,
                "TotalPrice": unit * quantity / scale,
                "SortOrder": n + 1,
                "ServiceDate": fmt.day(close_day + rng.randint(0, 60))
                if rng.random() < 0.5
                else None,
            }
            if self.multi_currency:
                record["CurrencyIsoCode"] = currency.iso_code
            record.update(
                {
                    "CreatedDate": stamp,
                    "CreatedById": owner_id,
                    "LastModifiedDate": stamp,
                    "LastModifiedById": owner_id,
                    "SystemModstamp": stamp,
                }
            )
            items.append(encode(record))
        return items, products[0]

    def _tasks(self, opp_id: str, owner_id: str, created: int, close_day: int) -> list[str]:
        rng = self.rng
        fmt = self.fmt
        tasks = []
        for _ in range(1 if rng.random() < 0.8 else 2):
            task_created = created + rng.randrange(60, max(120, self.horizon - created))
            due = task_created // DAY + rng.randint(1, 30)
            completed = due < self.as_of_day and rng.random() < 0.7
            modified = task_created
            if completed:
                modified = min(self.horizon, task_created + rng.randrange(60, 30 * DAY))
            priority = rng.choice(("High", "Normal", "Normal", "Low"))
            tasks.append(
                encode(
                    {
                        "Id": self.ids["Task"].new(),
                        "IsDeleted": False,
                        "WhatId": opp_id,
                        "OwnerId": owner_id,
                        "Subject": rng.choice(_TASK_SUBJECTS),
                        "Status": "Completed" if completed else "Not Started",
                        "Priority": priority,
                        "IsHighPriority": priority == "High",
                        "IsClosed": completed,
                        "ActivityDate": fmt.day(due),
                        "Type": rng.choice(("Call", "Email", "Other")),
                        "Description": None,
                        "CreatedDate": fmt.stamp(task_created),
                        "CreatedById": owner_id,
                        "LastModifiedDate": fmt.stamp(modified),
                        "LastModifiedById": owner_id,
                        "SystemModstamp": fmt.stamp(modified),
                    }
                )
            )
        return tasks


__all__ = ["EDGES", "Built", "Edge", "OpportunityStream", "edge_for"]
