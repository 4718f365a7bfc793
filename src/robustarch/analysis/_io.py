"""Atomic writes (tmp file + os.replace), so that an interrupted job leaves no half file."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` and move ``tmp`` onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def write_json(data: Mapping[str, Any], path: str | Path) -> None:
    # Compact lists (histograms) keep the files short; allow_nan=False turns a NaN into an error
    # here rather than an unreadable file.
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    write_atomic(path, lambda tmp: tmp.write_text(text + "\n"))


def write_text(text: str, path: str | Path) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text))


def load_landscape(path: str | Path) -> dict[str, Any]:
    """The arrays of a ``landscape.npz``; 0-d arrays (scalars, names) as Python values."""
    with np.load(path, allow_pickle=False) as data:
        return {k: (data[k].item() if data[k].ndim == 0 else data[k]) for k in data.files}
