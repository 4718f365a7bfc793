"""ResNet-50 with the CIFAR stem (3x3 conv, stride 1, no max-pool), as in the authors' code."""

from __future__ import annotations

from ..registry import register_family
from ._cnn_blocks import RESNET50, Bottleneck, resnet_builder

register_family(
    "resnet",
    category="CNN",
    build=resnet_builder(Bottleneck),
    sizes=RESNET50,
    paper_params_m=23.52,
    description="ResNet-50 (bottleneck [3,4,6,3]) with CIFAR stem",
)
