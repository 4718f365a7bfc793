"""Table 1 in the paper's layout: vanilla and PGD-ℓ∞ trained models of every architecture, their
clean accuracy, accuracy under each of the paper's attacks (the paper protocol) and the
sample-wise worst case over them, in percent. The strong protocol's columns are in
:mod:`robustarch.report.strong`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from .names import display_name, paper_order

PAPER_ATTACKS = ["pgd_linf", "aa_linf", "pgd_l2", "pgd_l1"]  # in the paper's column order


def percent(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def by_model(summaries: Iterable[Mapping[str, Any]], dataset: str | None = None
             ) -> dict[tuple[str, str], Mapping[str, Any]]:
    """``summary.json`` contents by ``(arch, method)`` (of ``dataset`` only, when given)."""
    return {(s["arch"], s["method"]): s for s in summaries
            if dataset is None or s["dataset"] == dataset}


def accuracy_columns(vanilla: Mapping[str, Any] | None, at: Mapping[str, Any] | None,
                     attacks: list[str]) -> dict[str, float | None]:
    """Vanilla and adversarially trained accuracies of one architecture, in percent."""
    row = {
        "vanilla_acc": percent(vanilla["accuracy"].get("clean")) if vanilla else None,
        "clean_acc": percent(at["accuracy"].get("clean")) if at else None,
    }
    for attack in attacks:
        row[attack] = percent(at["accuracy"].get(attack)) if at else None
    row["worst_case"] = percent(at["worst_case"]) if at else None
    return row


def _image_size(architectures: pd.DataFrame, dataset: str) -> int:
    sizes = architectures.loc[architectures["dataset"] == dataset, "image_size"]
    if sizes.empty:
        raise ValueError(f"architectures table has no rows for dataset {dataset!r}")
    return int(sizes.iloc[0])


def table1_frame(summaries: Iterable[Mapping[str, Any]], architectures: pd.DataFrame,
                 dataset: str) -> pd.DataFrame:
    """Table 1 for ``dataset``: one row per architecture, accuracies in percent.

    ``summaries`` are ``summary.json`` contents with ``arch`` and ``method`` keys;
    ``architectures`` is ``results/architectures.csv``.
    """
    models = by_model(summaries, dataset)
    archs = sorted({arch for arch, _ in models}, key=paper_order)
    attacks = PAPER_ATTACKS
    size = _image_size(architectures, dataset)
    rows = []
    for arch in archs:
        info = architectures[(architectures["name"] == arch)
                             & (architectures["image_size"] == size)]
        rows.append({
            "architecture": display_name(arch),
            "category": info["category"].iloc[0] if len(info) else None,
            "params_m": float(info["params_m"].iloc[0]) if len(info) else None,
            **accuracy_columns(models.get((arch, "vanilla")), models.get((arch, "pgd_linf")),
                               attacks),
        })
    columns = ["architecture", "category", "params_m", "vanilla_acc", "clean_acc", *attacks,
               "worst_case"]
    return pd.DataFrame(rows, columns=columns)
