"""CIFAR-10, from the official python-pickle archive.

The archive's md5 is verified before anything in it is unpickled (pickle runs code), and its
member names are checked before reading; nothing is extracted to disk.
"""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from .download import check_members, verify_md5
from .sources import CIFAR10

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCHES = ["test_batch"]


def load_cifar10_archive(archive: str | Path, md5: str = CIFAR10.md5) -> dict[str, torch.Tensor]:
    """Decode the archive into uint8 (N, 3, 32, 32) images and int64 labels."""
    verify_md5(archive, md5)
    with tarfile.open(archive, "r:gz") as tar:
        members = {Path(m.name).name: m for m in check_members(tar) if m.isfile()}
        missing = [b for b in TRAIN_BATCHES + TEST_BATCHES if b not in members]
        if missing:
            raise ValueError(f"{archive}: not a CIFAR-10 python archive (missing {missing})")

        def read(batches: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
            xs, ys = [], []
            for name in batches:
                with tar.extractfile(members[name]) as fh:
                    batch = pickle.load(fh, encoding="bytes")
                xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                ys.append(np.asarray(batch[b"labels"], dtype=np.int64))
            return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

        x_train, y_train = read(TRAIN_BATCHES)
        x_test, y_test = read(TEST_BATCHES)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
