"""A trained model's predictions under common corruptions (for the paper's Table 4).

:func:`evaluate_corruptions` classifies every image of every configured corruption and
severity (see :mod:`robustarch.data.corruption_files` for the files) and returns one row per
(corruption, severity, test sample). It can resume: each finished corruption is saved
atomically into a state folder and skipped when the job runs again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..atomic import write_parquet
from ..data.corruption_files import load_corruption
from ..settings import CleanSettings
from .attack import evaluate_attack
from .kept_results import load_kept, open_kept

COLUMNS = ["corruption", "severity", "index", "label", "prediction", "correct"]
def _evaluate_file(model: nn.Module, data: Mapping[str, Any], severities: Sequence[int],
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
        frame = evaluate_attack(model, images, y, CleanSettings(), batch_size=batch_size,
                                device=device)
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
    :func:`robustarch.evaluate.kept_results.discard_kept` once the result is safely written.
    """
    severities = [int(s) for s in severities]
    state = None if state_dir is None else Path(state_dir)
    if state is not None:
        open_kept(state, {**(state_key or {}), "severities": severities,
                            "num_samples": num_samples, "corruptions": list(files)})
    parts = []
    for corruption, path in files.items():
        partial = None if state is None else state / f"{corruption}.parquet"
        frame = None if partial is None else load_kept(partial, log)
        if frame is not None:
            log(f"{corruption}: reusing {partial}")
        else:
            data = load_corruption(path)
            if data["corruption"] != corruption:
                raise ValueError(f"{path} holds corruption {data['corruption']!r}, "
                                 f"not {corruption!r}")
            frame = _evaluate_file(model, data, severities, batch_size=batch_size,
                                   num_samples=num_samples, device=device)
            log(f"{corruption}: accuracy {frame['correct'].mean():.4f}")
            if partial is not None:
                write_parquet(frame, partial)
        parts.append(frame)
        if on_saved is not None:
            on_saved(corruption)
    if not parts:
        return pd.DataFrame({c: [] for c in COLUMNS})
    return pd.concat(parts, ignore_index=True)[COLUMNS]


def write_corruption_outcomes(frame: pd.DataFrame, path: str | Path) -> None:
    """Write the per-sample corruption outcomes as parquet, atomically."""
    write_parquet(frame[COLUMNS], path)
