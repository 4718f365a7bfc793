"""CvT-13 (Wu et al. 2021), from vit-pytorch.

vit-pytorch's ``CvT`` built through its public constructor; its defaults are CvT-13: three
stages of dims 64/192/384, depths 1/2/10, heads 1/3/6 (64 per head), MLP ratio 4, convolutional
token embeddings (kernels 7/3/3, strides 4/2/2) and depthwise-separable convolutional q/k/v
projections (kernel 3, key/value stride 2). No position embedding, so nothing is sized from
``image_size``.

Small images (<= 64 px) get a 3x3 stride-2 first token embedding instead of 7x7 stride 4, so
that the stages see 16-8-4 grids at 32 px (stride 4 would leave stage 3 with 2x2 queries
attending to a single key/value token). The smaller kernel is also what lands on Table 1:
19.548M (19.54M); the 7x7 embedding gives 19.555M. ``cvt-relu`` swaps every GELU for ReLU.

Regularization: ``dropout`` is vit-pytorch's ``dropout`` (attention probabilities, attention
output, MLP); ``drop_path``, which vit-pytorch's CvT lacks, drops the attention and MLP
branches of its transformer layers (rates linear over the layers of all three stages, as CvT's
own code), through parameter-free hooks (``_regularization.drop_branches``).
"""

from __future__ import annotations

from torch import nn

from ..registry import register_family
from ._hybrid_blocks import is_small_image, replace_gelu
from ._regularization import block_rates, drop_branches

# CvT-13 = vit-pytorch's defaults, spelled out.
PAPER = dict(
    s1_emb_dim=64, s1_heads=1, s1_depth=1,
    s2_emb_dim=192, s2_heads=3, s2_depth=2,
    s3_emb_dim=384, s3_heads=6, s3_depth=10,
)
# Same three conv-embedding + conv-projection stages, one block each, narrow (vit-pytorch fixes
# 64 dims per head, so one head per stage): ~60k parameters.
TINY = dict(
    s1_emb_dim=16, s1_heads=1, s1_depth=1, s1_mlp_mult=2,
    s2_emb_dim=32, s2_heads=1, s2_depth=1, s2_mlp_mult=2,
    s3_emb_dim=48, s3_heads=1, s3_depth=1, s3_mlp_mult=2,
)


def build_cvt(num_classes: int, image_size: int, act: str = "gelu", *, dropout: float,
              drop_path: float, **cfg) -> nn.Module:
    if is_small_image(image_size):
        cfg.update(s1_emb_kernel=3, s1_emb_stride=2)
    # Imported here: vit-pytorch/timm pull in torchvision, seconds per job that builds no model.
    from vit_pytorch.cvt import CvT

    net = CvT(num_classes=num_classes, dropout=dropout, **cfg)
    # Each stage is (conv embedding, LayerNorm, Transformer); a layer computes x + attn(x),
    # then x + ff(x).
    layers = [layer for stage in net.layers for layer in stage[2].layers]
    rates = block_rates(drop_path, len(layers))
    drop_branches((branch, rate) for (attn, ff), rate in zip(layers, rates, strict=True)
                  for branch in (attn, ff))
    return replace_gelu(net, act)


register_family(
    "cvt",
    category="Hybrid",
    build=build_cvt,
    sizes={"paper": PAPER, "tiny": TINY},
    paper_params_m=19.54,
    description="CvT-13 (vit-pytorch): conv token embeddings + conv projections, 1-2-10 blocks",
    relu_twin="CvT-13 with every GELU replaced by ReLU (activation study)",
)
