"""Decoding a registered dataset and the split files: download, decode once, save, load.

Each dataset is prepared into ``{data_dir}/{name}/train.pt`` and ``test.pt``: dictionaries of
a uint8 image tensor ``x`` (N, 3, H, W) and int64 labels ``y``. Training keeps a whole split
on its device (see :mod:`robustarch.data.loader`).

A split of **full frames** (ImageNette's training split: images of different shapes, from
which training draws random resized crops) also holds ``sizes`` (N, 2) int64, each image's
true (height, width). One tensor needs one shape, so each frame is stored at the top left of
an (H, W) canvas, zero elsewhere, in landscape orientation: a frame with height > width is
stored transposed (its rows in the canvas' columns), which halves the canvas of a dataset
mixing both orientations. Only the training loader reads such a split
(``load_split(..., with_sizes=True)``); the crop (:func:`robustarch.data.augment.
random_resized_crop_flip`) samples within the true frame and never sees the padding.
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


def frame_size_problem(x: torch.Tensor, sizes: torch.Tensor) -> str | None:
    """What is wrong with ``sizes`` as the true frame sizes of ``x`` (None: nothing): one
    positive (height, width) per image, each fitting the canvas in its stored orientation."""
    if sizes.dtype != torch.int64 or sizes.shape != (len(x), 2):
        return (f"sizes must be int64 of shape ({len(x)}, 2), got {sizes.dtype} "
                f"{tuple(sizes.shape)}")
    h, w = sizes.unbind(1)
    rows, cols = torch.minimum(h, w), torch.maximum(h, w)  # landscape storage
    if len(sizes) and (bool((rows < 1).any()) or bool((rows > x.shape[2]).any())
                       or bool((cols > x.shape[3]).any())):
        return f"some frame sizes are not within the {x.shape[2]}x{x.shape[3]} canvas"
    return None


def save_split(path: str | Path, x: torch.Tensor, y: torch.Tensor,
               sizes: torch.Tensor | None = None) -> None:
    """Atomically write one split (so a killed job leaves no half-written cache); ``sizes``:
    the true (height, width) of each frame of a full-frame split (module docstring)."""
    data = {"x": x.contiguous(), "y": y.contiguous()}
    if sizes is not None:
        problem = frame_size_problem(x, sizes)
        if problem:
            raise ValueError(f"cannot save {path}: {problem}")
        data["sizes"] = sizes.contiguous()
    save_torch(data, path)


def load_split(path: str | Path, device: str | torch.device = "cpu", *,
               with_sizes: bool = False) -> tuple[torch.Tensor, ...]:
    """Load a split written by :func:`save_split` (uint8 images, int64 labels): ``(x, y)``, or
    with ``with_sizes`` ``(x, y, sizes)``, ``sizes`` None for a split of fixed-size images.

    A full-frame split holds padded canvases, not model inputs: without ``with_sizes`` it is
    refused rather than handed out as images."""
    try:
        data = torch.load(path, map_location=device, weights_only=True)
        x, y = data["x"], data["y"]
        sizes = data.get("sizes")  # the file's optional entry, not a config key
    except Exception as exc:
        raise ValueError(
            f"{path} is not a readable dataset split ({describe_error(exc)}); delete it "
            "and run the workflow again to rebuild it."
        ) from exc
    if x.dtype != torch.uint8 or x.ndim != 4 or y.dtype != torch.int64 or len(x) != len(y):
        raise ValueError(f"{path}: unexpected split format; delete it and run again")
    if sizes is not None:
        problem = frame_size_problem(x, sizes)
        if problem:
            raise ValueError(f"{path}: {problem}; delete it and run again")
        if not with_sizes:
            raise ValueError(
                f"{path} holds full frames of different sizes on a padded canvas (a training "
                "split for random resized crops), not fixed-size images; read it with "
                "load_split(..., with_sizes=True) and crop it as the training loader does")
    return (x, y, sizes) if with_sizes else (x, y)


__all__ = [
    "DATASETS",
    "DatasetSpec",
    "UnknownDatasetError",
    "dataset_spec",
    "decode_dataset",
    "download_archive",
    "frame_size_problem",
    "load_split",
    "save_split",
]
