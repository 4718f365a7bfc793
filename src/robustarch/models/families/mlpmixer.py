"""MLP-Mixer (Tolstikhin et al. 2021), small CIFAR configuration.

Table 1 gives only the size (0.68M); the configuration is not reported. We use the Mixer
paper's layout (per-patch linear stem, pre-norm token-mixing and channel-mixing MLPs with GELU,
LayerNorm -> global average pool -> Linear head) with patch 4, hidden dim 128, depth 8, token
MLP 128 and channel MLP 256 (both expansion 2): 0.672M at 32 px / 10 classes.

Images over 64 px get patch 16 (Mixer-B/16's; 14x14 tokens at 224 px,
``_transformer_blocks.patch_for``): 0.70M there (patch 4 would make 3,136 tokens and 7.0M).
Regularization: ``dropout`` in both MLPs (after the activation and the output), stochastic
depth on both residual branches of each block (timm's Mixer places them so).
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_family
from ._regularization import DropPath, block_rates
from ._transformer_blocks import (
    ACTIVATIONS,
    FeedForward,
    patch_embedding,
    plain_patch_builder,
    to_tokens,
)


class MixerBlock(nn.Module):
    def __init__(self, num_tokens: int, dim: int, token_dim: int, channel_dim: int, act_layer,
                 dropout: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.token_mlp = FeedForward(num_tokens, token_dim, act_layer, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.channel_mlp = FeedForward(dim, channel_dim, act_layer, dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Token mixing acts along the token axis, hence the transposes.
        x = x + self.drop_path(self.token_mlp(self.norm1(x).transpose(1, 2)).transpose(1, 2))
        return x + self.drop_path(self.channel_mlp(self.norm2(x)))


class MLPMixer(nn.Module):
    def __init__(
        self,
        num_classes: int,
        image_size: int,
        patch_size: int,
        dim: int,
        depth: int,
        token_dim: int,
        channel_dim: int,
        act: str = "gelu",
        dropout: float = 0.0,
        drop_path: float = 0.0,
    ):
        super().__init__()
        act_layer = ACTIVATIONS[act]
        self.stem = patch_embedding(image_size, patch_size, dim)
        # The token MLP is sized by the token count, so it follows image_size.
        num_tokens = (image_size // patch_size) ** 2
        self.blocks = nn.Sequential(
            *[MixerBlock(num_tokens, dim, token_dim, channel_dim, act_layer, dropout, rate)
              for rate in block_rates(drop_path, depth)]
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = to_tokens(self.stem(x))
        x = self.norm(self.blocks(x))
        return self.head(x.mean(dim=1))


build_mlpmixer = plain_patch_builder(MLPMixer)

PAPER = dict(dim=128, depth=8, token_dim=128, channel_dim=256)
TINY = dict(dim=64, depth=2, token_dim=64, channel_dim=128)


register_family(
    "mlpmixer",
    category="Transformer",
    build=build_mlpmixer,
    sizes={"paper": PAPER, "tiny": TINY},
    paper_params_m=0.68,
    description="MLP-Mixer: patch 4 (16 over 64 px), dim 128, depth 8, token/channel MLP 128/256",
    relu_twin="MLP-Mixer with every GELU replaced by ReLU (activation study)",
)
