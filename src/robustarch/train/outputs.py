"""What a training job leaves: ``model.pt`` (weights plus everything needed to rebuild and audit
the model) and ``metrics.csv`` (one row per epoch); and reading ``model.pt`` back.

``model.pt``'s ``untrained`` maps each parameter with elements that never had a non-zero
gradient up to the selected epoch (:class:`robustarch.train.loop.GradientRecord`) to a bool
mask of those elements, ``untrained_summary`` counts them; files written before the record lack
both, and :func:`untrained_record` returns None for them (unknown, not "all trained").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..atomic import save_torch, write_csv
from ..errors import CorruptFileError, describe_error
from ..settings import TrainingSettings, as_dict

METRIC_COLUMNS = ["epoch", "lr", "train_loss", "train_acc", "test_clean_acc", "time_s"]
MODEL_FILE_KEYS = {"state_dict", "arch", "num_classes", "image_size", "scale", "mean", "std"}


@dataclass
class TrainResult:
    state_dict: dict[str, torch.Tensor]
    metrics: list[dict[str, float]]
    selected_epoch: int
    # None: trained from scratch in one go; else {"epoch": last finished epoch, "batch": batches
    # of the next epoch done (None when resumed at an epoch boundary)}
    resumed_from: dict[str, int | None] | None
    # the run's fingerprint digests (robustarch.train.fingerprint): settings, data, code
    fingerprint: dict[str, str | None] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    # parameter name -> bool mask of its elements that never had a non-zero gradient (only
    # parameters with at least one); parameter_elements: all parameters' elements
    untrained: dict[str, torch.Tensor] = field(default_factory=dict)
    parameter_elements: int = 0


def save_trained_model(path: str | Path, result: TrainResult, settings: TrainingSettings) -> None:
    """Write ``model.pt`` atomically."""
    from .. import __version__

    resumed = result.resumed_from
    save_torch({
        "state_dict": result.state_dict,
        "arch": settings.arch,
        "num_classes": settings.num_classes,
        "image_size": settings.image_size,
        "scale": settings.scale,
        "mean": list(settings.mean),
        "std": list(settings.std),
        # the rates the model was built with, so that evaluation rebuilds the same modules
        "regularization": as_dict(settings.regularization),
        "method": settings.method,
        "dataset": settings.dataset,
        "selected_epoch": result.selected_epoch,
        "selection": settings.selection,
        "epochs": settings.epochs,
        "resumed": resumed is not None,
        "resumed_from_epoch": None if resumed is None else resumed["epoch"],
        "resumed_from_batch": None if resumed is None else resumed["batch"],
        "fingerprint": dict(result.fingerprint),
        "untrained": dict(result.untrained),
        "untrained_summary": untrained_summary(result.untrained, result.parameter_elements),
        "robustarch_version": __version__,
        "torch_version": str(torch.__version__),
        **{k: v for k, v in result.info.items() if isinstance(v, str | bool | int | float)},
    }, path)


def untrained_summary(untrained: Mapping[str, torch.Tensor], parameter_elements: int
                      ) -> dict[str, int]:
    """Counts of an ``untrained`` record: parameters with untrained elements, those elements,
    and all parameters' elements."""
    return {"parameters": len(untrained),
            "elements": int(sum(int(mask.sum()) for mask in untrained.values())),
            "parameter_elements": int(parameter_elements)}


def write_metrics(metrics: Sequence[Mapping[str, float]], path: str | Path) -> None:
    import pandas as pd

    write_csv(pd.DataFrame(list(metrics), columns=METRIC_COLUMNS), path)


def load_model_file(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a ``model.pt`` written by training, with a clear error when it is damaged."""
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise CorruptFileError(
            f"model file {path} is corrupt or incomplete ({describe_error(exc)}). Delete "
            "it and run the workflow again: its training job will be rerun (resuming from its "
            "last checkpoint if one exists)."
        ) from exc
    if not isinstance(data, dict) or not set(data) >= MODEL_FILE_KEYS:
        raise CorruptFileError(
            f"model file {path} lacks {sorted(MODEL_FILE_KEYS - set(data or {}))}: not a "
            "robustarch model file. Delete it and run the workflow again."
        )
    _check_untrained(data, path)
    return data


def untrained_record(data: Mapping[str, Any]) -> dict[str, torch.Tensor] | None:
    """The ``untrained`` masks of a loaded ``model.pt`` (empty: every element trained), or None
    for a file written before training recorded them (unknown)."""
    record = data.get("untrained")  # absent from files of earlier versions
    return None if record is None else dict(record)


def _check_untrained(data: Mapping[str, Any], path: str | Path) -> None:
    record = untrained_record(data)
    if record is None:
        return
    state = data["state_dict"]
    for name, mask in record.items():
        if (not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool
                or name not in state or mask.shape != state[name].shape):
            raise CorruptFileError(
                f"model file {path}: its untrained-weights record for {name!r} is not a bool "
                "mask of that parameter's shape. Delete the file and run the workflow again.")
