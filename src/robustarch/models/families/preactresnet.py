"""PreActResNet-50 (pre-activation bottlenecks) with the CIFAR stem."""

from __future__ import annotations

from ..registry import register_family
from ._cnn_blocks import RESNET50, PreActBottleneck, resnet_builder

register_family(
    "preactresnet",
    category="CNN",
    build=resnet_builder(PreActBottleneck, preact=True),
    sizes=RESNET50,
    paper_params_m=23.50,
    description="PreActResNet-50 (pre-activation bottleneck [3,4,6,3]) with CIFAR stem",
)
