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
