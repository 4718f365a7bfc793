"""ResNet-50 with the CIFAR stem (3x3 conv, stride 1, no max-pool), as in the authors' code."""

from __future__ import annotations

from torch import nn

from ..registry import register_family
from ._cnn_blocks import Bottleneck, ResNetBody


def build_resnet(
    num_classes: int, image_size: int, depths: list[int], planes: list[int], stem_width: int,
    *, dropout: float, drop_path: float
) -> nn.Module:
    return ResNetBody(Bottleneck, depths, planes, num_classes, image_size, stem_width,
                      dropout=dropout, drop_path=drop_path)


register_family(
    "resnet",
    category="CNN",
    build=build_resnet,
    sizes={
        "paper": dict(depths=[3, 4, 6, 3], planes=[64, 128, 256, 512], stem_width=64),
        # Same four bottleneck stages, one block each, ~1/16 the width.
        "tiny": dict(depths=[1, 1, 1, 1], planes=[4, 8, 16, 32], stem_width=16),
    },
    paper_params_m=23.52,
    description="ResNet-50 (bottleneck [3,4,6,3]) with CIFAR stem",
)
