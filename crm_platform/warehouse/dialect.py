"""One text per transform: SQL is written once, in DuckDB's dialect, and runs on ClickHouse through
SQLGlot. Parameters (`?` or `$name`) become typed literals in the tree, so values are never pasted
into SQL text by hand."""
from __future__ import annotations

import math
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Mapping, Sequence

import sqlglot
from sqlglot import exp
from sqlglot.dialects.clickhouse import ClickHouse


class UntranslatableSQL(ValueError):
    """SQL that SQLGlot cannot carry over to ClickHouse: rewrite it in portable SQL."""


def _json_scalar(generator, node: exp.JSONExtractScalar) -> str:
    """`j ->> 'k'` is NULL where the key is missing or null, as in DuckDB (ClickHouse's
    JSONExtractString would give '')."""
    text = _BASE_SCALAR(generator, node)
    if not (text.startswith("JSONExtractString(") and text.endswith(")")):
        return text
    return "JSONExtract(" + text[len("JSONExtractString("):-1] + ", 'Nullable(String)')"


_BASE_SCALAR = ClickHouse.Generator.TRANSFORMS[exp.JSONExtractScalar]


def _regexp_extract_all(generator, node: exp.RegexpExtractAll) -> str:
    """regexp_extract_all(s, pattern): every match of the whole pattern, as ClickHouse's extractAll
    (SQLGlot writes REGEXP_EXTRACT_ALL, which ClickHouse 26 does not have)."""
    group = node.args.get("group")
    if group is not None and not (isinstance(group, exp.Literal) and group.name == "0"):
        raise UntranslatableSQL("regexp_extract_all with a capture group has no ClickHouse equivalent here")
    return f"extractAll({generator.sql(node, 'this')}, {generator.sql(node, 'expression')})"


class _ClickHouse(ClickHouse):
    """ClickHouse, with DuckDB's meaning where the two differ and SQLGlot keeps the letter."""

    class Generator(ClickHouse.Generator):
        TRANSFORMS = {**ClickHouse.Generator.TRANSFORMS, exp.JSONExtractScalar: _json_scalar,
                      exp.RegexpExtractAll: _regexp_extract_all}


def literal(value: Any) -> exp.Expression:
    """A Python value as a SQL literal (ClickHouse types for dates and times)."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"cannot write {value!r} as a SQL literal")
        return exp.Literal.number(repr(value))
    if isinstance(value, datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.build("DateTime64(6)", dialect="clickhouse"))
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("Date32", dialect="clickhouse"))
    if isinstance(value, bytes):
        return exp.Literal.string(value.decode("latin-1"))
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, (list, tuple)):
        return exp.Array(expressions=[literal(v) for v in value])
    raise TypeError(f"no SQL literal for {type(value).__name__}")


@lru_cache(maxsize=512)
def _parsed(sql: str) -> exp.Expression:
    try:
        trees = sqlglot.parse(sql, read="duckdb")
    except sqlglot.errors.ParseError as e:
        raise UntranslatableSQL(f"cannot parse as DuckDB SQL: {e}") from e
    if len(trees) != 1 or trees[0] is None:
        raise UntranslatableSQL("expected exactly one statement")
    return trees[0]


def _ordered_string_agg(node: exp.Expression) -> exp.Expression:
    """string_agg(x, sep ORDER BY k1, k2) (ClickHouse's groupConcat takes no ORDER BY) as an array
    sorted and joined: by the value itself, arrayStringConcat(arraySort(groupArray(x)), sep)
    (DISTINCT x keeps each value once); by other keys, the (k1, k2, x) tuples sorted and their last
    element joined. Keys all ascending or all descending."""
    if not isinstance(node, exp.GroupConcat) or not isinstance(node.this, exp.Order):
        return node
    order = node.this
    value, keys = order.this, order.expressions
    distinct = isinstance(value, exp.Distinct)
    if distinct:
        value = value.expressions[0]
    directions = {bool(k.args.get("desc")) for k in keys}
    if len(directions) != 1:
        raise UntranslatableSQL("string_agg ordered by keys in mixed directions has no ClickHouse equivalent here: "
                                "sort in a subquery, or in Python")
    sort = "arrayReverseSort" if directions.pop() else "arraySort"
    separator = (node.args.get("separator") or exp.Literal.string(",")).sql("clickhouse")
    text = value.sql("clickhouse")
    if len(keys) == 1 and keys[0].this == value:
        gather = "groupUniqArray" if distinct else "groupArray"
        return sqlglot.parse_one(f"arrayStringConcat({sort}({gather}({text})), {separator})", read="clickhouse")
    if distinct:
        raise UntranslatableSQL("string_agg(DISTINCT x ORDER BY another key) has no ClickHouse equivalent here")
    members = ", ".join([k.this.sql("clickhouse") for k in keys] + [text])
    return sqlglot.parse_one(f"arrayStringConcat(arrayMap(x -> tupleElement(x, {len(keys) + 1}), "
                             f"{sort}(groupArray(tuple({members})))), {separator})", read="clickhouse")


def to_clickhouse(sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> str:
    """ClickHouse SQL for DuckDB-dialect `sql`, its parameters bound as literals."""
    tree = _parsed(sql).copy().transform(_ordered_string_agg)
    placeholders = list(tree.find_all(exp.Placeholder, bfs=False))  # depth first: in the order written
    positional = iter(params) if isinstance(params, Sequence) and not isinstance(params, str) else None
    for node in placeholders:
        name = node.name
        if name and name != "?":
            if not isinstance(params, Mapping) or name not in params:
                raise ValueError(f"no value for parameter ${name}")
            node.replace(literal(params[name]))
        else:
            if positional is None:
                raise ValueError("positional parameters need a sequence of values")
            try:
                node.replace(literal(next(positional)))
            except StopIteration:
                raise ValueError("fewer values than parameters") from None
    try:
        return tree.sql(dialect=_ClickHouse)
    except sqlglot.errors.UnsupportedError as e:
        raise UntranslatableSQL(str(e)) from e
