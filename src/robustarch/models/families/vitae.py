"""ViTAE-S (Xu et al. 2021, "ViTAE: Vision Transformer Advanced by Exploring Intrinsic
Inductive Bias"), in plain PyTorch.

ViTAE-S as the authors' code configures it (``ViTAE_basic_Small``, ViTAE-Transformer repo):

* reduction cells (RC) turn the image into tokens: a pyramid reduction module (PRM: parallel
  dilated convs + GELU, concatenated on channels) feeds a single-head Performer attention
  (T2T-style, value skip), a parallel convolution module (PCM: three 3x3 convs with SiLU) is
  added to it, then a 1x-wide MLP. ImageNet stem: RC(x4, 7x7, dilations 1-4, 64 -> 96 tokens),
  RC(x2, 3x3, dilations 1-3, 64 -> 192), and a PRM-only RC(x2, 3x3, dilations 1-2, 192 -> 384);
* 14 normal cells (NC) of width 384: 6-head self-attention (qkv bias) in parallel with a PCM
  (grouped 3x3 convs, 96 groups, widening x3) plus an MLP of ratio 3, LayerNorm eps 1e-6;
* mean of the tokens -> Linear (no class token, no position embedding).

Small images (<= 64 px) drop the first (x4) reduction cell, so that the stem down-samples by 4
and the normal cells see 8x8 tokens at 32 px (x16 would leave 2x2): 23.179M at 32 px / 10
classes (Table 1: 23.18M). The ImageNet stem gives 23.628M trainable (23.651M counting the
Performers' fixed random features, which this module keeps as buffers).

``vitae-relu`` swaps every GELU (PRM, Performer MLPs, NC MLPs) for ReLU; the PCMs' SiLU is the
convolution branch's own activation and stays.

Regularization (0 by default), in the normal cells as ViTAE's code: ``dropout`` on the
attention probabilities, the attention output and in the MLP (after the activation and the
output); ``drop_path`` on the attention, PCM and MLP branches (independent draws), rates linear
over the cells. The reduction cells are the tokenizer (like CCT's or CvT's embeddings) and get
neither; the T2T Performer's own dropout 0.1 is not used.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import register_family
from ._hybrid_blocks import ACTIVATIONS, init_like_timm, is_small_image
from ._regularization import DropPath, block_rates
from ._transformer_blocks import mlp_forward


def _tokens_to_map(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    return x.transpose(1, 2).reshape(x.shape[0], -1, *hw)


class PyramidReduction(nn.Module):
    """PRM: one strided conv per dilation rate (same output grid), outputs concatenated."""

    def __init__(self, in_chans, embed_dim, kernel_size, stride, dilations, act_layer):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(in_chans, embed_dim, kernel_size, stride,
                          math.ceil(((kernel_size - 1) * d + 1 - stride) / 2), dilation=d),
                act_layer(),
            )
            for d in dilations
        )
        self.out_chans = embed_dim * len(dilations)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        y = torch.cat([conv(x) for conv in self.convs], dim=1)
        return y.flatten(2).transpose(1, 2), (y.shape[2], y.shape[3])


class PerformerAttention(nn.Module):
    """T2T's single-head Performer: FAVOR+ positive random features, ``v`` as the skip.

    The random features are fixed (a buffer, as the original's ``requires_grad=False``). The
    exponentials are shifted by their max (per query row, and per sample for keys), which
    cancels between numerator and denominator but keeps exp() from overflowing.
    """

    def __init__(self, dim: int, out_dim: int, kernel_ratio: float = 0.5):
        super().__init__()
        self.out_dim = out_dim
        self.kqv = nn.Linear(dim, 3 * out_dim)
        self.proj = nn.Linear(out_dim, out_dim)
        m = int(out_dim * kernel_ratio)
        w = nn.init.orthogonal_(torch.empty(m, out_dim)) * math.sqrt(m)
        self.register_buffer("w", w)

    def _features(self, x: torch.Tensor, per_row: bool) -> torch.Tensor:
        wtx = x @ self.w.t() - (x * x).sum(-1, keepdim=True) / 2  # log of the random features
        shift = wtx.amax(-1, keepdim=True) if per_row else wtx.amax((-2, -1), keepdim=True)
        return torch.exp(wtx - shift.detach()) / math.sqrt(self.w.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kqv = self.kqv(x)
        # Random-feature sums in float32 even under bf16 autocast (as the original's .float()).
        with torch.autocast(device_type=x.device.type, enabled=False):
            k, q, v = kqv.float().split(self.out_dim, dim=-1)
            kp, qp = self._features(k, per_row=False), self._features(q, per_row=True)
            denom = qp @ kp.sum(1).unsqueeze(-1)  # (B, T, 1)
            y = qp @ (kp.transpose(1, 2) @ v) / (denom + 1e-8)
        return v.to(kqv.dtype) + self.proj(y.to(kqv.dtype))


class ReductionCell(nn.Module):
    def __init__(
        self, in_chans, embed_dim, token_dim, ratio, kernel_size, dilations, performer,
        act_layer,
    ):
        super().__init__()
        self.prm = PyramidReduction(in_chans, embed_dim, kernel_size, ratio, dilations, act_layer)
        self.performer = performer
        if not performer:  # "performer_less": the PRM alone makes the tokens
            if self.prm.out_chans != token_dim:
                raise ValueError("a PRM-only reduction cell needs embed * len(dilations) tokens")
            return
        strides, rest = [], ratio // 2
        for _ in range(3):  # the PCM spreads the cell's down-sampling over its first convs
            strides.append(2 if rest > 0 else 1)
            rest //= 2
        self.pcm = nn.Sequential(
            nn.Conv2d(in_chans, embed_dim, 3, strides[0], 1), nn.SiLU(),
            nn.Conv2d(embed_dim, embed_dim, 3, strides[1], 1), nn.BatchNorm2d(embed_dim),
            nn.SiLU(),
            nn.Conv2d(embed_dim, token_dim, 3, strides[2], 1), nn.SiLU(),
        )
        self.norm1 = nn.LayerNorm(self.prm.out_chans)
        self.attn = PerformerAttention(self.prm.out_chans, token_dim)
        self.norm2 = nn.LayerNorm(token_dim)
        self.mlp = nn.Sequential(
            nn.Linear(token_dim, token_dim), act_layer(), nn.Linear(token_dim, token_dim)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:  # x: (B,C,H,W)
        tokens, hw = self.prm(x)
        if not self.performer:
            return tokens, hw
        conv = self.pcm(x).flatten(2).transpose(1, 2)
        t = self.attn(self.norm1(tokens)) + conv
        return t + self.mlp(self.norm2(t)), hw


class NormalCell(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, groups, act_layer, dropout=0.0, drop_path=0.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.attn_dropout = float(dropout)
        self.pcm = nn.Sequential(
            nn.Conv2d(dim, hidden, 3, 1, 1, groups=groups), nn.BatchNorm2d(hidden), nn.SiLU(),
            nn.Conv2d(hidden, dim, 3, 1, 1, groups=groups), nn.BatchNorm2d(dim), nn.SiLU(),
            nn.Conv2d(dim, dim, 3, 1, 1, groups=groups), nn.SiLU(),
        )
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), act_layer(), nn.Linear(hidden, dim))
        self.drop = nn.Dropout(dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        conv = self.pcm(_tokens_to_map(x, hw)).flatten(2).transpose(1, 2)
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.attn_dropout if self.training else 0.0)
        attn = self.drop(self.proj(attn.transpose(1, 2).reshape(b, n, c)))
        x = x + self.drop_path(attn) + self.drop_path(conv)
        return x + self.drop_path(mlp_forward(self.mlp, self.drop, self.norm2(x)))


class ViTAE(nn.Module):
    def __init__(self, num_classes, reduction_cells, depth, heads, mlp_ratio, groups, act,
                 dropout=0.0, drop_path=0.0):
        super().__init__()
        act_layer = ACTIVATIONS[act]
        cells, in_chans = [], 3
        for rc in reduction_cells:
            cells.append(ReductionCell(in_chans, act_layer=act_layer, **rc))
            in_chans = rc["token_dim"]
        self.reduction = nn.ModuleList(cells)
        self.cells = nn.ModuleList(
            NormalCell(in_chans, heads, mlp_ratio, groups, act_layer, dropout, rate)
            for rate in block_rates(drop_path, depth)
        )
        self.head = nn.Linear(in_chans, num_classes)
        init_like_timm(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hw = x.shape[2:]
        for i, cell in enumerate(self.reduction):
            x, hw = cell(x if i == 0 else _tokens_to_map(x, hw))
        for cell in self.cells:
            x = cell(x, hw)
        return self.head(x.mean(1))


# ViTAE-S's reduction cells, both scales: (down-sampling ratio, PRM kernel, PRM dilations,
# Performer attention) of the x4, x2 and PRM-only x2 cells.
RC_LAYOUT = ((4, 7, (1, 2, 3, 4), True), (2, 3, (1, 2, 3), True), (2, 3, (1, 2), False))


def _reduction_cells(*dims: tuple[int, int]) -> tuple[dict, ...]:
    """The cells of :data:`RC_LAYOUT` with these (embed_dim, token_dim), one pair per cell."""
    return tuple(dict(embed_dim=embed, token_dim=token, ratio=ratio, kernel_size=kernel,
                      dilations=dilations, performer=performer)
                 for (embed, token), (ratio, kernel, dilations, performer)
                 in zip(dims, RC_LAYOUT, strict=True))


PAPER = dict(reduction_cells=_reduction_cells((64, 96), (64, 192), (192, 384)),
             depth=14, heads=6, mlp_ratio=3.0, groups=96)
# Same RC/NC structure (Performer RC, PRM-only RC, NCs with PCM), narrow: ~70k parameters.
TINY = dict(reduction_cells=_reduction_cells((8, 16), (8, 24), (24, 48)),
            depth=2, heads=2, mlp_ratio=2.0, groups=12)


def build_vitae(num_classes: int, image_size: int, act: str = "gelu", *, dropout: float,
                drop_path: float, **cfg) -> ViTAE:
    if is_small_image(image_size):
        # 32-px stem: without the x4 cell, the x2 Performer cell reads the image directly.
        cfg["reduction_cells"] = cfg["reduction_cells"][1:]
    return ViTAE(num_classes, act=act, dropout=dropout, drop_path=drop_path, **cfg)


register_family(
    "vitae",
    category="Hybrid",
    build=build_vitae,
    sizes={"paper": PAPER, "tiny": TINY},
    paper_params_m=23.18,
    description="ViTAE-S: Performer/PRM/PCM reduction cells + 14 normal cells, x4 stem at 32 px",
    relu_twin="ViTAE-S with every GELU replaced by ReLU (activation study)",
)
