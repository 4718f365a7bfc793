"""CoAtNet (Dai et al. 2021), any C/T stage layout, in plain PyTorch.

CoAtNet-0 as the CoAtNet paper describes it (Eq. 5, CoAtNet-0 sizes) and the public PyTorch
re-implementation chinhsuanwu/coatnet-pytorch builds it: a two-conv stem S0 (64 channels,
stride 2) then four stages S1..S4 with 2-3-5-2 blocks and 96-192-384-768 channels, each stage
halving the resolution in its first block. A stage is either

* ``C``: MBConv (pre-norm BatchNorm, 1x1 expand x4 carrying the stride, depthwise 3x3,
  squeeze-excitation to a quarter of the block input width, 1x1 project), or
* ``T``: a pre-norm Transformer block with relative attention (8 heads of 32, a learned bias
  per relative offset and head) and an MLP of 4x the block input width.

Down-sampling blocks add a ``Proj(Pool(x))`` shortcut (3x3/2 max pool, 1x1 projection); a T
block also attends over ``Pool(x)``. The relative-bias tables are sized from ``image_size``.
``coatnet`` is the CCTT layout; ``coatnet-XXXX`` are the Table 2 layouts (S1 is never T);
``coatnet-relu`` swaps every GELU for ReLU.

Small images keep every stride: at 32 px the stages see 8-4-2-1 grids. That is the geometry
whose counts (relative tables included) truncate to Table 2's exactly (all within 0.06 %); a
stride-1 stem would give e.g. 17.370M for CTTT (17.36M in the paper).

Regularization: ``drop_path`` drops the residual branch of every block, MBConv and T alike
(rates linear over all blocks, as timm's CoAtNet); ``dropout`` acts in the T blocks (attention
probabilities, attention output, MLP after the activation and the output), and, in the
all-MBConv layout (CCCC) that has none, on the pooled features before the classifier, the
CNN families' place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import Variant, register_family
from ._hybrid_blocks import ACTIVATIONS, init_like_timm, relative_position_index
from ._regularization import DropPath, block_rates
from ._transformer_blocks import mlp_forward


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int, act_layer: type[nn.Module]):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, reduced, bias=False),
            act_layer(),
            nn.Linear(reduced, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean((2, 3)))[:, :, None, None]


class MBConv(nn.Module):
    """Pre-norm inverted bottleneck; Eq. 5 puts the stride on the first 1x1 conv."""

    def __init__(
        self,
        inp: int,
        oup: int,
        downsample: bool,
        act_layer: type[nn.Module],
        expansion: int = 4,
        drop_path: float = 0.0,
    ):
        super().__init__()
        hidden = inp * expansion
        self.shortcut = (
            nn.Sequential(nn.MaxPool2d(3, 2, 1), nn.Conv2d(inp, oup, 1, bias=False))
            if downsample
            else nn.Identity()
        )
        self.conv = nn.Sequential(
            nn.BatchNorm2d(inp),
            nn.Conv2d(inp, hidden, 1, 2 if downsample else 1, bias=False),
            nn.BatchNorm2d(hidden),
            act_layer(),
            nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            act_layer(),
            SqueezeExcite(hidden, inp // 4, act_layer),
            nn.Conv2d(hidden, oup, 1, bias=False),
            nn.BatchNorm2d(oup),
        )
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.drop_path(self.conv(x))


class RelativeAttention(nn.Module):
    """Multi-head self-attention over an h x w grid plus a learned bias per (offset, head)."""

    def __init__(self, inp: int, oup: int, grid: int, heads: int, dim_head: int,
                 dropout: float = 0.0):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.grid = grid
        self.to_qkv = nn.Linear(inp, inner * 3, bias=False)
        self.to_out = nn.Linear(inner, oup)
        self.attn_dropout = float(dropout)
        self.proj_drop = nn.Dropout(dropout)
        self.rel_bias = nn.Parameter(torch.zeros((2 * grid - 1) ** 2, heads))
        nn.init.trunc_normal_(self.rel_bias, std=0.02)
        self.register_buffer("rel_index", relative_position_index(grid, grid), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, C)
        b, n, _ = x.shape
        if n != self.grid**2:
            raise ValueError(f"relative attention built for a {self.grid}^2 grid, got {n} tokens")
        q, k, v = self.to_qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        bias = self.rel_bias[self.rel_index].permute(2, 0, 1)  # (heads, N, N)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.unsqueeze(0).to(q.dtype),
                                             dropout_p=self.attn_dropout if self.training else 0.0)
        return self.proj_drop(self.to_out(out.transpose(1, 2).reshape(b, n, -1)))


class TransformerBlock(nn.Module):
    """Pre-norm relative-attention block; the down-sampling one pools before attending."""

    def __init__(
        self,
        inp: int,
        oup: int,
        downsample: bool,
        grid: int,
        act_layer: type[nn.Module],
        heads: int,
        dim_head: int,
        dropout: float = 0.0,
        drop_path: float = 0.0,
    ):
        super().__init__()
        self.downsample = downsample
        if downsample:
            self.pool = nn.MaxPool2d(3, 2, 1)
            self.proj = nn.Conv2d(inp, oup, 1, bias=False)
        self.norm1 = nn.LayerNorm(inp)
        self.attn = RelativeAttention(inp, oup, grid, heads, dim_head, dropout)
        self.norm2 = nn.LayerNorm(oup)
        hidden = inp * 4  # the reference widens by the block *input* width
        self.mlp = nn.Sequential(nn.Linear(oup, hidden), act_layer(), nn.Linear(hidden, oup))
        self.mlp_drop = nn.Dropout(dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        if self.downsample:
            x = self.pool(x)
            shortcut = self.proj(x)
        else:
            shortcut = x
        b, _, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        t = shortcut.flatten(2).transpose(1, 2) + self.drop_path(self.attn(self.norm1(t)))
        t = t + self.drop_path(mlp_forward(self.mlp, self.mlp_drop, self.norm2(t)))
        return t.transpose(1, 2).reshape(b, -1, h, w)


class CoAtNet(nn.Module):
    def __init__(
        self,
        num_classes: int,
        image_size: int,
        layout: str,
        depths: tuple[int, ...],
        channels: tuple[int, ...],
        heads: int,
        dim_head: int,
        act: str = "gelu",
        dropout: float = 0.0,
        drop_path: float = 0.0,
    ):
        super().__init__()
        if len(layout) != 4 or set(layout) - {"C", "T"} or layout[0] != "C":
            raise ValueError(f"layout must be 4 of C/T starting with C, got {layout!r}")
        if image_size % 32:
            raise ValueError(f"image_size {image_size} must be a multiple of 32 (5 halvings)")
        act_layer = ACTIVATIONS[act]
        self.layout = layout
        stem = []
        for i in range(depths[0]):  # S0: 3x3 conv-BN-act, the first one with stride 2
            stem += [
                nn.Conv2d(channels[0] if i else 3, channels[0], 3, 1 if i else 2, 1, bias=False),
                nn.BatchNorm2d(channels[0]),
                act_layer(),
            ]
        self.stem = nn.Sequential(*stem)
        stages = []
        rates = iter(block_rates(drop_path, sum(depths[1:])))
        for s, kind in enumerate(layout, start=1):
            grid = image_size // 2 ** (s + 1)  # grid of this stage (after its first block)
            blocks = []
            for i in range(depths[s]):
                inp = channels[s - 1] if i == 0 else channels[s]
                if kind == "C":
                    blocks.append(MBConv(inp, channels[s], i == 0, act_layer,
                                         drop_path=next(rates)))
                else:
                    blocks.append(TransformerBlock(inp, channels[s], i == 0, grid, act_layer,
                                                   heads, dim_head, dropout, next(rates)))
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        # Dropout sits in the T blocks; a layout without any drops before the classifier.
        self.head_drop = nn.Dropout(0.0 if "T" in layout else dropout)
        self.head = nn.Linear(channels[-1], num_classes, bias=False)
        init_like_timm(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.head(self.head_drop(x.mean((2, 3))))


# CoAtNet-0: S0 stem of 2 convs, then 2-3-5-2 blocks; 8 heads of 32 in every T block.
PAPER = dict(depths=(2, 2, 3, 5, 2), channels=(64, 96, 192, 384, 768), heads=8, dim_head=32)
# Same five stages and C/T pattern, one block each, narrow: 60-70k parameters.
TINY = dict(depths=(1, 1, 1, 1, 1), channels=(16, 24, 32, 48, 64), heads=2, dim_head=16)

LAYOUT_TARGETS = {  # Table 2, M parameters at 32 px / 10 classes
    "CCTT": 16.99,
    "CCTC": 16.65,
    "CTTT": 17.36,
    "CTTC": 17.02,
    "CCCC": 16.02,
    "CCCT": 16.36,
    "CTCC": 16.38,
    "CTCT": 16.73,
}


def build_coatnet(
    num_classes: int, image_size: int, layout: str = "CCTT", act: str = "gelu", *,
    dropout: float, drop_path: float, **cfg
) -> CoAtNet:
    return CoAtNet(num_classes, image_size, layout, act=act, dropout=dropout,
                   drop_path=drop_path, **cfg)


register_family(
    "coatnet",
    category="Hybrid",
    build=build_coatnet,
    sizes={"paper": PAPER, "tiny": TINY},
    paper_params_m=LAYOUT_TARGETS["CCTT"],
    description="CoAtNet-0, layout CCTT (MBConv S1-S2, relative-attention Transformer S3-S4)",
    variants={
        layout: Variant(
            {"layout": layout},
            f"CoAtNet-0 with stage layout {layout} (Table 2 layout study)",
            paper_params_m=target,
        )
        for layout, target in LAYOUT_TARGETS.items()
    },
    relu_twin="CoAtNet-0 (CCTT) with every GELU replaced by ReLU (activation study)",
)
