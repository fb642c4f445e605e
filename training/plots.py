"""Figures for the README and the run directory (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.labels import LABELS


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(metrics: dict, path: str | Path, title: str) -> None:
    """Counts with row-normalised shading: the row share is what sensitivity reads off."""
    plt = _plt()
    m = np.asarray(metrics["confusion"], dtype=float)
    cols = metrics.get("confusion_columns", [*LABELS, "unreadable"])
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=120)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j,
                i,
                f"{int(m[i, j])}\n{100 * share[i, j]:.0f}%",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if share[i, j] > 0.6 else "black",
            )
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(LABELS)), LABELS)
    ax.set_xlabel("predicted (daemon path)")
    ax.set_ylabel("reference (MIT-BIH annotations)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_per_class(
    variants: dict[str, dict], path: str | Path, title: str, targets: dict | None = None
) -> None:
    """Sensitivity and positive predictivity per class, one bar group per variant (e.g. front end / none)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), dpi=120, sharey=True)
    width = 0.8 / max(len(variants), 1)
    x = np.arange(len(LABELS))
    for ax, key, name in ((axes[0], "se", "sensitivity"), (axes[1], "ppv", "positive predictivity")):
        for k, (vname, m) in enumerate(variants.items()):
            vals = [100 * (m["per_class"][lab][key] or 0.0) for lab in LABELS]
            bars = ax.bar(x + (k - (len(variants) - 1) / 2) * width, vals, width, label=vname)
            ax.bar_label(bars, fmt="%.0f", fontsize=7)
        if targets:
            for i, lab in enumerate(LABELS):
                t = targets[lab][0 if key == "se" else 1]
                ax.plot([i - 0.45, i + 0.45], [t, t], "k--", lw=1, label="target" if i == 0 else None)
        ax.set_xticks(x, LABELS)
        ax.set_ylim(0, 105)
        ax.set_title(name, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("%")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_curves(histories: dict[str, list[dict]], path: str | Path) -> None:
    """Training loss and held-out macro-F1 per epoch for each fold (and the final model's loss)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), dpi=120)
    for name, hist in histories.items():
        ep = [h["epoch"] for h in hist]
        (line,) = axes[0].plot(ep, [h["loss"] for h in hist], label=name)
        if hist and "val_f1_frontend" in hist[0]:
            axes[1].plot(
                ep, [h["val_f1_frontend"] for h in hist], color=line.get_color(), label=f"{name} 8-bit"
            )
            axes[1].plot(
                ep, [h["val_f1_clean"] for h in hist], color=line.get_color(), ls=":", label=f"{name} clean"
            )
    axes[0].set_title("training loss (augmented)", fontsize=9)
    axes[1].set_title("held-out macro-F1 (Keras, per epoch)", fontsize=9)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
