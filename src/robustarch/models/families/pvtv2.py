"""PVTv2-b1 with linear spatial-reduction attention (PVTv2-b1-Li, Wang et al. 2022), from timm.

timm's ``PyramidVisionTransformerV2`` built through its public constructor with the b1 numbers
(dims 64/128/320/512, depths 2/2/2/2, heads 1/2/5/8, MLP ratios 8/8/4/4) and ``linear=True``
(keys/values average-pooled to 7x7, 1x1 conv, LayerNorm, GELU; extra ReLU in the conv-MLP).
Every stage is resolution-agnostic, so no table depends on ``image_size``.

The first overlapping patch embedding is replaced so that its stride ("patch size" in the
paper's patch-size study) can be 4, 2 or 1. PVTv2 (Sec. 3.2) defines an overlapping patch
embedding of stride S as a conv with kernel 2S-1 and padding S-1; timm hard-codes S=4 (kernel 7,
padding 3), which the S=4 case reproduces exactly. ``pvtv2`` is ``pvtv2-p4``; ``pvtv2-relu``
swaps every GELU for ReLU.

Regularization: ``drop_path`` is timm's ``drop_path_rate`` (linear over the blocks),
``dropout`` its ``attn_drop_rate`` and ``proj_drop_rate`` (attention probabilities, attention
output, MLP); the head dropout (``drop_rate``) stays 0.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import patch_variants, register_family
from ._hybrid_blocks import replace_gelu


class OverlapPatchEmbed(nn.Module):
    """Conv(kernel 2S-1, stride S, padding S-1) + LayerNorm; returns (B, H, W, C) like timm's."""

    def __init__(self, stride: int, in_chans: int, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, 2 * stride - 1, stride, stride - 1)
        self.norm = nn.LayerNorm(embed_dim)
        # timm's PVTv2 conv init (normal, fan-out), so the swap changes nothing but the stride.
        fan_out = self.proj.kernel_size[0] * self.proj.kernel_size[1] * embed_dim
        nn.init.normal_(self.proj.weight, 0, math.sqrt(2.0 / fan_out))
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


PAPER = dict(
    embed_dims=(64, 128, 320, 512), depths=(2, 2, 2, 2), num_heads=(1, 2, 5, 8),
    mlp_ratios=(8, 8, 4, 4),
)
# Same four stages of linear-SRA blocks, one block each, narrow: ~70k parameters.
TINY = dict(
    embed_dims=(16, 24, 32, 48), depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2),
    mlp_ratios=(2, 2, 2, 2),
)


def build_pvtv2(
    num_classes: int, image_size: int, patch_size: int = 4, act: str = "gelu", *,
    dropout: float, drop_path: float, **cfg
) -> nn.Module:
    # Imported here: vit-pytorch/timm pull in torchvision, seconds per job that builds no model.
    from timm.models.pvt_v2 import PyramidVisionTransformerV2

    net = PyramidVisionTransformerV2(num_classes=num_classes, linear=True,
                                     drop_path_rate=drop_path, attn_drop_rate=dropout,
                                     proj_drop_rate=dropout, **cfg)
    net.patch_embed = OverlapPatchEmbed(patch_size, 3, cfg["embed_dims"][0])
    return replace_gelu(net, act)


def _describe_patch(p: int) -> str:
    return f"PVTv2-b1-Li with a stride-{p} first patch embedding (patch-size study)"


register_family(
    "pvtv2",
    category="Hybrid",
    build=build_pvtv2,
    sizes={"paper": PAPER, "tiny": TINY},
    paper_params_m=12.40,
    description="PVTv2-b1 with linear SRA (timm), first patch embedding of stride 4",
    variants=patch_variants((4, 2, 1), _describe_patch, paper_params_m=12.40),
    relu_twin="PVTv2-b1-Li with every GELU replaced by ReLU (activation study)",
)
