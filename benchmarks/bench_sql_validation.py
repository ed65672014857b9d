"""Throughput of the ingest's two validation paths inside the engine, against DuckDB's own read_json of
the same file in the same run.

    python benchmarks/bench_sql_validation.py [--file PATH] [--events N] [--seed S]

Without --file, writes N events (default 1M) the way benchmarks/bench_plan_validation.py does (every
event type, old schema versions, touch objects, about 1% invalid). Then times, in this order:
  1. DuckDB read_json of the file into a table (the yardstick, as the perf check measures it),
  2. reading the lines into Arrow batches (plan.jsonl.LineReader, as the ingest does),
  3. the fast path (ingest/fast_validation.py) over every line: the events of the lines it takes,
     the others diverted,
  4. the exact path (ingest/sql_validation.py) over the diverted lines, as the ingest runs it, and
     over every line, for comparison,
and prints events/s, the ratio of each rate to read_json's, and the verdicts. Best of --repeat runs.
"""
from __future__ import annotations

import argparse
import importlib.util
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow as pa

from crm_platform.ingest.fast_validation import FastPath
from crm_platform.ingest.sql_validation import compile_ingest_sql
from crm_platform.plan.jsonl import STRIP_LINE_END_SQL, LineReader
from crm_platform.plan.loader import load_plan

KEY = b"benchmark-pii-key"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(path: Path, n: int, seed: int) -> None:
    spec = importlib.util.spec_from_file_location("bench_plan_validation", Path(__file__).with_name("bench_plan_validation.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    module.generate(path, n, seed, load_plan())


def best_of(repeat: int, fn) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", type=Path, help="an existing JSONL file (default: generate one)")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="DuckDB threads (default: DuckDB's own)")
    args = ap.parse_args()
    plan = load_plan()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file
        if path is None:
            path = Path(tmp) / "events.jsonl"
            t0 = time.perf_counter()
            generate(path, args.events, args.seed)
            print(f"generated {args.events:,} events in {time.perf_counter() - t0:.1f} s")
        size_mb = path.stat().st_size / 1e6
        con = duckdb.connect()
        if args.threads:
            con.execute(f"set threads = {args.threads}")
        threads = con.execute("select current_setting('threads')").fetchall()[0][0]
        print(f"{path} ({size_mb:,.0f} MB), plan {plan.version}, duckdb {duckdb.__version__}, {threads} threads, "
              f"python {sys.version.split()[0]}")

        # ignore_errors: a generated file has invalid lines (read_json would stop at the first).
        t_read_json = best_of(args.repeat, lambda: con.execute(
            "create or replace table rj as select * from read_json(?, format='newline_delimited', ignore_errors=true)",
            [str(path)]))
        n_json = con.execute("select count(*) from rj").fetchall()[0][0]
        con.execute("drop table rj")
        print(f"read_json             {t_read_json:7.2f} s  {n_json / t_read_json:>10,.0f} events/s")

        batches: list[pa.RecordBatch] = []
        t_lines = best_of(1, lambda: batches.extend(LineReader(path)))
        lines = pa.Table.from_batches(batches)
        n = lines.num_rows
        print(f"read lines (Arrow)    {t_lines:7.2f} s  {n / t_lines:>10,.0f} lines/s  ({n:,} lines; peak RSS {peak_rss_mb():,.0f} MB)")

        con.register("bench_lines", lines)
        fast = FastPath(plan, KEY)
        fast.attach(con)
        fast_sql = fast.sql("bench_lines")

        def run_fast() -> None:
            fast.diverted.take()
            fast.hasher.forget()
            con.execute(f"create or replace temp table fast as {fast_sql}")

        t_fast = best_of(args.repeat, run_fast)
        diverted = fast.diverted.take()
        n_fast = con.execute("select count(*) from fast").fetchall()[0][0]
        print(f"fast path, all lines  {t_fast:7.2f} s  {n / t_fast:>10,.0f} lines/s  = {t_read_json / t_fast:.2f} x read_json's rate"
              f"  ({n_fast:,} events, {diverted.num_rows:,} lines diverted; peak RSS {peak_rss_mb():,.0f} MB)")

        def exact(relation: str) -> tuple[str, dict]:
            return compile_ingest_sql(plan, f"(select line_no, {STRIP_LINE_END_SQL} as raw from {relation})", KEY)

        con.register("bench_diverted", diverted)
        sql, params = exact("bench_diverted")
        t_div = best_of(args.repeat, lambda: con.execute(f"create or replace temp table validated as {sql}", params))
        print(f"exact path, diverted  {t_div:7.2f} s  {diverted.num_rows / t_div:>10,.0f} lines/s")
        verdicts = dict(con.execute("select ok, count(*) from validated group by ok").fetchall())
        codes = Counter(dict(con.execute(
            "select split_part(r, ':', 1), count(*) from (select unnest(reasons) r from validated) group by 1").fetchall()))
        print(f"  accepted {n_fast + verdicts.get(True, 0):,} ({verdicts.get(True, 0):,} of them on the exact path), "
              f"rejected {verdicts.get(False, 0):,}: " + ", ".join(f"{c} {k}" for k, c in codes.most_common()))
        both = t_fast + t_div
        print(f"both paths            {both:7.2f} s  {n / both:>10,.0f} lines/s  = {t_read_json / both:.2f} x read_json's rate")

        sql, params = exact("bench_lines")
        t_all = best_of(args.repeat, lambda: con.execute(f"create or replace temp table validated as {sql}", params))
        print(f"exact path, all lines {t_all:7.2f} s  {n / t_all:>10,.0f} lines/s  = {t_read_json / t_all:.2f} x read_json's rate"
              f"  ({len(sql):,} characters of SQL)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
