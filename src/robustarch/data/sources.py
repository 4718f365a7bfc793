"""Where each dataset comes from: names, archives, checksums, corruptions. No torch.

Planning the workflow (``snakemake -n``) needs only these facts; keeping them free of torch
saves the seconds its import costs on every plan (see :mod:`robustarch.model_catalog`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArchiveSpec:
    """A downloadable archive: where it comes from and its md5."""

    name: str
    url: str
    md5: str


CIFAR10 = ArchiveSpec("cifar-10-python.tar.gz",
                      "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                      "c58f30108f718f92721af3b95e74349a")
IMAGENETTE = ArchiveSpec("imagenette2-320.tgz",
                         "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-320.tgz",
                         "3df6f0d01a2c9592104656642f5e78a3")
# Zenodo record 2535967 (v1): CIFAR-10-C/{corruption}.npy, 50000 x 32 x 32 x 3 uint8 with
# the 10000 test images at severity 1, then 2, ..., 5; CIFAR-10-C/labels.npy, 50000 labels.
CIFAR10C = ArchiveSpec("CIFAR-10-C.tar",
                       "https://zenodo.org/records/2535967/files/CIFAR-10-C.tar?download=1",
                       "56bf5dcef84df0e2308c6dcbcbbd8499")

# Every dataset the workflow knows, with its archive (None: bundled, nothing to download).
DATASET_ARCHIVES: dict[str, ArchiveSpec | None] = {
    "cifar10": CIFAR10,
    "imagenette": IMAGENETTE,
    "digits": None,
}

# Every archive the workflow may download (rule download_archive), by file name.
ARCHIVES: dict[str, ArchiveSpec] = {spec.name: spec for spec in (CIFAR10, IMAGENETTE, CIFAR10C)}

# The 15 corruptions of the benchmark (the validation corruptions are not used by the paper).
CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
    "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
    "elastic_transform", "pixelate", "jpeg_compression",
)
SEVERITIES = (1, 2, 3, 4, 5)

# Datasets whose corrupted test set is published (downloaded, not generated), by archive.
PUBLISHED = {"cifar10": CIFAR10C.name}
