"""DenseNet-BC for CIFAR (Huang et al. 2017): three dense blocks of bottleneck layers.

The paper does not give its DenseNet configuration; 1.12M parameters is matched by the standard
CIFAR DenseNet-BC recipe (growth k=12, 4k bottleneck, compression 0.5, 2k stem channels) at
depth 124 (20 layers per block). See docs/architectures.md.

Regularization: ``dropout`` on the pooled features before the classifier (the CNN rule; not
DenseNet's own dropout after every layer). Dense layers concatenate rather than add, so there
is no residual branch and no drop-path: a non-zero ``drop_path`` is refused.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_family
from ._cnn_blocks import PooledCNN, cifar_stem


class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (4k) -> BN-ReLU-conv3x3 (k); the k new maps are concatenated to the input."""

    def __init__(self, c_in: int, growth: int, bottleneck: int = 4):
        super().__init__()
        mid = bottleneck * growth
        self.body = nn.Sequential(
            nn.BatchNorm2d(c_in),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_in, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, growth, 3, 1, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], dim=1)


def transition(c_in: int, c_out: int) -> nn.Sequential:
    """BN-ReLU-conv1x1 (compression) then 2x2 average pooling."""
    return nn.Sequential(
        nn.BatchNorm2d(c_in),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        nn.AvgPool2d(2, 2),
    )


class DenseNet(PooledCNN):
    def __init__(
        self,
        blocks: list[int],
        growth: int,
        num_classes: int,
        image_size: int,
        compression: float = 0.5,
        dropout: float = 0.0,
    ):
        super().__init__()
        c = 2 * growth
        # Pre-activation layers follow, so the stem is a bare conv.
        layers: list[nn.Module] = [cifar_stem(c, image_size, preact=True)]
        for i, n in enumerate(blocks):
            for _ in range(n):
                layers.append(DenseLayer(c, growth))
                c += growth
            if i < len(blocks) - 1:
                c_out = int(c * compression)
                layers.append(transition(c, c_out))
                c = c_out
        layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self._add_head(c, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._classify(self.features(x))


def build_densenet(num_classes: int, image_size: int, blocks: list[int], growth: int, *,
                   dropout: float) -> nn.Module:
    return DenseNet(blocks, growth, num_classes, image_size, dropout=dropout)


register_family(
    "densenet",
    category="CNN",
    build=build_densenet,
    sizes={
        "paper": dict(blocks=[20, 20, 20], growth=12),  # DenseNet-BC-124
        "tiny": dict(blocks=[2, 2, 2], growth=4),  # DenseNet-BC-16, k=4
    },
    paper_params_m=1.12,
    description="DenseNet-BC-124 (k=12, compression 0.5) for CIFAR",
    no_regularization={"drop_path": "DenseNet's layers concatenate, no residual branch to drop"},
)
