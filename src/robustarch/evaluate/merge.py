"""Merge per-attack outcomes into a summary, with the sample-wise worst case (paper Eq. 2).

W = (1/n) Σᵢ min over attacks a of 1[f(a(xᵢ)) = yᵢ]: a sample counts as robust only if every
attack failed on it. That needs every attack's outcomes on the same samples with the same
labels, so misaligned files are refused rather than silently joined.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..atomic import write_json


class MisalignedOutcomesError(ValueError):
    """Attack outcome files that do not cover the same samples with the same labels."""


def read_outcomes(paths: Mapping[str, str | Path]) -> dict[str, pd.DataFrame]:
    frames = {}
    for attack, path in paths.items():
        frame = pd.read_parquet(path)
        missing = {"index", "label", "prediction", "correct"} - set(frame.columns)
        if missing:
            raise MisalignedOutcomesError(f"{path}: missing columns {sorted(missing)}")
        frames[attack] = frame.sort_values("index").reset_index(drop=True)
    return frames


def check_aligned(frames: Mapping[str, pd.DataFrame], sources: Mapping[str, Any] | None = None
                  ) -> None:
    """Raise :class:`MisalignedOutcomesError` unless all frames have the same index/labels."""
    sources = sources or {}
    items = list(frames.items())
    if not items:
        raise MisalignedOutcomesError("no outcome files to merge")
    ref_name, ref = items[0]
    if ref["index"].duplicated().any():
        raise MisalignedOutcomesError(f"{sources.get(ref_name, ref_name)}: duplicate indices")
    for name, frame in items[1:]:
        where = f"{sources.get(name, name)} vs {sources.get(ref_name, ref_name)}"
        if len(frame) != len(ref) or not (frame["index"].to_numpy() == ref["index"].to_numpy()
                                           ).all():
            raise MisalignedOutcomesError(
                f"{where}: the attack files cover different test samples ({len(frame)} vs "
                f"{len(ref)} rows). Re-run the evaluation of both with the same "
                "evaluation.num_samples."
            )
        if not (frame["label"].to_numpy() == ref["label"].to_numpy()).all():
            raise MisalignedOutcomesError(
                f"{where}: same sample indices but different labels; the files come from "
                "different test sets. Re-run the stale evaluation."
            )


def sample_worst_case(frames: Mapping[str, pd.DataFrame], attacks: Iterable[str]
                      ) -> tuple[float | None, list[str]]:
    """Eq. 2 over the ``attacks`` present in ``frames``: ``(accuracy or None, members)``."""
    members = [a for a in attacks if a in frames]
    if not members:
        return None, members
    robust = frames[members[0]]["correct"].to_numpy().copy()
    for name in members[1:]:
        robust &= frames[name]["correct"].to_numpy()
    return float(robust.mean()), members


def summarize(frames: Mapping[str, pd.DataFrame], worst_case: Iterable[str],
              sources: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Per-attack accuracy; the sample-wise worst case over the ``worst_case`` attacks that
    are present (the paper's; ``None`` when none is); and ``worst_case_all``, over every attack
    present (clean excluded), so that ``worst_case_all <= worst_case <= each attack``."""
    check_aligned(frames, sources)
    accuracy = {name: float(frame["correct"].mean()) for name, frame in frames.items()}
    worst, members = sample_worst_case(frames, worst_case)
    worst_all, all_members = sample_worst_case(frames, [a for a in frames if a != "clean"])
    n = len(next(iter(frames.values())))
    return {"n": n, "accuracy": accuracy, "worst_case": worst, "worst_case_attacks": members,
            "worst_case_all": worst_all, "worst_case_all_attacks": all_members}


def run_merge_job(*, outcome_files: Mapping[str, str | Path], worst_case: Sequence[str],
                  model: Mapping[str, str], summary: str | Path,
                  log: Callable[[str], None]) -> None:
    """Write ``summary.json`` (rule merge_outcomes): accuracy per attack and the sample-wise
    worst case. ``model`` holds the dataset, arch and method it belongs to. Imports no torch:
    the job starts in a second less."""
    paths = dict(outcome_files)
    result = summarize(read_outcomes(paths), worst_case, sources=paths)
    write_json({"dataset": model["dataset"], "arch": model["arch"], "method": model["method"],
                **result}, summary)
    log(f"{result}")
