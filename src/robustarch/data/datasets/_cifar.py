"""Reading the CIFAR "python version" archives (Krizhevsky 2009): a gzip tar of pickled
dictionaries, each with ``b"data"`` (N x 3072 uint8 rows, channel-major 32x32 planes) and a
label list.

The archive's md5 is verified before anything in it is unpickled (pickle runs code), and its
member names are checked before reading; nothing is extracted to disk.
"""

from __future__ import annotations

import gzip
import tarfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...errors import describe_error
from ..download import check_members, verify_md5

SIZE = 32


def read_cifar_archive(archive: str | Path, md5: str, *, title: str, train: Sequence[str],
                       test: Sequence[str], label_key: bytes, num_classes: int
                       ) -> dict[str, Any]:
    """``{"x_train", "y_train", "x_test", "y_test"}`` from the members named ``train`` and
    ``test`` (file names inside the archive's folder): uint8 (N, 3, 32, 32), int64 labels."""
    verify_md5(archive, md5)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {Path(m.name).name: m for m in check_members(tar) if m.isfile()}
            missing = [name for name in [*train, *test] if name not in members]
            if missing:
                raise ValueError(f"{archive}: not a {title} python archive (missing {missing})")
            x_train, y_train = _read(tar, [members[n] for n in train], label_key, num_classes)
            x_test, y_test = _read(tar, [members[n] for n in test], label_key, num_classes)
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ValueError(f"{archive}: not a readable {title} archive ({describe_error(exc)}); "
                         "delete it and run the workflow again to re-download it") from exc
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _read(tar: tarfile.TarFile, members: list[tarfile.TarInfo], label_key: bytes,
          num_classes: int) -> tuple[Any, Any]:
    import pickle

    import numpy as np
    import torch

    xs, ys = [], []
    for member in members:
        with tar.extractfile(member) as fh:
            try:
                batch = pickle.load(fh, encoding="bytes")
            except pickle.UnpicklingError as exc:
                raise ValueError(f"{tar.name}: {member.name} is not a readable pickle "
                                 f"({describe_error(exc)})") from exc
        if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
            raise ValueError(f"{tar.name}: {member.name} has no {b'data'!r} and {label_key!r}")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[label_key], dtype=np.int64)
        if data.ndim != 2 or data.shape[1] != 3 * SIZE * SIZE or labels.shape != (len(data),):
            raise ValueError(f"{tar.name}: {member.name} holds {data.shape} images and "
                             f"{labels.shape} labels, not N x {3 * SIZE * SIZE} and N")
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{tar.name}: {member.name} has labels outside 0..{num_classes - 1}")
        xs.append(data.reshape(-1, 3, SIZE, SIZE))
        ys.append(labels)
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))
