"""CIFAR-100 (Krizhevsky 2009), from the official python-pickle archive, with its 100 fine
labels. Not in the paper: its protocol here is our choice, CIFAR-10's (augmentation, attack
budgets), with CIFAR-100's own normalization."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..registry import ArchiveSpec, register_dataset
from ._cifar import read_cifar_archive

# md5: torchvision's CIFAR100.tgz_md5 (torchvision/datasets/cifar.py).
ARCHIVE = ArchiveSpec("cifar-100-python.tar.gz",
                      "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                      "eb9058c3a382ffc7106e4002c42a8d85")
# Zenodo record 3555552 (v1), CIFAR-10-C's layout: CIFAR-100-C/{corruption}.npy, 50000 x 32 x
# 32 x 3 uint8 (the 10000 test images at severity 1, then 2, ..., 5), CIFAR-100-C/labels.npy.
# md5 as the record lists it (also torch-uncertainty's CIFAR100C.tgz_md5).
CORRUPTIONS = ArchiveSpec("CIFAR-100-C.tar",
                          "https://zenodo.org/records/3555552/files/CIFAR-100-C.tar?download=1",
                          "11f0ed0f1191edbf9fa23466ae6021d3")
NUM_CLASSES = 100


@register_dataset(
    "cifar100", display_name="CIFAR-100", archive=ARCHIVE, train_samples=50000,
    test_samples=10000, image_size=32, num_classes=NUM_CLASSES,
    # The training split's per-channel statistics, as commonly used (CIFAR100_TRAIN_MEAN/STD
    # of weiaicunzai/pytorch-cifar100), to 4 digits.
    mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762),
    crop="crop_flip", autoaugment="cifar10",  # CIFAR-10's (our choice)
    budgets={"linf": "8/255", "l2": 1.5, "l1": 40},  # CIFAR-10's (our choice)
    corruption_archive=CORRUPTIONS, job_mem_mb=12000, job_cpus=4,  # as large as CIFAR-10
)
def load_cifar100_archive(archive: str | Path, md5: str = ARCHIVE.md5) -> dict[str, Any]:
    """Decode ``cifar-100-python/{train,test}`` into uint8 (N, 3, 32, 32) images and int64
    fine labels (0..99)."""
    return read_cifar_archive(archive, md5, title="CIFAR-100", train=["train"], test=["test"],
                              label_key=b"fine_labels", num_classes=NUM_CLASSES)
