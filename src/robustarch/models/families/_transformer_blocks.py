"""Building blocks shared by the ViT-like families (ViT, CPVT, CeiT, ...).

Private module (leading underscore): the package auto-import skips it, it registers nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

ActLayer = Callable[[], nn.Module]

# The activation study swaps GELU for ReLU; every family builder takes one of these names.
ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU}


def replace_gelu(module: nn.Module, act: str) -> nn.Module:
    """Replace every ``nn.GELU`` submodule by ``ACTIVATIONS[act]`` (in place; returns module).

    Used for third-party models (timm) whose constructors do not expose every activation.
    """
    if act == "gelu":
        return module
    for name, child in module.named_children():
        if isinstance(child, nn.GELU):
            setattr(module, name, ACTIVATIONS[act]())
        else:
            replace_gelu(child, act)
    return module


def assert_no_gelu(module: nn.Module) -> None:
    """Guard for the ReLU variants: no GELU module may survive anywhere in the network."""
    left = [n for n, m in module.named_modules() if isinstance(m, nn.GELU)]
    if left:
        raise AssertionError(f"GELU modules left in a ReLU variant: {left[:5]}")


class Attention(nn.Module):
    """Multi-head self-attention, vit-pytorch layout (bias-free qkv, biased output projection).

    Uses ``F.scaled_dot_product_attention`` so that long token sequences (patch 2 at 224 px)
    do not materialize the full attention matrix.
    """

    def __init__(self, dim: int, heads: int, dim_head: int, qkv_bias: bool = False):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_qkv = nn.Linear(dim, inner * 3, bias=qkv_bias)
        self.to_out = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.to_qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class FeedForward(nn.Module):
    """Linear -> activation -> Linear (the transformer MLP)."""

    def __init__(self, dim: int, hidden: int, act_layer: ActLayer = nn.GELU):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), act_layer(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PreNormBlock(nn.Module):
    """``x + attn(LN(x))`` then ``x + ff(LN(x))``; ``ff`` defaults to :class:`FeedForward`.

    ``ff`` may be any module mapping (B, N, dim) tokens to the same shape (CeiT passes LeFF).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int,
        mlp_dim: int,
        act_layer: ActLayer = nn.GELU,
        qkv_bias: bool = False,
        ff: nn.Module | None = None,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dim_head, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = ff if ff is not None else FeedForward(dim, mlp_dim, act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ff(self.norm2(x))


def check_divisible(image_size: int, step: int, what: str) -> None:
    if image_size % step:
        raise ValueError(f"image_size {image_size} is not divisible by the {what} ({step})")


# Inputs up to this size (CIFAR 32 px, Tiny-ImageNet 64 px) get the small-image stems; larger
# ones (ImageNette 224 px) keep the ImageNet stems of the original designs.
SMALL_IMAGE_MAX = 64


def is_small_image(image_size: int) -> bool:
    return image_size <= SMALL_IMAGE_MAX
