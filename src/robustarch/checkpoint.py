"""Atomic checkpoints and model files.

Checkpoints live outside Snakemake's declared outputs (Snakemake deletes the outputs of a
failed job, and the point of a checkpoint is to survive that). Each is written to a temporary
file, flushed and fsynced, then renamed, and the two newest are kept so a checkpoint truncated
by a dying node costs one epoch, not the run.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .errors import describe_error

KEEP = 2
_NAME = re.compile(r"^epoch-(\d+)\.pt$")


class CorruptFileError(ValueError):
    """A model or checkpoint file cannot be read."""


def atomic_save(obj: Any, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save_checkpoint(directory: str | Path, epoch: int, state: dict[str, Any]) -> Path:
    """Write ``epoch-<epoch>.pt`` atomically and drop all but the ``KEEP`` newest."""
    directory = Path(directory)
    path = directory / f"epoch-{epoch:04d}.pt"
    atomic_save({**state, "epoch": epoch}, path)
    for old in list_checkpoints(directory)[:-KEEP]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Checkpoints in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def load_latest_checkpoint(directory: str | Path, log: Callable[[str], None] = print
                           ) -> dict[str, Any] | None:
    """The newest readable checkpoint in ``directory`` (skipping corrupt ones), or ``None``."""
    for path in reversed(list_checkpoints(directory)):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or "epoch" not in state:
                raise ValueError("not a checkpoint dictionary")
            return state
        except Exception as exc:  # any unreadable file: fall back to the previous one
            log(f"WARNING: checkpoint {path} is unreadable ({describe_error(exc)}); "
                "falling back to the previous checkpoint")
            path.rename(path.with_name(path.name + ".corrupt"))
    return None


def clear_checkpoints(directory: str | Path) -> None:
    directory = Path(directory)
    for path in list_checkpoints(directory):
        path.unlink(missing_ok=True)
    if directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()


def discard_state(path: str | Path) -> None:
    """Remove a finished job's resume state, and its folder once empty."""
    path = Path(path)
    path.unlink(missing_ok=True)
    path.with_name(f".{path.name}.tmp").unlink(missing_ok=True)  # left by a killed write
    with contextlib.suppress(OSError):  # not empty: another job of the model still uses it
        path.parent.rmdir()


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
    required = {"state_dict", "arch", "num_classes", "image_size", "scale", "mean", "std"}
    if not isinstance(data, dict) or not required <= set(data):
        raise CorruptFileError(
            f"model file {path} lacks {sorted(required - set(data or {}))}: not a robustarch "
            "model file. Delete it and run the workflow again."
        )
    return data
