"""delete_rows: the rows a predicate (with parameters, reading other tables) selects are deleted and
counted, on both engines; regexp_extract_all runs on both."""
from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from crm_platform.warehouse.tables import TableDef
from crm_platform_tests.test_ingest.helpers import warehouse

ROWS = TableDef("work", "rows", (("k", "string"), ("seen_at", "timestamp"), ("text", "string")), order_by=("k",))


def test_delete_rows_deletes_exactly_what_the_predicate_selects_and_counts_it(engine):
    with warehouse() as wh:
        wh.ensure_table(ROWS)
        wh.insert_arrow("work", "rows", pa.table({
            "k": ["a", "b", "c", "d", None],
            "seen_at": [datetime(2025, 1, 1), datetime(2025, 6, 1), datetime(2026, 1, 1), None, datetime(2024, 1, 1)],
            "text": ["x", "y", "z", "w", "v"]}))
        wh.replace_table("work", "gone", pa.table({"k": ["c"]}))
        rows = wh.table_name("work", "rows")
        where = f"(seen_at < $cutoff and k <> $keep) or k in (select k from {wh.table_name('work', 'gone')})"
        params = {"cutoff": datetime(2025, 6, 1), "keep": "zzz"}
        assert wh.delete_rows("work", "rows", where, params) == 2  # a (before the cutoff), c (in gone)
        # NULL for the predicate keeps the row (d has no time, the unnamed row no k: NULL <> 'zzz').
        assert wh.fetchall(f"select k from {rows} order by k nulls last") == [("b",), ("d",), (None,)]
        assert wh.delete_rows("work", "rows", where, params) == 0  # again: nothing
        assert wh.delete_rows("work", "rows", "k = ?", ["b"]) == 1
        assert wh.fetchall(f"select k from {rows} order by k nulls last") == [("d",), (None,)]


def test_regexp_extract_all_gives_every_match_on_both_engines(engine):
    with warehouse() as wh:
        wh.replace_table("work", "texts", pa.table({"t": ['{"a": "pii:' + "0" * 32 + '", "b": "pii:' + "f" * 32 + '"}',
                                                         "pii:short", None]}))
        found = wh.fetchall(
            "select h from (select unnest(regexp_extract_all(coalesce(t, ''), 'pii:[0-9a-f]{32}')) as h "
            f"from {wh.table_name('work', 'texts')}) as x order by h")
        assert found == [("pii:" + "0" * 32,), ("pii:" + "f" * 32,)]
