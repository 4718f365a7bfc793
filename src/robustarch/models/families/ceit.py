"""CeiT (Yuan et al. 2021, "Incorporating Convolution Designs into Visual Transformers").

CeiT-T body: dim 192, depth 12, 3 heads (64 per head), MLP ratio 4, qkv bias, class token and
learned absolute position embedding, final LayerNorm -> Linear head, with CeiT's two
convolutional ingredients:

* Image-to-Tokens (I2T) stem: conv 7x7 (32 channels, no bias) -> BatchNorm -> max pool 3x3/2,
  then non-overlapping patch-4 embedding of that feature map. CeiT's stem downsamples by 4
  before the patch embedding (a 224 px image gives 14x14 tokens, as in CeiT). For small images
  (<= 64 px) the stem is adapted to keep full resolution (conv stride 1, no max pool), so that a
  32 px image gives an 8x8 token grid of 4 px patches like the paper's ViT; with CeiT's own
  stem it would give 2x2 tokens.
* Locally-enhanced feed-forward (LeFF) on the patch tokens (the class token skips it, as in
  CeiT): Linear -> BN -> GELU -> depth-wise 3x3 conv -> BN -> GELU -> Linear -> BN.

No layer-wise class-token attention (LCA). 5.590M at 32 px / 10 classes (Table 1: 5.56M).

Regularization: ``dropout`` in every block's attention (probabilities and output) and LeFF
(before and after its output projection, the MLP's places), stochastic depth on both residual
branches of each block; none in the I2T stem or the head.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_family
from ._regularization import DropPath, block_rates
from ._transformer_blocks import ACTIVATIONS, Attention, is_small_image


class TokenBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the channels of a (B, N, C) token tensor (statistics over B and N)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view_as(x)


class LeFF(nn.Module):
    """Locally-enhanced feed-forward: token-wise expansion, depth-wise 3x3 conv on the token
    grid, token-wise projection back."""

    def __init__(self, dim: int, hidden: int, act_layer, dropout: float = 0.0):
        super().__init__()
        self.up = nn.Sequential(nn.Linear(dim, hidden), TokenBatchNorm(hidden), act_layer())
        self.dwconv = nn.Sequential(
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
            nn.BatchNorm2d(hidden),
            act_layer(),
        )
        self.down = nn.Sequential(nn.Linear(hidden, dim), TokenBatchNorm(dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, grid: int) -> torch.Tensor:
        b, n, _ = x.shape
        x = self.up(x)
        x = x.transpose(1, 2).reshape(b, -1, grid, grid)
        x = self.dwconv(x).flatten(2).transpose(1, 2)
        return self.drop(self.down(self.drop(x)))


class CeiTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int, act_layer, dropout: float = 0.0,
                 drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dim // heads, qkv_bias=True, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.leff = LeFF(dim, dim * mlp_ratio, act_layer, dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, grid: int) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        cls, tokens = x[:, :1], x[:, 1:]
        tokens = tokens + self.drop_path(self.leff(self.norm2(tokens), grid))
        return torch.cat([cls, tokens], dim=1)


class CeiT(nn.Module):
    def __init__(
        self,
        num_classes: int,
        image_size: int,
        dim: int,
        depth: int,
        heads: int,
        mlp_ratio: int,
        i2t_channels: int,
        patch_size: int = 4,
        act: str = "gelu",
        *,
        dropout: float = 0.0,
        drop_path: float = 0.0,
    ):
        super().__init__()
        act_layer = ACTIVATIONS[act]
        small = is_small_image(image_size)
        reduction = (1 if small else 4) * patch_size
        if image_size % reduction:
            raise ValueError(f"image_size {image_size} is not divisible by {reduction}")
        self.grid = image_size // reduction
        self.i2t = nn.Sequential(
            nn.Conv2d(3, i2t_channels, 7, stride=1 if small else 2, padding=3, bias=False),
            nn.BatchNorm2d(i2t_channels),
            nn.Identity() if small else nn.MaxPool2d(3, stride=2, padding=1),
            nn.Conv2d(i2t_channels, dim, patch_size, stride=patch_size),
        )
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, self.grid**2 + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(
            [CeiTBlock(dim, heads, mlp_ratio, act_layer, dropout, rate)
             for rate in block_rates(drop_path, depth)]
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.i2t(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x, self.grid)
        return self.head(self.norm(x[:, 0]))


PAPER = dict(dim=192, depth=12, heads=3, mlp_ratio=4, i2t_channels=32)  # CeiT-T
TINY = dict(dim=64, depth=2, heads=2, mlp_ratio=2, i2t_channels=16)


register_family(
    "ceit",
    category="Hybrid",
    build=CeiT,
    sizes={"paper": PAPER, "tiny": TINY},
    paper_params_m=5.56,
    description="CeiT-T: conv image-to-tokens stem, LeFF feed-forward, patch 4, no LCA",
    relu_twin="CeiT-T with every GELU replaced by ReLU (activation study)",
)
