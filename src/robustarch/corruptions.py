"""Common-corruption accuracy of trained models (the paper's Table 4).

:func:`evaluate_corruptions` classifies every image of every configured corruption and
severity (see :mod:`robustarch.data.corruptions` for the files) and returns one row per
(corruption, severity, test sample). It can resume: each finished corruption is saved
atomically into a state folder and skipped when the job runs again.

The corruption accuracy of a model is the mean accuracy over all (corruption, severity) pairs,
the number the paper reports for CIFAR-10-C and ImageNette-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from .data.corruptions import load_corruption
from .errors import describe_error
from .evaluate import evaluate_attack
from .report import _order, display_name, paper_table

COLUMNS = ["corruption", "severity", "index", "label", "prediction", "correct"]
_CLEAN = {"name": "clean", "kind": "clean"}
_KEY_FILE = "key.json"

# Table 4's datasets as the paper names them, and the paper's column name stems.
DATASET_NAMES = {"cifar10": "CIFAR-10", "imagenette": "ImageNette", "digits": "Digits"}
TABLE4_COLUMNS = {"vanilla_acc": "Vanilla", "vanilla_c_acc": "Vanilla-C",
                  "at_clean_acc": "AT Clean", "at_c_acc": "AT-C"}


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def _open_state(state_dir: Path, key: Mapping[str, Any]) -> None:
    """Keep the state folder's partial results only if they were made with ``key`` (same
    model file, severities, samples); otherwise start afresh."""
    key_file = state_dir / _KEY_FILE
    wanted = json.dumps(dict(key), sort_keys=True)
    try:
        current = key_file.read_text()
    except OSError:
        current = None
    if current != wanted:
        shutil.rmtree(state_dir, ignore_errors=True)
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = key_file.with_name(f".{key_file.name}.tmp")
        tmp.write_text(wanted)
        os.replace(tmp, key_file)


def _load_partial(path: Path, log: Callable[[str], None]) -> pd.DataFrame | None:
    if not path.exists():
        return None
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # a damaged partial result costs one corruption, not the run
        log(f"WARNING: {path} is unreadable ({describe_error(exc)}); evaluating it again")
        path.unlink(missing_ok=True)
        return None


def evaluate_corruption(model: nn.Module, data: Mapping[str, Any], severities: Sequence[int],
                        *, batch_size: int = 500, num_samples: int | None = None,
                        device: str | torch.device | None = None) -> pd.DataFrame:
    """Rows of one corruption file (see :func:`robustarch.data.corruptions.load_corruption`)
    for ``severities``, on the first ``num_samples`` images of each severity."""
    available = [int(s) for s in data["severities"]]
    missing = [s for s in severities if s not in available]
    if missing:
        raise ValueError(f"corruption {data['corruption']}: the file has severities "
                         f"{available}, not {missing}; delete it and run again")
    x, y = data["x"], data["y"]
    if num_samples is not None:
        if x.shape[1] < num_samples:
            raise ValueError(f"corruption {data['corruption']}: the file has {x.shape[1]} "
                             f"samples, fewer than num_samples={num_samples}")
        x, y = x[:, :num_samples], y[:num_samples]
    parts = []
    for severity in severities:
        images = x[available.index(severity)]
        frame = evaluate_attack(model, images, y, _CLEAN, batch_size=batch_size, device=device)
        frame.insert(0, "severity", severity)
        frame.insert(0, "corruption", str(data["corruption"]))
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)[COLUMNS]


def evaluate_corruptions(
    model: nn.Module,
    files: Mapping[str, str | Path],
    severities: Sequence[int],
    *,
    batch_size: int = 500,
    num_samples: int | None = None,
    device: str | torch.device | None = None,
    state_dir: str | Path | None = None,
    state_key: Mapping[str, Any] | None = None,
    on_saved: Callable[[str], None] | None = None,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """One row per (corruption, severity, sample) over the corruption files ``files``
    (corruption name → path), in their order.

    With ``state_dir``, each finished corruption is written there (then ``on_saved(name)``
    is called) and reused by a later call with the same ``state_key``; remove the folder with
    :func:`discard_corruption_state` once the result is safely written.
    """
    severities = [int(s) for s in severities]
    state = None if state_dir is None else Path(state_dir)
    if state is not None:
        _open_state(state, {**(state_key or {}), "severities": severities,
                            "num_samples": num_samples, "corruptions": list(files)})
    parts = []
    for corruption, path in files.items():
        partial = None if state is None else state / f"{corruption}.parquet"
        frame = None if partial is None else _load_partial(partial, log)
        if frame is not None:
            log(f"{corruption}: reusing {partial}")
        else:
            data = load_corruption(path)
            if data["corruption"] != corruption:
                raise ValueError(f"{path} holds corruption {data['corruption']!r}, "
                                 f"not {corruption!r}")
            frame = evaluate_corruption(model, data, severities, batch_size=batch_size,
                                        num_samples=num_samples, device=device)
            log(f"{corruption}: accuracy {frame['correct'].mean():.4f}")
            if partial is not None:
                _write_parquet(frame, partial)
        parts.append(frame)
        if on_saved is not None:
            on_saved(corruption)
    if not parts:
        return pd.DataFrame({c: [] for c in COLUMNS})
    return pd.concat(parts, ignore_index=True)[COLUMNS]


def discard_corruption_state(state_dir: str | Path) -> None:
    """Remove a finished evaluation's state folder, and the model's once empty."""
    state_dir = Path(state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)
    with contextlib.suppress(OSError):  # not empty: another job of the model still uses it
        state_dir.parent.rmdir()


def write_corruption_outcomes(frame: pd.DataFrame, path: str | Path) -> None:
    """Write the per-sample corruption outcomes as parquet, atomically."""
    _write_parquet(frame[COLUMNS], Path(path))


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


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` as CSV, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def table4_frame(results: Iterable[Mapping[str, Any]], datasets: Sequence[str]) -> pd.DataFrame:
    """The paper's Table 4: one row per architecture (paper names), and for each dataset the
    columns ``{dataset}_vanilla_acc``, ``_vanilla_c_acc`` (vanilla model, clean and corruption
    accuracy), ``_at_clean_acc``, ``_at_c_acc`` (PGD-ℓ∞ AT model), in percent.

    ``results``: dictionaries with keys dataset, arch, method, clean_acc, c_acc (fractions).
    """
    by_key = {(r["dataset"], r["arch"], r["method"]): r for r in results}
    archs = sorted({arch for _, arch, _ in by_key}, key=_order)
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
    return pd.DataFrame(rows, columns=columns)


def with_paper_table4(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the paper's Table 4 numbers (``paper_*`` columns) for the datasets it covers."""
    paper = paper_table("table4_corruptions")
    ours = [c for c in paper.columns if c != "architecture" and c in frame.columns]
    if not ours:
        return frame
    paper = paper[["architecture", *ours]].rename(columns={c: f"paper_{c}" for c in ours})
    return frame.merge(paper, on="architecture", how="left")


def table4_display(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with readable headers for LaTeX (``CIFAR-10 Vanilla-C`` …)."""
    names = {"architecture": "Architecture"}
    for column in frame.columns:
        for stem, header in TABLE4_COLUMNS.items():
            if column.endswith(f"_{stem}") and not column.startswith("paper_"):
                dataset = column[: -len(stem) - 1]
                names[column] = f"{DATASET_NAMES.get(dataset, dataset)} {header}"
    return frame.rename(columns=names)
