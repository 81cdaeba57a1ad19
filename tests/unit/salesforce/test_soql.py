"""The one SOQL builder: names checked, values quoted, LIKE patterns escaped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sfsync.salesforce import soql


def test_a_select_with_conditions_and_order() -> None:
    text = soql.select(
        ["Id", "Owner.Name"],
        "Opportunity",
        where=[soql.equals("StageName", "Prove"), None, soql.at_least("SystemModstamp", T)],
        order_by=["SystemModstamp", "Id"],
    )
    assert text == (
        "SELECT Id, Owner.Name FROM Opportunity WHERE (StageName = 'Prove') AND "
        "(SystemModstamp >= 2024-07-30T09:12:44Z) ORDER BY SystemModstamp ASC, Id ASC"
    )


T = datetime(2024, 7, 30, 9, 12, 44, tzinfo=UTC)


def test_values_are_quoted_and_escaped() -> None:
    assert soql.equals("Name", "O'Brien \\ \n") == "Name = 'O\\'Brien \\\\ \\n'"
    assert soql.one_of("Id", ["a", "b'"]) == "Id IN ('a', 'b\\'')"


def test_like_takes_the_prefix_literally() -> None:
    """% and _ in a subject prefix are literal characters, not wildcards."""
    assert soql.like_prefix("Subject", "[sf_sync] 100%") == "Subject LIKE '[sf\\\\_sync] 100\\\\%%'"


@pytest.mark.parametrize("bad", ["Name; DROP", "Owner..Name", "1Field", "Name'", "", "a b"])
def test_a_name_that_is_not_an_api_name_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a Salesforce API name"):
        soql.select([bad], "Opportunity")
    with pytest.raises(ValueError, match="not a Salesforce API name"):
        soql.equals(bad, "x")


def test_count_and_combinations() -> None:
    assert soql.count("Task") == "SELECT COUNT() FROM Task"
    either = soql.any_of(soql.is_not_null("Key__c"), soql.equals("CreatedById", "005"))
    assert either == "(Key__c != null OR CreatedById = '005')"
    assert soql.count("Task", where=[either]) == (
        "SELECT COUNT() FROM Task WHERE ((Key__c != null OR CreatedById = '005'))"
    )
