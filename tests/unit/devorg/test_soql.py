"""The SOQL subset: parsing, translation to SQL, Salesforce's errors and null semantics."""

# SOQL strings here are test constants.

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sfsync.devorg import DevOrg
from sfsync.devorg.soql import Comparison, Logical, Negation, SoqlError, parse_condition, parse_soql
from sfsync.devorg.testing import REP_USER_ID, make_id, sample_org_data

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def org() -> DevOrg:
    return DevOrg.from_data(sample_org_data(30, now=NOW, record_types=True))


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["Id"] for r in rows]


def n(i: int) -> str:
    return make_id("006", i)


# --- parsing ---------------------------------------------------------------------------------


def test_parses_fields_paths_clauses_case_insensitively() -> None:
    query = parse_soql(
        "select Id, owner.manager.IsActive from opportunity where Amount > 5 "
        "order by SystemModstamp, Id desc nulls first limit 10 offset 5"
    )
    assert query.sobject == "opportunity"
    assert [f.parts for f in query.fields] == [("Id",), ("owner", "manager", "IsActive")]
    assert query.limit == 10
    assert query.offset == 5
    assert query.order_by[1].descending is True
    assert query.order_by[1].nulls_first is True


def test_count_query() -> None:
    query = parse_soql("SELECT COUNT() FROM Task")
    assert query.count is True
    assert query.fields == ()


def test_boolean_structure_and_precedence() -> None:
    cond = parse_condition("A = 1 OR B = 2 AND NOT (C = 3)")
    assert isinstance(cond, Logical)
    assert cond.op == "or"
    right = cond.items[1]
    assert isinstance(right, Logical)
    assert right.op == "and"
    assert isinstance(right.items[1], Negation)


@pytest.mark.parametrize(
    ("literal", "kind"),
    [
        ("'it\\'s'", "string"),
        ("42", "number"),
        ("-1.5", "number"),
        ("true", "boolean"),
        ("FALSE", "boolean"),
        ("null", "null"),
        ("2024-08-01", "date"),
        ("2024-08-01T00:00:00Z", "datetime"),
        ("2024-08-01T00:00:00+02:00", "datetime"),
        ("2024-08-01T00:00:00.000+0000", "datetime"),
        ("2024-08-01T00:00:00.000000Z", "datetime"),
        ("TODAY", "relative"),
        ("YESTERDAY", "relative"),
        ("LAST_N_DAYS:30", "relative"),
    ],
)
def test_literals(literal: str, kind: str) -> None:
    cond = parse_condition(f"X = {literal}")
    assert isinstance(cond, Comparison)
    assert cond.values[0].kind == kind


def test_datetime_literals_are_normalised_to_utc() -> None:
    cond = parse_condition("X = 2024-08-01T02:00:00+02:00")
    assert isinstance(cond, Comparison)
    assert cond.values[0].value == datetime(2024, 8, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("soql", "fragment"),
    [
        ("SELEKT Id FROM Opportunity", "unexpected token: 'SELEKT'"),
        ("SELECT Id FROM", "unexpected token: <EOF>"),
        ("SELECT Id FROM Opportunity GROUP BY Id", "unexpected token: 'GROUP'"),
        ("SELECT COUNT(Id) FROM Opportunity", "unexpected token"),
        ("SELECT Id FROM Opportunity WHERE CloseDate > 2024-08-01T00:00:00 02:00", "unexpected"),
        ("SELECT Id FROM Opportunity WHERE Name = 'x' #", "no viable alternative at character '#'"),
        ("", "unexpected token: <EOF>"),
    ],
)
def test_unsupported_syntax_is_malformed_query(soql: str, fragment: str) -> None:
    with pytest.raises(SoqlError) as info:
        parse_soql(soql)
    assert info.value.code == "MALFORMED_QUERY"
    assert fragment in info.value.message


# --- translation and results ------------------------------------------------------------------


def test_unknown_field_is_invalid_field_with_salesforce_text(org: DevOrg) -> None:
    with pytest.raises(SoqlError) as info:
        org.query("SELECT Bacon__c FROM Opportunity")
    assert info.value.code == "INVALID_FIELD"
    assert "\nSELECT Bacon__c FROM Opportunity\n       ^\nERROR at Row:1:Column:8\n" in (
        info.value.message
    )
    assert "No such column 'Bacon__c' on entity 'Opportunity'" in info.value.message


def test_unknown_object_is_invalid_type(org: DevOrg) -> None:
    with pytest.raises(SoqlError) as info:
        org.query("SELECT Id FROM Account")
    assert info.value.code == "INVALID_TYPE"
    assert "sObject type 'Account' is not supported" in info.value.message


def test_unknown_relationship_is_invalid_field(org: DevOrg) -> None:
    with pytest.raises(SoqlError) as info:
        org.query("SELECT Account.Name FROM Opportunity")
    assert info.value.code == "INVALID_FIELD"
    assert "Didn't understand relationship 'Account'" in info.value.message


def test_wrong_literal_type_is_invalid_field(org: DevOrg) -> None:
    with pytest.raises(SoqlError) as info:
        org.query("SELECT Id FROM Opportunity WHERE CreatedDate > 2024-01-01")
    assert info.value.code == "INVALID_FIELD"
    assert "must be of type dateTime" in info.value.message
    with pytest.raises(SoqlError):
        org.query("SELECT Id FROM Opportunity WHERE Name = 5")


def test_field_names_are_case_insensitive_and_answered_canonically(org: DevOrg) -> None:
    rows = org.query(f"select id, NAME, owner.name from OPPORTUNITY where ID = '{n(1)}'")
    assert list(rows[0]) == ["attributes", "Id", "Name", "Owner"]
    assert rows[0]["Owner"]["Name"] == "Ann Lee"


def test_parent_paths_nest_with_attributes_and_null_when_empty(org: DevOrg) -> None:
    rows = org.query(
        "SELECT Id, Owner.Manager.IsActive, Owner.Manager.Manager.Name FROM Opportunity "
        f"WHERE Id = '{n(1)}'"
    )
    owner = rows[0]["Owner"]
    assert owner["attributes"]["type"] == "User"
    assert owner["Manager"]["IsActive"] is True
    assert owner["Manager"]["Manager"] is None  # the manager has no manager


def test_record_type_and_product_paths(org: DevOrg) -> None:
    rows = org.query(f"SELECT RecordType.DeveloperName FROM Opportunity WHERE Id = '{n(2)}'")
    assert rows[0]["RecordType"]["DeveloperName"] == "Direct_Standard"
    items = org.query(
        "SELECT Product2.Family, Opportunity.OwnerId FROM OpportunityLineItem "
        f"WHERE OpportunityId = '{n(1)}'"
    )
    assert items[0]["Product2"]["Family"] == "Instrument"
    assert items[0]["Opportunity"]["OwnerId"] == REP_USER_ID


def test_string_equality_is_case_insensitive_and_not_equal_includes_nulls(org: DevOrg) -> None:
    assert ids(org.query("SELECT Id FROM Opportunity WHERE Name = 'OPPORTUNITY 1'")) == [n(1)]
    nulls = org.query("SELECT Id FROM Opportunity WHERE Rev_Rec_Terms__c = null")
    not_standard = org.query("SELECT Id FROM Opportunity WHERE Rev_Rec_Terms__c != 'Standard'")
    assert set(ids(nulls)) == set(ids(not_standard))
    assert len(nulls) == 10


def test_not_of_a_false_comparison_is_true_for_nulls(org: DevOrg) -> None:
    rows = org.query("SELECT Id FROM Opportunity WHERE NOT Rev_Rec_Terms__c = 'Standard'")
    assert len(rows) == 10
    both = org.query("SELECT Id FROM Opportunity WHERE NOT (Amount < 0 AND Name = 'x')")
    assert len(both) == 30


def test_in_not_in_and_like(org: DevOrg) -> None:
    rows = org.query(f"SELECT Id FROM Opportunity WHERE Id IN ('{n(1)}', '{n(2)}', null)")
    assert sorted(ids(rows)) == [n(1), n(2)]
    rest = org.query(f"SELECT Id FROM Opportunity WHERE Id NOT IN ('{n(1)}', '{n(2)}')")
    assert len(rest) == 28
    like = org.query("SELECT Id FROM Opportunity WHERE Name LIKE 'opportunity 1_'")
    assert len(like) == 10
    escaped = org.query("SELECT Id FROM Opportunity WHERE Name LIKE '%\\_%'")
    assert escaped == []


def test_15_character_ids_match_their_18_character_form(org: DevOrg) -> None:
    assert ids(org.query(f"SELECT Id FROM Opportunity WHERE Id = '{n(3)[:15]}'")) == [n(3)]


def test_boolean_number_and_date_comparisons(org: DevOrg) -> None:
    closed = org.query("SELECT Id, IsClosed FROM Opportunity WHERE IsClosed = true")
    assert closed
    assert all(r["IsClosed"] is True for r in closed)
    big = org.query("SELECT Amount FROM Opportunity WHERE Amount >= 29500")
    assert sorted(r["Amount"] for r in big) == [29500.0, 30500.0]
    today = NOW.date()
    past = org.query(f"SELECT CloseDate FROM Opportunity WHERE CloseDate < {today.isoformat()}")
    assert past
    assert all(r["CloseDate"] < today.isoformat() for r in past)


def test_relative_date_literals(org: DevOrg) -> None:
    today = NOW.date()
    rows = org.query("SELECT CloseDate FROM Opportunity WHERE CloseDate = TODAY")
    assert {r["CloseDate"] for r in rows} == {today.isoformat()}
    yesterday = org.query("SELECT CloseDate FROM Opportunity WHERE CloseDate = YESTERDAY")
    assert {r["CloseDate"] for r in yesterday} == {(today - timedelta(days=1)).isoformat()}
    last = org.query("SELECT CloseDate FROM Opportunity WHERE CloseDate = LAST_N_DAYS:5")
    assert {r["CloseDate"] for r in last} == {
        (today - timedelta(days=d)).isoformat() for d in range(6)
    }
    recent = org.query("SELECT Id FROM Opportunity WHERE CreatedDate = LAST_N_DAYS:90")
    assert len(recent) == 30
    assert org.query("SELECT Id FROM Opportunity WHERE CreatedDate > TODAY") == []


@pytest.mark.parametrize(
    "literal",
    ["{d}T00:00:00Z", "{d}T02:00:00+02:00", "{d}T00:00:00.000+0000", "{d}T00:00:00.000000Z"],
)
def test_datetime_literal_forms_compare_alike(org: DevOrg, literal: str) -> None:
    day = (NOW - timedelta(days=60)).date().isoformat()
    soql = f"SELECT COUNT() FROM Opportunity WHERE SystemModstamp >= {literal.format(d=day)}"
    assert org.query(soql) == [{"expr0": 30}]


def test_order_by_multiple_keys_and_nulls(org: DevOrg) -> None:
    rows = org.query("SELECT Rev_Rec_Terms__c, Id FROM Opportunity ORDER BY Rev_Rec_Terms__c, Id")
    assert rows[0]["Rev_Rec_Terms__c"] is None  # ASC puts nulls first
    last = org.query(
        "SELECT Rev_Rec_Terms__c FROM Opportunity ORDER BY Rev_Rec_Terms__c ASC NULLS LAST"
    )
    assert last[-1]["Rev_Rec_Terms__c"] is None
    desc = org.query("SELECT Amount FROM Opportunity ORDER BY Amount DESC LIMIT 3")
    assert [r["Amount"] for r in desc] == [30500.0, 29500.0, 28500.0]
    stamps = org.query("SELECT SystemModstamp, Id FROM Opportunity ORDER BY SystemModstamp, Id")
    keys = [(r["SystemModstamp"], r["Id"]) for r in stamps]
    assert keys == sorted(keys)


def test_limit_offset_and_count(org: DevOrg) -> None:
    page = org.query("SELECT Id FROM Opportunity ORDER BY Id LIMIT 5 OFFSET 10")
    assert ids(page) == [n(i) for i in range(11, 16)]
    assert org.query("SELECT COUNT() FROM Opportunity WHERE Amount > 10000") == [{"expr0": 21}]
    with pytest.raises(SoqlError) as info:
        org.query("SELECT Id FROM Opportunity OFFSET 2001")
    assert info.value.code == "NUMBER_OUTSIDE_VALID_RANGE"


def test_query_excludes_soft_deleted_rows_and_query_all_includes_them() -> None:
    org = DevOrg.from_data(sample_org_data(5))
    org.soft_delete("Opportunity", n(1))
    assert n(1) not in ids(org.query("SELECT Id FROM Opportunity"))
    rows = org.query(f"SELECT Id, IsDeleted FROM Opportunity WHERE Id = '{n(1)}'", True)
    assert rows[0]["IsDeleted"] is True


def test_bulk_rejects_count_offset_and_task_status(org: DevOrg) -> None:
    for soql, code in (
        ("SELECT COUNT() FROM Opportunity", "INVALID_FIELD"),
        ("SELECT Id FROM Opportunity OFFSET 5", "INVALID_FIELD"),
        ("SELECT Id FROM TaskStatus", "INVALIDENTITY"),
    ):
        with pytest.raises(SoqlError) as info:
            org.open_query(soql, False, bulk=True)
        assert info.value.code == code


def test_task_status_and_priority_are_built_in(org: DevOrg) -> None:
    statuses = org.query("SELECT MasterLabel, IsClosed FROM TaskStatus ORDER BY SortOrder")
    assert [s["MasterLabel"] for s in statuses][:3] == ["Not Started", "In Progress", "Completed"]
    assert [s["MasterLabel"] for s in statuses if s["IsClosed"]] == ["Completed"]
    high = org.query("SELECT MasterLabel FROM TaskPriority WHERE IsHighPriority = true")
    assert [p["MasterLabel"] for p in high] == ["High"]
