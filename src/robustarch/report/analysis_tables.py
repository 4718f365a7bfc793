"""The analyses' tables: results/{sparsity,landscape,lipschitz}.csv and results/table_analysis.tex
(sparsity, sharpness, Lipschitz constant and worst-case accuracy side by side)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..analysis import COMPONENTS
from ..analysis.landscape_file import load_landscape
from .latex import INF, Layout, TeX, write_table
from .names import display_name, method_name

KEYS = ["dataset", "arch", "method"]
ANALYSIS_COLUMNS = ["architecture", "category", "method", "sparsity", "sparsity_trained",
                    "sharpness", "lipschitz", "worst_case"]
ANALYSIS_HEADERS = {"architecture": "Architecture", "category": "Category", "method": "Method",
                    "sparsity": "Sparsity (%)", "sparsity_trained": "Sparsity, trained (%)",
                    "sharpness": "Sharpness",
                    "lipschitz": "Lipschitz", "worst_case": "Worst-case (%)"}


SPARSITY_COLUMNS = ["component", "weights", "max_abs", "sparse", "sparsity", "weights_trained",
                    "max_abs_trained", "sparse_trained", "sparsity_trained", "untrained_share",
                    "untrained_known"]


def sparsity_frame(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per model and component (``all`` first) from ``sparsity.json`` files: over all
    weights (``weights``, ``max_abs``, ``sparse``, ``sparsity``) and over the trained weights
    only (the same with ``_trained``), the share of untrained weights, and whether the model
    file recorded them (``untrained_known``; when not, the trained columns repeat all
    weights')."""
    rows = [row for path in paths for row in sparsity_rows(json.loads(Path(path).read_text()))]
    return pd.DataFrame(rows, columns=[*KEYS, *SPARSITY_COLUMNS])


def sparsity_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per component of a ``sparsity.json`` (with its dataset/arch/method keys)."""
    keys = {k: report.get(k) for k in KEYS}
    components = report["components"]
    # a report from before the trained-only numbers: unknown, every weight counted as trained
    known = bool(report.get("untrained_known"))
    order = ["all", *COMPONENTS] + sorted(set(components) - {"all", *COMPONENTS})
    rows = []
    for name in (n for n in order if n in components):
        c = components[name]
        trained = "_trained" if "weights_trained" in c else ""
        rows.append({**keys, "component": name, "weights": c["weights"],
                     "max_abs": c["max_abs"], "sparse": c["sparse"], "sparsity": c["ratio"],
                     "weights_trained": c[f"weights{trained}"],
                     "max_abs_trained": c[f"max_abs{trained}"],
                     "sparse_trained": c[f"sparse{trained}"],
                     "sparsity_trained": c[f"ratio{trained}"],
                     "untrained_share": c["untrained_share"] if trained else
                     (0.0 if c["weights"] else None),
                     "untrained_known": known})
    return rows


def landscape_frame(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per model from ``landscape.npz`` files."""
    rows = []
    for path in paths:
        data = load_landscape(str(path))
        loss = np.asarray(data["loss"])
        rows.append({**{k: data[k] for k in KEYS}, "samples": int(data["samples"]),
                     "grid": len(data["coords"]), "radius": float(np.max(data["coords"])),
                     "centre_loss": float(data["centre_loss"]),
                     "sharpness": float(data["sharpness"]),
                     "max_increase": float(np.max(loss) - float(data["centre_loss"]))})
    return pd.DataFrame(rows, columns=[*KEYS, "samples", "grid", "radius", "centre_loss",
                                       "sharpness", "max_increase"])


def lipschitz_frame(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per model from ``lipschitz.json`` files."""
    rows = [json.loads(Path(path).read_text()) for path in paths]
    return pd.DataFrame(rows, columns=[*KEYS, "samples", "eps", "steps", "step_size",
                                       "restarts", "lipschitz", "lipschitz_std",
                                       "lipschitz_median"])


def analysis_frame(models: Sequence[tuple[str, str]], *, sparsity: pd.DataFrame,
                   landscape: pd.DataFrame, lipschitz: pd.DataFrame,
                   summaries: Iterable[Mapping[str, Any]], categories: Mapping[str, str],
                   dataset: str) -> pd.DataFrame:
    """One row per (arch, method) of ``models``, in that order: sparsity of all weights and of
    the trained weights (%), sharpness, mean local Lipschitz constant and sample-wise
    worst-case accuracy (%)."""
    def lookup(frame: pd.DataFrame, arch: str, method: str, column: str,
               **where: str) -> float | None:
        rows = frame[(frame["dataset"] == dataset) & (frame["arch"] == arch)
                     & (frame["method"] == method)]
        for key, value in where.items():
            rows = rows[rows[key] == value]
        value = rows[column].iloc[0] if len(rows) else None
        return None if value is None or pd.isna(value) else float(value)

    worst = {(s["arch"], s["method"]): s.get("worst_case") for s in summaries
             if s.get("dataset") == dataset}
    rows = []
    for arch, method in models:
        ratio = lookup(sparsity, arch, method, "sparsity", component="all")
        trained = lookup(sparsity, arch, method, "sparsity_trained", component="all")
        case = worst.get((arch, method))
        rows.append({
            "arch": arch, "architecture": display_name(arch),
            "category": categories.get(arch), "method": method,
            "sparsity": None if ratio is None else 100 * ratio,
            "sparsity_trained": None if trained is None else 100 * trained,
            "sharpness": lookup(landscape, arch, method, "sharpness"),
            "lipschitz": lookup(lipschitz, arch, method, "lipschitz"),
            "worst_case": None if case is None else 100 * case,
        })
    return pd.DataFrame(rows, columns=["arch", *ANALYSIS_COLUMNS])


# The methods' names in the table (method_name's, with the norm's symbol).
METHOD_LABELS = {"vanilla": method_name("vanilla"), "pgd_linf": TeX(f"PGD-{INF}")}


def analysis_layout(frame: pd.DataFrame) -> Layout:
    """The rows in the given order, each run of one category under its name with a rule
    before it; a Method column only when several methods are analysed."""
    columns = ["category", "architecture", "method", *ANALYSIS_COLUMNS[3:]]
    if frame["method"].nunique() <= 1:
        columns.remove("method")
    return Layout(columns=columns, headers=ANALYSIS_HEADERS, section="category",
                  labels={"method": METHOD_LABELS})


def write_analysis_table(frame: pd.DataFrame, tex_path: str | Path, csv_path: str | Path,
                         caption: str, html_path: str | Path | None = None) -> None:
    """The LaTeX table (and its HTML page, when ``html_path`` is given) and its CSV."""
    write_table(frame, tex_path, csv_path, caption=caption, layout=analysis_layout(frame),
                html_path=html_path)
