"""CIFAR-10 (Krizhevsky 2009), from the official python-pickle archive: the paper's main
dataset, with its protocol (the authors' normalization and augmentation, the paper's budgets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..registry import ArchiveSpec, register_dataset
from ._cifar import read_cifar_archive

ARCHIVE = ArchiveSpec("cifar-10-python.tar.gz",
                      "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                      "c58f30108f718f92721af3b95e74349a")
# Zenodo record 2535967 (v1): CIFAR-10-C/{corruption}.npy, 50000 x 32 x 32 x 3 uint8 with
# the 10000 test images at severity 1, then 2, ..., 5; CIFAR-10-C/labels.npy, 50000 labels.
CORRUPTIONS = ArchiveSpec("CIFAR-10-C.tar",
                          "https://zenodo.org/records/2535967/files/CIFAR-10-C.tar?download=1",
                          "56bf5dcef84df0e2308c6dcbcbbd8499")
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCHES = ["test_batch"]


@register_dataset(
    "cifar10", display_name="CIFAR-10", archive=ARCHIVE, train_samples=50000,
    test_samples=10000, image_size=32, num_classes=10,
    mean=(0.4914, 0.4822, 0.4465), std=(0.2023, 0.1994, 0.2010),  # the authors' code
    crop="crop_flip", autoaugment="cifar10",
    budgets={"linf": "8/255", "l2": 1.5, "l1": 40},  # the paper's
    corruption_archive=CORRUPTIONS, job_mem_mb=12000, job_cpus=4,
)
def load_cifar10_archive(archive: str | Path, md5: str = ARCHIVE.md5) -> dict[str, Any]:
    """Decode the archive into uint8 (N, 3, 32, 32) images and int64 labels."""
    return read_cifar_archive(archive, md5, title="CIFAR-10", train=TRAIN_BATCHES,
                              test=TEST_BATCHES, label_key=b"labels", num_classes=10)
