"""String-keyed dataset registry, like the architectures' (:mod:`robustarch.models.registry`).

Every dataset is one module of :mod:`robustarch.data.datasets` that registers its decoding
function with :func:`register_dataset`, together with everything else known about the dataset:
where its archive comes from, its sample counts and image size, its normalization and
augmentation defaults, its attack budgets, its published corrupted test set, and what a GPU job
on it asks of a cluster node. The modules are imported (discovered) on the first question asked
of the registry.

No torch here, nor in the dataset modules' top level: planning the workflow reads these facts
on every ``snakemake -n``, and importing torch would cost it seconds.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import UnknownDatasetError, unknown_dataset
from ..settings import parse_budget

__all__ = ["NORMS", "ArchiveSpec", "DatasetSpec", "UnknownDatasetError", "archives",
           "dataset_spec", "list_datasets", "register_dataset", "registered_datasets"]

# The norms an attack budget is given for (the attacks' ``norm``).
NORMS = ("linf", "l2", "l1")
# Dataset names become path parts ("data/{name}/", "data/{name}-c/") and wildcard values.
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_MD5 = re.compile(r"^[0-9a-f]{32}$")

# decode(archive_path, md5) for a downloaded dataset, decode() for a bundled one; returns
# {"x_train", "y_train", "x_test", "y_test"}: uint8 (N, 3, H, W) images and int64 labels.
Decoder = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class ArchiveSpec:
    """A downloadable archive: its file name (under ``{data_dir}/downloads/``), URL and md5."""

    name: str
    url: str
    md5: str

    def __post_init__(self) -> None:
        if "/" in self.name or not _MD5.match(self.md5):
            raise ValueError(f"archive {self.name!r}: needs a plain file name and a 32-digit "
                             f"lowercase hex md5, got md5 {self.md5!r}")


@dataclass(frozen=True)
class DatasetSpec:
    """Everything known about one dataset; :meth:`config_facts` is what the config overrides."""

    name: str
    display_name: str  # as tables print it ("CIFAR-10")
    decode: Decoder
    archive: ArchiveSpec | None  # None: bundled, nothing to download
    train_samples: int
    test_samples: int
    image_size: int
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop: str | None  # the training crop ("crop_flip", "resized_crop", "resized_crop_flip")
    autoaugment: str | None  # AutoAugment policy ("cifar10", "imagenet") or None
    # Attack budget per norm ("8/255" or a number); a norm without one needs the config's
    # attacks.<name>.eps.<dataset>.
    budgets: Mapping[str, float | int | str] = field(hash=False)
    # The published corrupted test set in Hendrycks & Dietterich's layout, downloaded; None:
    # the corruptions are generated from the test split (robustarch.data.corruption_files).
    corruption_archive: ArchiveSpec | None
    # Host memory (MB) and CPUs per GPU job on this dataset (cluster profiles): the host holds
    # one decoded split at a time plus torch/CUDA, as the splits live on the GPU.
    job_mem_mb: int
    job_cpus: int

    def __post_init__(self) -> None:
        problems = []
        if not _NAME.match(self.name):
            problems.append("the name must be lowercase letters, digits and '_'")
        counts = (self.train_samples, self.test_samples, self.job_mem_mb, self.job_cpus)
        if min(counts) < 1:
            problems.append("sample counts, job_mem_mb and job_cpus must be positive")
        if len(self.mean) != 3 or len(self.std) != 3:
            problems.append("mean and std need one value per RGB channel")
        bad_norms = sorted(set(self.budgets) - set(NORMS))
        if bad_norms:
            problems.append(f"budgets for unknown norms {bad_norms} (norms: {', '.join(NORMS)})")
        for budget in self.budgets.values():
            parse_budget(budget)  # a ConfigError naming the value
        if problems:
            raise ValueError(f"dataset {self.name!r}: " + "; ".join(problems))

    def config_facts(self) -> dict[str, Any]:
        """The facts the config's ``datasets.<name>`` section may override, as plain values
        (lists, like the YAML they are merged with)."""
        return {"image_size": self.image_size, "num_classes": self.num_classes,
                "mean": list(self.mean), "std": list(self.std),
                "augment": {"crop": self.crop, "autoaugment": self.autoaugment}}


_REGISTRY: dict[str, DatasetSpec] = {}


def register_dataset(name: str, *, display_name: str, archive: ArchiveSpec | None,
                     train_samples: int, test_samples: int, image_size: int, num_classes: int,
                     mean: tuple[float, float, float], std: tuple[float, float, float],
                     crop: str | None, autoaugment: str | None,
                     budgets: Mapping[str, float | int | str],
                     corruption_archive: ArchiveSpec | None = None, job_mem_mb: int,
                     job_cpus: int) -> Callable[[Decoder], Decoder]:
    """Register the decorated decoding function as dataset ``name`` with its facts."""

    def decorator(decode: Decoder) -> Decoder:
        if name in _REGISTRY:
            raise ValueError(f"dataset {name!r} is registered twice")
        _REGISTRY[name] = DatasetSpec(
            name=name, display_name=display_name, decode=decode, archive=archive,
            train_samples=train_samples, test_samples=test_samples, image_size=image_size,
            num_classes=num_classes, mean=tuple(mean), std=tuple(std), crop=crop,
            autoaugment=autoaugment, budgets=dict(budgets),
            corruption_archive=corruption_archive, job_mem_mb=job_mem_mb, job_cpus=job_cpus,
        )
        return decode

    return decorator


@functools.cache
def _load_datasets() -> None:
    """Import every dataset module (each registers its dataset on import)."""
    from . import datasets  # noqa: F401


def registered_datasets() -> dict[str, DatasetSpec]:
    """The registry itself, name -> spec (read it; add datasets with :func:`register_dataset`)."""
    _load_datasets()
    return _REGISTRY


def list_datasets() -> list[str]:
    """Every registered dataset name, sorted."""
    return sorted(registered_datasets())


def dataset_spec(name: str) -> DatasetSpec:
    try:
        return registered_datasets()[name]
    except KeyError:
        raise unknown_dataset(name, list_datasets()) from None


def archives() -> dict[str, ArchiveSpec]:
    """Every archive the workflow may download (rule ``download_archive``), by file name: each
    dataset's own and its published corrupted test set."""
    found: dict[str, ArchiveSpec] = {}
    for spec in registered_datasets().values():
        for archive in (spec.archive, spec.corruption_archive):
            if archive is None:
                continue
            if found.get(archive.name, archive) != archive:
                raise ValueError(f"two different archives are named {archive.name!r}")
            found[archive.name] = archive
    return found
