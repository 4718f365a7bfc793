"""Helpers shared by the hybrid CNN/Transformer families (PVTv2, CoAtNet, CvT, MobileViT, ViTAE,
LeViT).

Private module (leading underscore): the package auto-import skips it, it registers nothing.
"""

from __future__ import annotations

import torch
from torch import nn

# Inputs up to this size (CIFAR 32 px, Tiny-ImageNet 64 px) get the small-image adaptations
# (fewer stem down-samplings), larger ones the ImageNet layout.
SMALL_IMAGE_MAX = 64

ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU}


def is_small_image(image_size: int) -> bool:
    return image_size <= SMALL_IMAGE_MAX


def replace_gelu(module: nn.Module, act: str) -> nn.Module:
    """Swap every ``nn.GELU`` submodule for ``ACTIVATIONS[act]`` in place (the activation study).

    Third-party constructors (timm, vit-pytorch) hard-code some of their GELUs, so the ReLU
    variants are made by module surgery rather than by a constructor argument.
    """
    if act == "gelu":
        return module
    for name, child in module.named_children():
        if isinstance(child, nn.GELU):
            setattr(module, name, ACTIVATIONS[act]())
        else:
            replace_gelu(child, act)
    return module


def gelu_modules(module: nn.Module) -> list[str]:
    return [n for n, m in module.named_modules() if isinstance(m, nn.GELU)]


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
