"""Benchmark `crm-platform generate` at about a million events.

    python benchmarks/bench_generate.py [--leads N] [--days D] [--seed S] [--keep DIR]

Generates into a temporary directory (removed afterwards unless --keep), then prints events/s,
MB/s of landed bytes, peak RSS and the summary, and, as a reference measured in the same run, the
floor any generator pays: json.dumps of as many canonical events plus gzip of the result. About 26 event lines per lead plus anonymous
visitors, so the default 38,000 leads give roughly one million event lines.
"""
from __future__ import annotations

import argparse
import gzip
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crm_platform.synth import generate_dataset


def serialize_floor(n: int) -> float:
    """Seconds to json.dumps and gzip n canonical events (a realistic campaign_touch)."""
    event = {"event_type": "campaign_touch", "schema_version": "2026-04-1", "event_id": "evt_0123456789ABCDEFGHJK",
             "occurred_at": "2026-04-01T10:12:30-05:00", "source": "web", "lead_id": "lead_1234", "user_id": "anon_5678",
             "producer_id": "web-1", "attributes": {"channel": "paid_search", "touch_type": "click",
             "campaign_id": "cmp_paid_search_03", "utm_source": "google", "utm_medium": "cpc"},
             "context": {"ip": "203.0.113.12", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
                         "referrer": "https://www.google.com/", "country": "US"}}
    t0 = time.perf_counter()
    out = gzip.compress("".join(json.dumps(event) + "\n" for _ in range(n)).encode(), compresslevel=6, mtime=0)
    assert out
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leads", type=int, default=38_000)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--keep", type=Path, default=None, help="generate here and keep the files")
    args = ap.parse_args()
    target = args.keep or Path(tempfile.mkdtemp(prefix="bench_generate_"))
    try:
        t0 = time.perf_counter()
        summary = generate_dataset(target, leads=args.leads, days=args.days, seed=args.seed)
        seconds = time.perf_counter() - t0
    finally:
        if args.keep is None:
            shutil.rmtree(target, ignore_errors=True)
    # ru_maxrss is in KiB on Linux, bytes on macOS
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mb = rss / 1024 / 1024 if sys.platform == "darwin" else rss / 1024
    mb = summary["bytes"] / 1e6
    print(f"leads={args.leads} days={args.days} seed={args.seed}")
    print(f"event lines:  {summary['events']:,}  ({summary['events'] / seconds:,.0f} events/s)")
    print(f"landed bytes: {mb:,.1f} MB  ({mb / seconds:,.1f} MB/s)")
    print(f"wall time:    {seconds:,.1f} s")
    print(f"peak RSS:     {rss_mb:,.0f} MB")
    floor = serialize_floor(summary["events"])
    print(f"reference:    json.dumps + gzip of as many events: {summary['events'] / floor:,.0f} events/s; "
          f"the generator runs at {floor / seconds:.2f} x that floor")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
