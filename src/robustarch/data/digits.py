"""scikit-learn's bundled 8x8 handwritten digits as a 32x32x3 uint8 dataset.

Real images that ship with scikit-learn, so the demo and the tests run offline. The split is a
fixed, seeded, stratified 80/20 split: the same on every machine.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SPLIT_SEED = 0
TEST_FRACTION = 0.2
IMAGE_SIZE = 32
NUM_CLASSES = 10


def load_digits_tensors() -> dict[str, torch.Tensor]:
    """``{"x_train", "y_train", "x_test", "y_test"}``; images uint8 (N, 3, 32, 32), labels int64."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)  # (N,1,8,8)
    images = F.interpolate(images, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear",
                           align_corners=False)
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    idx_train, idx_test = train_test_split(
        np.arange(len(labels)), test_size=TEST_FRACTION, random_state=SPLIT_SEED,
        stratify=bunch.target,
    )
    idx_train, idx_test = torch.from_numpy(np.sort(idx_train)), torch.from_numpy(np.sort(idx_test))
    return {
        "x_train": images[idx_train].contiguous(),
        "y_train": labels[idx_train].contiguous(),
        "x_test": images[idx_test].contiguous(),
        "y_test": labels[idx_test].contiguous(),
    }
