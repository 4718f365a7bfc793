"""The datasets' decoders and the split files: download, decode once, save, load.

Each dataset is prepared into ``{data_dir}/{name}/train.pt`` and ``test.pt``: dictionaries of
a uint8 image tensor ``x`` (N, 3, H, W) and int64 labels ``y``. Training keeps a whole split
on its device (see :mod:`robustarch.data.loader`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import save_torch
from ..errors import describe_error
from . import cifar10, imagenette
from .digits import load_digits_tensors
from .download import download
from .sources import DATASET_ARCHIVES


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    url: str | None  # None: bundled, nothing to download
    archive: str | None
    md5: str | None
    decode: Callable[..., dict[str, torch.Tensor]]


_DECODERS: dict[str, Callable[..., dict[str, torch.Tensor]]] = {
    "cifar10": cifar10.load_cifar10_archive,
    "imagenette": imagenette.load_imagenette_archive,
    "digits": lambda: load_digits_tensors(),
}
DATASETS: dict[str, DatasetSpec] = {
    name: DatasetSpec(name, source and source.url, source and source.name, source and source.md5,
                      _DECODERS[name])
    for name, source in DATASET_ARCHIVES.items()
}


class UnknownDatasetError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def dataset_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; valid datasets: {', '.join(sorted(DATASETS))}"
        ) from None


def download_archive(name: str, dest: str | Path) -> Path:
    spec = dataset_spec(name)
    if spec.url is None:
        raise ValueError(f"dataset {name!r} is bundled and has nothing to download")
    return download(spec.url, dest, spec.md5)


def decode_dataset(name: str, archive: str | Path | None = None) -> dict[str, torch.Tensor]:
    """``{"x_train", "y_train", "x_test", "y_test"}`` for dataset ``name``."""
    spec = dataset_spec(name)
    if spec.url is None:
        return spec.decode()
    if archive is None:
        raise ValueError(f"dataset {name!r} needs its archive {spec.archive}")
    return spec.decode(archive, spec.md5)


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
