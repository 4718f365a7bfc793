"""Training checkpoints: what is needed to continue a run bit for bit, written atomically.

Checkpoints live outside Snakemake's declared outputs (Snakemake deletes the outputs of a
failed job, and the point of a checkpoint is to survive that). Each is written atomically
(:mod:`robustarch.atomic`) and the two newest are kept, so a checkpoint truncated by a dying node
costs one epoch, not the run.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import remove_temporaries, save_torch
from ..data.loader import DeviceLoader
from ..errors import describe_error

KEEP = 2
_NAME = re.compile(r"^epoch-(\d+)\.pt$")


def rng_state(loader: DeviceLoader, attack_generator: torch.Generator) -> dict[str, Any]:
    """Every random state a run draws from: the global generators, the loader's, the attack's."""
    np_state = np.random.get_state(legacy=True)
    return {
        "python": random.getstate(),
        # weights_only loading accepts tensors and plain containers, not numpy arrays
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": loader.state_dict(),
        "attack": attack_generator.get_state(),
    }


def set_rng_state(state: dict[str, Any], loader: DeviceLoader,
                  attack_generator: torch.Generator) -> None:
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    loader.load_state_dict(state["loader"])
    attack_generator.set_state(state["attack"])


def save_checkpoint(directory: str | Path, epoch: int, state: dict[str, Any]) -> Path:
    """Write ``epoch-<epoch>.pt`` atomically and drop all but the ``KEEP`` newest."""
    directory = Path(directory)
    path = directory / f"epoch-{epoch:04d}.pt"
    save_torch({**state, "epoch": epoch}, path)
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


def set_aside_checkpoints(directory: str | Path, suffix: str) -> list[Path]:
    """Rename every checkpoint of ``directory`` to ``<name>.<suffix>`` (kept for inspection, no
    longer found by :func:`list_checkpoints`); returns the new paths."""
    moved = []
    for path in list_checkpoints(directory):
        target = path.with_name(f"{path.name}.{suffix}")
        path.rename(target)  # replaces an older set-aside file of the same name
        remove_temporaries(path)
        moved.append(target)
    return moved


def clear_checkpoints(directory: str | Path) -> None:
    """Drop a finished run's checkpoints (its model file now holds the result)."""
    directory = Path(directory)
    for path in list_checkpoints(directory):
        path.unlink(missing_ok=True)
        remove_temporaries(path)
    if directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
