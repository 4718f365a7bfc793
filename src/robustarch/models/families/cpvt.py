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
from ._transformer_blocks import VIT_ENCODER, ClassTokenEncoder, plain_patch_builder, to_tokens


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
        return torch.cat([cls, to_tokens(feat)], dim=1)


class CPVT(ClassTokenEncoder):
    """``encoder``: the :class:`ClassTokenEncoder` arguments (no position embedding); the PEG
    follows block ``peg_after``."""

    def __init__(self, num_classes: int, peg_after: int = 0, **encoder):
        super().__init__(pos_embed=False, stepped=True, **encoder)
        self.peg_after = peg_after
        self.peg = PEG(self.dim)
        self.norm = nn.LayerNorm(self.dim)
        self.head = nn.Linear(self.dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.tokens(x)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == self.peg_after:
                x = self.peg(x, self.grid)
        return self.head(self.norm(x[:, 0]))


build_cpvt = plain_patch_builder(CPVT)

# The ViT's encoder sizes (its MLP head has no counterpart here).
PAPER = VIT_ENCODER["paper"]
TINY = VIT_ENCODER["tiny"]


register_family(
    "cpvt",
    category="Hybrid",
    build=build_cpvt,
    sizes={"paper": PAPER, "tiny": TINY},
    paper_params_m=9.49,
    description="CPVT: the paper's ViT with a conv positional-encoding generator, no abs. pos-emb",
    relu_twin="CPVT with every GELU replaced by ReLU (activation study)",
)
