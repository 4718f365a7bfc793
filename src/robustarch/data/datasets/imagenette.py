"""ImageNette (imagenette2-320, fast.ai): ten easy ImageNet classes, the paper's second
dataset, decoded once into uint8 tensors.

Stored sizes: training images are resized so the short side is 256 and centre-cropped to
256×256, from which training draws random-resized 224 crops on the device; test images are
resized to 256 and centre-cropped to 224, the authors' test transform. Keeping fixed-size
tensors is what lets the whole split live on the GPU (about 1.9 GB + 0.6 GB).
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
TRAIN_SIZE = 256
TEST_RESIZE, TEST_CROP = 256, 224
EXTENSIONS = (".jpeg", ".jpg", ".png")


def _decode(data: bytes, resize: int, crop: int) -> Any:
    # Imported here: torchvision costs every job a second, and only this one-off decode needs it.
    import numpy as np
    import torch
    import torchvision.transforms.v2.functional as TF
    from PIL import Image

    with Image.open(io.BytesIO(data)) as pil:
        # A few ImageNette files are greyscale or CMYK: decode everything to RGB.
        image = torch.from_numpy(np.asarray(pil.convert("RGB"))).permute(2, 0, 1)
    image = TF.resize(image, [resize], antialias=True)
    return TF.center_crop(image, [crop, crop])


@register_dataset(
    "imagenette", display_name="ImageNette", archive=ARCHIVE, train_samples=9469,
    test_samples=3925, image_size=TEST_CROP, num_classes=NUM_CLASSES,
    mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),  # ImageNet statistics
    crop="resized_crop", autoaugment="imagenet",  # the authors': no flip
    budgets={"linf": "8/255", "l2": 8.0, "l1": 1600},  # the paper's
    # No published ImageNette-C: its corruptions are generated from the test split.
    corruption_archive=None, job_mem_mb=24000, job_cpus=8,
)
def load_imagenette_archive(archive: str | Path, md5: str = ARCHIVE.md5) -> dict[str, Any]:
    """Decode ``imagenette2-320.tgz`` (``<root>/{train,val}/<wnid>/<image>``)."""
    import torch

    verify_md5(archive, md5)
    images: dict[str, list[Any]] = {"train": [], "val": []}
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
                images[split].append(_decode(data, TRAIN_SIZE, TRAIN_SIZE))
            else:
                images[split].append(_decode(data, TEST_RESIZE, TEST_CROP))
            wnids[split].append(wnid)
    classes = sorted(set(wnids["train"]))
    if len(classes) != NUM_CLASSES or set(wnids["val"]) != set(classes):
        raise ValueError(f"{archive}: expected {NUM_CLASSES} classes in train and val, "
                         f"found {classes}")
    index = {wnid: i for i, wnid in enumerate(classes)}

    def stack(split: str) -> tuple[Any, Any]:
        return (torch.stack(images[split]),
                torch.tensor([index[w] for w in wnids[split]], dtype=torch.int64))

    x_train, y_train = stack("train")
    x_test, y_test = stack("val")
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
