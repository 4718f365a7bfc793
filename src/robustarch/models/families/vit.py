"""ViT (Dosovitskiy et al. 2021) in the small CIFAR configuration the paper trained.

Paper scale: dim 512, depth 6, heads 8 (64 per head), MLP dim 512, patch 4, class token and
learned absolute position embedding, head LayerNorm -> Linear(512, 512) -> GELU -> Linear.
This is the early vit-pytorch ``ViT`` layout (linear patch embedding, pre-norm blocks, bias-free
qkv, MLP head) that CIFAR ViT baselines use; it gives 9.786M parameters at 32 px / 10 classes
(Table 1: 9.78M). Written in plain PyTorch because current vit-pytorch changed the patch
embedding and head, and hard-codes GELU (the activation study needs ReLU).

Images over 64 px get patches 4x larger (patch 16 at 224 px: 14x14 tokens, ViT-B/16's
grid, the grid of the other families' ImageNet stems; ``_transformer_blocks.patch_for``).

Variants: ``vit-p8/p4/p2`` (patch-size study, named by the patch at 32 px; ``vit`` is
``vit-p4``; over 64 px p32/p16/p8) and ``vit-relu``.

Regularization: ``dropout`` in every block's attention (probabilities and output) and MLP
(after the activation and the output), stochastic depth on both residual branches of each
block (``_regularization``); no dropout on the embeddings or in the head.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import patch_variants, register_family
from ._transformer_blocks import VIT_ENCODER, ClassTokenEncoder, plain_patch_builder


class ViT(ClassTokenEncoder):
    """``encoder``: the :class:`ClassTokenEncoder` arguments (with a position embedding)."""

    def __init__(self, num_classes: int, head_dim: int, **encoder):
        super().__init__(pos_embed=True, **encoder)
        self.head = nn.Sequential(
            nn.LayerNorm(self.dim),
            nn.Linear(self.dim, head_dim),
            self.act_layer(),
            nn.Linear(head_dim, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.tokens(x) + self.pos_embed)[:, 0])


build_vit = plain_patch_builder(ViT)

PAPER = dict(VIT_ENCODER["paper"], head_dim=512)
# Same structure, ~80k parameters: two blocks of width 64.
TINY = dict(VIT_ENCODER["tiny"], head_dim=64)


def _describe_patch(p: int) -> str:
    return f"ViT with patch size {p} at 32 px (patch-size study; {4 * p} over 64 px)"


register_family(
    "vit",
    category="Transformer",
    build=build_vit,
    sizes={"paper": PAPER, "tiny": TINY},
    paper_params_m=9.78,
    description="ViT: dim 512, depth 6, 8 heads, MLP 512, patch 4 (16 over 64 px), cls, abs. pos",
    variants=patch_variants((8, 4, 2), _describe_patch, paper_params_m=9.78),
    relu_twin="ViT with every GELU replaced by ReLU (activation study)",
)
