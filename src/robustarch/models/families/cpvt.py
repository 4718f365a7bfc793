"""CPVT (Chu et al. 2023, "Conditional Positional Encodings for Vision Transformers").

The paper's ViT (dim 512, depth 6, 8 heads, MLP 512, patch 4, class token) with the absolute
position embedding removed and a positional-encoding generator (PEG: depth-wise 3x3 conv over
the patch-token grid, added residually) after the first block, as CPVT prescribes. The head is
CPVT's (DeiT-style) final LayerNorm -> Linear: with the ViT's two-layer MLP head the count would
be 9.76M, 2.8 % over Table 1's 9.49M; with the linear head it is 9.496M.

Images over 64 px get patch 16 (14x14 tokens at 224 px; ``_transformer_blocks.patch_for``).
Regularization as the ViT: ``dropout`` in attention and MLP, stochastic depth on both residual
branches of each block; none on the PEG or the head.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_family
from ._regularization import block_rates
from ._transformer_blocks import ACTIVATIONS, PreNormBlock, check_divisible, patch_for


class PEG(nn.Module):
    """Positional-encoding generator: ``x + dwconv3x3(x)`` on the patch grid (class token kept).

    Zero padding lets the conv infer absolute position from the borders, which is what makes
    the encoding positional; its size follows the input, so any image_size works.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: torch.Tensor, grid: int) -> torch.Tensor:
        cls, tokens = x[:, :1], x[:, 1:]
        feat = tokens.transpose(1, 2).reshape(x.shape[0], -1, grid, grid)
        feat = feat + self.proj(feat)
        return torch.cat([cls, feat.flatten(2).transpose(1, 2)], dim=1)


class CPVT(nn.Module):
    def __init__(
        self,
        num_classes: int,
        image_size: int,
        patch_size: int,
        dim: int,
        depth: int,
        heads: int,
        dim_head: int,
        mlp_dim: int,
        act: str = "gelu",
        peg_after: int = 0,
        dropout: float = 0.0,
        drop_path: float = 0.0,
    ):
        super().__init__()
        check_divisible(image_size, patch_size, "patch size")
        act_layer = ACTIVATIONS[act]
        self.grid = image_size // patch_size
        self.peg_after = peg_after
        self.patch_embed = nn.Conv2d(3, dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.blocks = nn.ModuleList(
            [PreNormBlock(dim, heads, dim_head, mlp_dim, act_layer, dropout=dropout,
                          drop_path=rate) for rate in block_rates(drop_path, depth)]
        )
        self.peg = PEG(dim)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == self.peg_after:
                x = self.peg(x, self.grid)
        return self.head(self.norm(x[:, 0]))


PAPER = dict(dim=512, depth=6, heads=8, dim_head=64, mlp_dim=512)
TINY = dict(dim=64, depth=2, heads=2, dim_head=32, mlp_dim=128)


def build_cpvt(num_classes: int, image_size: int, act: str = "gelu", *, dropout: float,
               drop_path: float, **cfg) -> CPVT:
    return CPVT(num_classes, image_size, patch_size=patch_for(image_size, 4), act=act,
                dropout=dropout, drop_path=drop_path, **cfg)


register_family(
    "cpvt",
    category="Hybrid",
    build=build_cpvt,
    sizes={"paper": PAPER, "tiny": TINY},
    paper_params_m=9.49,
    description="CPVT: the paper's ViT with a conv positional-encoding generator, no abs. pos-emb",
    relu_twin="CPVT with every GELU replaced by ReLU (activation study)",
)
