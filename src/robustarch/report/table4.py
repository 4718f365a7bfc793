"""Table 4 in the paper's layout: clean and common-corruption accuracy of vanilla and PGD-ℓ∞
trained models, per dataset. A model's corruption accuracy is its mean accuracy over all
(corruption, severity) pairs, the number the paper reports for CIFAR-10-C and ImageNette-C.

Its rows are Table 1's architectures in the order the paper prints both tables in
(``paper_data/table4_corruptions.csv``: its Table 1 order), by category with a rule between
them; each dataset's four columns stand under the dataset's name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..data.registry import UnknownDatasetError, dataset_spec
from .latex import Layout
from .names import display_name, paper_order
from .table1 import category_rank

# The paper's column name stems.
TABLE4_COLUMNS = {"vanilla_acc": "Vanilla", "vanilla_c_acc": "Vanilla-C",
                  "at_clean_acc": "AT Clean", "at_c_acc": "AT-C"}


def corruption_accuracy(frame: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    """``(mean accuracy over all (corruption, severity) pairs, per-corruption table)``.

    The table has one row per corruption (in order of appearance): ``accuracy`` (mean over its
    severities) and ``severity_<s>`` for each severity; accuracies are fractions.
    """
    if frame.empty:
        raise ValueError("no corruption outcomes to aggregate")
    pairs = frame.groupby(["corruption", "severity"], sort=False)["correct"].mean()
    table = pairs.unstack("severity")
    table = table[sorted(table.columns)]
    table.columns = [f"severity_{s}" for s in table.columns]
    table.insert(0, "accuracy", pairs.groupby(level="corruption", sort=False).mean())
    table = table.loc[pd.unique(frame["corruption"])]
    table.index.name = "corruption"
    return float(pairs.mean()), table.reset_index()


def model_accuracies(clean: pd.DataFrame, corrupted: pd.DataFrame
                     ) -> tuple[float, float, pd.DataFrame]:
    """``(clean accuracy, corruption accuracy, per-corruption table)`` of one model, from its
    ``eval/clean.parquet`` and ``eval/corruptions.parquet`` frames."""
    mean, table = corruption_accuracy(corrupted)
    return float(clean["correct"].mean()), mean, table


def collect_table4(models: Iterable[Sequence[str]], clean_paths: Iterable[str | Path],
                   corruption_paths: Iterable[str | Path]
                   ) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Read each model's ``eval/clean.parquet`` and ``eval/corruptions.parquet``.

    Returns the results for :func:`table4_frame` and the per-corruption accuracies (percent)
    of every model: columns dataset, architecture, method, corruption, accuracy,
    severity_<s>.
    """
    results, tables = [], []
    for (dataset, arch, method), clean, corrupted in zip(models, clean_paths, corruption_paths,
                                                         strict=True):
        clean_acc, c_acc, table = model_accuracies(pd.read_parquet(clean),
                                                   pd.read_parquet(corrupted))
        results.append({"dataset": dataset, "arch": arch, "method": method,
                        "clean_acc": clean_acc, "c_acc": c_acc})
        accuracies = [c for c in table.columns if c != "corruption"]
        table[accuracies] *= 100
        for position, (column, value) in enumerate(
                [("dataset", dataset), ("architecture", display_name(arch)), ("method", method)]):
            table.insert(position, column, value)
        tables.append(table)
    per_corruption = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return results, per_corruption


def table4_frame(results: Iterable[Mapping[str, Any]], datasets: Sequence[str]) -> pd.DataFrame:
    """The paper's Table 4: one row per architecture (paper names), and for each dataset the
    columns ``{dataset}_vanilla_acc``, ``_vanilla_c_acc`` (vanilla model, clean and corruption
    accuracy), ``_at_clean_acc``, ``_at_c_acc`` (PGD-ℓ∞ AT model), in percent.

    ``results``: dictionaries with keys dataset, arch, method, clean_acc, c_acc (fractions).
    The rows are indexed by architecture (registry names, see :func:`table4_table`).
    """
    by_key = {(r["dataset"], r["arch"], r["method"]): r for r in results}
    archs = sorted({arch for _, arch, _ in by_key}, key=lambda a: (category_rank(
        _category(a)), paper_order(a)))
    stems = {"vanilla": ("vanilla_acc", "vanilla_c_acc"), "pgd_linf": ("at_clean_acc", "at_c_acc")}
    rows = []
    for arch in archs:
        row: dict[str, Any] = {"architecture": display_name(arch)}
        for dataset in datasets:
            for method, (clean_col, c_col) in stems.items():
                result = by_key.get((dataset, arch, method), {})
                for column, key in ((clean_col, "clean_acc"), (c_col, "c_acc")):
                    value = result.get(key)
                    row[f"{dataset}_{column}"] = None if value is None else 100 * value
        rows.append(row)
    columns = ["architecture"] + [f"{d}_{stem}" for d in datasets for stem in TABLE4_COLUMNS]
    return pd.DataFrame(rows, columns=columns, index=pd.Index(archs, name="arch"))


def _category(arch: str) -> str:
    from ..models.catalog import model_info

    return model_info(arch).category


def table4_table(frame: pd.DataFrame, datasets: Sequence[str]) -> tuple[pd.DataFrame, Layout]:
    """``(shown frame, layout)`` of Table 4: :func:`table4_frame`'s with each row's category
    (a rule between categories), the dataset's display name over its four columns."""
    shown = frame.assign(category=[_category(arch) for arch in frame.index])
    groups = [(_dataset_title(d), [f"{d}_{stem}" for stem in TABLE4_COLUMNS]) for d in datasets]
    headers = {f"{d}_{stem}": header for d in datasets for stem, header in TABLE4_COLUMNS.items()}
    return shown, Layout(columns=["category", "architecture", *headers], groups=groups,
                         headers=headers, section="category")


def table4_display(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with readable one-line headers (``CIFAR-10 Vanilla-C`` …), for the log."""
    names = {"architecture": "Architecture"}
    for column in frame.columns:
        for stem, header in TABLE4_COLUMNS.items():
            if column.endswith(f"_{stem}") and not column.startswith("paper_"):
                dataset = column[: -len(stem) - 1]
                names[column] = f"{_dataset_title(dataset)} {header}"
    return frame.rename(columns=names)


def _dataset_title(dataset: str) -> str:
    """The dataset's display name (its module's), or the raw name of an unregistered one."""
    try:
        return dataset_spec(dataset).display_name
    except UnknownDatasetError:
        return dataset
