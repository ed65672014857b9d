"""Plots of bench_graph.py's figures: each layer's seconds against the number of leads, full run and
night, on log-log axes (a slope of 1 is linear growth), with a dashed linear guide.

    python benchmarks/plot_graph.py results.json [more.json ...] --out benchmarks/graph.png

Layers whose largest time is under a second are left out (they are flat noise at this scale).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(paths: list[Path]) -> list[dict]:
    """The results of every file, one per size (a later file's size replaces an earlier's)."""
    by_size = {}
    for path in paths:
        for result in json.loads(path.read_text()):
            by_size[result["leads"]] = result
    return [by_size[n] for n in sorted(by_size)]


def series(results: list[dict], phase: str) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for r in results:
        for step, s in r[phase]["steps"].items():
            out.setdefault(step, []).append((r["leads"], s["s"]))
        out.setdefault("whole graph (wall)", []).append((r["leads"], r[phase]["wall_s"]))
    return {k: v for k, v in out.items() if max(t for _, t in v) >= 1.0 and len(v) > 1}


def plot(results: list[dict], out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    for ax, phase, title in ((axes[0], "full", "full run"), (axes[1], "night", "night (+1% events)")):
        ax.set_prop_cycle(color=plt.get_cmap("tab20").colors)  # one colour per layer, not ten repeated
        for step, points in sorted(series(results, phase).items()):
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", linewidth=2.5 if step.startswith("whole") else 1.2,
                    color="black" if step.startswith("whole") else None, label=step)
        first = results[0]
        base = first[phase]["wall_s"]
        guide = [first["leads"], results[-1]["leads"]]
        ax.plot(guide, [base, base * guide[1] / guide[0]], linestyle="--", color="grey", label="linear from the first size")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("leads")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("seconds")
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, nargs="+", help="bench_graph.py --json files")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/graph.png"))
    args = parser.parse_args()
    plot(load(args.results), args.out)


if __name__ == "__main__":
    main()
