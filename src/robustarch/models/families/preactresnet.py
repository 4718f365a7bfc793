"""PreActResNet-50 (pre-activation bottlenecks) with the CIFAR stem."""

from __future__ import annotations

from torch import nn

from ..registry import register_family
from ._cnn_blocks import PreActBottleneck, ResNetBody


def build_preactresnet(
    num_classes: int, image_size: int, depths: list[int], planes: list[int], stem_width: int,
    *, dropout: float, drop_path: float
) -> nn.Module:
    return ResNetBody(
        PreActBottleneck, depths, planes, num_classes, image_size, stem_width, preact=True,
        dropout=dropout, drop_path=drop_path,
    )


register_family(
    "preactresnet",
    category="CNN",
    build=build_preactresnet,
    sizes={
        "paper": dict(depths=[3, 4, 6, 3], planes=[64, 128, 256, 512], stem_width=64),
        "tiny": dict(depths=[1, 1, 1, 1], planes=[4, 8, 16, 32], stem_width=16),
    },
    paper_params_m=23.50,
    description="PreActResNet-50 (pre-activation bottleneck [3,4,6,3]) with CIFAR stem",
)
