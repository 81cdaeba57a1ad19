"""`sfsync devorg generate`: a deterministic, consistent, realistic synthetic org."""

from __future__ import annotations

import itertools
import json
import random
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sfsync.devorg._gen_base import (
    DAY,
    KEY_PREFIXES,
    FiscalCalendar,
    Formatter,
    IdFactory,
    stamp_reference,
    to_base62,
    to_epoch_day,
)
from sfsync.devorg._gen_opportunity import EDGES
from sfsync.devorg.generate import (
    CUSTOM_FIELDS,
    OBJECT_ORDER,
    GenerateStats,
    generate_command,
    generate_org,
)
from sfsync.formats import id15_to_18, is_salesforce_id, parse_datetime

AS_OF = date(2024, 8, 15)
N = 3_000
SEED = 7

DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000\+0000$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATETIME_FIELDS = {
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
    "LastStageChangeDate",
}
DATE_FIELDS = {"CloseDate", "PrevCloseDate", "ServiceDate", "ActivityDate"}
SYSTEM_FIELDS = {
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
    "IsDeleted",
}
REFERENCES = {
    "OwnerId": "User",
    "ManagerId": "User",
    "CreatedById": "User",
    "LastModifiedById": "User",
    "RecordTypeId": "RecordType",
    "OpportunityId": "Opportunity",
    "Product2Id": "Product2",
    "WhatId": "Opportunity",
}


@pytest.fixture(scope="module")
def org_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("org") / "org.json"
    generate_org(opportunities=N, seed=SEED, out=out, as_of=AS_OF)
    return out


@pytest.fixture(scope="module")
def org(org_file: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(org_file.read_text(encoding="ascii"))
    return data


def records(org: dict[str, Any], name: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = org["records"][name]
    return result


def all_records(org: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name in OBJECT_ORDER:
        for record in records(org, name):
            yield name, record


# -- a tiny oracle of docs/rules.md (global profile, first sync) ------------------


def fiscal_quarter(d: date, start_month: int = 1) -> int:
    return (d.year * 12 + d.month - 1 - (start_month - 1)) // 3


def blank(value: str | None) -> bool:
    return value is None or not value.strip()


def month_extensions(close_dates: list[date]) -> int:
    return sum((b.year, b.month) > (a.year, a.month) for a, b in itertools.pairwise(close_dates))


class Oracle:
    """Which open opportunities each rule flags, computed the simplest way."""

    def __init__(self, org: dict[str, Any], today: date) -> None:
        self.today = today
        self.rates = {c["IsoCode"]: c["ConversionRate"] for c in records(org, "CurrencyType")}
        self.rank = {s["ApiName"]: s["SortOrder"] for s in records(org, "OpportunityStage")}
        family = {p["Id"]: p["Family"] for p in records(org, "Product2")}
        self.instrument = {
            li["OpportunityId"]
            for li in records(org, "OpportunityLineItem")
            if family[li["Product2Id"]] == "Instrument"
        }
        self.history: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in records(org, "OpportunityHistory"):
            self.history[row["OpportunityId"]].append(row)
        self.fy_start = records(org, "Organization")[0]["FiscalYearStartMonth"]
        self.open = [o for o in records(org, "Opportunity") if not o["IsClosed"]]

    def k(self, opp: dict[str, Any]) -> int:
        close = date.fromisoformat(opp["CloseDate"])
        return fiscal_quarter(close, self.fy_start) - fiscal_quarter(self.today, self.fy_start)

    def big(self, opp: dict[str, Any]) -> bool:
        rate = self.rates.get(opp.get("CurrencyIsoCode", "USD"), 1.0)
        return bool((opp["Amount"] or 0) / rate > 50_000)

    def has_instrument(self, opp: dict[str, Any]) -> bool:
        return opp["Id"] in self.instrument

    def close_date_past(self, opp: dict[str, Any]) -> bool:
        past = date.fromisoformat(opp["CloseDate"]) < self.today
        k = self.k(opp)
        return past and (k < 0 or (k == 0 and (self.big(opp) or self.has_instrument(opp))))

    def stale_last_modified(self, opp: dict[str, Any]) -> bool:
        if not (self.big(opp) or self.has_instrument(opp)):
            return False
        if self.rank[opp["StageName"]] < self.rank["Qualify"]:
            return False
        age = (self.today - date.fromisoformat(opp["LastModifiedDate"][:10])).days
        k = self.k(opp)
        return age > (14 if k <= 0 else 30 if k == 1 else 45)

    def missing_rev_rec_terms(self, opp: dict[str, Any]) -> bool:
        return (
            self.has_instrument(opp)
            and self.rank[opp["StageName"]] >= self.rank["Prove"]
            and blank(opp["Rev_Rec_Terms__c"])
        )

    def extensions(self, opp: dict[str, Any]) -> int:
        rows = sorted(self.history[opp["Id"]], key=lambda r: (r["CreatedDate"], r["Id"]))
        if not rows:
            return 0
        dates = [date.fromisoformat(r["CloseDate"]) for r in rows]
        return month_extensions([*dates, date.fromisoformat(opp["CloseDate"])])

    def close_date_slipping(self, opp: dict[str, Any]) -> bool:
        return self.extensions(opp) >= 3

    def share(self, rule: str) -> float:
        check = getattr(self, rule)
        return sum(1 for o in self.open if check(o)) / len(self.open)


@pytest.fixture(scope="module")
def oracle(org: dict[str, Any]) -> Oracle:
    return Oracle(org, AS_OF)


def test_the_oracle_agrees_with_the_worked_example_of_month_extensions() -> None:
    """docs/rules.md example 14: 2017-03-15 → 03-30 → 05-10 → 04-20 → 06-01 → 2018-01-05 is 3."""
    dates = ["2017-03-15", "2017-03-30", "2017-05-10", "2017-04-20", "2017-06-01", "2018-01-05"]
    assert month_extensions([date.fromisoformat(d) for d in dates]) == 3


# -- building blocks ---------------------------------------------------------


@pytest.mark.parametrize("prefix", sorted(set(KEY_PREFIXES.values())))
def test_fast_ids_equal_id15_to_18(prefix: str) -> None:
    """IdFactory's shortcut gives exactly id15_to_18(prefix + pod + 0 + base62 counter)."""
    factory = IdFactory(prefix)
    rng = random.Random(prefix)
    values = [1, 2, 61, 62, 3843, 3844, 62**4, 62**5 - 1, 62**5, 62**6 + 17]
    values += [rng.randrange(1, 62**7) for _ in range(500)]
    for value in values:
        made = factory.make(value)
        assert made == id15_to_18(made[:6] + to_base62(value, 9))
        assert made.startswith(prefix)
        assert is_salesforce_id(made)


def test_fast_timestamps_equal_format_datetime() -> None:
    """Formatter.stamp is format_datetime for whole seconds."""
    fmt = Formatter()
    rng = random.Random(1)
    for seconds in [0, 86_399, 86_400, *(rng.randrange(2 * 10**9) for _ in range(500))]:
        assert fmt.stamp(seconds) == stamp_reference(seconds)


def test_fiscal_quarters_follow_the_start_month() -> None:
    """Quarter numbers are consecutive and quarter boundaries respect the fiscal start."""
    cal = FiscalCalendar(2)
    q = cal.quarter(to_epoch_day(date(2024, 2, 1)))
    assert cal.quarter(to_epoch_day(date(2024, 1, 31))) == q - 1
    assert cal.quarter(to_epoch_day(date(2024, 4, 30))) == q
    assert cal.quarter_start(q) == to_epoch_day(date(2024, 2, 1))
    assert cal.quarter_end(q) == to_epoch_day(date(2024, 4, 30))
    assert fiscal_quarter(date(2024, 4, 30), 2) - fiscal_quarter(date(2024, 1, 31), 2) == 1


# -- determinism and layout --------------------------------------------------


def test_same_arguments_give_the_same_bytes_and_another_seed_other_bytes(
    tmp_path: Path,
) -> None:
    """The file is a pure function of (N, seed, as_of, options)."""
    paths = [tmp_path / f"{n}.json" for n in range(3)]
    for path, seed in zip(paths, (5, 5, 6), strict=True):
        generate_org(opportunities=300, seed=seed, out=path, as_of=AS_OF)
    first, second, other = (p.read_bytes() for p in paths)
    assert first == second
    assert first != other


def test_as_of_and_options_change_the_file(tmp_path: Path) -> None:
    """The as-of date and the currency option are part of the file's identity."""
    base = tmp_path / "base.json"
    generate_org(opportunities=200, seed=1, out=base, as_of=AS_OF)
    later = tmp_path / "later.json"
    generate_org(opportunities=200, seed=1, out=later, as_of=AS_OF + timedelta(days=1))
    single = tmp_path / "single.json"
    generate_org(opportunities=200, seed=1, out=single, as_of=AS_OF, multi_currency=False)
    assert len({p.read_bytes() for p in (base, later, single)}) == 3


def test_layout_is_the_data_file_format_one_record_per_line(
    org: dict[str, Any], org_file: Path
) -> None:
    """Top-level keys, arrays in docs/contracts.md's order, custom fields declared, a record a line."""
    assert list(org) == ["integration_user_id", "custom_fields", "records"]
    assert list(org["records"]) == list(OBJECT_ORDER)
    assert org["custom_fields"] == CUSTOM_FIELDS
    total = sum(len(v) for v in org["records"].values())
    record_lines = [
        line
        for line in org_file.read_text(encoding="ascii").splitlines()
        if line.startswith('{"Id"')
    ]
    assert len(record_lines) == total
    assert org_file.read_bytes().isascii()


def test_stats_count_what_was_written(tmp_path: Path) -> None:
    """GenerateStats carries the per-object counts, the size and a one-line summary."""
    out = tmp_path / "org.json"
    calls: list[int] = []
    stats = generate_org(opportunities=4_500, seed=3, out=out, as_of=AS_OF, progress=calls.append)
    assert isinstance(stats, GenerateStats)
    data = json.loads(out.read_text())
    assert stats.counts == {k: len(v) for k, v in data["records"].items()}
    assert stats.bytes_written == out.stat().st_size
    assert stats.integration_user_id == data["integration_user_id"]
    assert calls == [2_000, 4_000, 4_500]
    assert "\n" not in stats.summary()
    assert "4,500 Opportunity" in stats.summary()
    assert [p.name for p in tmp_path.iterdir()] == ["org.json"]  # no temp files left


# -- formats and integrity ---------------------------------------------------


def test_every_record_has_a_unique_id_with_its_object_key_prefix(org: dict[str, Any]) -> None:
    seen: set[str] = set()
    for name, record in all_records(org):
        record_id = record["Id"]
        assert len(record_id) == 18, record_id
        assert is_salesforce_id(record_id), record_id
        assert record_id.startswith(KEY_PREFIXES[name]), (name, record_id)
        assert record_id not in seen
        seen.add(record_id)


def test_dates_and_datetimes_use_rest_formats_and_never_reach_the_as_of_date(
    org: dict[str, Any],
) -> None:
    """Datetimes are UTC with .000, and every stamp is before midnight of the as-of date."""
    limit = datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=UTC)
    for name, record in all_records(org):
        for key, value in record.items():
            if key in DATETIME_FIELDS:
                assert DATETIME_RE.match(value), (name, key, value)
                assert parse_datetime(value) < limit, (name, key, value)
            elif key in DATE_FIELDS and value is not None:
                assert DATE_RE.match(value), (name, key, value)


def test_system_fields_are_present_and_history_is_insert_only(org: dict[str, Any]) -> None:
    """Every record has the system fields; OpportunityHistory has no LastModified*."""
    for name, record in all_records(org):
        assert record["IsDeleted"] is False
        if name == "OpportunityHistory":
            assert "LastModifiedDate" not in record
            assert "LastModifiedById" not in record
            assert record["SystemModstamp"] == record["CreatedDate"]
            continue
        assert set(record) >= SYSTEM_FIELDS, name
        assert record["CreatedDate"] <= record["LastModifiedDate"] <= record["SystemModstamp"]


def test_every_reference_points_at_a_record_of_the_right_object(org: dict[str, Any]) -> None:
    ids = {name: {r["Id"] for r in records(org, name)} for name in OBJECT_ORDER}
    assert org["integration_user_id"] in ids["User"]
    for name, record in all_records(org):
        for key, target in REFERENCES.items():
            value = record.get(key)
            if value is not None:
                assert value in ids[target], (name, record["Id"], key, value)


# -- the org's setup ---------------------------------------------------------


def test_setup_objects_match_the_rules_vocabulary(org: dict[str, Any]) -> None:
    """Stages, sales record types, currencies and product families docs/rules.md relies on."""
    stages = sorted(records(org, "OpportunityStage"), key=lambda s: s["SortOrder"])
    assert [s["ApiName"] for s in stages] == [
        "Create",
        "Qualify",
        "Develop",
        "Prove",
        "Negotiate",
        "Closed Won",
        "Closed Lost",
        "Closed Abandoned",
    ]
    assert all(s["ApiName"] == s["MasterLabel"] for s in stages)
    assert [s["IsClosed"] for s in stages] == [False] * 5 + [True] * 3
    assert [s["IsWon"] for s in stages] == [False] * 5 + [True, False, False]
    names = {(rt["DeveloperName"], rt["Name"]) for rt in records(org, "RecordType")}
    assert {
        ("Direct_Standard", "Direct Standard"),
        ("Indirect_Standard", "Indirect Standard"),
        ("Direct_Field_Services", "Direct Field Services"),
        ("Indirect_Field_Services", "Indirect Field Services"),
        ("Renewal", "Renewal"),
    } <= names
    currencies = {c["IsoCode"]: c for c in records(org, "CurrencyType")}
    assert set(currencies) == {"USD", "EUR", "GBP", "JPY", "CHF"}
    assert [c for c in currencies.values() if c["IsCorporate"]] == [currencies["USD"]]
    assert currencies["USD"]["ConversionRate"] == 1.0
    products = records(org, "Product2")
    assert 35 <= len(products) <= 45
    assert {p["Family"] for p in products} == {"Instrument", "Consumable", "Service", "Software"}
    organization = records(org, "Organization")
    assert len(organization) == 1
    assert organization[0]["FiscalYearStartMonth"] == 1


def test_users_have_managers_some_inactive_and_an_integration_user(
    org: dict[str, Any],
) -> None:
    users = {u["Id"]: u for u in records(org, "User")}
    integration = users[org["integration_user_id"]]
    assert integration["Name"] == "sfsync Integration"
    assert integration["IsActive"]
    owners = {o["OwnerId"] for o in records(org, "Opportunity")}
    reps = [users[i] for i in owners]
    assert len(reps) >= N // 40 * 0.9
    inactive = [u for u in reps if not u["IsActive"]]
    assert 0.03 <= len(inactive) / len(reps) <= 0.15
    assert all(u["ManagerId"] for u in reps)
    assert any(not users[u["ManagerId"]]["IsActive"] for u in inactive)
    assert any(users[u["ManagerId"]]["IsActive"] for u in inactive)
    for user in users.values():
        assert user["Name"] == f"{user['FirstName']} {user['LastName']}"
        assert user["UserType"] == "Standard"
    usernames = [u["Username"] for u in users.values()]
    assert len(set(usernames)) == len(usernames)


def test_rep_count_scales_with_opportunities(tmp_path: Path) -> None:
    """About one rep per 40 opportunities, at least 10."""
    out = tmp_path / "small.json"
    stats = generate_org(opportunities=50, seed=1, out=out, as_of=AS_OF)
    assert 10 + 2 + 3 + 2 <= stats.counts["User"] <= 10 + 2 + 3 + 4


# -- opportunities -----------------------------------------------------------


def test_opportunity_fields_are_consistent_with_their_stage(org: dict[str, Any]) -> None:
    stages = {s["ApiName"]: s for s in records(org, "OpportunityStage")}
    for opp in records(org, "Opportunity"):
        stage = stages[opp["StageName"]]
        assert opp["IsClosed"] == stage["IsClosed"]
        assert opp["IsWon"] == stage["IsWon"]
        assert opp["Probability"] == stage["DefaultProbability"]
        assert opp["ForecastCategoryName"] == stage["ForecastCategoryName"]
        assert opp["Region__c"] in {"EMEA", "AMER", "APAC"}
        assert opp["LastStageChangeDate"] >= opp["CreatedDate"]


def test_opportunities_are_created_over_three_years_and_about_a_fifth_is_open(
    org: dict[str, Any],
) -> None:
    opps = records(org, "Opportunity")
    ages = [(AS_OF - date.fromisoformat(o["CreatedDate"][:10])).days for o in opps]
    assert min(ages) >= 1
    assert max(ages) <= 3 * 366
    assert sum(a > 730 for a in ages) / len(ages) > 0.2
    open_share = sum(not o["IsClosed"] for o in opps) / len(opps)
    assert 0.12 <= open_share <= 0.4


def test_amounts_are_spread_around_the_threshold_with_nulls_and_exact_50000(
    org: dict[str, Any], oracle: Oracle
) -> None:
    opps = records(org, "Opportunity")
    null_share = sum(o["Amount"] is None for o in opps) / len(opps)
    assert 0.02 <= null_share <= 0.10
    assert sum(o["Amount"] == 50_000 and o["CurrencyIsoCode"] == "USD" for o in opps) >= 10
    big_share = sum(oracle.big(o) for o in opps) / len(opps)
    assert 0.2 <= big_share <= 0.5


def test_currencies_are_mostly_usd_with_a_realistic_share_of_others(org: dict[str, Any]) -> None:
    opps = records(org, "Opportunity")
    by_code: dict[str, int] = defaultdict(int)
    for opp in opps:
        by_code[opp["CurrencyIsoCode"]] += 1
    assert set(by_code) == {"USD", "EUR", "GBP", "JPY", "CHF"}
    assert 0.55 <= by_code["USD"] / len(opps) <= 0.85


def test_line_items_add_up_to_the_amount_and_instruments_are_on_a_third(
    org: dict[str, Any], oracle: Oracle
) -> None:
    opps = {o["Id"]: o for o in records(org, "Opportunity")}
    totals: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for item in records(org, "OpportunityLineItem"):
        assert item["TotalPrice"] == pytest.approx(item["Quantity"] * item["UnitPrice"])
        assert item["CurrencyIsoCode"] == opps[item["OpportunityId"]]["CurrencyIsoCode"]
        totals[item["OpportunityId"]] += item["TotalPrice"]
        counts[item["OpportunityId"]] += 1
    for opp_id, opp in opps.items():
        assert opp["HasOpportunityLineItem"] == (opp_id in counts)
        if opp_id in counts:
            assert opp["Amount"] == pytest.approx(totals[opp_id], abs=0.01)
    assert max(counts.values()) == 4
    assert 1.2 <= sum(counts.values()) / len(opps) <= 1.8
    assert 0.25 <= len(oracle.instrument) / len(opps) <= 0.35


def test_rev_rec_terms_are_blank_null_or_whitespace_more_often_in_early_stages(
    org: dict[str, Any],
) -> None:
    opps = records(org, "Opportunity")
    values = {o["Rev_Rec_Terms__c"] for o in opps}
    assert {None, ""} <= values
    assert any(v is not None and v != "" and not v.strip() for v in values)

    def blank_share(stage: str) -> float:
        group = [o for o in opps if o["StageName"] == stage]
        return sum(blank(o["Rev_Rec_Terms__c"]) for o in group) / len(group)

    assert blank_share("Create") > blank_share("Prove") > blank_share("Closed Won")


def test_about_a_tenth_was_last_modified_by_the_integration_user(org: dict[str, Any]) -> None:
    opps = records(org, "Opportunity")
    share = sum(o["LastModifiedById"] == org["integration_user_id"] for o in opps) / len(opps)
    assert 0.05 <= share <= 0.15


def test_some_opportunities_are_owned_by_inactive_reps(org: dict[str, Any]) -> None:
    active = {u["Id"]: u["IsActive"] for u in records(org, "User")}
    open_opps = [o for o in records(org, "Opportunity") if not o["IsClosed"]]
    share = sum(not active[o["OwnerId"]] for o in open_opps) / len(open_opps)
    assert 0.01 <= share <= 0.15


# -- history -----------------------------------------------------------------


def test_history_replays_each_lifecycle_consistently(org: dict[str, Any]) -> None:
    """Creation row first; CreatedDate increasing; Prev* are the previous row's values;
    each row changes something; the last row holds the opportunity's current values."""
    stages = {s["ApiName"]: s for s in records(org, "OpportunityStage")}
    rows_by_opp: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in records(org, "OpportunityHistory"):
        rows_by_opp[row["OpportunityId"]].append(row)
    opps = records(org, "Opportunity")
    drifted = 0
    for opp in opps:
        rows = rows_by_opp.get(opp["Id"], [])
        if not rows:
            continue
        first = rows[0]
        assert first["CreatedDate"] == opp["CreatedDate"]
        assert first["PrevAmount"] is None
        assert first["PrevCloseDate"] is None
        for before, after in itertools.pairwise(rows):
            assert before["CreatedDate"] < after["CreatedDate"]
            assert after["PrevAmount"] == before["Amount"]
            assert after["PrevCloseDate"] == before["CloseDate"]
            tracked = ("StageName", "CloseDate", "Amount")
            assert any(before[f] != after[f] for f in tracked), after["Id"]
        for row in rows:
            stage = stages[row["StageName"]]
            assert row["Probability"] == stage["DefaultProbability"]
            assert row["ForecastCategory"] == stage["ForecastCategory"]
            assert row["CurrencyIsoCode"] == opp["CurrencyIsoCode"]
            if row["Amount"] is None:
                assert row["ExpectedRevenue"] is None
            else:
                expected = row["Amount"] * row["Probability"] / 100
                assert row["ExpectedRevenue"] == pytest.approx(expected, abs=0.01)
        last = rows[-1]
        assert last["StageName"] == opp["StageName"]
        assert last["Amount"] == opp["Amount"]
        assert last["CreatedDate"] <= opp["LastModifiedDate"]
        drifted += last["CloseDate"] != opp["CloseDate"]
        changes = [
            r for r, p in zip(rows[1:], rows, strict=False) if r["StageName"] != p["StageName"]
        ]
        expected_change = changes[-1]["CreatedDate"] if changes else opp["CreatedDate"]
        assert opp["LastStageChangeDate"] == expected_change
    with_history = [o for o in opps if o["Id"] in rows_by_opp]
    assert drifted / len(with_history) < 0.015  # docs/rules.md allows it, rarely
    assert 0.005 <= 1 - len(with_history) / len(opps) <= 0.04  # no history at all
    assert 4.0 <= len(records(org, "OpportunityHistory")) / len(opps) <= 6.5


def test_history_has_forward_and_backward_moves_pushes_and_pull_ins(
    org: dict[str, Any],
) -> None:
    """Stage regressions, reopenings, pushes over several months, moves within a month."""
    rank = {s["ApiName"]: s["SortOrder"] for s in records(org, "OpportunityStage")}
    kinds: dict[str, int] = defaultdict(int)
    previous: dict[str, dict[str, Any]] = {}
    for row in records(org, "OpportunityHistory"):
        before = previous.get(row["OpportunityId"])
        previous[row["OpportunityId"]] = row
        if before is None:
            continue
        if row["StageName"] != before["StageName"]:
            forward = rank[row["StageName"]] > rank[before["StageName"]]
            kinds["forward" if forward else "backward"] += 1
            if before["StageName"].startswith("Closed") and not row["StageName"].startswith(
                "Closed"
            ):
                kinds["reopen"] += 1
        old, new = (date.fromisoformat(r["CloseDate"]) for r in (before, row))
        months = (new.year - old.year) * 12 + new.month - old.month
        if months == 1:
            kinds["push_one_month"] += 1
        elif months > 1:
            kinds["push_months"] += 1
        elif months == 0 and new != old:
            kinds["within_month"] += 1
        elif months < 0:
            kinds["pull_in"] += 1
        if row["Amount"] != before["Amount"]:
            kinds["amount"] += 1
    assert kinds["forward"] > 5 * kinds["backward"] > 0
    assert kinds["reopen"] > 0
    for kind in ("push_one_month", "push_months", "within_month", "pull_in", "amount"):
        assert kinds[kind] > 0.05 * len(previous), kind


# -- the rules fire on a realistic share --------------------------------------


@pytest.mark.parametrize(
    ("rule", "low", "high"),
    [
        ("close_date_past", 0.10, 0.40),
        ("stale_last_modified", 0.05, 0.30),
        ("missing_rev_rec_terms", 0.02, 0.10),
        ("close_date_slipping", 0.05, 0.25),
    ],
)
def test_each_rule_fires_on_some_but_never_most_open_opportunities(
    oracle: Oracle, rule: str, low: float, high: float
) -> None:
    assert low <= oracle.share(rule) <= high


def test_edge_cases_of_the_rules_are_present(org: dict[str, Any], oracle: Oracle) -> None:
    """Close date today and on quarter boundaries, 50,000 exactly, 14/30/45-day ages."""
    open_opps = oracle.open
    closes = {date.fromisoformat(o["CloseDate"]) for o in open_opps}
    assert AS_OF in closes
    assert {date(2024, 6, 30), date(2024, 7, 1), date(2024, 9, 30), date(2024, 10, 1)} <= closes
    ages_by_k: dict[int, set[int]] = defaultdict(set)
    for opp in open_opps:
        if oracle.big(opp) and opp["LastModifiedById"] != org["integration_user_id"]:
            age = (AS_OF - date.fromisoformat(opp["LastModifiedDate"][:10])).days
            ages_by_k[oracle.k(opp)].add(age)
    assert {14, 15} <= ages_by_k[0]
    assert {30, 31} <= ages_by_k[1]
    assert {45, 46} <= ages_by_k[2]
    usd = [o for o in open_opps if o["CurrencyIsoCode"] == "USD"]
    assert any(o["Amount"] == 50_000 and not oracle.big(o) for o in usd)
    assert any(o["Amount"] == 50_001 and oracle.big(o) for o in usd)
    whitespace = [o for o in open_opps if (o["Rev_Rec_Terms__c"] or "x").isspace()]
    assert any(oracle.missing_rev_rec_terms(o) for o in whitespace)
    assert len(EDGES) <= N // 97  # every edge case appears at least once


def test_close_date_today_is_not_flagged_past(oracle: Oracle) -> None:
    """docs/rules.md example 5, on generated data."""
    today = [o for o in oracle.open if o["CloseDate"] == AS_OF.isoformat()]
    assert today
    assert not any(oracle.close_date_past(o) for o in today)


# -- tasks ---------------------------------------------------------------------


def test_tasks_are_human_and_consistent(org: dict[str, Any]) -> None:
    tasks = records(org, "Task")
    assert 0.01 * N <= len(tasks) <= 0.1 * N
    for task in tasks:
        assert "Sfsync_Key__c" not in task
        assert task["Status"] in {"Not Started", "Completed"}
        assert task["IsClosed"] == (task["Status"] == "Completed")
        assert task["Priority"] in {"High", "Normal", "Low"}
        assert task["OwnerId"] != org["integration_user_id"]


# -- options -----------------------------------------------------------------


def test_without_multi_currency_there_is_no_currency_anywhere(tmp_path: Path) -> None:
    out = tmp_path / "single.json"
    generate_org(opportunities=500, seed=2, out=out, as_of=AS_OF, multi_currency=False)
    text = out.read_text()
    assert "CurrencyIsoCode" not in text
    assert json.loads(text)["records"]["CurrencyType"] == []


def test_fiscal_year_start_month_is_the_organizations(tmp_path: Path) -> None:
    out = tmp_path / "fy.json"
    generate_org(opportunities=300, seed=2, out=out, as_of=AS_OF, fiscal_year_start_month=4)
    data = json.loads(out.read_text())
    assert data["records"]["Organization"][0]["FiscalYearStartMonth"] == 4
    closes = {o["CloseDate"] for o in data["records"]["Opportunity"] if not o["IsClosed"]}
    assert "2024-06-30" in closes  # the end of the fiscal quarter before Jul-Sep


def test_default_as_of_is_today_and_every_stamp_is_in_the_past(tmp_path: Path) -> None:
    out = tmp_path / "today.json"
    stats = generate_org(opportunities=200, seed=2, out=out)
    assert stats.as_of == datetime.now(UTC).date() or stats.as_of == (
        datetime.now(UTC).date() - timedelta(days=1)  # ran across midnight
    )
    now = datetime.now(UTC)
    stamps = re.findall(r'"(\d{4}-\d\d-\d\dT[^"]+)"', out.read_text())
    assert stamps
    assert max(parse_datetime(s) for s in stamps) <= now


# -- arguments and the command -------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"opportunities": 0},
        {"opportunities": -5},
        {"as_of": date.today() + timedelta(days=2)},
        {"fiscal_year_start_month": 13},
    ],
)
def test_bad_arguments_are_usage_errors(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    from sfsync.errors import EXIT_USAGE, UsageError, exit_code_for

    args: dict[str, Any] = {"opportunities": 10, "seed": 1, "out": tmp_path / "o.json"}
    args.update(kwargs)
    with pytest.raises(UsageError) as caught:
        generate_org(**args)
    assert exit_code_for(caught.value) == EXIT_USAGE
    assert not (tmp_path / "o.json").exists()


def test_an_unwritable_out_is_a_usage_error_and_leaves_nothing(tmp_path: Path) -> None:
    from sfsync.errors import UsageError

    with pytest.raises(UsageError, match="cannot write"):
        generate_org(opportunities=10, seed=1, out=tmp_path / "missing" / "o.json", as_of=AS_OF)
    with pytest.raises(UsageError, match="directory"):
        generate_org(opportunities=10, seed=1, out=tmp_path, as_of=AS_OF)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_replaced_only_when_generation_succeeds(tmp_path: Path) -> None:
    out = tmp_path / "o.json"
    out.write_text("previous")

    def interrupt(_done: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_org(opportunities=2_500, seed=1, out=out, as_of=AS_OF, progress=interrupt)
    assert out.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["o.json"]


def test_command_writes_the_file_and_prints_one_line(tmp_path: Path) -> None:
    out = tmp_path / "cli.json"
    result = CliRunner().invoke(
        generate_command,
        ["--opportunities", "120", "--seed", "4", "--as-of", "2024-08-15", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("\n") == 1
    assert "120 Opportunity" in result.output
    direct = tmp_path / "direct.json"
    generate_org(opportunities=120, seed=4, out=direct, as_of=AS_OF)
    assert out.read_bytes() == direct.read_bytes()


def test_command_without_currencies(tmp_path: Path) -> None:
    out = tmp_path / "cli.json"
    result = CliRunner().invoke(
        generate_command,
        [
            "-n",
            "50",
            "--seed",
            "4",
            "--as-of",
            "2024-08-15",
            "--out",
            str(out),
            "--no-multi-currency",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "CurrencyIsoCode" not in out.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--opportunities", "0", "--seed", "1"], "--opportunities"),
        (["--opportunities", "ten", "--seed", "1"], "--opportunities"),
        (["--opportunities", "5"], "--seed"),
        (["--opportunities", "5", "--seed", "1", "--as-of", "15/08/2024"], "YYYY-MM-DD"),
        (["--opportunities", "5", "--seed", "1", "--as-of", "2024-8-15"], "YYYY-MM-DD"),
        (["--opportunities", "5", "--seed", "1", "--as-of", "2999-01-01"], "after today"),
        (
            ["--opportunities", "5", "--seed", "1", "--out", "/nonexistent/dir/o.json"],
            "cannot write",
        ),
    ],
)
def test_command_rejects_bad_arguments_with_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(generate_command, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_timestamps_are_whole_seconds_within_the_day_before_as_of() -> None:
    """The latest allowed stamp is 23:59:59 UTC on the day before the as-of date."""
    horizon = to_epoch_day(AS_OF) * DAY - 1
    assert Formatter().stamp(horizon) == "2024-08-14T23:59:59.000+0000"
