"""ImageNette (imagenette2-320, fast.ai): ten easy ImageNet classes, the paper's second
dataset, decoded once into uint8 tensors.

Training images are stored as **full frames**: resized (antialiased) so the short side is 256,
the long side capped at 512 (the few wider frames are scaled to fit whole, their short side then
below 256), and kept uncropped, so that training's ``RandomResizedCrop(224)`` samples its box
over the whole frame, as the authors' transform does on the full image. They sit at the top
left of one 256×W canvas (W: the longest frame, at most 512), portrait frames transposed, with
their true sizes in the split file (:mod:`robustarch.data.splits`). Short side 256 rather than
the archive's 320: it is the authors' test resolution (``Resize(256)``), keeps the crop's
unantialiased downscaling mild (at most 256/224 on the short side) and the split small enough
to live on the GPU: 9,469 × 3 × 256 × 512 bytes ≈ 3.7 GB at most (a 320 short side: 5.8 GB).

Test images are resized to 256 and centre-cropped to 224, the authors' test transform (0.6 GB).
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

from ..download import check_members, verify_md5
from ..registry import ArchiveSpec, register_dataset

ARCHIVE = ArchiveSpec("imagenette2-320.tgz",
                      "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-320.tgz",
                      "3df6f0d01a2c9592104656642f5e78a3")
NUM_CLASSES = 10
TRAIN_SHORT, TRAIN_LONG_MAX = 256, 512
TEST_RESIZE, TEST_CROP = 256, 224
EXTENSIONS = (".jpeg", ".jpg", ".png")


def _decode_rgb(data: bytes) -> Any:
    # Imported here: torchvision costs every job a second, and only this one-off decode needs it.
    import numpy as np
    import torch
    from PIL import Image

    with Image.open(io.BytesIO(data)) as pil:
        # A few ImageNette files are greyscale or CMYK: decode everything to RGB.
        return torch.from_numpy(np.array(pil.convert("RGB"))).permute(2, 0, 1)


def _decode_test(data: bytes) -> Any:
    """The authors' test transform: ``Resize(256)``, ``CenterCrop(224)``."""
    import torchvision.transforms.v2.functional as TF

    image = TF.resize(_decode_rgb(data), [TEST_RESIZE], antialias=True)
    return TF.center_crop(image, [TEST_CROP, TEST_CROP])


def _decode_frame(data: bytes) -> tuple[Any, tuple[int, int]]:
    """The whole training frame, short side 256 (long side at most 512), landscape: returns the
    stored (C, rows, cols) image, transposed if the frame is portrait, and its true (h, w)."""
    import torchvision.transforms.v2.functional as TF

    image = TF.resize(_decode_rgb(data), [TRAIN_SHORT], max_size=TRAIN_LONG_MAX, antialias=True)
    h, w = image.shape[1:]
    return (image.transpose(1, 2) if h > w else image), (h, w)


def pad_frames(frames: list[Any]) -> Any:
    """Stack (C, rows, cols) frames of different shapes at the top left of one zero canvas."""
    import torch

    rows = max(f.shape[1] for f in frames)
    cols = max(f.shape[2] for f in frames)
    canvas = torch.zeros(len(frames), 3, rows, cols, dtype=torch.uint8)
    for i, frame in enumerate(frames):
        canvas[i, :, :frame.shape[1], :frame.shape[2]] = frame
    return canvas


@register_dataset(
    "imagenette", display_name="ImageNette", archive=ARCHIVE, train_samples=9469,
    test_samples=3925, image_size=TEST_CROP, num_classes=NUM_CLASSES,
    mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),  # ImageNet statistics
    crop="resized_crop", autoaugment="imagenet",  # the authors': no flip
    budgets={"linf": "8/255", "l2": 8.0, "l1": 1600},  # the paper's
    # No published ImageNette-C: its corruptions are generated from the test split.
    # Host memory of a GPU job: the 3.7 GB training canvas (the decode job briefly holds it
    # twice, frames and canvas) and the 0.6 GB test split, plus torch/CUDA.
    corruption_archive=None, job_mem_mb=24000, job_cpus=8,
)
def load_imagenette_archive(archive: str | Path, md5: str = ARCHIVE.md5) -> dict[str, Any]:
    """Decode ``imagenette2-320.tgz`` (``<root>/{train,val}/<wnid>/<image>``): the training
    frames padded, with their true sizes in ``sizes_train``."""
    import torch

    verify_md5(archive, md5)
    images: dict[str, list[Any]] = {"train": [], "val": []}
    sizes: list[tuple[int, int]] = []
    wnids: dict[str, list[str]] = {"train": [], "val": []}
    with tarfile.open(archive, "r:gz") as tar:
        # Members come in archive order, so each read only seeks forward in the gzip stream.
        for member in check_members(tar):
            parts = PurePosixPath(member.name).parts
            if not member.isfile() or len(parts) < 4 or parts[-3] not in images:
                continue
            if not parts[-1].lower().endswith(EXTENSIONS):
                continue
            split, wnid = parts[-3], parts[-2]
            with tar.extractfile(member) as fh:
                data = fh.read()
            if split == "train":
                frame, size = _decode_frame(data)
                images[split].append(frame)
                sizes.append(size)
            else:
                images[split].append(_decode_test(data))
            wnids[split].append(wnid)
    classes = sorted(set(wnids["train"]))
    if len(classes) != NUM_CLASSES or set(wnids["val"]) != set(classes):
        raise ValueError(f"{archive}: expected {NUM_CLASSES} classes in train and val, "
                         f"found {classes}")
    index = {wnid: i for i, wnid in enumerate(classes)}

    def labels(split: str) -> Any:
        return torch.tensor([index[w] for w in wnids[split]], dtype=torch.int64)

    x_train = pad_frames(images["train"])
    images["train"].clear()  # the frames are in the canvas now
    return {"x_train": x_train, "y_train": labels("train"),
            "sizes_train": torch.tensor(sizes, dtype=torch.int64),
            "x_test": torch.stack(images["val"]), "y_test": labels("val")}
