"""Common corruptions (Hendrycks & Dietterich 2019): published "-C" sets, and generated ones.

A dataset whose module names a published corrupted test set (CIFAR-10-C, CIFAR-100-C: its
``corruption_archive``) has it decoded from that archive after its md5 check. The others
(ImageNette-C, digits-C) are generated from their prepared test split with
``imagecorruptions-imaug``, deterministically: image ``i`` under (corruption, severity) is
corrupted with NumPy's global RNG seeded from ``(seed, corruption, severity, i)``, so the result
does not depend on batching, order or what ran before.

One file per dataset and corruption, ``{data_dir}/{dataset}-c/{corruption}.pt``, written
atomically: a dictionary of

* ``x``: uint8 ``(S, N, 3, H, W)``: the N test images under each of the S severities,
* ``y``: int64 ``(N,)`` labels (the same for every severity),
* ``severities``: int64 ``(S,)``, the severity of each leading index of ``x``,
* ``corruption``: the corruption's name.

A file decoded from a published set holds the whole set (N = 10000 for CIFAR-10-C); a
generated file holds the first ``num_samples`` test images when that is given (the
evaluation's ``num_samples``), else the whole test split.
"""

from __future__ import annotations

import inspect
import io
import tarfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import save_torch
from ..errors import describe_error
from .download import check_members, verify_md5
from .registry import dataset_spec
from .sources import CORRUPTIONS, SEVERITIES

MIN_SIZE = 32  # imagecorruptions refuses smaller images


def _check_name(corruption: str) -> None:
    if corruption not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {corruption!r}; valid: {', '.join(CORRUPTIONS)}")


def _check_severities(severities: Iterable[int]) -> list[int]:
    severities = [int(s) for s in severities]
    bad = [s for s in severities if s not in SEVERITIES]
    if bad or not severities or len(set(severities)) != len(severities):
        raise ValueError(f"severities must be distinct values in 1..5, got {severities}")
    return severities


def image_seed(seed: int, corruption: str, severity: int, index: int) -> int:
    """The 32-bit seed of one image (crc32 of the name: stable across runs and machines)."""
    key = [int(seed), zlib.crc32(corruption.encode()), int(severity), int(index)]
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def _fit(image: Any, height: int, width: int) -> np.ndarray:
    """``image`` as uint8 (height, width, 3): some corruptions return float arrays, grey
    images or, for some sizes, another size than their input."""
    from PIL import Image

    out = np.asarray(image)
    if out.dtype != np.uint8:
        out = np.clip(np.rint(out.astype(np.float64)), 0, 255).astype(np.uint8)
    if out.ndim == 2:
        out = np.repeat(out[:, :, None], 3, axis=2)
    if out.shape[:2] != (height, width):
        out = np.asarray(Image.fromarray(out).resize((width, height), Image.BILINEAR))
    return out


def corrupt_images(x: torch.Tensor, corruption: str, severity: int, seed: int, *,
                   start: int = 0) -> torch.Tensor:
    """Corrupt uint8 ``(N, 3, H, W)`` images; image ``k`` is test image ``start + k``.

    Deterministic for ``seed``; NumPy's global RNG state is restored afterwards.
    """
    import imagecorruptions
    from imagecorruptions import corruption_dict

    _check_name(corruption)
    _check_severities([severity])
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected uint8 (N, 3, H, W) images, got {x.dtype} {tuple(x.shape)}")
    height, width = x.shape[2:]
    if height < MIN_SIZE or width < MIN_SIZE:
        raise ValueError(f"images must be at least {MIN_SIZE}x{MIN_SIZE}, got {height}x{width}")
    # glass_blur and impulse_noise draw from their own generators unless given a seed.
    takes_seed = "seed" in inspect.signature(corruption_dict[corruption]).parameters
    images = x.permute(0, 2, 3, 1).numpy()
    out = np.empty_like(images)
    state = np.random.get_state()
    try:
        for k, image in enumerate(images):
            image_key = image_seed(seed, corruption, severity, start + k)
            np.random.seed(image_key)
            kwargs = {"seed": image_key} if takes_seed else {}
            corrupted = imagecorruptions.corrupt(np.ascontiguousarray(image), severity=severity,
                                                 corruption_name=corruption, **kwargs)
            out[k] = _fit(corrupted, height, width)
    finally:
        np.random.set_state(state)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def generate_corruption(x: torch.Tensor, y: torch.Tensor, corruption: str,
                        severities: Sequence[int] = SEVERITIES, seed: int = 0
                        ) -> dict[str, Any]:
    """The corruption file's contents for test images ``x`` and labels ``y``."""
    severities = _check_severities(severities)
    stacked = torch.stack([corrupt_images(x, corruption, s, seed) for s in severities])
    return {"x": stacked, "y": y.to(torch.int64).contiguous(),
            "severities": torch.tensor(severities, dtype=torch.int64), "corruption": corruption}


def _read_npy(tar: tarfile.TarFile, member: tarfile.TarInfo) -> np.ndarray:
    with tar.extractfile(member) as fh:
        # Through BytesIO: np.load needs a real seekable file; no pickles are ever accepted.
        return np.load(io.BytesIO(fh.read()), allow_pickle=False)


def load_corruption_archive(archive: str | Path, corruption: str,
                            severities: Sequence[int] = SEVERITIES, *, md5: str,
                            title: str = "CIFAR-10-C") -> dict[str, Any]:
    """One corruption of a published set in Hendrycks & Dietterich's layout (CIFAR-10-C,
    CIFAR-100-C: ``{corruption}.npy`` of the test images at severity 1, then 2, ..., 5, and
    ``labels.npy``), md5 checked before anything is read."""
    _check_name(corruption)
    severities = _check_severities(severities)
    verify_md5(archive, md5)
    with tarfile.open(archive, "r:*") as tar:
        members = {Path(m.name).name: m for m in check_members(tar) if m.isfile()}
        wanted = [f"{corruption}.npy", "labels.npy"]
        missing = [name for name in wanted if name not in members]
        if missing:
            raise ValueError(f"{archive}: not a {title} archive (missing {missing})")
        images = _read_npy(tar, members[wanted[0]])
        labels = _read_npy(tar, members[wanted[1]])
    total = len(SEVERITIES)
    if (images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3
            or len(images) % total or labels.shape != (len(images),)):
        raise ValueError(f"{archive}: {corruption}.npy {images.dtype} {images.shape} and "
                         f"labels.npy {labels.shape} are not the {title} layout")
    n = len(images) // total
    images = images.reshape(total, n, *images.shape[1:])
    labels = labels.astype(np.int64).reshape(total, n)
    if not (labels == labels[0]).all():
        raise ValueError(f"{archive}: labels.npy differs between severities")
    chosen = [s - 1 for s in severities]
    x = torch.from_numpy(np.ascontiguousarray(images[chosen].transpose(0, 1, 4, 2, 3)))
    return {"x": x, "y": torch.from_numpy(labels[0].copy()),
            "severities": torch.tensor(severities, dtype=torch.int64), "corruption": corruption}


def save_corruption(path: str | Path, data: dict[str, Any]) -> None:
    """Atomically write a corruption file (a killed job leaves no half-written cache)."""
    save_torch(data, path)


def load_corruption(path: str | Path) -> dict[str, Any]:
    """Read and check a file written by :func:`save_corruption`."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        x, y, severities = data["x"], data["y"], data["severities"]
    except Exception as exc:
        raise ValueError(
            f"{path} is not a readable corruption file ({describe_error(exc)}); delete it "
            "and run the workflow again to rebuild it."
        ) from exc
    if (x.dtype != torch.uint8 or x.ndim != 5 or y.dtype != torch.int64
            or x.shape[:2] != (len(severities), len(y))):
        raise ValueError(f"{path}: unexpected corruption file format; delete it and run again")
    return data


def prepare_corruption(dataset: str, corruption: str, output: str | Path, *,
                       severities: Sequence[int] = SEVERITIES, seed: int = 0,
                       archive: str | Path | None = None, md5: str | None = None,
                       test: tuple[torch.Tensor, torch.Tensor] | None = None,
                       num_samples: int | None = None) -> dict[str, Any]:
    """Write ``{dataset}-c/{corruption}.pt``: decoded from the published archive for a
    dataset whose module names one (``md5`` defaults to its checksum), else generated from the
    ``test`` split (its first ``num_samples`` images when given)."""
    spec = dataset_spec(dataset)
    published = spec.corruption_archive
    if published is not None:
        if archive is None:
            raise ValueError(f"{dataset}: corruptions come from {published.name}; pass it")
        data = load_corruption_archive(archive, corruption, severities,
                                       md5=published.md5 if md5 is None else md5,
                                       title=f"{spec.display_name}-C")
    else:
        if test is None:
            raise ValueError(f"{dataset}: generated corruptions need the test split")
        x, y = test
        if num_samples is not None:
            x, y = x[:num_samples], y[:num_samples]
        data = generate_corruption(x, y, corruption, severities, seed)
    save_corruption(output, data)
    return data
