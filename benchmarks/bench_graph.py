"""The whole graph at several sizes: per asset step wall time and rows, the run's peak memory, an
incremental night, and the growth exponent per step between sizes (issue 12).

    python benchmarks/bench_graph.py [--sizes 10000 100000 1000000] [--root /tmp/crm-bench-graph]
                                     [--engine duckdb|clickhouse] [--json results.json]

For each size N (leads; the generator writes about 30 events per lead):

1. `crm-platform generate --leads N --seed 1` (kept under --root and reused by later runs);
2. full: `crm-platform materialize` (every asset, every check) on a fresh warehouse and a fresh
   `$DAGSTER_HOME`, in a fresh process: wall and peak RSS of the process tree (wait4's rusage), and
   each step's seconds and rows from the runner's progress lines;
3. reference: DuckDB's own scan of core.events grouped by lead, on the warehouse the run left
   (benchmarks/_common.py), the yardstick every ratio is given against;
4. incremental: 1% more events land (existing leads' touches and activities, new event ids, dated on
   the last generated day), then `crm-platform materialize --partition <last day - 2>...<last day>`,
   as the nightly schedule runs (every asset, the daily partitions of the trailing three days): what
   a night with 1% new data costs against the full run.

The growth exponent of a step between two sizes is log(t2/t1) / log(n2/n1): 1.0 is linear. With
--engine clickhouse the warehouse is a real server started for the run, a database per size
(crm_platform.warehouse.local_clickhouse); the DuckDB reference scan is then not measured.
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import zlib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from _common import EVENTS_SCAN_REFERENCE, run

from crm_platform.features.run import PLATFORM_SOURCES

CLI = str(Path(sys.executable).with_name("crm-platform"))
# The runner's line per finished step: "  ok      <step> <seconds> s  <asset> N rows; ..."
STEP_LINE = re.compile(r"^\s+ok\s+(\S+)\s+([0-9.]+) s\s*(.*)$")
ASSET_ROWS = re.compile(r"(\S+) ([0-9,]+) rows")
NIGHT_TYPES = ("campaign_touch", "activity_logged")


def timed(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (GiB) of the process tree and stdout of a command."""
    t0 = time.perf_counter()
    out = open(Path(env["CRM_DATA_DIR"]) / f"run-{int(t0 * 1000)}.log", "w+")
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    out.seek(0)
    text = out.read()
    out.close()
    if os.waitstatus_to_exitcode(status) != 0:  # a failed step or blocking check exits non-zero
        raise SystemExit(f"{' '.join(cmd)} failed:\n{text[-4000:]}")
    return seconds, usage.ru_maxrss / 2**20, text


def steps(output: str) -> dict[str, dict]:
    found = {}
    for line in output.splitlines():
        if m := STEP_LINE.match(line):
            assets = {a: int(n.replace(",", "")) for a, n in ASSET_ROWS.findall(m.group(3))}
            found[m.group(1)] = {"s": float(m.group(2)), "rows": sum(assets.values()), "assets": assets}
    return found


def generated(root: Path, leads: int) -> Path:
    source = root / f"generated_{leads}"
    if not (source / "landing").exists():
        shutil.rmtree(source, ignore_errors=True)
        run([CLI, "generate", "--data-dir", str(source), "--leads", str(leads), "--seed", "1"])
    return source


def _lines(path: Path):
    """A landed file's lines, up to where it breaks (the generator plants a truncated gzip)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        try:
            yield from fh
        except (EOFError, OSError):
            return


def night_file(landing: Path, fraction: float, seed: int = 7) -> tuple[int, str]:
    """1% more events: a sample of the landed touches and activities with new ids, dated on the last
    day of the period, as one new canonical event file. Returns how many, and that day."""
    # Touches and activities are about a third of the lines: sampling 3x their share gives ~1% of all.
    lines, per_day, share = [], {}, fraction * 3 * 10_000
    for path in sorted((landing / "events").rglob("*.jsonl*")):
        for i, line in enumerate(_lines(path)):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            # The platform's own events (identity decisions, scores), landed here too, carry the
            # time of the run: they are not the period's data and must not date the night.
            if not isinstance(event, dict) or not isinstance(event.get("occurred_at"), str) \
                    or event.get("source") in PLATFORM_SOURCES:
                continue
            try:
                day = date.fromisoformat(event["occurred_at"][:10])
            except ValueError:  # the generator plants impossible timestamps
                continue
            per_day[day] = per_day.get(day, 0) + 1
            if event.get("event_type") in NIGHT_TYPES and zlib.crc32(f"{seed}:{path.name}:{i}".encode()) % 10_000 < share:
                lines.append(event)
    # The period's last day: the latest holding 0.1% of the events (a few are planted in the future).
    total = sum(per_day.values())
    last = max(d for d, n in per_day.items() if n >= total / 1000).isoformat()
    out = landing / "events" / f"night-{seed}.jsonl"
    with out.open("w", encoding="utf-8") as fh:
        for n, event in enumerate(lines):
            event["event_id"] = f"evt_night{seed}_{n:09d}"
            event["occurred_at"] = f"{last}T12:{n // 60 % 60:02d}:{n % 60:02d}Z"
            fh.write(json.dumps(event) + "\n")
    return len(lines), last


def measure(root: Path, leads: int, server) -> dict:
    source = generated(root, leads)
    data = root / f"run_{leads}"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(source / "landing", data / "landing")
    engine_env = server.env(f"bench_{leads}") if server is not None else {}
    env = dict(os.environ, CRM_DATA_DIR=str(data), CRM_DUCKDB_PATH=str(data / "warehouse.duckdb"),
               DAGSTER_HOME=str(data / "dagster_home"), CRM_PII_KEY="bench-key", **engine_env)
    wall, rss, out = timed([CLI, "materialize"], env)
    result = {"leads": leads, "full": {"wall_s": round(wall, 1), "peak_gib": round(rss, 2), "steps": steps(out)}}
    if not engine_env:
        result["reference_s"] = float(run([sys.executable, "-c", EVENTS_SCAN_REFERENCE, str(data / "warehouse.duckdb")]))
    result["night_events"], last = night_file(data / "landing", 0.01)
    # As the nightly schedule runs it: every asset, the daily partitions of the trailing three days.
    end = min(date.fromisoformat(last), datetime.now(timezone.utc).date() - timedelta(days=1))  # complete days
    wall, rss, out = timed([CLI, "materialize", "--partition", f"{end - timedelta(days=2)}...{end}"], env)
    result["night"] = {"wall_s": round(wall, 1), "peak_gib": round(rss, 2), "steps": steps(out)}
    result["night_share"] = round(result["night"]["wall_s"] / result["full"]["wall_s"], 3)
    result["events"] = result["full"]["steps"].get("event_log", {}).get("assets", {}).get("core/events", 0)
    return result


def exponent(a: float, b: float, n1: int, n2: int) -> float | None:
    return round(math.log(b / a) / math.log(n2 / n1), 2) if a > 0 and b > 0 else None


def report(results: list[dict]) -> None:
    for r in results:
        ref = r.get("reference_s")
        print(f"\n{r['leads']:,} leads: full {r['full']['wall_s']} s, peak {r['full']['peak_gib']} GiB"
              + (f", reference scan {ref} s" if ref else "")
              + f"; night (+{r['night_events']:,} events) {r['night']['wall_s']} s = {r['night_share']:.1%} of full")
        print(f"  {'step':<34}{'full s':>9}{'rows':>13}{'x ref':>9}{'night s':>9}")
        for step, s in r["full"]["steps"].items():
            night = r["night"]["steps"].get(step, {}).get("s", 0.0)
            ratio = f"{s['s'] / ref:9.1f}" if ref else f"{'-':>9}"
            print(f"  {step:<34}{s['s']:9.1f}{s['rows']:13,}{ratio}{night:9.1f}")
    for a, b in zip(results, results[1:]):
        print(f"\ngrowth exponent {a['leads']:,} -> {b['leads']:,} leads (1.0 = linear):")
        print(f"  whole graph: time {exponent(a['full']['wall_s'], b['full']['wall_s'], a['leads'], b['leads'])}, "
              f"memory {exponent(a['full']['peak_gib'], b['full']['peak_gib'], a['leads'], b['leads'])}")
        for step, s in a["full"]["steps"].items():
            if step in b["full"]["steps"]:
                print(f"  {step:<34}{exponent(s['s'], b['full']['steps'][step]['s'], a['leads'], b['leads'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--root", type=Path, default=Path("/tmp/crm-bench-graph"))
    parser.add_argument("--engine", choices=("duckdb", "clickhouse"), default="duckdb")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    args.root.mkdir(parents=True, exist_ok=True)
    server = None
    if args.engine == "clickhouse":
        from crm_platform.warehouse.local_clickhouse import LocalClickHouse

        server = LocalClickHouse(args.root / "clickhouse").start()
    try:
        results = []
        for leads in args.sizes:
            results.append(measure(args.root, leads, server))
            report(results)
            if args.json:
                args.json.write_text(json.dumps(results, indent=2))
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
