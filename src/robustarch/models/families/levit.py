"""LeViT (Graham et al. 2021) in the LeViT-128S configuration, from vit-pytorch's blocks.

Table 1 lists LeViT at 6.67M, which no stock configuration gives at 32 px / 10 classes: timm's
LeViT-128S is 7.01M (7.005M without the distillation head) and LeViT-128 8.44M, and the
vit-pytorch README configuration is 16.8M. What lands within 2 % is vit-pytorch's LeViT with
LeViT-128S's hyper-parameters: widths 128/256/384, depths 2/3/4, heads 4/6/8, key dim 16,
value dim 32 (attention ratio 2), MLP ratio 2: 6.600M (-1.0 %). vit-pytorch's LeViT: a 4-conv
stride-16 stem (32-64-128-dim channels, no norm), conv-BN q/k/v, a learned attention bias per
|relative offset| and head (sized from the feature map, hence from ``image_size``), GELU before
the output projection, Hardswish MLPs, and between stages a shrinking attention block (stride-2
queries, twice the heads) to the next width.

vit-pytorch's ``LeViT`` class fixes the stem at stride 16 (2x2 tokens at 32 px, 1x1 from
stage 2 on), so the network is assembled here from its public ``Transformer`` block with the
same wiring and parameters (identical to vit-pytorch's ``LeViT`` at stride 16 without the two
fixes below). Small images (<= 64 px) keep the resolution in the last two stem convs (stride
4), so at 32 px the stages see 8-4-2 grids. Two departures from vit-pytorch, both back to the
LeViT paper and parameter-free: Hardswish between the stem convs, and a unit (not zero) init of
the shrinking attentions' output BatchNorm, without which vit-pytorch's LeViT does not train.

``levit-relu`` swaps vit-pytorch's GELUs (attention output) for ReLU; the Hardswish MLPs are
LeViT's own activation and stay.

Regularization: ``dropout`` is vit-pytorch's ``dropout`` of every block (attention
probabilities, attention output, MLP); ``drop_path`` drops the residual branches (every MLP,
and the attention of every block but the shrinking ones, which have no residual) with rates
linear over the layers in forward order, through parameter-free hooks
(``_regularization.drop_branches``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import register_family
from ._hybrid_blocks import is_small_image, replace_gelu
from ._regularization import block_rates, drop_branches


class LeViT(nn.Module):
    def __init__(
        self,
        num_classes: int,
        image_size: int,
        dims: tuple[int, ...],
        depths: tuple[int, ...],
        heads: tuple[int, ...],
        dim_key: int,
        dim_value: int,
        mlp_mult: int,
        stem_channels: tuple[int, int, int],
        stem_strides: tuple[int, ...],
        stem_act: bool = True,
        dropout: float = 0.0,
        drop_path: float = 0.0,
    ):
        super().__init__()
        # Imported here: vit-pytorch/timm pull in torchvision, seconds per job that builds no model.
        from vit_pytorch.levit import Transformer

        widths = (3, *stem_channels, dims[0])
        stem = []
        for i in range(4):
            stem.append(nn.Conv2d(widths[i], widths[i + 1], 3, stem_strides[i], 1))
            if stem_act and i < 3:
                # LeViT's stem has Hardswish between its convs; vit-pytorch's has none, which
                # makes it one linear map (a patchify conv). Parameter-free either way.
                stem.append(nn.Hardswish())
        self.stem = nn.Sequential(*stem)
        fmap = image_size
        for s in stem_strides:
            fmap = math.ceil(fmap / s)
        layers = []
        for i, (dim, depth, h) in enumerate(zip(dims, depths, heads, strict=True)):
            layers.append(Transformer(dim, fmap, depth, h, dim_key, dim_value, mlp_mult,
                                      dropout=dropout))
            if i < len(dims) - 1:  # shrinking attention: stride-2 queries, 2x heads, next width
                layers.append(
                    Transformer(dim, fmap, 1, h * 2, dim_key, dim_value, dropout=dropout,
                                dim_out=dims[i + 1], downsample=True)
                )
                fmap = math.ceil(fmap / 2)
        self.backbone = nn.Sequential(*layers)
        for block in self.backbone:
            if not block.attn_residual:
                # vit-pytorch zero-initializes the output BatchNorm of every attention, but the
                # shrinking one has no residual, so the whole network after it starts constant
                # and gets no gradient. LeViT zero-inits only residual branches: use 1 here.
                for attn, _ in block.layers:
                    nn.init.ones_(attn.to_out[2].weight)
        self._add_drop_path(drop_path)
        self.head = nn.Linear(dims[-1], num_classes)

    def _add_drop_path(self, drop_path: float) -> None:
        """vit-pytorch's layers compute ``attn(x) + x`` (only with ``attn_residual``), then
        ``ff(x) + x``: those branches drop, at rates linear over the layers."""
        layers = [(block, pair) for block in self.backbone for pair in block.layers]
        rates = block_rates(drop_path, len(layers))
        drop_branches((branch, rate) for (block, (attn, ff)), rate in zip(layers, rates,
                                                                          strict=True)
                      for branch in ((attn, ff) if block.attn_residual else (ff,)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(self.stem(x)).mean((2, 3)))


# LeViT-128S: D=16 keys, attention ratio 2 (values of 32), MLP ratio 2.
PAPER = dict(
    dims=(128, 256, 384), depths=(2, 3, 4), heads=(4, 6, 8), dim_key=16, dim_value=32,
    mlp_mult=2, stem_channels=(32, 64, 128),
)
# Same stem, three stages and shrinking attentions, one block each, narrow: ~40k parameters.
TINY = dict(
    dims=(16, 24, 32), depths=(1, 1, 1), heads=(1, 2, 2), dim_key=8, dim_value=16,
    mlp_mult=2, stem_channels=(8, 16, 16),
)


def build_levit(num_classes: int, image_size: int, act: str = "gelu", *, dropout: float,
                drop_path: float, **cfg) -> LeViT:
    strides = (2, 2, 1, 1) if is_small_image(image_size) else (2, 2, 2, 2)
    net = LeViT(num_classes, image_size, stem_strides=strides, dropout=dropout,
                drop_path=drop_path, **cfg)
    return replace_gelu(net, act)


register_family(
    "levit",
    category="Hybrid",
    build=build_levit,
    sizes={"paper": PAPER, "tiny": TINY},
    paper_params_m=6.67,
    description="LeViT-128S hyper-parameters on vit-pytorch's LeViT blocks, stride-4 stem at 32 px",
    relu_twin="LeViT with vit-pytorch's GELUs replaced by ReLU (activation study)",
)
