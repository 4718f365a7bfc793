"""CCT-7/3x1 (Hassani et al. 2021, "Escaping the Big Data Paradigm with Compact Transformers").

Built with vit-pytorch's ``CCT`` (the family the paper used): embed dim 256, 7 encoder layers,
4 heads, MLP ratio 2, a convolutional tokenizer of one 3x3 conv (stride 1) + ReLU + 3x3/2 max
pool, learnable position embedding and sequence pooling; vit-pytorch's defaults otherwise,
except the regularization: vit-pytorch's CCT defaults to attention dropout 0.1 and stochastic
depth 0.1, here both follow the shared keys (0 by default): ``dropout`` is vit-pytorch's
``dropout_rate`` (after the position embedding, on the attention output and in the MLP) and
``attention_dropout``, ``drop_path`` its ``stochastic_depth_rate`` (linear over the layers).
3.760M at 32 px / 10 classes (Table 1: 3.76M).

Images over 64 px use CCT's ImageNet tokenizer (two 7x7 stride-2 convs, as in CCT-14/7x2):
with the 3x1 tokenizer a 224 px image would give 12,544 tokens.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from ..registry import register_family
from ._transformer_blocks import is_small_image

# CCT-7, with the 3x1 tokenizer (one 3x3 stride-1 conv) for small images.
PAPER = dict(
    embedding_dim=256, num_layers=7, num_heads=4, mlp_ratio=2.0,
    small_image_tokenizer=dict(kernel_size=3, stride=1, padding=1),
)
# The tiny scale tokenizes with one 7x7 stride-2 conv (CCT-x/7x1, CCT's stride rule for 7x7):
# 8x8 tokens at 32 px instead of 16x16, since vit-pytorch's attention over 256 tokens costs
# seconds per CPU training step.
TINY = dict(
    embedding_dim=64, num_layers=2, num_heads=2, mlp_ratio=2.0,
    small_image_tokenizer=dict(kernel_size=7, stride=2, padding=3),
)


def build_cct(
    num_classes: int,
    image_size: int,
    small_image_tokenizer: dict,
    act: str = "gelu",
    *,
    dropout: float,
    drop_path: float,
    **cfg,
) -> nn.Module:
    if is_small_image(image_size):
        tokenizer = dict(small_image_tokenizer, n_conv_layers=1)
    else:
        tokenizer = dict(kernel_size=7, stride=2, padding=3, n_conv_layers=2)
    # Imported here: vit-pytorch/timm pull in torchvision, seconds per job that builds no model.
    from vit_pytorch.cct import CCT

    model = CCT(
        img_size=image_size,
        num_classes=num_classes,
        positional_embedding="learnable",
        pooling_kernel_size=3,
        pooling_stride=2,
        pooling_padding=1,
        dropout_rate=dropout,
        attention_dropout=dropout,
        stochastic_depth_rate=drop_path,
        **tokenizer,
        **cfg,
    )
    if act == "relu":
        # vit-pytorch's encoder layer calls its activation functionally (F.gelu); the tokenizer
        # already uses ReLU, so this makes the whole network ReLU.
        for block in model.classifier.blocks:
            block.activation = F.relu
    elif act != "gelu":
        raise ValueError(f"unknown activation {act!r}")
    return model


register_family(
    "cct",
    category="Hybrid",
    build=build_cct,
    sizes={"paper": PAPER, "tiny": TINY},
    paper_params_m=3.76,
    description="CCT-7/3x1 (vit-pytorch): 7 layers, dim 256, conv tokenizer, sequence pooling",
    relu_twin="CCT-7/3x1 with every GELU replaced by ReLU (activation study)",
)
