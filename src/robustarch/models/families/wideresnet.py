"""Wide ResNet (Zagoruyko & Komodakis 2016), in the form of the widely used PyTorch port
(meliketoy/wide-resnet.pytorch): pre-activation basic blocks with biased convs, the stride on
the second conv and the 1x1 projection shortcut taken from the block input. Its WRN-40-10 has
55.856M parameters, the paper's 55.85M; the bias-free original has 55.842M.

Regularization (the CNN rule): stochastic depth on every block's branch, dropout before the
classifier (not WRN's optional dropout between the two convs of a block)."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_family
from ._cnn_blocks import PooledCNN, cifar_stem
from ._regularization import DropPath, block_rates


class WideBasic(nn.Module):
    """x + conv3x3(ReLU(BN(conv3x3(ReLU(BN(x)))))), projecting x with a 1x1 conv if needed."""

    def __init__(self, c_in: int, c_out: int, stride: int, drop_path: float = 0.0):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(c_in),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_in, c_out, 3, 1, 1),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, stride, 1),
        )
        self.shortcut = (
            nn.Conv2d(c_in, c_out, 1, stride) if stride != 1 or c_in != c_out else nn.Identity()
        )
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The shortcut reads x before the in-place ReLU of the body can touch it: BN comes first,
        # so the ReLU acts on BN's output, never on x itself.
        return self.drop_path(self.body(x)) + self.shortcut(x)


class WideResNet(PooledCNN):
    """WRN-depth-widen: three stages of (depth - 4) / 6 blocks, widths base * (1, 2, 4) * widen."""

    def __init__(self, depth: int, widen: int, num_classes: int, image_size: int, base: int = 16,
                 dropout: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError("WRN depth must be 6n + 4")
        n = (depth - 4) // 6
        self.stem = cifar_stem(base, image_size, preact=True, bias=True)
        stages, c_in = [], base
        rates = iter(block_rates(drop_path, 3 * n))
        for i, mult in enumerate((1, 2, 4)):
            width = base * mult * widen
            blocks = []
            for j in range(n):
                blocks.append(WideBasic(c_in, width, 2 if i > 0 and j == 0 else 1,
                                        drop_path=next(rates)))
                c_in = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.final = nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU(inplace=True))
        self._add_head(c_in, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._classify(self.final(self.stages(self.stem(x))))


def build_wideresnet(
    num_classes: int, image_size: int, depth: int, widen: int, base: int = 16, *,
    dropout: float, drop_path: float
) -> nn.Module:
    return WideResNet(depth, widen, num_classes, image_size, base=base, dropout=dropout,
                      drop_path=drop_path)


register_family(
    "wideresnet",
    category="CNN",
    build=build_wideresnet,
    sizes={
        "paper": dict(depth=40, widen=10),  # WRN-40-10
        # WRN-10-1 at half the base width (8/16/32): one block per stage, CPU-cheap.
        "tiny": dict(depth=10, widen=1, base=8),
    },
    paper_params_m=55.85,
    description="WRN-40-10 (pre-activation basic blocks, widths 160/320/640)",
)
