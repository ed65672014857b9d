"""The pictures of a model's evaluation on its test slice: ROC, cumulative gains and calibration,
the model against the logistic baseline and the model in use before it (when there is one)."""
from __future__ import annotations

import io

import numpy as np

LABELS = {"test": "model", "baseline": "logistic baseline", "current": "current model"}
COLORS = {"test": "#4C72B0", "baseline": "#DD8452", "current": "#55A868"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # no display in runs
    import matplotlib.pyplot as plt
    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=80)
    _plt().close(fig)
    return buf.getvalue()


def _auc(metrics: dict, name: str) -> str:
    m = metrics[name]["metrics"]["roc_auc"]
    return f"{m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]" if m["low"] is not None else f"{m['value']:.3f}"


def roc_png(metrics: dict) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for name in ("test", "baseline", "current"):
        if metrics.get(name):
            roc = metrics[name]["roc"]
            ax.plot(roc["fpr"], roc["tpr"], color=COLORS[name], label=f"{LABELS[name]} AUC {_auc(metrics, name)}")
    ax.plot([0, 1], [0, 1], color="#999999", linestyle=":", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC on the test slice", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return _png(fig)


def gains_png(metrics: dict) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    x = np.arange(0, 11) * 10
    for name in ("test", "baseline", "current"):
        if metrics.get(name):
            rows = metrics[name]["deciles"]
            gain = [0.0] + [np.nan if r["gain"] is None else 100 * r["gain"] for r in rows]
            ax.plot(x, gain, marker="o", markersize=3, color=COLORS[name], label=LABELS[name])
            if name == "test":
                low = [0.0] + [np.nan if r["gain_low"] is None else 100 * r["gain_low"] for r in rows]
                high = [0.0] + [np.nan if r["gain_high"] is None else 100 * r["gain_high"] for r in rows]
                ax.fill_between(x, low, high, color=COLORS[name], alpha=0.2, linewidth=0)
    ax.plot([0, 100], [0, 100], color="#999999", linestyle=":", linewidth=1)
    ax.set_xlabel("% of leads called, best scores first")
    ax.set_ylabel("% of conversions reached")
    ax.set_title("Cumulative gains by decile (band: bootstrap)", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return _png(fig)


def calibration_png(metrics: dict) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for name in ("test", "baseline"):
        if metrics.get(name):
            bins = [b for b in metrics[name]["calibration"] if b["rows"]]
            mean = [b["mean_score"] for b in bins]
            obs = [b["observed"] for b in bins]
            ece = metrics[name]["metrics"]["ece"]["value"]
            if name == "test":
                low = [o - (b["observed_low"] if b["observed_low"] is not None else o) for o, b in zip(obs, bins)]
                high = [(b["observed_high"] if b["observed_high"] is not None else o) - o for o, b in zip(obs, bins)]
                ax.errorbar(mean, obs, yerr=[np.maximum(low, 0), np.maximum(high, 0)], color=COLORS[name], marker="o",
                            markersize=3, capsize=2, label=f"{LABELS[name]} ECE {ece:.3f}")
            else:
                ax.plot(mean, obs, marker="s", markersize=3, color=COLORS[name], label=f"{LABELS[name]} ECE {ece:.3f}")
    ax.plot([0, 1], [0, 1], color="#999999", linestyle=":", linewidth=1)
    ax.set_xlabel("mean score in bin")
    ax.set_ylabel("observed conversion rate")
    ax.set_title("Calibration on the test slice", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    return _png(fig)
