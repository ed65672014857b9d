"""The picture of an attribution run: conversions by channel, one panel per model, with the
bootstrap interval as a whisker."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd


def conversions_by_channel_png(summary: pd.DataFrame, models: tuple[str, ...]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")  # no display in runs
    import matplotlib.pyplot as plt

    channels = sorted(summary["channel"].unique()) or ["(no conversions yet)"]
    cols = 4
    rows = (len(models) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 0.32 * len(channels) * rows + 1.5 * rows),
                             sharex=True, squeeze=False)
    top = float(np.nan_to_num(summary[["conversions", "conversions_high"]].max().max(), nan=0.0)) or 1.0
    for ax, model in zip(axes.flat, models):
        part = summary[summary["model"] == model].set_index("channel").reindex(channels)
        value = part["conversions"].fillna(0.0)
        low = (value - part["conversions_low"]).clip(lower=0).fillna(0.0)
        high = (part["conversions_high"] - value).clip(lower=0).fillna(0.0)
        ax.barh(channels, value, xerr=[low, high], color="#4C72B0", ecolor="#333333", capsize=2)
        ax.set_title(model, fontsize=10)
        ax.set_xlim(0, top * 1.05)
        ax.invert_yaxis()
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(models):]:
        ax.axis("off")
    fig.suptitle("Conversions by channel per model (whiskers: bootstrap interval)", fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()
