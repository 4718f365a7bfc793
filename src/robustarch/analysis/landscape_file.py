"""``landscape.npz``: one model's loss landscape on disk (numpy only, so the report jobs that
read it never import torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import save_npz


def save_landscape(result: dict[str, Any], path: str, **meta: Any) -> None:
    """``landscape.npz``: coords, loss, centre_loss, sharpness, samples and ``meta`` strings."""
    arrays = {k: np.asarray(v) for k, v in result.items()}
    arrays.update({k: np.asarray(str(v)) for k, v in meta.items()})
    save_npz(path, **arrays)


def load_landscape(path: str | Path) -> dict[str, Any]:
    """The arrays of a ``landscape.npz``; 0-d arrays (scalars, names) as Python values."""
    with np.load(path, allow_pickle=False) as data:
        return {k: (data[k].item() if data[k].ndim == 0 else data[k]) for k in data.files}
