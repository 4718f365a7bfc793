"""Datasets: download, verify, decode once into uint8 tensors, and load on the device.

Each dataset is prepared into ``{data_dir}/{name}/train.pt`` and ``test.pt``: dictionaries of
a uint8 image tensor ``x`` (N, 3, H, W) and int64 labels ``y``. Training keeps a whole split
on its device (see :mod:`robustarch.data.loader`).

Importing this package does not import torch: :mod:`robustarch.data.sources` (names, archives,
checksums) and :mod:`robustarch.data.download` are plain Python, so planning the workflow reads
them without the seconds torch costs. The decoders and split files
(:mod:`robustarch.data.splits`) load on first use of one of their names.
"""

from __future__ import annotations

import importlib
from typing import Any

from .download import ChecksumError, DownloadError, UnsafeArchiveError
from .sources import ARCHIVES, CORRUPTIONS, DATASET_ARCHIVES, SEVERITIES, ArchiveSpec

_FROM_DATASETS = ("DATASETS", "DatasetSpec", "UnknownDatasetError", "dataset_spec",
                  "decode_dataset", "download_archive", "load_split", "save_split")


def __getattr__(name: str) -> Any:
    if name in _FROM_DATASETS:
        return getattr(importlib.import_module(f"{__name__}.splits"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ARCHIVES",
    "CORRUPTIONS",
    "DATASET_ARCHIVES",
    "SEVERITIES",
    "ArchiveSpec",
    "ChecksumError",
    "DownloadError",
    "UnsafeArchiveError",
    *_FROM_DATASETS,
]
