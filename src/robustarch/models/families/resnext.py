"""ResNeXt-29 for CIFAR (Xie et al. 2017, Sec. 5.3): three stages of three grouped bottlenecks."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_family
from ._cnn_blocks import PooledCNN, cifar_stem, conv_bn
from ._regularization import DropPath, block_rates


class ResNeXtBlock(nn.Module):
    """1x1 -> grouped 3x3 (``cardinality`` groups of ``width``) -> 1x1 expanding x2, post-act."""

    def __init__(self, c_in: int, cardinality: int, width: int, stride: int,
                 drop_path: float = 0.0):
        super().__init__()
        group_width = cardinality * width
        c_out = 2 * group_width
        self.body = nn.Sequential(
            conv_bn(c_in, group_width, 1),
            nn.ReLU(inplace=True),
            conv_bn(group_width, group_width, 3, stride, groups=cardinality),
            nn.ReLU(inplace=True),
            conv_bn(group_width, c_out, 1),
        )
        self.shortcut = (
            conv_bn(c_in, c_out, 1, stride) if stride != 1 or c_in != c_out else nn.Identity()
        )
        self.act = nn.ReLU(inplace=True)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop_path(self.body(x)) + self.shortcut(x))


class ResNeXt(PooledCNN):
    def __init__(
        self,
        depths: list[int],
        cardinality: int,
        width: int,
        num_classes: int,
        image_size: int,
        stem_width: int = 64,
        dropout: float = 0.0,
        drop_path: float = 0.0,
    ):
        super().__init__()
        # 1x1 stem conv at CIFAR resolution, as in the reference code (kuangliu/pytorch-cifar)
        # that reproduces the paper's 9.12M; a 3x3 stem (Xie et al.) would give 9.13M.
        self.stem = cifar_stem(stem_width, image_size, kernel=1)
        stages, c_in = [], stem_width
        rates = iter(block_rates(drop_path, sum(depths)))
        for i, depth in enumerate(depths):
            blocks = []
            for j in range(depth):
                blocks.append(ResNeXtBlock(c_in, cardinality, width, 2 if i > 0 and j == 0 else 1,
                                           drop_path=next(rates)))
                c_in = 2 * cardinality * width
            stages.append(nn.Sequential(*blocks))
            width *= 2  # bottleneck width doubles with every stage, as in the paper
        self.stages = nn.Sequential(*stages)
        self._add_head(c_in, num_classes, dropout)


def build_resnext(num_classes: int, image_size: int, depths: list[int], cardinality: int,
                  width: int, stem_width: int, *, dropout: float, drop_path: float
                  ) -> nn.Module:
    return ResNeXt(depths, cardinality, width, num_classes, image_size, stem_width=stem_width,
                   dropout=dropout, drop_path=drop_path)


register_family(
    "resnext",
    category="CNN",
    build=build_resnext,
    sizes={
        "paper": dict(depths=[3, 3, 3], cardinality=2, width=64, stem_width=64),
        # Still grouped (cardinality 2) bottlenecks in three stages, one block each.
        "tiny": dict(depths=[1, 1, 1], cardinality=2, width=4, stem_width=16),
    },
    paper_params_m=9.12,
    description="ResNeXt-29 2x64d (CIFAR ResNeXt: 3 stages x 3 blocks, cardinality 2, width 64)",
)
