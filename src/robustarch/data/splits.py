"""Decoding a registered dataset and the split files: download, decode once, save, load.

Each dataset is prepared into ``{data_dir}/{name}/train.pt`` and ``test.pt``: dictionaries of
a uint8 image tensor ``x`` (N, 3, H, W) and int64 labels ``y``. Training keeps a whole split
on its device (see :mod:`robustarch.data.loader`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..atomic import save_torch
from ..errors import describe_error
from .download import download
from .registry import DatasetSpec, UnknownDatasetError, dataset_spec, registered_datasets

# The registry (name -> DatasetSpec), under the name this module always exported.
DATASETS = registered_datasets()


def download_archive(name: str, dest: str | Path) -> Path:
    archive = dataset_spec(name).archive
    if archive is None:
        raise ValueError(f"dataset {name!r} is bundled and has nothing to download")
    return download(archive.url, dest, archive.md5)


def decode_dataset(name: str, archive: str | Path | None = None) -> dict[str, torch.Tensor]:
    """``{"x_train", "y_train", "x_test", "y_test"}`` for dataset ``name``."""
    spec = dataset_spec(name)
    if spec.archive is None:
        return spec.decode()
    if archive is None:
        raise ValueError(f"dataset {name!r} needs its archive {spec.archive.name}")
    return spec.decode(archive, spec.archive.md5)


def save_split(path: str | Path, x: torch.Tensor, y: torch.Tensor) -> None:
    """Atomically write one split (so a killed job leaves no half-written cache)."""
    save_torch({"x": x.contiguous(), "y": y.contiguous()}, path)


def load_split(path: str | Path, device: str | torch.device = "cpu"
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a split written by :func:`save_split` (uint8 images, int64 labels)."""
    try:
        data = torch.load(path, map_location=device, weights_only=True)
        x, y = data["x"], data["y"]
    except Exception as exc:
        raise ValueError(
            f"{path} is not a readable dataset split ({describe_error(exc)}); delete it "
            "and run the workflow again to rebuild it."
        ) from exc
    if x.dtype != torch.uint8 or x.ndim != 4 or y.dtype != torch.int64 or len(x) != len(y):
        raise ValueError(f"{path}: unexpected split format; delete it and run again")
    return x, y


__all__ = [
    "DATASETS",
    "DatasetSpec",
    "UnknownDatasetError",
    "dataset_spec",
    "decode_dataset",
    "download_archive",
    "load_split",
    "save_split",
]
