"""rebuild_table: a table rebuilt from queries inside the engine, swapped in whole, on both engines;
a query that fails leaves the previous content as it was."""
from __future__ import annotations

import pyarrow as pa
import pytest

from crm_platform.warehouse.sql_files import render
from crm_platform.warehouse.tables import TableDef
from crm_platform_tests.test_ingest.helpers import warehouse

TOTALS = TableDef("work", "totals", (("k", "string"), ("n", "bigint"), ("v", "double")), order_by=("k",))


def test_rebuild_from_several_queries_then_a_failed_rebuild_changes_nothing(engine):
    with warehouse() as wh:
        wh.replace_table("work", "src", pa.table({"k": ["a", "a", "b"], "v": [1.0, 2.0, 3.0]}))
        first = render(wh, "select k, count(*), sum(v) from {work.src} where v >= $low group by k", {"low": 1.5, "unused": 0})
        second = render(wh, "select 'z', 0, $x", {"x": 9.5})
        assert first[1] == {"low": 1.5}  # only the parameters the text uses
        assert wh.rebuild_table(TOTALS, [first, second]) == 3
        rows = wh.fetchall(f"select k, n, v from {wh.table_name('work', 'totals')} order by k")
        assert rows == [("a", 1, 2.0), ("b", 1, 3.0), ("z", 0, 9.5)]
        with pytest.raises(Exception):
            wh.rebuild_table(TOTALS, [render(wh, "select k, 1, v from {work.src}", {}),
                                      render(wh, "select k, n from {work.no_such_table}", {})])
        assert wh.fetchall(f"select k, n, v from {wh.table_name('work', 'totals')} order by k") == rows
        assert not wh.table_exists("work", "totals__build")


def test_render_names_what_is_missing():
    class Names:
        def table_name(self, schema, table):
            return f"{schema}__{table}"

    assert render(Names(), "select {x} from {a.b}", {}, {"x": "1"}) == ("select 1 from a__b", {})
    with pytest.raises(ValueError, match="fragment.*x"):
        render(Names(), "select {x} from {a.b}", {})
    with pytest.raises(ValueError, match=r"parameter.*low"):
        render(Names(), "select $low", {})


DAILY = TableDef("work", "daily", (("day", "date"), ("k", "string"), ("n", "bigint")), order_by=("day", "k"),
                 partition_by="day", partition_granularity="day")


def _days(wh):
    return [(str(d), k, n) for d, k, n in wh.fetchall(f"select day, k, n from {wh.table_name('work', 'daily')} "
                                                       "order by day, k")]


def test_replace_range_replaces_those_days_only_and_drops_days_without_rows(engine):
    from datetime import date

    with warehouse() as wh:
        wh.replace_table("work", "facts", pa.table({"day": pa.array([date(2026, 5, d) for d in (1, 2, 2, 3, 4)]),
                                                    "k": ["a", "a", "b", "a", "a"]}))
        counts = render(wh, "select day, k, count(*) * $scale AS n from {work.facts} group by day, k", {"scale": 1})
        assert wh.replace_range(DAILY, date(2026, 5, 1), date(2026, 5, 5), [counts]) == 5
        assert _days(wh) == [("2026-05-01", "a", 1), ("2026-05-02", "a", 1), ("2026-05-02", "b", 1),
                             ("2026-05-03", "a", 1), ("2026-05-04", "a", 1)]
        # Days 2 and 3 again, from other facts: day 2 loses a row, day 3 has none left; 1 and 4 stay.
        wh.replace_table("work", "facts", pa.table({"day": pa.array([date(2026, 5, 2)] * 2 + [date(2026, 5, 9)]),
                                                    "k": ["a", "a", "a"]}))
        counts = render(wh, "select day, k, count(*) * $scale AS n from {work.facts} group by day, k", {"scale": 10})
        assert wh.replace_range(DAILY, date(2026, 5, 2), date(2026, 5, 4), [counts]) == 1
        assert _days(wh) == [("2026-05-01", "a", 1), ("2026-05-02", "a", 20), ("2026-05-04", "a", 1)]
        assert not wh.table_exists("work", "daily__range")
        # Years of days in one write (ClickHouse limits partitions per insert unless told otherwise).
        wh.replace_table("work", "numbers", pa.table({"i": list(range(400))}))
        many = render(wh, "select DATE '2025-01-01' + CAST(i AS INTEGER) AS day, 'y' AS k, i AS n from {work.numbers}", {})
        assert wh.replace_range(DAILY, date(2025, 1, 1), date(2026, 1, 1), [many]) == 365
        assert wh.fetchall(f"select count(*), sum(n) from {wh.table_name('work', 'daily')} where k = 'y'") == [(365, 66430)]
        # A failing query leaves every day as it was.
        with pytest.raises(Exception):
            wh.replace_range(DAILY, date(2026, 5, 1), date(2026, 5, 5), [render(wh, "select * from {work.nothing}", {})])
        assert [r for r in _days(wh) if r[1] != "y"] == [("2026-05-01", "a", 1), ("2026-05-02", "a", 20), ("2026-05-04", "a", 1)]


def test_replace_range_refuses_a_table_whose_columns_changed(engine):
    from dataclasses import replace
    from datetime import date

    with warehouse() as wh:
        wh.replace_range(DAILY, date(2026, 5, 1), date(2026, 5, 2), [("select DATE '2026-05-01' AS day, 'a' AS k, 1 AS n", {})])
        wider = replace(DAILY, columns=DAILY.columns + (("m", "bigint"),))
        with pytest.raises(ValueError, match="materialize all its partitions again"):
            wh.replace_range(wider, date(2026, 5, 1), date(2026, 5, 2), [("select DATE '2026-05-01' AS day, 'a' AS k, 1 AS n, 2 AS m", {})])
