"""Datasets: registered one module each, downloaded, verified, decoded once into uint8
tensors, and loaded on the device.

Each dataset is one module of :mod:`robustarch.data.datasets`, registered in
:mod:`robustarch.data.registry` with its archive, decoder and facts (sizes, normalization,
augmentation, attack budgets, corrupted test set, cluster resource hints). Each is prepared
into ``{data_dir}/{name}/train.pt`` and ``test.pt``: dictionaries of a uint8 image tensor ``x``
(N, 3, H, W) and int64 labels ``y``. Training keeps a whole split on its device (see
:mod:`robustarch.data.loader`).

Importing this package does not import torch: the registry, the dataset modules' top level,
:mod:`robustarch.data.sources` and :mod:`robustarch.data.download` are plain Python, so
planning the workflow reads them without the seconds torch costs. The split files
(:mod:`robustarch.data.splits`) load on first use of one of their names, and the dataset
modules on the first question asked of the registry.
"""

from __future__ import annotations

import importlib
from typing import Any

from .download import ChecksumError, DownloadError, UnsafeArchiveError
from .registry import (
    ArchiveSpec,
    DatasetSpec,
    UnknownDatasetError,
    dataset_spec,
    list_datasets,
    register_dataset,
    registered_datasets,
)
from .sources import CORRUPTIONS, SEVERITIES

_FROM_SPLITS = ("decode_dataset", "download_archive", "load_split", "save_split")


def __getattr__(name: str) -> Any:
    if name in _FROM_SPLITS:
        return getattr(importlib.import_module(f"{__name__}.splits"), name)
    if name == "DATASETS":  # the registry, name -> DatasetSpec
        return registered_datasets()
    if name == "ARCHIVES":  # every downloadable archive, by file name
        return importlib.import_module(f"{__name__}.sources").ARCHIVES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ARCHIVES",
    "CORRUPTIONS",
    "DATASETS",
    "SEVERITIES",
    "ArchiveSpec",
    "ChecksumError",
    "DatasetSpec",
    "DownloadError",
    "UnknownDatasetError",
    "UnsafeArchiveError",
    "dataset_spec",
    "list_datasets",
    "register_dataset",
    "registered_datasets",
    *_FROM_SPLITS,
]
