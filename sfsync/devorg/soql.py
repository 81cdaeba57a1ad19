"""The dev org's SOQL subset: a lark grammar, an AST, and a translation to SQLite SQL.

Salesforce answers unsupported syntax with ``MALFORMED_QUERY`` and unknown names
with ``INVALID_FIELD`` / ``INVALID_TYPE``; this module reproduces those errors
(:class:`SoqlError`) so clients see the same failures as against a real org.
Queries are translated to SQL over the store's one-table-per-object schema, with
a ``LEFT JOIN`` per parent relationship, so filters and ``ORDER BY
SystemModstamp, Id`` use the store's indexes even on a million rows.

SOQL's null logic is two-valued (``Name != 'x'`` matches rows whose Name is
null, and ``NOT`` of a false comparison is true), unlike SQL's three-valued
logic; :func:`compile_where` pushes ``NOT`` down to the comparisons and adds the
``IS NULL`` terms that make SQLite agree.

Supported: ``SELECT`` fields, parent paths (``Owner.Manager.IsActive``) or
``COUNT()``; ``FROM`` one object; ``WHERE`` with ``AND``/``OR``/``NOT``,
parentheses, ``= != <> < <= > >=``, ``IN``, ``NOT IN``, ``LIKE``; string,
number, boolean, ``null``, date and datetime literals, ``TODAY``,
``YESTERDAY``, ``TOMORROW``, ``LAST_N_DAYS:n``, ``NEXT_N_DAYS:n``; ``ORDER BY``
with ``ASC``/``DESC`` and ``NULLS FIRST``/``LAST``; ``LIMIT``; ``OFFSET``.
Dates are evaluated in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from sfsync.devorg._catalog import FieldDef, SObjectDef
from sfsync.formats import format_datetime, id15_to_18, parse_datetime

__all__ = [
    "Comparison",
    "CompiledWhere",
    "Condition",
    "FieldPath",
    "Literal",
    "Logical",
    "Negation",
    "OrderItem",
    "Query",
    "SoqlError",
    "compile_order",
    "compile_where",
    "component_key",
    "compound_sql",
    "parse_condition",
    "parse_soql",
    "resolve_path",
]

_GRAMMAR = r"""
    start: query
    condition_start: condition

    query: _SELECT select_list _FROM NAME where_clause? order_clause? limit_clause? offset_clause?
    select_list: count_all | field_path ("," field_path)*
    count_all: _COUNT "(" ")"
    field_path: NAME ("." NAME)*

    where_clause: _WHERE condition
    ?condition: or_expr
    ?or_expr: and_expr (_OR and_expr)*
    ?and_expr: not_expr (_AND not_expr)*
    ?not_expr: _NOT not_expr -> negation
             | atom
    ?atom: "(" condition ")"
         | comparison
    comparison: field_path COMP_OP value               -> compare
              | field_path _IN "(" value ("," value)* ")"        -> in_list
              | field_path _NOT _IN "(" value ("," value)* ")"   -> not_in_list
              | field_path _LIKE value                 -> like

    ?value: STRING   -> string
          | SIGNED_NUMBER -> number
          | DATETIME -> datetime_lit
          | DATE     -> date_lit
          | _TRUE    -> true
          | _FALSE   -> false
          | _NULL    -> null
          | RELATIVE_DATE -> relative_date
          | RELATIVE_N -> relative_n

    order_clause: _ORDER _BY order_item ("," order_item)*
    order_item: field_path DIRECTION? nulls?
    nulls: _NULLS NULLS_WHICH
    limit_clause: _LIMIT INT
    offset_clause: _OFFSET INT

    COMP_OP: "=" | "!=" | "<>" | "<=" | ">=" | "<" | ">"
    DIRECTION.2: /(ASC|DESC)\b/i
    NULLS_WHICH.2: /(FIRST|LAST)\b/i
    _SELECT.2: /SELECT\b/i
    _FROM.2: /FROM\b/i
    _WHERE.2: /WHERE\b/i
    _ORDER.2: /ORDER\b/i
    _BY.2: /BY\b/i
    _LIMIT.2: /LIMIT\b/i
    _OFFSET.2: /OFFSET\b/i
    _AND.2: /AND\b/i
    _OR.2: /OR\b/i
    _NOT.2: /NOT\b/i
    _IN.2: /IN\b/i
    _LIKE.2: /LIKE\b/i
    _NULLS.2: /NULLS\b/i
    _COUNT.2: /COUNT(?=\s*\()/i
    _TRUE.2: /TRUE\b/i
    _FALSE.2: /FALSE\b/i
    _NULL.2: /NULL\b/i
    RELATIVE_DATE.3: /(TODAY|YESTERDAY|TOMORROW)\b/i
    RELATIVE_N.3: /(LAST_N_DAYS|NEXT_N_DAYS):\d+\b/i
    DATETIME.4: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})/
    DATE.3: /\d{4}-\d{2}-\d{2}(?![\dT])/
    STRING: /'(\\.|[^'\\])*'/
    NAME: /[A-Za-z][A-Za-z0-9_]*/
    INT: /\d+/

    %import common.SIGNED_NUMBER
    %import common.WS
    %ignore WS
"""

_PARSER = Lark(
    _GRAMMAR,
    start=["start", "condition_start"],
    parser="lalr",
    propagate_positions=True,
    maybe_placeholders=False,
)


class SoqlError(Exception):
    """A query Salesforce would reject: ``code`` is its ``errorCode``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- the AST ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldPath:
    """A field as written: ``("Owner", "Manager", "IsActive")``, with its position for errors."""

    parts: tuple[str, ...]
    line: int = 1
    column: int = 1

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True)
class Literal:
    """A literal value. ``kind``: string, number, boolean, null, date, datetime, relative."""

    kind: str
    value: Any
    raw: str = ""


@dataclass(frozen=True, slots=True)
class Comparison:
    """``field op value``; ``op`` is one of ``= != < <= > >= in not_in like``."""

    path: FieldPath
    op: str
    values: tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class Logical:
    op: str  # "and" | "or"
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Negation:
    item: Condition


Condition = Comparison | Logical | Negation


@dataclass(frozen=True, slots=True)
class OrderItem:
    path: FieldPath
    descending: bool = False
    nulls_first: bool | None = None


@dataclass(frozen=True, slots=True)
class Query:
    sobject: str
    fields: tuple[FieldPath, ...]
    count: bool = False
    where: Condition | None = None
    order_by: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int | None = None
    sobject_column: int = 1


@v_args(inline=True)
class _ToAst(Transformer[Token, Any]):
    def start(self, query: Query) -> Query:
        return query

    def condition_start(self, cond: Condition) -> Condition:
        return cond

    def query(self, select: Any, sobject: Token, *clauses: Any) -> Query:
        count = select == "COUNT"
        kw: dict[str, Any] = {}
        for kind, value in clauses:
            kw[kind] = value
        return Query(
            sobject=str(sobject),
            fields=() if count else tuple(select),
            count=count,
            sobject_column=sobject.column or 1,
            **kw,
        )

    def select_list(self, *items: Any) -> Any:
        if len(items) == 1 and items[0] == "COUNT":
            return "COUNT"
        return list(items)

    def count_all(self) -> str:
        return "COUNT"

    def field_path(self, *names: Token) -> FieldPath:
        first = names[0]
        return FieldPath(tuple(str(n) for n in names), first.line or 1, first.column or 1)

    def where_clause(self, cond: Condition) -> tuple[str, Condition]:
        return ("where", cond)

    def order_clause(self, *items: OrderItem) -> tuple[str, tuple[OrderItem, ...]]:
        return ("order_by", items)

    def order_item(self, path: FieldPath, *rest: Any) -> OrderItem:
        descending = False
        nulls_first: bool | None = None
        for item in rest:
            if isinstance(item, Token) and item.type == "DIRECTION":
                descending = item.upper() == "DESC"
            elif isinstance(item, bool):
                nulls_first = item
        return OrderItem(path, descending, nulls_first)

    def nulls(self, which: Token) -> bool:
        return which.upper() == "FIRST"

    def limit_clause(self, value: Token) -> tuple[str, int]:
        return ("limit", int(value))

    def offset_clause(self, value: Token) -> tuple[str, int]:
        return ("offset", int(value))

    def or_expr(self, *items: Condition) -> Logical:
        return Logical("or", items)

    def and_expr(self, *items: Condition) -> Logical:
        return Logical("and", items)

    def negation(self, item: Condition) -> Negation:
        return Negation(item)

    def compare(self, path: FieldPath, op: Token, value: Literal) -> Comparison:
        text = "!=" if str(op) == "<>" else str(op)
        return Comparison(path, text, (value,))

    def in_list(self, path: FieldPath, *values: Literal) -> Comparison:
        return Comparison(path, "in", values)

    def not_in_list(self, path: FieldPath, *values: Literal) -> Comparison:
        return Comparison(path, "not_in", values)

    def like(self, path: FieldPath, value: Literal) -> Comparison:
        return Comparison(path, "like", (value,))

    def string(self, token: Token) -> Literal:
        return Literal("string", str(token)[1:-1], str(token))

    def number(self, token: Token) -> Literal:
        text = str(token)
        value: float | int = float(text) if any(c in text for c in ".eE") else int(text)
        return Literal("number", value, text)

    def datetime_lit(self, token: Token) -> Literal:
        return Literal("datetime", parse_datetime(str(token)), str(token))

    def date_lit(self, token: Token) -> Literal:
        try:
            return Literal("date", date.fromisoformat(str(token)), str(token))
        except ValueError as exc:
            raise SoqlError("MALFORMED_QUERY", f"invalid date: {token}") from exc

    def true(self) -> Literal:
        return Literal("boolean", True, "true")

    def false(self) -> Literal:
        return Literal("boolean", False, "false")

    def null(self) -> Literal:
        return Literal("null", None, "null")

    def relative_date(self, token: Token) -> Literal:
        return Literal("relative", (str(token).upper(), 0), str(token))

    def relative_n(self, token: Token) -> Literal:
        name, _, count = str(token).partition(":")
        return Literal("relative", (name.upper(), int(count)), str(token))


def _syntax_error(exc: UnexpectedInput, text: str) -> SoqlError:
    if isinstance(exc, UnexpectedEOF):
        return SoqlError("MALFORMED_QUERY", "unexpected token: <EOF>")
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            return SoqlError("MALFORMED_QUERY", "unexpected token: <EOF>")
        return SoqlError(
            "MALFORMED_QUERY",
            f"unexpected token: '{token}' at Row:{token.line}:Column:{token.column}",
        )
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        char = text[pos] if pos < len(text) else ""
        return SoqlError(
            "MALFORMED_QUERY",
            f"no viable alternative at character '{char}' at Row:{exc.line}:Column:{exc.column}",
        )
    return SoqlError("MALFORMED_QUERY", str(exc))


def _parse(text: str, start: str) -> Any:
    if not text.strip():
        raise SoqlError("MALFORMED_QUERY", "unexpected token: <EOF>")
    try:
        tree = _PARSER.parse(text, start=start)
        return _ToAst().transform(tree)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from None
    except VisitError as exc:
        if isinstance(exc.orig_exc, SoqlError):
            raise exc.orig_exc from None
        raise SoqlError("MALFORMED_QUERY", str(exc.orig_exc)) from None


def parse_soql(text: str) -> Query:
    """Parse a SOQL query of the supported subset, or raise ``SoqlError(MALFORMED_QUERY)``."""
    query: Query = _parse(text, "start")
    return query


def parse_condition(text: str) -> Condition:
    """Parse a bare WHERE expression (validation-rule conditions use this)."""
    cond: Condition = _parse(text, "condition_start")
    return cond


# --- resolution against the catalogue ----------------------------------------------------


@dataclass(slots=True)
class _Join:
    alias: str
    sobject: SObjectDef
    sql: str


@dataclass(slots=True)
class JoinSet:
    """The LEFT JOINs a query needs, one per distinct relationship path, shared by clauses."""

    base_alias: str = "t0"
    joins: dict[tuple[str, ...], _Join] = field(default_factory=dict)

    def sql(self) -> str:
        return " ".join(j.sql for j in self.joins.values())


@dataclass(frozen=True, slots=True)
class ResolvedField:
    """A field path resolved to a SQL column: canonical names for the response, and its type."""

    column: str
    fdef: FieldDef
    names: tuple[str, ...]  # canonical relationship names then the field name
    rel_aliases: tuple[str, ...]  # the join alias of each relationship step
    rel_objects: tuple[str, ...]  # the sobject of each relationship step


def _invalid_field(path: FieldPath, sobject: SObjectDef, query_text: str | None) -> SoqlError:
    name = path.parts[-1] if len(path.parts) == 1 else path.text
    message = (
        f"No such column '{name}' on entity '{sobject.name}'. If you are attempting to use a "
        "custom field, be sure to append the '__c' after the custom field name. Please "
        "reference your WSDL or the describe call for the appropriate names."
    )
    return SoqlError("INVALID_FIELD", _with_position(message, path, query_text))


def _with_position(message: str, path: FieldPath, query_text: str | None) -> str:
    if not query_text or "\n" in query_text:
        return message
    pointer = " " * (path.column - 1) + "^"
    return f"\n{query_text}\n{pointer}\nERROR at Row:{path.line}:Column:{path.column}\n{message}"


def resolve_path(
    path: FieldPath,
    base: SObjectDef,
    objects: Mapping[str, SObjectDef],
    joins: JoinSet,
    query_text: str | None = None,
) -> ResolvedField:
    """Resolve ``Owner.Manager.IsActive`` to a column, adding the LEFT JOINs it needs."""
    current = base
    alias = joins.base_alias
    names: list[str] = []
    aliases: list[str] = []
    rel_objects: list[str] = []
    for depth, part in enumerate(path.parts[:-1]):
        ref = current.relationship(part)
        target = None
        if ref is not None:
            target = next((objects[t] for t in ref.reference_to if t in objects), None)
        if ref is None or target is None:
            message = (
                f"Didn't understand relationship '{part}' in field path. If you are attempting "
                "to use a custom relationship, be sure to append the '__r' after the custom "
                "relationship name. Please reference your WSDL or the describe call for the "
                "appropriate names."
            )
            raise SoqlError("INVALID_FIELD", _with_position(message, path, query_text))
        assert ref.relationship_name is not None
        key = tuple(p.lower() for p in path.parts[: depth + 1])
        join = joins.joins.get(key)
        if join is None:
            new_alias = f"j{len(joins.joins) + 1}"
            join = _Join(
                new_alias,
                target,
                f'LEFT JOIN "{target.name}" {new_alias} ON {new_alias}."Id" = {alias}."{ref.name}"',
            )
            joins.joins[key] = join
        names.append(ref.relationship_name)
        aliases.append(join.alias)
        rel_objects.append(target.name)
        alias = join.alias
        current = target
    canonical = current.canonical(path.parts[-1])
    if canonical is None:
        if len(path.parts) == 1:
            raise _invalid_field(path, current, query_text)
        raise _invalid_field(FieldPath((path.parts[-1],), path.line, path.column), current, None)
    fdef = current.fields[canonical]
    names.append(canonical)
    column = compound_sql(fdef, alias) if fdef.is_compound else f'{alias}."{canonical}"'
    return ResolvedField(column, fdef, tuple(names), tuple(aliases), tuple(rel_objects))


def component_key(name: str, compound: str) -> str:
    """A component's key in its compound's JSON value: ``BillingPostalCode`` → ``postalCode``."""
    prefix = compound[: -len("Address")] if compound.endswith("Address") else ""
    short = name[len(prefix) :] if prefix and name.startswith(prefix) else name
    return short[:1].lower() + short[1:]


def compound_sql(fdef: FieldDef, alias: str) -> str:
    """A compound field as SQL: a JSON object of its components, NULL when all are null."""
    columns = [f'{alias}."{c}"' for c in fdef.components]
    pairs = sorted(
        (component_key(c, fdef.name), col) for c, col in zip(fdef.components, columns, strict=True)
    )
    body = ", ".join(f"'{key}', {col}" for key, col in pairs)
    return (
        f"(CASE WHEN COALESCE({', '.join(columns)}) IS NULL THEN NULL ELSE json_object({body}) END)"
    )


# --- WHERE -------------------------------------------------------------------------------


@dataclass(slots=True)
class CompiledWhere:
    sql: str
    params: list[Any]


def _day_range(kind: str, count: int, today: date) -> tuple[date, date]:
    """A relative date literal as an inclusive range of days."""
    if kind == "TODAY":
        return today, today
    if kind == "YESTERDAY":
        day = today - timedelta(days=1)
        return day, day
    if kind == "TOMORROW":
        day = today + timedelta(days=1)
        return day, day
    if kind == "LAST_N_DAYS":
        return today - timedelta(days=count), today
    if kind == "NEXT_N_DAYS":
        return today, today + timedelta(days=count)
    raise SoqlError("MALFORMED_QUERY", f"unsupported date literal {kind}")


def _midnight(day: date) -> str:
    return format_datetime(datetime(day.year, day.month, day.day, tzinfo=UTC))


def _type_error(fdef: FieldDef, literal: Literal) -> SoqlError:
    expected = {
        "date": "date",
        "datetime": "dateTime",
        "boolean": "boolean",
    }.get(fdef.type, "string" if fdef.storage == "text" else "number")
    quoted = (
        "and should be enclosed in quotes"
        if expected == "string"
        else ("and should not be enclosed in quotes")
    )
    return SoqlError(
        "INVALID_FIELD",
        f"value of filter criterion for field '{fdef.name}' must be of type {expected} {quoted}",
    )


_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


def _unescape(raw: str, *, like: bool) -> str:
    """SOQL string escapes; in LIKE patterns ``\\%``/``\\_`` stay escaped for ``ESCAPE '\\'``."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            i += 2
            if nxt in "%_":
                out.append("\\" + nxt if like else nxt)
            elif nxt == "\\":
                out.append("\\\\" if like else "\\")
            elif nxt == "u" and i + 4 <= len(raw):
                out.append(chr(int(raw[i : i + 4], 16)))
                i += 4
            else:
                out.append(_SIMPLE_ESCAPES.get(nxt, nxt))
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _scalar(fdef: FieldDef, literal: Literal) -> Any:
    """A non-null, non-relative literal converted to the store's representation of ``fdef``."""
    kind = literal.kind
    if fdef.type in ("id", "reference"):
        if kind != "string":
            raise _type_error(fdef, literal)
        text = _unescape(literal.value, like=False)
        if len(text) == 15 and text.isalnum():
            return id15_to_18(text)
        return text
    if fdef.storage == "text" and fdef.type not in ("date", "datetime"):
        if kind != "string":
            raise _type_error(fdef, literal)
        return _unescape(literal.value, like=False)
    if fdef.type == "date":
        if kind != "date":
            raise _type_error(fdef, literal)
        return literal.value.isoformat()
    if fdef.type == "datetime":
        if kind != "datetime":
            raise _type_error(fdef, literal)
        return format_datetime(literal.value)
    if fdef.storage == "bool":
        if kind != "boolean":
            raise _type_error(fdef, literal)
        return 1 if literal.value else 0
    if kind != "number":
        raise _type_error(fdef, literal)
    return literal.value


def _range_bounds(fdef: FieldDef, literal: Literal, today: date) -> tuple[str, str]:
    """A relative date literal as ``[low, high)`` in the store's text form for ``fdef``."""
    if fdef.type not in ("date", "datetime"):
        raise _type_error(fdef, literal)
    kind, count = literal.value
    first, last = _day_range(kind, count, today)
    after = last + timedelta(days=1)
    if fdef.type == "date":
        return first.isoformat(), after.isoformat()
    return _midnight(first), _midnight(after)


_NEGATED_OPS = {"=": "!=", "!=": "=", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}


class _WhereCompiler:
    def __init__(
        self,
        base: SObjectDef,
        objects: Mapping[str, SObjectDef],
        joins: JoinSet,
        today: date,
        query_text: str | None,
    ) -> None:
        self.base = base
        self.objects = objects
        self.joins = joins
        self.today = today
        self.query_text = query_text
        self.params: list[Any] = []

    def compile(self, cond: Condition, negate: bool = False) -> str:
        if isinstance(cond, Negation):
            return self.compile(cond.item, not negate)
        if isinstance(cond, Logical):
            op = cond.op
            if negate:
                op = "or" if op == "and" else "and"
            glue = " AND " if op == "and" else " OR "
            return "(" + glue.join(self.compile(item, negate) for item in cond.items) + ")"
        return self._comparison(cond, negate)

    def _param(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def _comparison(self, cmp: Comparison, negate: bool) -> str:
        field_ = resolve_path(cmp.path, self.base, self.objects, self.joins, self.query_text)
        col, fdef = field_.column, field_.fdef
        if fdef.is_compound:
            raise SoqlError(
                "INVALID_FIELD",
                _with_position(
                    f"field '{fdef.name}' can not be filtered in a query call",
                    cmp.path,
                    self.query_text,
                ),
            )
        nocase = " COLLATE NOCASE" if fdef.is_text else ""
        if cmp.op in ("in", "not_in"):
            positive = self._in(col, fdef, cmp.values, nocase)
            if (cmp.op == "not_in") != negate:
                return f"(NOT {positive} OR {col} IS NULL)"
            return positive
        if cmp.op == "like":
            literal = cmp.values[0]
            if not fdef.is_text or literal.kind != "string":
                raise SoqlError(
                    "INVALID_FIELD",
                    f"invalid operator on {fdef.type} field: {fdef.name}. "
                    "LIKE applies to string fields",
                )
            positive = f"{col} LIKE {self._param(_unescape(literal.value, like=True))} ESCAPE '\\'"
            return f"(NOT ({positive}) OR {col} IS NULL)" if negate else positive
        literal = cmp.values[0]
        op = cmp.op
        if literal.kind == "null":
            if op not in ("=", "!="):
                raise SoqlError("MALFORMED_QUERY", f"invalid operator {op} with null")
            is_null = (op == "=") != negate
            return f"{col} IS NULL" if is_null else f"{col} IS NOT NULL"
        if negate:
            op = _NEGATED_OPS[op]
        if literal.kind == "relative":
            low, high = _range_bounds(fdef, literal, self.today)
            if op == "=":
                return f"({col} >= {self._param(low)} AND {col} < {self._param(high)})"
            if op == "!=":
                lo, hi = self._param(low), self._param(high)
                return f"({col} < {lo} OR {col} >= {hi} OR {col} IS NULL)"
            if op == "<":
                sql = f"{col} < {self._param(low)}"
            elif op == "<=":
                sql = f"{col} < {self._param(high)}"
            elif op == ">":
                sql = f"{col} >= {self._param(high)}"
            else:
                sql = f"{col} >= {self._param(low)}"
            return f"({sql} OR {col} IS NULL)" if negate else sql
        value = self._param(_scalar(fdef, literal))
        if op == "!=":
            return f"({col}{nocase} != {value} OR {col} IS NULL)"
        if op == "=":
            return f"{col}{nocase} = {value}"
        sql = f"{col}{nocase} {op} {value}"
        # A negated range comparison is true for null values in SOQL.
        return f"({sql} OR {col} IS NULL)" if negate else sql

    def _in(self, col: str, fdef: FieldDef, values: tuple[Literal, ...], nocase: str) -> str:
        non_null = [v for v in values if v.kind != "null"]
        if any(v.kind == "relative" for v in non_null):
            raise SoqlError("MALFORMED_QUERY", "date literals are not allowed in IN lists")
        marks = ", ".join(self._param(_scalar(fdef, v)) for v in non_null)
        parts = [f"{col}{nocase} IN ({marks})"] if non_null else []
        if len(non_null) != len(values):
            parts.append(f"{col} IS NULL")
        if not parts:
            return "0"
        return "(" + " OR ".join(parts) + ")"


def compile_where(
    cond: Condition,
    base: SObjectDef,
    objects: Mapping[str, SObjectDef],
    joins: JoinSet,
    *,
    today: date,
    query_text: str | None = None,
) -> CompiledWhere:
    """Translate a condition to a SQL boolean expression over ``base`` aliased ``t0``."""
    compiler = _WhereCompiler(base, objects, joins, today, query_text)
    sql = compiler.compile(cond)
    return CompiledWhere(sql, compiler.params)


def compile_order(
    items: tuple[OrderItem, ...],
    base: SObjectDef,
    objects: Mapping[str, SObjectDef],
    joins: JoinSet,
    query_text: str | None = None,
) -> str:
    """Translate ORDER BY; SOQL's default null placement (first for ASC) is SQLite's too."""
    terms: list[str] = []
    for item in items:
        resolved = resolve_path(item.path, base, objects, joins, query_text)
        term = resolved.column + (" COLLATE NOCASE" if resolved.fdef.is_text else "")
        if item.descending:
            term += " DESC"
        default_nulls_first = not item.descending
        if item.nulls_first is not None and item.nulls_first != default_nulls_first:
            term += " NULLS FIRST" if item.nulls_first else " NULLS LAST"
        terms.append(term)
    return ", ".join(terms)
