"""The figures (PDF, and a PNG twin for the HTML report where asked): weight histograms (paper
Fig. 1), CoAtNet's components (Fig. 2), accuracy against the ℓ1 penalty (Fig. 3), loss
landscape contours (Fig. 4), sparsity against worst-case accuracy and the training curves
(ours).

matplotlib is imported inside each function, so importing this module stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import save_figure
from .names import display_name, method_name

FIGURE2_COMPONENTS = {"all": "All weights", "conv": "Convolution", "qkv": "Attention QKV",
                      "ffn": "Feed-forward"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on workers
    import matplotlib.pyplot as plt

    return plt


PNG_DPI = 150  # the report shows the PNG at screen size; the PDF is for print


def _save(fig, path: str | Path, png: str | Path | None = None, **kwargs: Any) -> None:
    """``fig`` as ``path`` (its suffix's format), and as a PNG at ``png`` when given."""
    kwargs = {"bbox_inches": "tight", **kwargs}
    save_figure(fig, path, **kwargs)
    if png is not None:
        save_figure(fig, png, dpi=PNG_DPI, **kwargs)


def _histogram(ax, summary: Mapping[str, Any] | None, label: str) -> None:
    """One component's histogram as a density (comparable across models), ratio in ``label``."""
    if not summary or not summary.get("weights"):
        return
    counts = np.asarray(summary["histogram"]["counts"], dtype=float)
    low, high = summary["histogram"]["range"]
    edges = np.linspace(low, high, len(counts) + 1)
    density = counts / (counts.sum() * (edges[1] - edges[0]))
    ax.stairs(density, edges, fill=True, alpha=0.5,
              label=f"{label}sparsity {100 * summary['ratio']:.1f}%")


def figure1(reports: Sequence[Mapping[str, Any]], path: str | Path,
            png: str | Path | None = None) -> None:
    """Histograms of all weights, one panel per architecture (in the order of ``reports``),
    one histogram per method."""
    plt = _pyplot()
    archs = list(dict.fromkeys(r["arch"] for r in reports))
    methods = {r["method"] for r in reports}
    cols = min(4, len(archs))
    rows = math.ceil(len(archs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, arch in zip(axes.flat, archs, strict=False):
        for report in (r for r in reports if r["arch"] == arch):
            prefix = f"{method_name(report['method'])}: " if len(methods) > 1 else ""
            _histogram(ax, report["components"]["all"], prefix)
        ax.set_title(display_name(arch))
        ax.set_xlabel("weight")
        ax.legend(fontsize=7, loc="upper right")
    for ax in list(axes.flat)[len(archs):]:
        ax.axis("off")
    axes[0, 0].set_ylabel("density")
    fig.suptitle("Weight distributions (sparsity: |w| < "
                 f"{reports[0]['threshold']:g} max|w|)" if reports else "Weight distributions")
    fig.tight_layout()
    _save(fig, path, png)
    plt.close(fig)


def _trained_histogram(ax, summary: Mapping[str, Any] | None, label: str) -> None:
    """A component's trained weights as a density; the legend has the sparsity of its trained
    weights and, where some never trained, of all its weights and their untrained share.
    A report from before the trained-only numbers: all weights, as :func:`_histogram`."""
    if not summary or "weights_trained" not in summary:
        _histogram(ax, summary, label)
        return
    if not summary["weights_trained"]:
        return
    counts = np.asarray(summary["histogram_trained"]["counts"], dtype=float)
    low, high = summary["histogram_trained"]["range"]
    edges = np.linspace(low, high, len(counts) + 1)
    label += f"sparsity {100 * summary['ratio_trained']:.1f}%"
    if summary["untrained_share"]:
        label += (f" (all {100 * summary['ratio']:.1f}%; "
                  f"{100 * summary['untrained_share']:.1f}% untrained)")
    ax.stairs(counts / (counts.sum() * (edges[1] - edges[0])), edges, fill=True, alpha=0.5,
              label=label)


def figure2(reports: Sequence[Mapping[str, Any]], path: str | Path,
            png: str | Path | None = None) -> None:
    """Per-component histograms of the trained weights: one row per architecture, columns all /
    convolution / QKV / feed-forward, each component's sparsity (over its own max|w|) in the
    legend: of its trained weights, and of all of them where some never trained."""
    plt = _pyplot()
    archs = list(dict.fromkeys(r["arch"] for r in reports))
    methods = {r["method"] for r in reports}
    cols = len(FIGURE2_COMPONENTS)
    fig, axes = plt.subplots(len(archs), cols, figsize=(3.2 * cols, 2.4 * len(archs)),
                             squeeze=False)
    for row, arch in zip(axes, archs, strict=True):
        for ax, (component, title) in zip(row, FIGURE2_COMPONENTS.items(), strict=True):
            for report in (r for r in reports if r["arch"] == arch):
                prefix = f"{method_name(report['method'])}: " if len(methods) > 1 else ""
                _trained_histogram(ax, report["components"].get(component), prefix)
            if ax.has_data():
                ax.legend(fontsize=7, loc="upper right")
            else:
                ax.text(0.5, 0.5, "no such weights", ha="center", va="center",
                        transform=ax.transAxes)
                ax.set_yticks([])
            ax.set_title(f"{display_name(arch)}: {title}", fontsize=9)
    if any(r.get("untrained_known") for r in reports):
        fig.suptitle("Trained weights (never-trained elements left out)", fontsize=10)
    fig.tight_layout()
    _save(fig, path, png)
    plt.close(fig)


def figure4(landscapes: Mapping[tuple[str, str], Mapping[str, Any]], archs: Sequence[str],
            methods: Sequence[str], path: str | Path, png: str | Path | None = None) -> None:
    """Loss contours, one row per architecture and one column per method. Each panel has its
    own log-spaced, labelled levels (losses span orders of magnitude between models); the
    sharpness in its title compares them."""
    plt = _pyplot()
    from matplotlib.colors import LogNorm

    fig, axes = plt.subplots(len(archs), len(methods), layout="constrained",
                             figsize=(3.4 * len(methods), 3.2 * len(archs)), squeeze=False)
    for row, arch in zip(axes, archs, strict=True):
        for ax, method in zip(row, methods, strict=True):
            data = landscapes[(arch, method)]
            coords = np.asarray(data["coords"])
            loss = np.asarray(data["loss"], dtype=float)
            finite = loss[np.isfinite(loss)]
            low = max(float(finite.min()), 1e-4)
            high = max(float(finite.max()), low * 1.01)
            levels = np.geomspace(low, high, 12)
            # loss[i, j] is at (d1 = coords[i], d2 = coords[j]): transpose for x = d1, y = d2
            shown = np.clip(np.nan_to_num(loss.T, nan=high, posinf=high), low, high)
            ax.contourf(coords, coords, shown, levels=levels, norm=LogNorm(), cmap="viridis",
                        alpha=0.35)
            lines = ax.contour(coords, coords, shown, levels=levels, norm=LogNorm(),
                               cmap="viridis", linewidths=0.8)
            ax.clabel(lines, lines.levels[::2], fontsize=6, fmt="%.3g")
            ax.plot(0, 0, marker="+", color="black")
            ax.set_title(f"{display_name(arch)}, {method_name(method)}\n"
                         f"sharpness {data['sharpness']:.3g}", fontsize=9)
            ax.set_aspect("equal")
    fig.suptitle("Cross-entropy around the trained weights (filter-normalized directions)",
                 fontsize=10)
    _save(fig, path, png)
    plt.close(fig)


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Spearman's rank correlation and its two-sided p-value (NaN for fewer than 3 points or
    a constant variable)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    from scipy.stats import spearmanr

    result = spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)


def sparsity_scatter(frame, path: str | Path, png: str | Path | None = None
                     ) -> tuple[float, float]:
    """Worst-case accuracy against sparsity, one point per analysed model with both (the
    frame of results/table_analysis.csv); Spearman's rho over them in the title."""
    plt = _pyplot()
    points = frame.dropna(subset=["sparsity", "worst_case"])
    rho, p = spearman(points["sparsity"], points["worst_case"])
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for category, group in points.groupby("category", dropna=False, sort=True):
        ax.scatter(group["sparsity"], group["worst_case"], label=str(category), s=24)
    for _, row in points.iterrows():
        ax.annotate(row["architecture"], (row["sparsity"], row["worst_case"]), fontsize=6,
                    xytext=(3, 2), textcoords="offset points")
    ax.set_xlabel("sparsity ratio of all weights (%)")
    ax.set_ylabel("worst-case accuracy (%)")
    stat = "undefined" if math.isnan(rho) else f"{rho:.2f} (p = {p:.2g})"
    ax.set_title(f"Spearman ρ = {stat}, n = {len(points)}", fontsize=10)
    if len(points):
        ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path, png)
    plt.close(fig)
    return rho, p


def l1_penalty_frame(summaries: Sequence[Mapping[str, Any]], strengths: Sequence[float],
                     arch: str):
    """Figure 3's data: clean and worst-case accuracy (%) of ``arch`` against λ."""
    import pandas as pd

    from ..settings import l1_method
    from .table1 import by_model, percent

    models = by_model(summaries)
    rows = []
    for strength in sorted(strengths):
        summary = models.get((arch, l1_method(strength)))
        rows.append({"lambda": strength, "method": l1_method(strength),
                     "clean_acc": percent(summary["accuracy"].get("clean")) if summary else None,
                     "worst_case": percent(summary["worst_case"]) if summary else None})
    return pd.DataFrame(rows)


def figure3(frame, path: str | Path, *, arch: str, png: str | Path | None = None) -> None:
    """Figure 3: worst-case and clean accuracy against the ℓ1 strength (symlog x axis, so
    λ = 0 sits left of the smallest positive λ)."""
    plt = _pyplot()
    positive = frame.loc[frame["lambda"] > 0, "lambda"]
    fig, axes = plt.subplots(1, 2, figsize=(7, 2.8), constrained_layout=True)
    for ax, column, title in zip(axes, ["worst_case", "clean_acc"],
                                 ["Worst-case robust accuracy", "Clean accuracy"], strict=True):
        ax.plot(frame["lambda"], frame[column], marker="o")
        if len(positive):
            ax.set_xscale("symlog", linthresh=float(positive.min()))
        ax.set_xlabel("ℓ1 strength λ")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{display_name(arch)}: PGD-ℓ∞ adversarial training + λ·Σ|w|", fontsize=10)
    _save(fig, path, png, bbox_inches=None)  # constrained layout sizes it
    plt.close(fig)


def training_curves(metrics: Mapping[str, Any], path: str | Path, *, dataset: str,
                    method: str, png: str | Path | None = None) -> None:
    """One panel per model (``metrics``: architecture → its ``metrics.csv`` frame, in panel
    order): training loss per epoch on the left axis; training and clean test accuracy (%) on
    the right one. Training accuracy is on the training method's inputs (adversarial ones for
    adversarial training), so the gap between the two accuracy curves is part of the story."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    archs = list(metrics)
    cols = max(1, min(4, len(archs)))
    rows = max(1, math.ceil(len(archs) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.5 * rows), squeeze=False)
    handles = []
    for ax, arch in zip(axes.flat, archs, strict=False):
        frame = metrics[arch]
        ax.plot(frame["epoch"], frame["train_loss"], marker="o", ms=3, color="C0",
                label="training loss")
        ax.set_ylabel("loss", color="C0", fontsize=8)
        acc = ax.twinx()
        acc.plot(frame["epoch"], 100 * frame["train_acc"], marker="s", ms=3, color="C1",
                 label="training accuracy")
        acc.plot(frame["epoch"], 100 * frame["test_clean_acc"], marker="^", ms=3, color="C2",
                 label="clean test accuracy")
        acc.set_ylim(0, 100)
        acc.set_ylabel("accuracy (%)", fontsize=8)
        ax.set_title(display_name(arch), fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        if len(frame) <= 10:  # every epoch a tick; a locator would split a single epoch
            ax.set_xticks(frame["epoch"].tolist())
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
        acc.tick_params(labelsize=7)
        handles = handles or [*ax.get_lines(), *acc.get_lines()]
    for ax in list(axes.flat)[len(archs):]:
        ax.axis("off")
    fig.legend(handles, [h.get_label() for h in handles], loc="lower center", ncol=3,
               fontsize=8, bbox_to_anchor=(0.5, 0.0))
    fig.suptitle(f"Training per epoch: {dataset}, {method_name(method)}", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    _save(fig, path, png)
    plt.close(fig)
