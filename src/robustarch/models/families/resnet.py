"""ResNet-50 with the CIFAR stem (3x3 conv, stride 1, no max-pool), as in the authors' code."""

from __future__ import annotations

from torch import nn

from ..registry import register_model
from ._cnn_blocks import Bottleneck, ResNetBody


@register_model(
    "resnet",
    category="CNN",
    paper_params_m=23.52,
    description="ResNet-50 (bottleneck [3,4,6,3]) with CIFAR stem",
)
def resnet(num_classes: int, image_size: int, scale: str) -> nn.Module:
    """ResNet-50 (bottleneck [3,4,6,3]) with CIFAR stem."""
    if scale == "tiny":
        # Same four bottleneck stages, one block each, ~1/16 the width.
        return ResNetBody(Bottleneck, [1, 1, 1, 1], [4, 8, 16, 32], num_classes, image_size, 16)
    return ResNetBody(Bottleneck, [3, 4, 6, 3], [64, 128, 256, 512], num_classes, image_size, 64)
