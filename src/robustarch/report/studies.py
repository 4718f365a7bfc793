"""The study tables in the paper's layout: Table 2 (CoAtNet stage layouts), Table 3 (patch
size), and the supplement's activation and TRADES tables. Each row is an architecture of the
study with Table 1's accuracy columns of its vanilla and adversarially trained models, under
Table 1's grouped headers.

Row orders, as the paper prints them (``paper_data/table2_coatnet_stages.csv`` and
``table3_patch_size.csv`` keep its rows in order): Table 2's layouts by worst-case accuracy,
highest first (32.17 … 25.88); Table 3 by family (in the configured order: PVTv2, then ViT),
largest patch first within each, a rule between families; the activation table each
architecture's GELU and ReLU models together, a rule between architectures; the TRADES table
as Table 1 (categories, worst case highest first).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .latex import Layout
from .names import display_name, paper_order
from .table1 import (
    ACCURACY_COLUMNS,
    ACCURACY_HEADERS,
    PAPER_ATTACKS,
    accuracy_columns,
    accuracy_groups,
    by_model,
    by_worst_case,
)


def study_frame(summaries: Iterable[Mapping[str, Any]], rows: Iterable[Mapping[str, Any]],
                *, at_method: str = "pgd_linf",
                order: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None
                ) -> pd.DataFrame:
    """A study table: one row per entry of ``rows`` (each with an ``arch`` key and the row's
    label columns, e.g. ``{"architecture": "CoAtNet-CCTC", "stages": "CCTC", "arch": ...}``),
    then Table 1's accuracy columns of its vanilla and ``at_method`` models. Missing models
    give missing cells, so a table can be built from a partial study. ``order`` sorts the
    rows (dictionaries of the table's columns); None keeps the order of ``rows``."""
    summaries = list(summaries)
    models = by_model(summaries)
    attacks = PAPER_ATTACKS  # the studies use the paper protocol
    records = []
    for row in rows:
        labels = {k: v for k, v in row.items() if k != "arch"}
        records.append({**labels, **accuracy_columns(models.get((row["arch"], "vanilla")),
                                                     models.get((row["arch"], at_method)),
                                                     attacks)})
    frame = pd.DataFrame(order(records) if order else records)
    if at_method != "pgd_linf" or not any(m == "vanilla" for _, m in models):
        frame = frame.drop(columns=["vanilla_acc"])  # no vanilla models in this study
    return frame


def coatnet_layout(arch: str) -> str:
    """The stage layout of a CoAtNet name (``coatnet`` is CCTT, the paper's default)."""
    return arch.partition("-")[2] or "CCTT"


# Patch sizes of the base models (docs/architectures.md); variants carry theirs as "-p<N>".
BASE_PATCH_SIZES = {"vit": 4, "pvtv2": 4}


def patch_size(arch: str) -> int:
    base, _, variant = arch.partition("-")
    if variant.startswith("p") and variant[1:].isdigit():
        return int(variant[1:])
    if not variant and base in BASE_PATCH_SIZES:
        return BASE_PATCH_SIZES[base]
    raise ValueError(f"{arch!r} has no known patch size; use a -p<N> variant")


def table2_rows(architectures: Iterable[str]) -> list[dict[str, Any]]:
    return [{"architecture": f"CoAtNet-{coatnet_layout(a)}", "stages": coatnet_layout(a),
             "arch": a} for a in architectures]


def table3_rows(architectures: Iterable[str]) -> list[dict[str, Any]]:
    """Families in the order they first appear in ``architectures``, largest patch first."""
    architectures = list(architectures)
    families = list(dict.fromkeys(a.partition("-")[0] for a in architectures))
    ordered = sorted(architectures, key=lambda a: (families.index(a.partition("-")[0]),
                                                   -patch_size(a)))
    return [{"architecture": display_name(a.partition("-")[0]), "patch_size": patch_size(a),
             "arch": a} for a in ordered]


def activation_rows(architectures: Iterable[str]) -> list[dict[str, Any]]:
    """Each architecture with GELU (as registered) and its ``-relu`` twin."""
    return [{"architecture": display_name(a), "activation": act, "arch": name}
            for a in sorted(architectures, key=paper_order)
            for act, name in (("GELU", a), ("ReLU", f"{a}-relu"))]


def trades_rows(architectures: Iterable[str]) -> list[dict[str, Any]]:
    from ..models.catalog import model_info

    return [{"architecture": display_name(a), "category": model_info(a).category, "arch": a}
            for a in sorted(architectures, key=paper_order)]


def by_worst_case_only(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return by_worst_case(records, category=None)


def _layout(labels: list[str], at_method: str, section: str | None = None) -> Layout:
    return Layout(columns=[*labels, "vanilla_acc", *ACCURACY_COLUMNS],
                  groups=accuracy_groups(at_method), headers=ACCURACY_HEADERS, section=section)


@dataclass(frozen=True)
class StudyTable:
    """How one study's table is laid out."""

    rows: Callable[[Iterable[str]], list[dict[str, Any]]]
    at_method: str
    paper: tuple[str, list[str]] | None  # the published table and its join keys (CIFAR-10)
    caption: str
    layout: Layout
    order: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None


STUDY_TABLES = {
    "coatnet_layouts": StudyTable(table2_rows, "pgd_linf",
                                  ("table2_coatnet_stages", ["architecture", "stages"]),
                                  "Table 2: CoAtNet stage layouts (C: MBConv, T: transformer)",
                                  _layout(["stages"], "pgd_linf"), by_worst_case_only),
    "patch_size": StudyTable(table3_rows, "pgd_linf",
                             ("table3_patch_size", ["architecture", "patch_size"]),
                             "Table 3: patch size",
                             _layout(["architecture", "patch_size"], "pgd_linf",
                                     section="architecture")),
    "activation": StudyTable(activation_rows, "pgd_linf", None, "GELU vs ReLU",
                             _layout(["architecture", "activation"], "pgd_linf",
                                     section="architecture")),
    "trades": StudyTable(trades_rows, "trades", None, "TRADES adversarial training",
                         _layout(["category", "architecture"], "trades", section="category"),
                         by_worst_case),
}


def study_table(study: str, dataset: str, architectures: Sequence[str],
                summaries: Iterable[Mapping[str, Any]]
                ) -> tuple[pd.DataFrame, pd.DataFrame, str, Layout]:
    """``(table, its CSV with the paper's numbers where it has them, caption, layout)`` of
    ``study``."""
    from .paper import with_paper_columns

    spec = STUDY_TABLES[study]
    frame = study_frame(summaries, spec.rows(architectures), at_method=spec.at_method,
                        order=spec.order)
    csv_frame = frame
    if spec.paper is not None and dataset == "cifar10":  # the paper's numbers: CIFAR-10
        csv_frame = with_paper_columns(frame, *spec.paper)
    return frame, csv_frame, f"{spec.caption} ({dataset}): accuracy (%)", spec.layout
