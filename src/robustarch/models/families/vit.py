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

from ..registry import Variant, register_family
from ._regularization import block_rates
from ._transformer_blocks import ACTIVATIONS, PreNormBlock, check_divisible, patch_for


class ViT(nn.Module):
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
        head_dim: int,
        act: str = "gelu",
        dropout: float = 0.0,
        drop_path: float = 0.0,
    ):
        super().__init__()
        check_divisible(image_size, patch_size, "patch size")
        act_layer = ACTIVATIONS[act]
        num_patches = (image_size // patch_size) ** 2
        # A stride-p convolution is the same map as "cut p x p patches, then Linear(3p^2, dim)".
        self.patch_embed = nn.Conv2d(3, dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        # Sized from image_size, so the token grid follows the input resolution.
        self.pos_embed = nn.Parameter(torch.randn(1, num_patches + 1, dim) * 0.02)
        self.blocks = nn.Sequential(
            *[PreNormBlock(dim, heads, dim_head, mlp_dim, act_layer, dropout=dropout,
                           drop_path=rate) for rate in block_rates(drop_path, depth)]
        )
        self.head = nn.Sequential(
            nn.LayerNorm(dim),
            nn.Linear(dim, head_dim),
            act_layer(),
            nn.Linear(head_dim, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.blocks(x)
        return self.head(x[:, 0])


PAPER = dict(dim=512, depth=6, heads=8, dim_head=64, mlp_dim=512, head_dim=512)
# Same structure, ~80k parameters: two blocks of width 64.
TINY = dict(dim=64, depth=2, heads=2, dim_head=32, mlp_dim=128, head_dim=64)


def build_vit(
    num_classes: int, image_size: int, patch_size: int = 4, act: str = "gelu", *,
    dropout: float, drop_path: float, **cfg
) -> ViT:
    """``patch_size``: the patch at 32 px (larger images: :func:`patch_for`)."""
    return ViT(num_classes, image_size, patch_for(image_size, patch_size), act=act,
               dropout=dropout, drop_path=drop_path, **cfg)


register_family(
    "vit",
    category="Transformer",
    build=build_vit,
    sizes={"paper": PAPER, "tiny": TINY},
    paper_params_m=9.78,
    description="ViT: dim 512, depth 6, 8 heads, MLP 512, patch 4 (16 over 64 px), cls, abs. pos",
    variants={
        f"p{p}": Variant(
            {"patch_size": p},
            f"ViT with patch size {p} at 32 px (patch-size study; {4 * p} over 64 px)",
            paper_params_m=9.78 if p == 4 else None,
        )
        for p in (8, 4, 2)
    },
    relu_twin="ViT with every GELU replaced by ReLU (activation study)",
)
