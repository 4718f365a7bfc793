"""PreActResNet-50 (pre-activation bottlenecks) with the CIFAR stem."""

from __future__ import annotations

from torch import nn

from ..registry import register_model
from ._cnn_blocks import PreActBottleneck, ResNetBody


@register_model(
    "preactresnet",
    category="CNN",
    paper_params_m=23.50,
    description="PreActResNet-50 (pre-activation bottleneck [3,4,6,3]) with CIFAR stem",
)
def preactresnet(num_classes: int, image_size: int, scale: str) -> nn.Module:
    """PreActResNet-50 (pre-activation bottleneck [3,4,6,3]) with CIFAR stem."""
    if scale == "tiny":
        return ResNetBody(
            PreActBottleneck, [1, 1, 1, 1], [4, 8, 16, 32], num_classes, image_size, 16, preact=True
        )
    return ResNetBody(
        PreActBottleneck,
        [3, 4, 6, 3],
        [64, 128, 256, 512],
        num_classes,
        image_size,
        64,
        preact=True,
    )
