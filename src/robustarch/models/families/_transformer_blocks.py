"""Building blocks shared by the ViT-like families (ViT, CPVT, CeiT, ...).

Private module (leading underscore): the package auto-import skips it, it registers nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._regularization import DropPath, block_rates

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

    Uses ``F.scaled_dot_product_attention`` so that long token sequences (``vit-p2``: 784 at
    224 px) do not materialize the full attention matrix. ``dropout`` (training only) drops
    attention probabilities (``attn_dropout``, inside the fused kernel) and the projected
    output (``proj_drop``), as vit-pytorch's attention.
    """

    def __init__(self, dim: int, heads: int, dim_head: int, qkv_bias: bool = False,
                 dropout: float = 0.0):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_qkv = nn.Linear(dim, inner * 3, bias=qkv_bias)
        self.to_out = nn.Linear(inner, dim)
        self.attn_dropout = float(dropout)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.to_qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.attn_dropout if self.training else 0.0)
        return self.proj_drop(self.to_out(out.transpose(1, 2).reshape(b, n, -1)))


def mlp_forward(net: nn.Sequential, drop: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``Linear -> act -> Linear`` with ``drop`` after the activation and after the output, the
    MLP dropout of vit-pytorch and timm (kept outside ``net``, so its indices, hence the
    parameter names, do not depend on the dropout)."""
    fc1, act, fc2 = net
    return drop(fc2(drop(act(fc1(x)))))


class FeedForward(nn.Module):
    """Linear -> activation -> Linear (the transformer MLP), dropout after the activation and
    the output."""

    def __init__(self, dim: int, hidden: int, act_layer: ActLayer = nn.GELU,
                 dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), act_layer(), nn.Linear(hidden, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mlp_forward(self.net, self.drop, x)


class PreNormBlock(nn.Module):
    """``x + dp(attn(LN(x)))`` then ``x + dp(ff(LN(x)))``, ``dp`` the block's stochastic depth;
    ``ff`` defaults to :class:`FeedForward`.

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
        dropout: float = 0.0,
        drop_path: float = 0.0,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dim_head, qkv_bias=qkv_bias, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = ff if ff is not None else FeedForward(dim, mlp_dim, act_layer, dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.ff(self.norm2(x)))


def check_divisible(image_size: int, step: int, what: str) -> None:
    if image_size % step:
        raise ValueError(f"image_size {image_size} is not divisible by the {what} ({step})")


def patch_embedding(image_size: int, patch_size: int, dim: int) -> nn.Conv2d:
    """The stem of the plain-patch families (ViT, CPVT, MLP-Mixer): ``patch_size`` x
    ``patch_size`` patches, each mapped to ``dim`` channels; ``image_size`` must tile into them.

    A stride-p convolution is the same map as "cut p x p patches, then Linear(3p^2, dim)".
    """
    check_divisible(image_size, patch_size, "patch size")
    return nn.Conv2d(3, dim, patch_size, stride=patch_size)


def to_tokens(feature_map: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H*W, C): one token per position, row-major over the grid."""
    return feature_map.flatten(2).transpose(1, 2)


# The paper's ViT encoder (Table 1: dim 512, depth 6, 8 heads of 64, MLP 512) and its tiny
# stand-in (two blocks of width 64), the sizes of both ClassTokenEncoder families: ViT adds the
# width of its MLP head, CPVT (the same encoder with a PEG) takes them as they are.
VIT_ENCODER = {
    "paper": dict(dim=512, depth=6, heads=8, dim_head=64, mlp_dim=512),
    "tiny": dict(dim=64, depth=2, heads=2, dim_head=32, mlp_dim=128),
}


class ClassTokenEncoder(nn.Module):
    """The encoder ViT and CPVT share: a :func:`patch_embedding`, a class token put before the
    patch tokens (:meth:`tokens`) and ``depth`` blocks (:class:`PreNormBlock`) with stochastic
    depth linear over them. Subclasses add their head on the class token.

    ``pos_embed``: also a learned absolute position embedding ``pos_embed`` (sized from
    image_size, so the token grid follows the input resolution), which the subclass adds to the
    tokens; made here, between the class token and the blocks, as ViT draws it. ``blocks`` is an
    ``nn.Sequential``, or with ``stepped`` an ``nn.ModuleList`` for a subclass that acts between
    blocks (CPVT's PEG). ``act_layer`` is the activation class, ``grid`` the patches per side.
    """

    def __init__(
        self,
        image_size: int,
        patch_size: int,
        dim: int,
        depth: int,
        heads: int,
        dim_head: int,
        mlp_dim: int,
        act: str = "gelu",
        dropout: float = 0.0,
        drop_path: float = 0.0,
        *,
        pos_embed: bool,
        stepped: bool = False,
    ):
        super().__init__()
        self.act_layer = ACTIVATIONS[act]
        self.dim = dim
        self.patch_embed = patch_embedding(image_size, patch_size, dim)
        self.grid = image_size // patch_size
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        if pos_embed:
            self.pos_embed = nn.Parameter(torch.randn(1, self.grid**2 + 1, dim) * 0.02)
        blocks = [PreNormBlock(dim, heads, dim_head, mlp_dim, self.act_layer, dropout=dropout,
                               drop_path=rate) for rate in block_rates(drop_path, depth)]
        self.blocks = nn.ModuleList(blocks) if stepped else nn.Sequential(*blocks)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> (B, 1 + grid^2, dim): the class token, then the patch tokens."""
        x = to_tokens(self.patch_embed(x))
        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)


# Inputs up to this size (CIFAR 32 px, Tiny-ImageNet 64 px) get the small-image stems; larger
# ones (ImageNette 224 px) keep the ImageNet stems of the original designs.
SMALL_IMAGE_MAX = 64


def is_small_image(image_size: int) -> bool:
    return image_size <= SMALL_IMAGE_MAX


# The plain-patch families (ViT, CPVT, MLP-Mixer) cut CIFAR patches of 4 px; above
# SMALL_IMAGE_MAX they cut patches this many times larger: 16 px, the patch of the ImageNet
# designs (ViT-B/16, DeiT, CPVT, Mixer-B/16), which gives the 14x14 grid that CeiT, CCT, LeViT
# and ViTAE tokenize 224 px images into (and the third stage of Swin, PVTv2, PoolFormer, CvT).
# The patch-size variants (vit-p8/p4/p2, named by their CIFAR patch) scale alike, so they keep
# their grids relative to vit's: 7x7, 14x14 and 28x28 at 224 px.
IMAGENET_PATCH_SCALE = 4


def patch_for(image_size: int, patch_size: int) -> int:
    """The patch side for ``image_size`` of a family whose CIFAR patch is ``patch_size``."""
    return patch_size if is_small_image(image_size) else patch_size * IMAGENET_PATCH_SCALE


def plain_patch_builder(network: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """The family builder of a plain-patch network class (ViT, CPVT, MLP-Mixer).

    ``build(num_classes, image_size, patch_size=4, act=, dropout=, drop_path=, **cfg)`` makes
    ``network(num_classes, image_size=, patch_size=, act=, dropout=, drop_path=, **cfg)``;
    ``patch_size`` is the patch at 32 px (a variant's, e.g. ``vit-p8``), :func:`patch_for` gives
    the one for ``image_size``.
    """

    def build(num_classes: int, image_size: int, patch_size: int = 4, act: str = "gelu", *,
              dropout: float, drop_path: float, **cfg: Any) -> nn.Module:
        return network(num_classes, image_size=image_size,
                       patch_size=patch_for(image_size, patch_size), act=act, dropout=dropout,
                       drop_path=drop_path, **cfg)

    build.__name__ = build.__qualname__ = f"build_{network.__name__.lower()}"
    return build
