"""Swin-T (Liu et al. 2021) from timm, scaled to small images.

timm's ``swin_tiny_patch4_window7_224`` configuration (embed dim 96, depths 2-2-6-2, heads
3-6-12-24, MLP ratio 4, qkv bias, relative position bias, shifted windows) built through
``timm.create_model`` with the patch and window sizes adapted to the input:

* small images (<= 64 px): patch 2 and windows of at most 4, so that the four stages see
  16-8-4-2 grids at 32 px (patch 4 / window 7 would leave stage 4 with a single token);
* larger images: Swin-T's own patch 4 and windows of at most 7 (56-28-14-7 at 224 px).

Each stage's window is the largest size not above that cap that divides the stage grid, so
windows always tile the grid exactly (no padding); a window covering the whole grid is not
shifted (timm's rule). At 32 px / 10 classes this is 27.505M (Table 1: 27.42M; the gap is
timm's Swin-T itself, 27.527M with 10 classes at 224 px).

Regularization: timm's Swin defaults to stochastic depth 0.1; here ``drop_path`` is timm's
``drop_path_rate`` (linear over the blocks) and ``dropout`` its ``attn_drop_rate`` and
``proj_drop_rate`` (attention probabilities, attention output, MLP), 0 by default; timm's head
dropout (``drop_rate``) stays 0.
"""

from __future__ import annotations

from torch import nn

from ..registry import register_family
from ._transformer_blocks import assert_no_gelu, is_small_image, replace_gelu

PAPER: dict = {}  # timm's swin_tiny_patch4_window7_224 as it is (Swin-T)
TINY = dict(embed_dim=8, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8))


def stage_windows(grid: int, max_window: int, num_stages: int = 4) -> tuple[int, ...]:
    """Per stage, the largest window <= ``max_window`` that divides that stage's grid."""
    if grid % 2 ** (num_stages - 1):
        raise ValueError(f"a {grid}x{grid} patch grid cannot be halved {num_stages - 1} times")
    sizes = []
    for i in range(num_stages):
        res = grid // 2**i
        sizes.append(max(w for w in range(1, min(max_window, res) + 1) if res % w == 0))
    return tuple(sizes)


def build_swin(num_classes: int, image_size: int, act: str = "gelu", *, dropout: float,
               drop_path: float, **arch) -> nn.Module:
    patch, max_window = (2, 4) if is_small_image(image_size) else (4, 7)
    if image_size % patch:
        raise ValueError(f"image_size {image_size} is not divisible by the patch size {patch}")
    kwargs = dict(
        img_size=image_size,
        patch_size=patch,
        window_size=stage_windows(image_size // patch, max_window),
        num_classes=num_classes,
        drop_path_rate=drop_path,
        attn_drop_rate=dropout,
        proj_drop_rate=dropout,
        **arch,
    )
    # Imported here: vit-pytorch/timm pull in torchvision, seconds per job that builds no model.
    import timm

    model = timm.create_model("swin_tiny_patch4_window7_224", **kwargs)
    # timm's SwinTransformer has no model-level activation argument: swap the modules.
    if act != "gelu":
        replace_gelu(model, act)
        assert_no_gelu(model)
    return model


register_family(
    "swin",
    category="Transformer",
    build=build_swin,
    sizes={"paper": PAPER, "tiny": TINY},
    paper_params_m=27.42,
    description="Swin-T (timm swin_tiny) with patch 2 / window 4 for small images",
    relu_twin="Swin-T with every GELU replaced by ReLU (activation study)",
)
