"""PoolFormer-S12 (Yu et al. 2022, MetaFormer) from timm, with a small-image stem.

timm's MetaFormer class with exactly the arguments of timm's ``poolformer_s12`` (depths 2-2-6-2,
dims 64-128-320-512, 3x3 average-pool token mixer, GroupNorm, layer scale, GELU MLP), except the
stem: its 7x7 stride-4 conv would shrink a 32 px image to 8x8 before the first stage (1x1 at
stage 4), so for small images it is replaced by a 3x3 stride-1 conv (stage grids 32-16-8-4 at
32 px). That gives 11.400M at 32 px / 10 classes (Table 1: 11.39M); the unmodified timm model
has 11.407M. Images over 64 px keep timm's stem.

Regularization: ``drop_path`` is MetaFormer's ``drop_path_rate`` (linear over the blocks),
``dropout`` its ``proj_drop_rate`` (the MLP's dropout; the pooling mixer has none); the head
dropout (``drop_rate``) stays 0.
"""

from __future__ import annotations

from torch import nn

from ..registry import register_family
from ._transformer_blocks import ACTIVATIONS, assert_no_gelu, is_small_image

# The keyword arguments timm's ``poolformer_s12`` passes to MetaFormer besides depths/dims; the
# tiny scale reuses them so that it is the same family at a smaller depth and width.
_POOLFORMER_KWARGS = dict(
    downsample_norm=None,
    mlp_bias=True,
    layer_scale_init_values=1e-5,
    res_scale_init_values=None,
    use_mlp_head=False,
)
# ``small_image_stem_stride``: the 3x3 stem conv's stride for small images. Stride 1 at paper
# scale; the tiny scale uses stride 2, since a full-resolution first stage costs ~0.5 s per CPU
# training step even at width 8 (grids 16-8-4-2 at 32 px).
PAPER = dict(depths=(2, 2, 6, 2), dims=(64, 128, 320, 512), small_image_stem_stride=1)  # s12
TINY = dict(depths=(1, 1, 1, 1), dims=(8, 16, 32, 64), small_image_stem_stride=2)


def build_poolformer(
    num_classes: int, image_size: int, small_image_stem_stride: int, act: str = "gelu", *,
    dropout: float, drop_path: float, **cfg
) -> nn.Module:
    # Built from MetaFormer with poolformer_s12's arguments rather than through
    # timm.create_model("poolformer_s12"), which hard-codes GELU (the ReLU variant needs it).
    # Imported here: vit-pytorch/timm pull in torchvision, seconds per job that builds no model.
    from timm.layers import trunc_normal_
    from timm.models.metaformer import GroupNorm1, MetaFormer

    model = MetaFormer(
        num_classes=num_classes, mlp_act=ACTIVATIONS[act], norm_layers=GroupNorm1, **cfg,
        drop_path_rate=drop_path, proj_drop_rate=dropout, **_POOLFORMER_KWARGS,
    )
    if is_small_image(image_size):
        conv = nn.Conv2d(
            3, model.stem.conv.out_channels, 3, stride=small_image_stem_stride, padding=1
        )
        trunc_normal_(conv.weight, std=0.02)  # timm's MetaFormer init
        nn.init.zeros_(conv.bias)
        model.stem.conv = conv
    if act != "gelu":
        assert_no_gelu(model)
    return model


register_family(
    "poolformer",
    category="Transformer",
    build=build_poolformer,
    sizes={"paper": PAPER, "tiny": TINY},
    paper_params_m=11.39,
    description="PoolFormer-S12 (timm poolformer_s12) with a 3x3 stride-1 stem for small images",
    relu_twin="PoolFormer-S12 with its GELU MLP activation replaced by ReLU (activation study)",
)
