"""Benchmark `crm-platform generate` at about a million events.

    python benchmarks/bench_generate.py [--leads N] [--days D] [--seed S] [--keep DIR]

Generates into a temporary directory (removed afterwards unless --keep), then prints events/s,
MB/s of landed bytes, peak RSS and the summary. About 26 event lines per lead plus anonymous
visitors, so the default 38,000 leads give roughly one million event lines.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crm_platform.synth import generate_dataset


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
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
