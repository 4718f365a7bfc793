"""Helpers shared by the hybrid CNN/Transformer families (PVTv2, CoAtNet, CvT, MobileViT, ViTAE,
LeViT).

Private module (leading underscore): the package auto-import skips it, it registers nothing.
"""

from __future__ import annotations

import torch
from torch import nn

# The small-image threshold, the activation table and the GELU surgery are shared with the
# ViT-like families.
from ._transformer_blocks import ACTIVATIONS, is_small_image, replace_gelu

__all__ = ["ACTIVATIONS", "init_like_timm", "is_small_image", "relative_position_index",
           "replace_gelu"]


def init_like_timm(module: nn.Module) -> None:
    """Truncated-normal Linear weights, zero biases, unit norms (the ViT/timm convention)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm) and m.elementwise_affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def relative_position_index(h: int, w: int) -> torch.Tensor:
    """(h*w, h*w) indices into a ((2h-1)*(2w-1))-entry table of relative offsets (dy, dx)."""
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()])  # (2, N)
    rel = coords[:, :, None] - coords[:, None, :]  # (2, N, N), entries in [-(h-1), h-1]
    return (rel[0] + h - 1) * (2 * w - 1) + (rel[1] + w - 1)
