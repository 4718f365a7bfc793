"""Building blocks shared by the CIFAR CNN families (ResNet, PreActResNet, BoTNet; the stem also
serves ResNeXt, WRN and DenseNet, the pooled classifier head ResNeXt, WRN, DenseNet and VGG).

The stem is the usual CIFAR one (stride-1 conv, no max-pool) at 32 px; at larger inputs a
stride-2 conv + max-pool (the ImageNet stem's downsampling) keeps the feature maps, and so the
compute, in a sane range.

Regularization (the CNN rule, docs/architectures.md): ``drop_path`` drops each residual block's
branch (before the shortcut is added), rates linear over the blocks; ``dropout`` acts on the
pooled features before the classifier.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ._regularization import DropPath, block_rates


def conv_bn(c_in: int, c_out: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """conv (no bias: BN follows) + BN."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    )


def cifar_stem(
    c_out: int, image_size: int, preact: bool = False, kernel: int = 3, bias: bool = False
) -> nn.Sequential:
    """``kernel`` x ``kernel`` stride-1 conv at CIFAR resolution; /4 downsampling at >= 64 px.

    Pre-activation nets end the stem with the bare conv (their first block applies BN-ReLU).
    """
    if image_size >= 64:
        # An ImageNet-style stride-2 conv + max-pool keeps 224 px feature maps affordable.
        layers: list[nn.Module] = [nn.Conv2d(3, c_out, 3, 2, 1, bias=bias)]
        if not preact:
            layers += [nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        layers.append(nn.MaxPool2d(3, 2, 1))
        return nn.Sequential(*layers)
    layers = [nn.Conv2d(3, c_out, kernel, 1, kernel // 2, bias=bias)]
    if not preact:
        layers += [nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def stem_reduction(image_size: int) -> int:
    """Spatial downsampling factor of ``cifar_stem`` at this input size."""
    return 4 if image_size >= 64 else 1


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck: 1x1 reduce, 3x3 (stride here), 1x1 expand x4, post-activation.

    ``mixer`` optionally replaces the 3x3 conv (BoTNet puts self-attention there); it maps
    (width, stride) to a module.
    """

    expansion = 4

    def __init__(
        self,
        c_in: int,
        planes: int,
        stride: int = 1,
        mixer: Callable[[int, int], nn.Module] | None = None,
        drop_path: float = 0.0,
    ):
        super().__init__()
        c_out = planes * self.expansion
        self.conv1 = conv_bn(c_in, planes, 1)
        middle = (
            mixer(planes, stride)
            if mixer is not None
            else nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        )
        self.conv2 = nn.Sequential(middle, nn.BatchNorm2d(planes))
        self.conv3 = conv_bn(planes, c_out, 1)
        self.act = nn.ReLU(inplace=True)
        self.shortcut = (
            conv_bn(c_in, c_out, 1, stride) if stride != 1 or c_in != c_out else nn.Identity()
        )
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.conv1(x))
        out = self.act(self.conv2(out))
        out = self.drop_path(self.conv3(out))
        return self.act(out + self.shortcut(x))


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck (He et al. 2016, "Identity mappings"): BN-ReLU before convs.

    The projection shortcut branches off after the first BN-ReLU, as in the reference code.
    """

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1, mixer=None,
                 drop_path: float = 0.0):
        super().__init__()
        c_out = planes * self.expansion
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, c_out, 1, bias=False)
        self.act = nn.ReLU(inplace=False)  # the pre-activated input also feeds the shortcut
        self.shortcut = (
            nn.Conv2d(c_in, c_out, 1, stride, bias=False) if stride != 1 or c_in != c_out else None
        )
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.act(self.bn2(out)))
        out = self.conv3(self.act(self.bn3(out)))
        return self.drop_path(out) + shortcut


# ResNet-50's stage layout (bottlenecks [3, 4, 6, 3], widths 64-512 expanded x4, a 64-channel
# stem) and its tiny stand-in (the same four stages, one block each, ~1/16 the width): the
# sizes of ResNet, PreActResNet and BoTNet.
RESNET50 = {
    "paper": dict(depths=[3, 4, 6, 3], planes=[64, 128, 256, 512], stem_width=64),
    "tiny": dict(depths=[1, 1, 1, 1], planes=[4, 8, 16, 32], stem_width=16),
}


class PooledCNN(nn.Module):
    """Global average pool → dropout → ``fc`` on the last feature map: the head of the CIFAR
    CNNs. Subclasses build their layers, call :meth:`_add_head` last and end their forward with
    :meth:`_classify`; the forward given here is the ResNet family's, ``stem`` → ``stages``."""

    def _add_head(self, channels: int, num_classes: int, dropout: float = 0.0) -> None:
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        self.head_drop = nn.Dropout(dropout)

    def _classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head_drop(torch.flatten(self.pool(features), 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._classify(self.stages(self.stem(x)))


class ResNetBody(PooledCNN):
    """Stem, four (or however many) stages of bottlenecks, global pool, linear classifier.

    ``mixers`` gives, per stage, an optional replacement for the 3x3 conv (BoTNet). Pre-
    activation nets get no final BN-ReLU before pooling: that is the reference CIFAR
    PreActResNet (kuangliu/pytorch-cifar) whose parameter count the paper reports.
    """

    def __init__(
        self,
        block: type[nn.Module],
        depths: Sequence[int],
        planes: Sequence[int],
        num_classes: int,
        image_size: int,
        stem_width: int = 64,
        mixers: Sequence[Callable[[int, int], nn.Module] | None] | None = None,
        preact: bool = False,
        dropout: float = 0.0,
        drop_path: float = 0.0,
    ):
        super().__init__()
        mixers = mixers or [None] * len(depths)
        self.stem = cifar_stem(stem_width, image_size, preact=preact)
        stages = []
        c_in = stem_width
        rates = iter(block_rates(drop_path, sum(depths)))
        for i, (depth, width, mixer) in enumerate(zip(depths, planes, mixers, strict=True)):
            blocks = []
            for j in range(depth):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(block(c_in, width, stride, mixer=mixer, drop_path=next(rates)))
                c_in = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self._add_head(c_in, num_classes, dropout)


def resnet_builder(block: type[nn.Module], preact: bool = False) -> Callable[..., nn.Module]:
    """The family builder of a :class:`ResNetBody` of ``block`` bottlenecks (ResNet,
    PreActResNet): ``build(num_classes, image_size, depths, planes, stem_width, dropout=,
    drop_path=)``, a scale of :data:`RESNET50`."""

    def build(num_classes: int, image_size: int, depths: list[int], planes: list[int],
              stem_width: int, *, dropout: float, drop_path: float) -> nn.Module:
        return ResNetBody(block, depths, planes, num_classes, image_size, stem_width,
                          preact=preact, dropout=dropout, drop_path=drop_path)

    build.__name__ = build.__qualname__ = f"resnet_builder({block.__name__})"  # for errors
    return build
