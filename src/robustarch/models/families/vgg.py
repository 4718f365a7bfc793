"""VGG-16 for CIFAR: 13 conv3x3-BN-ReLU layers in five pooled stages, one linear classifier.

Regularization: ``dropout`` on the pooled features before the classifier (the CNN rule; VGG's
own dropout sat between its three FC layers, which the CIFAR variant replaces by one). No
residual branch, so no drop-path: a non-zero ``drop_path`` is refused."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_family
from ._cnn_blocks import PooledCNN

# Channel plan per stage; each stage ends with a 2x2 max-pool.
VGG16 = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]
VGG_TINY = [[8], [16], [32], [64], [64]]


class VGG(PooledCNN):
    def __init__(self, plan: list[list[int]], num_classes: int, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for stage in plan:
            for c_out in stage:
                # Conv bias kept, as in the common CIFAR VGG code the paper's count matches.
                layers += [nn.Conv2d(c_in, c_out, 3, 1, 1), nn.BatchNorm2d(c_out), nn.ReLU(True)]
                c_in = c_out
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        # 32 px leaves 1x1 after five pools; the head's adaptive pooling handles larger inputs.
        self._add_head(c_in, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._classify(self.features(x))


def build_vgg(num_classes: int, image_size: int, plan: list[list[int]], *, dropout: float
              ) -> nn.Module:
    # Adaptive pooling makes the network independent of image_size.
    return VGG(plan, num_classes, dropout=dropout)


register_family(
    "vgg",
    category="CNN",
    build=build_vgg,
    sizes={"paper": dict(plan=VGG16), "tiny": dict(plan=VGG_TINY)},
    paper_params_m=14.72,
    description="VGG-16 with BN, CIFAR variant (single 512->classes linear classifier)",
    no_regularization={"drop_path": "VGG has no residual branches to drop"},
)
