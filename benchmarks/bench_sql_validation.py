"""Throughput of the ingest's validation in the engine (crm_platform/ingest/sql_validation.py), against
DuckDB's own read_json of the same file in the same run.

    python benchmarks/bench_sql_validation.py [--file PATH] [--events N] [--seed S] [--batch-mb MB ...]

Without --file, writes N events (default 1M) the way benchmarks/bench_plan_validation.py does (every
event type, old schema versions, touch objects, about 1% invalid). Then times, in this order:
  1. DuckDB read_json of the file into a table (the yardstick, as the perf check measures it),
  2. reading the lines into Arrow batches (plan.jsonl.LineReader, as the ingest does),
  3. the validation SELECT into a temp table, over all lines in one statement,
  4. the same per batch of each --batch-mb size (one statement per batch, as the ingest stages),
and prints events/s, the ratio of each rate to read_json's, the planning time of one statement, and
the verdicts. Each timing is the best of --repeat runs.
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
    ap.add_argument("--batch-mb", type=int, nargs="*", default=[32, 256], help="statement sizes to try, in MB of input")
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

        relation = f"(select line_no, {STRIP_LINE_END_SQL} as raw from bench_lines)"
        sql, params = compile_ingest_sql(plan, relation, KEY)
        con.register("bench_lines", lines)
        t_plan = best_of(3, lambda: con.execute(f"explain {sql}", params).fetchall())
        print(f"planning one statement {t_plan:6.3f} s  ({len(sql):,} characters of SQL)")

        t_sql = best_of(args.repeat, lambda: con.execute(f"create or replace temp table validated as {sql}", params))
        print(f"validation, 1 statement {t_sql:5.2f} s  {n / t_sql:>10,.0f} events/s  = {t_read_json / t_sql:.2f} x read_json's rate"
              f"  (peak RSS {peak_rss_mb():,.0f} MB)")
        verdicts = dict(con.execute("select ok, count(*) from validated group by ok").fetchall())
        codes = Counter(dict(con.execute(
            "select split_part(r, ':', 1), count(*) from (select unnest(reasons) r from validated) group by 1").fetchall()))
        print(f"  accepted {verdicts.get(True, 0):,}, rejected {verdicts.get(False, 0):,}: "
              + ", ".join(f"{c} {k}" for k, c in codes.most_common()))
        con.unregister("bench_lines")
        con.execute("drop table validated")

        for mb in args.batch_mb:
            per_batch = [b for b in LineReader(path, batch_bytes=mb << 20)]

            def staged(per_batch: list[pa.RecordBatch] = per_batch) -> None:
                for i, batch in enumerate(per_batch):
                    con.register("bench_lines", batch)
                    verb = "create or replace temp table validated as" if i == 0 else "insert into validated"
                    con.execute(f"{verb} {sql}", params)
                    con.unregister("bench_lines")

            t_batched = best_of(args.repeat, staged)
            print(f"validation, {len(per_batch)} statements of {mb} MB {t_batched:5.2f} s  {n / t_batched:>10,.0f} events/s"
                  f"  = {t_read_json / t_batched:.2f} x read_json's rate")
            con.execute("drop table validated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
