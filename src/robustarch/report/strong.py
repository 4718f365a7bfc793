"""The two evaluation protocols side by side (beyond the paper): Table 1's adversarially trained
models under the strong attacks, their sample-wise worst case over every attack they were
evaluated with (``worst_case_all``), each architecture's rank under either protocol, and
Spearman's ρ between the paper's and the strong protocol's columns.

Does the paper's ranking of architectures survive a stronger evaluation? The rank columns and
the ρ rows answer it: ρ between the worst case over the paper's four attacks and the worst case
over every attack, and between each strong attack and its paper counterpart (the paper attack of
the same norm, e.g. ``pgd_linf_es`` and ``pgd_linf``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .latex import Layout, TeX
from .names import display_name, paper_order
from .table1 import by_model, by_worst_case, percent

RHO_ROW, P_ROW = "Spearman rho vs paper", "Spearman p vs paper"
ROW_LABELS = {RHO_ROW: TeX(r"Spearman $\rho$ vs paper"), P_ROW: TeX(r"Spearman $p$ vs paper")}


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Spearman's ρ and its two-sided p-value over the pairs where both are known (NaN for
    fewer than 3 pairs or a constant variable)."""
    pairs = np.asarray([(a, b) for a, b in zip(x, y, strict=True)
                        if a is not None and b is not None and not (pd.isna(a) or pd.isna(b))],
                       dtype=float).reshape(-1, 2)
    if len(pairs) < 3 or np.ptp(pairs[:, 0]) == 0 or np.ptp(pairs[:, 1]) == 0:
        return float("nan"), float("nan")
    from scipy.stats import spearmanr

    result = spearmanr(pairs[:, 0], pairs[:, 1])
    return float(result.statistic), float(result.pvalue)


def strong_frame(summaries: Iterable[Mapping[str, Any]], architectures: pd.DataFrame,
                 dataset: str, *, strong_attacks: Sequence[str],
                 counterparts: Mapping[str, str], method: str = "pgd_linf"
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(table, rank correlations)`` of ``dataset``'s ``method`` models, accuracies in percent.

    The table has one row per architecture, in Table 1's order (categories, then the paper
    protocol's worst case, highest first, so that its rows line up with Table 1's and the rank
    columns show what the strong protocol changes): category, clean accuracy, each
    strong attack, ``worst_case_all``, the paper's ``worst_case``, and the rank of the
    architecture by either worst case (1: the most robust). The correlations frame has the rows
    ``RHO_ROW`` and ``P_ROW`` over the same columns: each strong attack against its paper
    counterpart (``counterparts``), ``worst_case_all`` against ``worst_case``."""
    models = by_model(summaries, dataset)
    archs = sorted({arch for arch, m in models if m == method}, key=paper_order)
    categories = dict(zip(architectures["name"], architectures["category"], strict=False))
    rows, paper = [], []
    for arch in archs:
        summary = models[(arch, method)]
        accuracy = summary["accuracy"]
        rows.append({"architecture": display_name(arch), "category": categories.get(arch),
                     "clean_acc": percent(accuracy.get("clean")),
                     **{a: percent(accuracy.get(a)) for a in strong_attacks},
                     "worst_case_all": percent(summary.get("worst_case_all")),
                     "worst_case": percent(summary.get("worst_case"))})
        paper.append({a: percent(accuracy.get(p)) for a, p in counterparts.items()})
    order = by_worst_case([{**row, "position": i} for i, row in enumerate(rows)])
    rows = [rows[row["position"]] for row in order]
    paper = [paper[row["position"]] for row in order]
    frame = pd.DataFrame(rows, columns=["architecture", "category", "clean_acc",
                                        *strong_attacks, "worst_case_all", "worst_case"])
    for column, rank in (("worst_case", "rank_paper"), ("worst_case_all", "rank_strong")):
        frame[rank] = frame[column].rank(ascending=False, method="min")
    correlations = {}
    paper = pd.DataFrame(paper, columns=list(counterparts), index=frame.index)
    for column in [*strong_attacks, "worst_case_all"]:
        other = frame["worst_case"] if column == "worst_case_all" else paper.get(column)
        if other is not None:
            correlations[column] = spearman(other.tolist(), frame[column].tolist())
    rho = pd.DataFrame([{"architecture": RHO_ROW, **{c: r for c, (r, _) in correlations.items()}},
                        {"architecture": P_ROW, **{c: p for c, (_, p) in correlations.items()}}],
                       columns=frame.columns)
    return frame, rho


def strong_layout(strong_attacks: Sequence[str]) -> Layout:
    """The strong table's layout: the strong attacks and the worst case over every attack under
    "strong protocol", the paper's worst case under "paper protocol", the ranks under "ranks";
    a rule between categories and before the ρ rows."""
    strong = [*strong_attacks, "worst_case_all"]
    return Layout(columns=["category", "architecture", "clean_acc", *strong, "worst_case",
                           "rank_paper", "rank_strong"],
                  groups=[("strong protocol", strong), ("paper protocol", ["worst_case"]),
                          ("ranks", ["rank_paper", "rank_strong"])],
                  section="category", integers=["rank_paper", "rank_strong"],
                  labels={"architecture": ROW_LABELS})


def pairs_caption(counterparts: Mapping[str, str]) -> str:
    """The ρ pairs, for the table's caption."""
    pairs = [f"{strong} vs {paper}" for strong, paper in counterparts.items()]
    return "; ".join([*pairs, "worst_case_all vs worst_case"])
