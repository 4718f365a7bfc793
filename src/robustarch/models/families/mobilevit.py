"""MobileViT-S (Mehta & Rastegari 2022) from vit-pytorch's blocks, with small-image strides.

vit-pytorch's MobileViT (the chinhsuanwu/mobilevit-pytorch port): a 3x3 stem conv, MobileNetV2
blocks (expansion 4), and three MobileViT blocks (local 3x3 + 1x1 conv, a Transformer of 4
heads x 8 over 2x2-unfolded patches, 1x1 conv back, 3x3 fusion conv) of widths 144/192/240 and
depths 2/4/3, then a 1x1 conv to 640 and a bias-free classifier. MobileViT-S channels
16-32-64-64-96-96-128-128-160-160-640: 5.003M parameters at 10 classes (Table 1: 5.00M).

vit-pytorch's ``MobileViT`` class fixes every stride, so the network is assembled here from its
public blocks (``MV2Block``, ``MobileViTBlock``, ``conv_nxn_bn``, ``conv_1x1_bn``) with the
same wiring (the parameter count equals vit-pytorch's ``MobileViT`` at any size), plus two
adaptations:

* small images (<= 64 px): the stem conv and the stride-2 MV2 block of the stem keep the
  resolution (total stride 8 instead of 32), so at 32 px the MobileViT blocks see 16-8-4 grids
  (the original would reach them at 4-2-1, where 2x2 patches no longer fit); the tiny net
  keeps the stem conv's stride (8-4-2 grids) to stay fast on a CPU;
* a feature map that is not a multiple of the 2x2 patch (7x7 at 224 px) is resized bilinearly
  to the next multiple around the transformer and back, as Apple's ml-cvnets does.

MobileViT uses SiLU throughout (no GELU), so there is no ReLU variant.

Regularization: ``dropout`` is vit-pytorch's ``dropout`` of the MobileViT blocks' transformers
(attention probabilities, attention output, MLP); ``drop_path`` drops every residual branch,
in forward order with linearly rising rates: the MV2 blocks with an identity shortcut and the
attention and MLP branches of the transformer layers (parameter-free hooks,
``_regularization.drop_branches``).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import register_family
from ._hybrid_blocks import is_small_image
from ._regularization import block_rates, drop_branches


@functools.cache
def _resizing_block() -> type[nn.Module]:
    """vit-pytorch's MobileViTBlock, made on first use: vit-pytorch imports torchvision, seconds
    for every job that builds no model."""
    from vit_pytorch.mobile_vit import MobileViTBlock

    class ResizingMobileViTBlock(MobileViTBlock):
        """vit-pytorch's MobileViTBlock that accepts maps that are not multiples of the patch."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = x
            x = self.conv2(self.conv1(x))
            h, w = x.shape[-2:]
            nh, nw = math.ceil(h / self.ph) * self.ph, math.ceil(w / self.pw) * self.pw
            if (nh, nw) != (h, w):
                x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)
            b, d = x.shape[:2]
            gh, gw, ph, pw = nh // self.ph, nw // self.pw, self.ph, self.pw
            # One sequence per position inside the patch, over the patch grid (as vit-pytorch).
            x = x.reshape(b, d, gh, ph, gw, pw).permute(0, 3, 5, 2, 4, 1).reshape(b, ph * pw, -1, d)
            x = self.transformer(x)
            x = x.reshape(b, ph, pw, gh, gw, d).permute(0, 5, 3, 1, 4, 2).reshape(b, d, nh, nw)
            if (nh, nw) != (h, w):
                x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
            return self.conv4(torch.cat((self.conv3(x), y), 1))

    return ResizingMobileViTBlock


class MobileViT(nn.Module):
    def __init__(
        self,
        num_classes: int,
        dims: tuple[int, ...],
        channels: tuple[int, ...],
        depths: tuple[int, ...],
        stem_strides: tuple[int, int],
        expansion: int = 4,
        kernel_size: int = 3,
        patch_size: tuple[int, int] = (2, 2),
        dropout: float = 0.0,
        drop_path: float = 0.0,
    ):
        super().__init__()
        from vit_pytorch.mobile_vit import MV2Block, conv_1x1_bn, conv_nxn_bn

        c = channels
        self.conv1 = conv_nxn_bn(3, c[0], stride=stem_strides[0])
        # vit-pytorch's wiring, including its two c[2]->c[3] blocks (fine since c[2] == c[3]).
        self.stem = nn.Sequential(
            MV2Block(c[0], c[1], 1, expansion),
            MV2Block(c[1], c[2], stem_strides[1], expansion),
            MV2Block(c[2], c[3], 1, expansion),
            MV2Block(c[2], c[3], 1, expansion),
        )
        mlp_mults = (2, 4, 4)  # vit-pytorch: MLP of 2x the width in the first block, then 4x
        self.trunk = nn.Sequential(
            *[
                nn.Sequential(
                    MV2Block(c[3 + 2 * i], c[4 + 2 * i], 2, expansion),
                    _resizing_block()(
                        dims[i], depths[i], c[5 + 2 * i], kernel_size, patch_size,
                        int(dims[i] * mlp_mults[i]), dropout,
                    ),
                )
                for i in range(3)
            ]
        )
        self.head = conv_1x1_bn(c[-2], c[-1])
        self.fc = nn.Linear(c[-1], num_classes, bias=False)
        self._add_drop_path(drop_path)

    def _add_drop_path(self, drop_path: float) -> None:
        """The residual branches in forward order: an MV2 block's ``conv`` (``out = conv(x) +
        x`` when ``use_res_connect``), a transformer layer's attention and MLP (one rate for
        the layer)."""
        units: list[tuple[nn.Module, ...]] = []
        for module in self.modules():  # modules() walks in registration (= forward) order
            if getattr(module, "use_res_connect", False):
                units.append((module.conv,))
            elif hasattr(module, "transformer"):
                units += [tuple(pair) for pair in module.transformer.layers]
        rates = block_rates(drop_path, len(units))
        drop_branches((branch, rate) for unit, rate in zip(units, rates, strict=True)
                      for branch in unit)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.trunk(self.stem(self.conv1(x)))
        return self.fc(self.head(x).mean((2, 3)))


PAPER = dict(
    dims=(144, 192, 240),
    channels=(16, 32, 64, 64, 96, 96, 128, 128, 160, 160, 640),
    depths=(2, 4, 3),
)
# Same stem, three MV2 + MobileViT stages and head, one transformer layer each, expansion 2:
# ~90k parameters.
TINY = dict(
    dims=(16, 24, 32),
    channels=(8, 8, 8, 8, 16, 16, 24, 24, 32, 32, 64),
    depths=(1, 1, 1),
    expansion=2,
)


def build_mobilevit(
    num_classes: int, image_size: int, small_image_stem_strides: tuple[int, int], *,
    dropout: float, drop_path: float, **cfg
) -> MobileViT:
    strides = small_image_stem_strides if is_small_image(image_size) else (2, 2)
    return MobileViT(num_classes, stem_strides=strides, dropout=dropout, drop_path=drop_path,
                     **cfg)


register_family(
    "mobilevit",
    category="Hybrid",
    build=build_mobilevit,
    # small_image_stem_strides: the strides of the stem conv and of the stem's down-sampling MV2
    # block for small images (larger ones keep MobileViT's (2, 2)). The tiny net keeps one stem
    # stride: full-resolution MV2 blocks cost ~0.5 s per CPU batch.
    sizes={
        "paper": dict(PAPER, small_image_stem_strides=(1, 1)),
        "tiny": dict(TINY, small_image_stem_strides=(2, 1)),
    },
    paper_params_m=5.00,
    description="MobileViT-S (vit-pytorch blocks), stem strides dropped on small images",
)
