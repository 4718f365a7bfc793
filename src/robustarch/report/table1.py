"""Table 1 in the paper's layout: vanilla and PGD-ℓ∞ trained models of every architecture, their
clean accuracy, accuracy under each of the paper's attacks (the paper protocol) and the
sample-wise worst case over them, in percent. The strong protocol's columns are in
:mod:`robustarch.report.strong`.

Row order, as the paper's Table 1 (``paper_data/table1_cifar10.csv`` keeps its rows in their
printed order): the categories Transformer, Hybrid, CNN, a rule between them, and within each
the architectures by worst-case accuracy, highest first (29.24, 27.42, 27.36, 25.04 for its four
Transformers; ties and missing numbers: the paper's order).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from .latex import HEADERS, INF, Layout, TeX, escape
from .names import display_name, paper_order

PAPER_ATTACKS = ["pgd_linf", "aa_linf", "pgd_l2", "pgd_l1"]  # in the paper's column order
CATEGORIES = ["Transformer", "Hybrid", "CNN"]  # the paper's order of its row groups
ACCURACY_COLUMNS = ["clean_acc", *PAPER_ATTACKS, "worst_case"]
AT_NAMES = {"pgd_linf": TeX(f"PGD-{INF}"), "trades": "TRADES"}  # for the group headers


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


def category_rank(category: str | None) -> int:
    """Sort key of a category: the paper's order, then any other."""
    return CATEGORIES.index(category) if category in CATEGORIES else len(CATEGORIES)


def by_worst_case(rows: list[dict[str, Any]], *, category: str | None = "category",
                  worst: str = "worst_case") -> list[dict[str, Any]]:
    """``rows`` (in the paper's order) grouped by ``category`` in :data:`CATEGORIES`' order
    (when given) and ranked by ``worst`` within each group, highest first, missing last;
    the sort is stable, so ties keep their order."""
    def key(row: Mapping[str, Any]) -> tuple:
        value = row.get(worst)
        missing = value is None or pd.isna(value)
        return (category_rank(row.get(category)) if category else 0, missing,
                0.0 if missing else -float(value))

    return sorted(rows, key=key)


def accuracy_groups(at_method: str = "pgd_linf") -> list[tuple[str, list[str]]]:
    """The grouped headers over Table 1's accuracy columns: "Vanilla" over its clean accuracy,
    the adversarial training method over the rest."""
    return [("Vanilla", ["vanilla_acc"]),
            (TeX(f"{escape(AT_NAMES.get(at_method, at_method))} adversarial training"),
             ACCURACY_COLUMNS)]


# Beneath its group, the vanilla model's accuracy is its clean accuracy.
ACCURACY_HEADERS = {"vanilla_acc": HEADERS["clean_acc"]}

TABLE1_LAYOUT = Layout(
    columns=["category", "architecture", "params_m", "vanilla_acc", *ACCURACY_COLUMNS],
    groups=accuracy_groups(), headers=ACCURACY_HEADERS, section="category")


def table1_frame(summaries: Iterable[Mapping[str, Any]], architectures: pd.DataFrame,
                 dataset: str) -> pd.DataFrame:
    """Table 1 for ``dataset``: one row per architecture (the paper's row order, see the
    module docstring), accuracies in percent.

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
    return pd.DataFrame(by_worst_case(rows), columns=columns)
