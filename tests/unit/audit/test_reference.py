"""The pure reference agrees with docs/rules.md's worked examples (so it can judge the SQL)."""

from __future__ import annotations

import pytest

from sfsync.config import AuditSettings
from tests.unit.audit.examples import EXAMPLES, TODAY, Example, examples_org
from tests.unit.audit.reference import count_extensions, reference_audit


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"example-{e.number}")
def test_worked_example(example: Example) -> None:
    org, ids = examples_org((example,))
    for profile, flagged in example.flagged.items():
        result = reference_audit(org, AuditSettings(profile=profile), TODAY)[example.rule]
        assert (ids[example.number] in result) == flagged, example.says
        if flagged:
            values = result[ids[example.number]].values
            for key in set(example.details) & set(values):
                assert values[key] == example.details[key]


@pytest.mark.parametrize(
    ("dates", "extensions"),
    [
        (["2017-03-15", "2017-03-30", "2017-05-10", "2017-04-20", "2017-06-01", "2018-01-05"], 3),
        (["2024-01-31", "2024-01-01", "2024-01-15"], 0),  # within a month, and a pull-in
        (["2024-01-31", "2024-12-01"], 1),  # a jump over several months counts once
        (
            ["2024-05-01", "2024-03-01", "2024-04-01"],
            1,
        ),  # push after pull-in, not a high-water mark
        (["2024-05-01"], 0),
    ],
)
def test_month_extensions(dates: list[str], extensions: int) -> None:
    assert count_extensions(list(dates)) == extensions
