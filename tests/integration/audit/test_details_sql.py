"""Each rule's details built in SQL are the details its Python ``details()`` builds.

The audit stores the SQL-built documents (``Rule.details_sql``); ``Rule.match`` is
the reference. Both run over the same query rows, on SQLite and PostgreSQL, for the
worked examples and for hypothesis' random orgs (time zones, fiscal years,
currencies, scopes, history), and must agree key for key, value for value and type
for type (a float that is a whole number stays a float).
"""

from __future__ import annotations

import json
import math
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    literal_column,
    select,
)

from sfsync.audit import run_audit
from sfsync.audit._context import build_context
from sfsync.audit._zone import load_zone
from sfsync.audit.rules import get_rule, rule_ids
from sfsync.config import AuditSettings
from sfsync.warehouse import Warehouse
from sfsync.warehouse.dialect import JsonField, json_differs, json_object
from sfsync.warehouse.models import Finding
from sfsync.warehouse.types import JsonDocument
from tests.integration.audit.load import clear_warehouse, load_org, new_warehouse
from tests.unit.audit.examples import TODAY, examples_org
from tests.unit.audit.strategies import AuditCase, audit_cases


def _differences(python: Any, sql: Any, where: str) -> list[str]:
    """Where two JSON values differ in value or in type (bool, int and float apart)."""
    if isinstance(python, dict) and isinstance(sql, dict):
        problems = []
        if list(python) != list(sql) and set(python) != set(sql):
            problems.append(f"{where}: keys {list(python)} != {list(sql)}")
        for key in python.keys() & sql.keys():
            problems += _differences(python[key], sql[key], f"{where}.{key}")
        return problems
    if type(python) is not type(sql):
        return [f"{where}: {python!r} ({type(python).__name__}) != {sql!r} ({type(sql).__name__})"]
    if isinstance(python, float) and math.isnan(python) and math.isnan(sql):
        return []
    return [] if python == sql else [f"{where}: {python!r} != {sql!r}"]


def _details_problems(conn: Connection, audit: AuditSettings, as_of: date) -> tuple[int, list[str]]:
    """Compare every match's SQL details and profile with ``Rule.match``'s, rule by rule."""
    dialect = conn.dialect.name
    ctx = build_context(conn, audit, as_of=as_of, rules=rule_ids())
    load_zone(conn, ctx)
    compared, problems = 0, []
    for rule_id in ctx.rules:
        rule = get_rule(rule_id)
        query = rule.query(ctx, dialect).subquery("matched")
        fields = rule.details_sql(ctx, query.c, dialect)
        assert fields is not None, f"{rule_id} declares no SQL details"
        document = json_object(fields, dialect).label("sql_details")
        profile = ctx.profile_column(query.c.scope_value).label("sql_profile")
        for row in conn.execute(select(query, document, profile)):
            python = rule.match(ctx, row)
            sql = row.sql_details
            if isinstance(sql, str):  # SQLite: JSON text
                sql = json.loads(sql)
                if list(sql) != list(python.details):
                    problems.append(f"{rule_id} {row.id}: key order {list(sql)}")
            problems += _differences(python.details, sql, f"{rule_id} {row.id}")
            if row.sql_profile != python.profile:
                problems.append(f"{rule_id} {row.id}: profile {row.sql_profile!r}")
            compared += 1
    return compared, problems


def _check(warehouse: Warehouse, audit: AuditSettings, as_of: date) -> int:
    with warehouse.engine.connect() as conn, conn.begin() as transaction:
        compared, problems = _details_problems(conn, audit, as_of)
        transaction.rollback()
    assert not problems, "\n".join(problems[:20])
    return compared


def test_sql_details_equal_python_details_on_the_worked_examples(db_url: str) -> None:
    """Every rule, both profiles, and a scope that mixes them."""
    warehouse = new_warehouse(db_url)
    org, _ = examples_org()
    load_org(warehouse, org)
    try:
        compared = 0
        for profile in ("global", "europe"):
            compared += _check(warehouse, AuditSettings(profile=profile), TODAY)
        assert compared > 20
    finally:
        warehouse.dispose()


def test_sql_details_equal_python_details_on_random_orgs(db_url: str) -> None:
    """Time zones (DST, +13:45, +14), fiscal years, currencies, scopes, history, snapshots."""
    warehouse = new_warehouse(db_url)
    examples = 40 if db_url.startswith("sqlite") else 15

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=True,
    )
    @given(case=audit_cases())
    def check(case: AuditCase) -> None:
        clear_warehouse(warehouse)
        load_org(warehouse, case.org, **case.load_kwargs)
        _check(warehouse, case.settings, case.as_of)

    try:
        check()
    finally:
        warehouse.dispose()


def test_stored_details_are_the_python_details(db_url: str) -> None:
    """What run_audit stores reads back as what Rule.match builds (the report, the
    write-back and ``sfsync findings`` read it)."""
    warehouse = new_warehouse(db_url)
    org, _ = examples_org()
    load_org(warehouse, org)
    audit = AuditSettings()
    try:
        run_audit(warehouse, audit, as_of=TODAY)
        with warehouse.session() as session:
            stored = {
                (f.rule, f.opportunity_id): f.details
                for f in session.scalars(select(Finding).where(Finding.status == "open"))
            }
        expected = {}
        with warehouse.engine.connect() as conn:
            ctx = build_context(conn, audit, as_of=TODAY, rules=rule_ids())
            for rule_id in ctx.rules:
                rule = get_rule(rule_id)
                for row in conn.execute(rule.query(ctx, conn.dialect.name)):
                    expected[(rule_id, row.id)] = rule.match(ctx, row).details
        assert set(stored) == set(expected)
        problems = [p for key in expected for p in _differences(expected[key], stored[key], key)]
        assert not problems, "\n".join(problems)
    finally:
        warehouse.dispose()


_FLOATS = [
    0.0,
    50_000.0,
    -3.0,
    0.1,
    0.1 + 0.2,
    1234.56,
    1234.5678901234567,
    1341.8478260869565,
    2 / 3,
    1e-05,
    1.5e-07,
    123456789012345.67,
    999_999_999_999_999.0,
    1e16,
]


def test_floats_read_back_as_json_dumps_stored_them(db_url: str) -> None:
    """A float in a SQL-built document reads back as the same float, of the same type, as
    the document ``json.dumps`` wrote before (a whole number stays a float)."""
    warehouse = new_warehouse(db_url)
    values = Table(
        "float_values",
        MetaData(),
        Column("x", Float(precision=53)),
        Column("dumped", JsonDocument()),
    )
    try:
        with warehouse.engine.begin() as conn:
            values.create(conn)

        @settings(max_examples=30, deadline=None, derandomize=True)
        @given(
            extra=st.lists(
                st.floats(min_value=-1e15, max_value=1e15, allow_nan=False)
                | st.decimals(0, 10**9, places=2).map(float),
                max_size=200,
            )
        )
        def check(extra: list[float]) -> None:
            with warehouse.engine.begin() as conn:
                conn.execute(values.delete())
                conn.execute(
                    insert(values), [{"x": x, "dumped": {"x": x}} for x in _FLOATS + extra]
                )
                built = json_object([JsonField("x", values.c.x, "float")], conn.dialect.name)
                for sql, dumped in conn.execute(select(built, values.c.dumped)):
                    got = sql if isinstance(sql, dict) else json.loads(sql)
                    assert not _differences(dumped, got, "x"), (dumped, got)

        check()
    finally:
        warehouse.dispose()


_ROWS: list[dict[str, Any]] = [
    {"t": "Prove", "i": 3, "f": 50_000.0, "b": True, "o": None},
    {"t": 'quote " back\\slash', "i": -2, "f": 0.1 + 0.2, "b": False, "o": 7.5},
    {"t": "Ünïcødé ✓ 中文", "i": 0, "f": 1e16, "b": None, "o": None},
    {"t": None, "i": None, "f": None, "b": True, "o": 0.0},
    {"t": "", "i": 10**12, "f": 1.5e-07, "b": False, "o": None},
    {"t": " ", "i": 1, "f": -3.0, "b": True, "o": 123456789012345.67},
]
# Each value to another of its type, or between NULL and a value.
_CHANGES: dict[str, Any] = {
    "t": lambda v: "Negotiate" if v is not None else "Prove",
    "i": lambda v: None if v == 1 else (v or 0) + 1,
    "f": lambda v: 1234.5678901234567 if v is not None else 0.0,
    "b": lambda v: True if v is None else (None if v is False else not v),
    "o": lambda v: 1.0 if v is None else None,
}


def test_a_stored_document_differs_from_its_fields_only_where_a_value_changed(
    db_url: str,
) -> None:
    """``json_differs``: false against the document the same fields built, true as soon
    as one value (text, integer, float, boolean, an optional key, a constant) changed."""
    warehouse = new_warehouse(db_url)
    values = Table(
        "differ_values",
        MetaData(),
        Column("n", Integer, primary_key=True, autoincrement=False),
        Column("t", String(40)),
        Column("i", BigInteger),
        Column("f", Float(precision=53)),
        Column("b", Boolean),
        Column("o", Float(precision=53)),
        Column("stored", JsonDocument()),
    )

    def fields(today: str = "2024-08-15") -> list[JsonField]:
        c = values.c
        return [
            JsonField("t", c.t),
            JsonField("i", c.i, "integer"),
            JsonField("f", c.f, "float"),
            JsonField("b", c.b, "boolean"),
            JsonField("o", c.o, "float", omit_if_null=True),
            JsonField("today", today),
            JsonField("threshold", 50_000.0),
        ]

    def differing(conn: Connection, today: str = "2024-08-15") -> list[int]:
        differs = json_differs(values.c.stored, fields(today), conn.dialect.name)
        return [n for (n,) in conn.execute(select(values.c.n).where(differs).order_by(values.c.n))]

    try:
        with warehouse.engine.begin() as conn:
            values.create(conn)
            conn.execute(insert(values), [{"n": n, **row} for n, row in enumerate(_ROWS)])
            conn.execute(values.update().values(stored=json_object(fields(), conn.dialect.name)))
            assert differing(conn) == []
            assert differing(conn, today="2024-08-16") == list(range(len(_ROWS)))
        for key, change in _CHANGES.items():
            for n, row in enumerate(_ROWS):
                with warehouse.engine.connect() as conn, conn.begin() as transaction:
                    conn.execute(
                        values.update().where(values.c.n == n).values({key: change(row[key])})
                    )
                    assert differing(conn) == [n], (key, row[key], change(row[key]))
                    transaction.rollback()
    finally:
        warehouse.dispose()


def test_percent_signs_in_values_and_constants_are_written_as_they_are(db_url: str) -> None:
    """SQLite builds a document with one ``printf``: a "%" in a value or a constant is
    text, not a directive."""
    warehouse = new_warehouse(db_url)
    values = Table("percent_values", MetaData(), Column("t", String(40)), Column("o", String(40)))
    rows = [{"t": "100% %s %d %%", "o": None}, {"t": "%", "o": "50%"}]
    fields = [
        JsonField("t", values.c.t),
        JsonField("o", values.c.o, omit_if_null=True),
        JsonField("note", "5% of %s"),
        JsonField("empty", None),
    ]
    try:
        with warehouse.engine.begin() as conn:
            values.create(conn)
            conn.execute(insert(values), rows)
            built = conn.execute(
                select(json_object(fields, conn.dialect.name)).order_by(values.c.t.desc())
            ).scalars()
            got = list(built)
    finally:
        warehouse.dispose()
    expected = [
        {"t": r["t"], **({"o": r["o"]} if r["o"] is not None else {}), "note": "5% of %s"}
        | {"empty": None}
        for r in rows
    ]
    if db_url.startswith("sqlite"):
        assert got == [json.dumps(e, ensure_ascii=False) for e in expected]
    else:
        assert got == expected


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([JsonField("not-a-name", 1)], "is not a plain name"),
        ([JsonField("a", literal_column("x"), omit_if_null=True)], "first key"),
        (
            [JsonField("a", 1), JsonField("b", None, omit_if_null=True)],
            "'b': only a SQL value can be optional",
        ),
        ([JsonField(f"k{n}", literal_column("x")) for n in range(51)], "at most 50 keys"),
    ],
)
def test_a_json_object_the_database_cannot_build_is_refused_by_name(
    dialect: str, fields: list[JsonField], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        json_object(fields, dialect)
