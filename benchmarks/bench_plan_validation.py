"""Throughput of tracking-plan validation on 1M realistic canonical events (about 1% invalid).

    python benchmarks/bench_plan_validation.py [--events N] [--seed S] [--chunk-size C]

Writes the events to a temporary JSONL file, then times, in this order:
  1. json.loads over every line (the floor any Python validator stands on),
  2. DuckDB read_json of the same file (parsing in the engine, no plan rules),
  3. the plan validation itself (read lines, parse, pandera checks, normalize and upgrade),
and prints events/s for each, the ratios, and peak RSS after each step (ru_maxrss is a high-water
mark, so later steps show max(earlier, own)).
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from crm_platform.plan import decode
from crm_platform.plan.examples import example_value
from crm_platform.plan.jsonl import iter_lines
from crm_platform.plan.loader import load_plan
from crm_platform.plan.model import TrackingPlan
from crm_platform.plan.validate import iter_validate

# Share of each event type in a CRM event stream (touches and activities dominate).
MIX = {
    "campaign_touch": 40, "activity_logged": 20, "lead_updated": 10, "lead_created": 8,
    "lead_stage_changed": 8, "opportunity_created": 3, "opportunity_closed": 3, "consent_changed": 2,
    "model_score_computed": 3, "manual_label": 1, "lead_merged": 1, "lead_unmerged": 1,
}
CHANNELS = ["paid_search", "organic_search", "paid_social", "email", "display", "referral", "direct"]
FIRST = ["Jane", "Ahmed", "Li", "María", "Olu", "Sven", "Priya", "Tom"]
FIRST_ASCII = ["Jane", "Ahmed", "Li", "Maria", "Olu", "Sven", "Priya", "Tom"]
LAST = ["Doe", "Khan", "Wei", "García", "Adeyemi", "Berg", "Patel", "Smith"]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_event(rng: random.Random, plan: TrackingPlan, i: int, types: list[str], weights: list[int]) -> dict:
    et_name = rng.choices(types, weights)[0]
    et = plan.event_types[et_name]
    # A third of the types with two versions still arrive in the old one.
    ev = et.versions[0] if len(et.versions) > 1 and rng.random() < 0.3 else et.current
    lead = f"lead_{rng.randrange(200_000):06d}"
    attrs = {}
    for name, spec in ev.properties.items():
        if not spec.required and rng.random() < 0.4:
            continue
        if name == "email":
            attrs[name] = f"{rng.choice(FIRST_ASCII).lower()}.{rng.randrange(10**6)}@example.com"
        elif name in ("first_name", "last_name"):
            attrs[name] = rng.choice(FIRST if name == "first_name" else LAST)
        elif name == "channel":
            attrs[name] = rng.choice(CHANNELS)
        elif spec.type == "enum":
            attrs[name] = rng.choice(spec.values)
        elif spec.type == "number":
            attrs[name] = round(rng.uniform(spec.minimum or 0, spec.maximum or 50_000), 2)
        elif spec.type == "integer":
            attrs[name] = rng.randrange(int(spec.minimum or 0), int(spec.maximum or 5_000) + 1)
        elif spec.type == "timestamp":
            attrs[name] = f"2026-0{rng.randrange(1, 7)}-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:00:00+01:00"
        else:
            text = f"{name}_{rng.randrange(10**5)}"[: spec.effective_max_length]
            attrs[name] = example_value(spec) if spec.type != "string" else text
    event = {
        "event_type": et_name, "schema_version": ev.version, "event_id": f"evt_{i:09d}",
        "occurred_at": f"2026-0{rng.randrange(1, 7)}-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:"
                       f"{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(1000):03d}Z",
        "source": rng.choice(et.sources), "lead_id": lead, "producer_id": f"{et.sources[0]}-{rng.randrange(4)}",
        "attributes": attrs,
    }
    if et_name == "campaign_touch":
        event["user_id"] = f"anon_{rng.randrange(10**7)}"
        event["context"] = {"ip": f"203.0.113.{rng.randrange(256)}", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
                            "referrer": "https://www.google.com/", "country": rng.choice(["DE", "FR", "GB", "US"])}
        if rng.random() < 0.2:  # producers that nest the campaign in `touch`
            event["touch"] = event.pop("attributes")
    return event


def corrupt(rng: random.Random, event: dict) -> dict | str:
    """One realistic producer mistake."""
    kind = rng.randrange(8)
    attrs = event.get("attributes") or event.get("touch") or {}
    if kind == 0:
        event["occurred_at"] = event["occurred_at"].rstrip("Z")  # naive timestamp
    elif kind == 1:
        event["source"] = "tv"
    elif kind == 2:
        event.pop("lead_id")
        event.pop("user_id", None)
    elif kind == 3 and attrs:
        attrs[next(iter(attrs))] = 12345 if not isinstance(next(iter(attrs.values())), int) else "12345"
    elif kind == 4:
        event["schema_version"] = "2025-12-1"
    elif kind == 5:
        event["occurred_at"] = "2026-02-30T10:00:00Z"
    elif kind == 6:
        return json.dumps(event)[:-7]  # cut short: invalid JSON
    else:
        event["event_type"] = "page_view"
    return event


def generate(path: Path, n: int, seed: int, plan: TrackingPlan) -> None:
    rng = random.Random(seed)
    types, weights = list(MIX), list(MIX.values())
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            event = make_event(rng, plan, i, types, weights)
            line = corrupt(rng, event) if rng.random() < 0.01 else event
            f.write(line if isinstance(line, str) else json.dumps(line, ensure_ascii=False))
            f.write("\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--chunk-size", type=int, default=100_000)
    ap.add_argument("--skip-duckdb", action="store_true")
    ap.add_argument("--no-orjson", action="store_true", help="parse with the standard library even if orjson is installed")
    args = ap.parse_args()
    if args.no_orjson:
        decode._fast_loads = None
    plan = load_plan()
    n = args.events
    parser = "orjson" if decode._fast_loads is not None else "json (standard library)"
    print(f"plan {plan.version}, {n:,} events, seed {args.seed}, parser {parser}, python {sys.version.split()[0]}")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        t0 = time.perf_counter()
        generate(path, n, args.seed, plan)
        size_mb = path.stat().st_size / 1e6
        print(f"generated {size_mb:,.0f} MB in {time.perf_counter() - t0:.1f} s; peak RSS {peak_rss_mb():,.0f} MB")

        t0 = time.perf_counter()
        parsed = 0
        for _, line in iter_lines(path):
            try:
                json.loads(line)
                parsed += 1
            except ValueError:
                pass
        t_json = time.perf_counter() - t0
        print(f"json.loads            {t_json:7.2f} s  {n / t_json:>10,.0f} events/s  peak RSS {peak_rss_mb():,.0f} MB")

        t_duck = None
        if not args.skip_duckdb:
            import duckdb

            con = duckdb.connect()
            t0 = time.perf_counter()
            cols = ("{event_type: 'VARCHAR', schema_version: 'VARCHAR', event_id: 'VARCHAR', "
                    "occurred_at: 'VARCHAR', source: 'VARCHAR', lead_id: 'VARCHAR', user_id: 'VARCHAR', "
                    "producer_id: 'VARCHAR', attributes: 'JSON', context: 'JSON', touch: 'JSON'}")
            # Aggregating every column makes DuckDB parse them all (count(*) alone would not).
            rows = con.execute(
                "SELECT count(event_id), max(length(occurred_at)), max(length(attributes::VARCHAR)), "
                f"max(length(context::VARCHAR)), max(length(touch::VARCHAR)), count(DISTINCT event_type) "
                f"FROM read_json('{path}', format='newline_delimited', columns={cols}, ignore_errors=true)"
            ).fetchone()[0]
            t_duck = time.perf_counter() - t0
            con.close()
            print(f"duckdb read_json      {t_duck:7.2f} s  {n / t_duck:>10,.0f} events/s  ({rows:,} rows; "
                  f"peak RSS {peak_rss_mb():,.0f} MB)")

        t0 = time.perf_counter()
        verdicts: Counter[bool] = Counter()
        codes: Counter[str] = Counter()
        for result in iter_validate(iter_lines(path), plan, chunk_size=args.chunk_size):
            verdicts[result.ok] += 1
            for reason in result.reasons:
                codes[reason.split(":", 1)[0]] += 1
        t_val = time.perf_counter() - t0
        print(f"plan validation       {t_val:7.2f} s  {n / t_val:>10,.0f} events/s  peak RSS {peak_rss_mb():,.0f} MB")
        print(f"  valid {verdicts[True]:,}, invalid {verdicts[False]:,}: "
              + ", ".join(f"{c} {k}" for k, c in codes.most_common()))
        print(f"ratio validation / json.loads: {t_val / t_json:.2f}x the time"
              + (f"; / duckdb read_json: {t_val / t_duck:.1f}x" if t_duck else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
