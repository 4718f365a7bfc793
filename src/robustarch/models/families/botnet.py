"""BoTNet (Srinivas et al. 2021): ResNet-50 whose last-stage 3x3 convs are replaced by
multi-head self-attention with 2D relative position logits, with the CIFAR stem.

Regularization as the ResNet (the CNN rule): stochastic depth on every bottleneck's branch,
dropout before the classifier; the attention replaces a conv inside a bottleneck (no MLP, not a
transformer block) and gets no dropout of its own."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_family
from ._cnn_blocks import RESNET50, Bottleneck, ResNetBody, stem_reduction


class RelPosMHSA(nn.Module):
    """All-to-all MHSA over a ``size`` x ``size`` map; logits = q.k + q.r_dx + q.r_dy.

    The relative tables (one per axis, shared by the heads, as in BoTNet) have 2*size-1 rows,
    so they are sized from the feature map the network will see.
    """

    def __init__(self, dim: int, size: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} not divisible by {heads} heads")
        self.heads, self.size = heads, size
        head_dim = dim // heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=False)
        self.rel_h = nn.Parameter(torch.randn(2 * size - 1, head_dim) * self.scale)
        self.rel_w = nn.Parameter(torch.randn(2 * size - 1, head_dim) * self.scale)
        pos = torch.arange(size)
        # rel_idx[i, j]: row of the table for offset j - i, shifted to be >= 0.
        self.register_buffer("rel_idx", pos[None, :] - pos[:, None] + size - 1, persistent=False)
        self.register_buffer("rows", pos[:, None], persistent=False)

    def _rel_logits(self, q: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """q (B, n, A, L, d) -> (B, n, A, Lq, Lk) logits along the last spatial axis L."""
        logits = q @ table.t()  # (B, n, A, L, 2L-1)
        return logits[:, :, :, self.rows, self.rel_idx]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if h != self.size or w != self.size:
            raise ValueError(f"BoTNet attention built for {self.size}x{self.size}, got {h}x{w}")
        n = self.heads
        q, k, v = self.qkv(x).reshape(b, 3, n, c // n, h * w).unbind(1)  # (B, n, d, N)
        q = q.transpose(-2, -1) * self.scale  # (B, n, N, d)
        logits = q @ k  # (B, n, N, N)
        q_map = q.reshape(b, n, h, w, -1)
        rel_w = self._rel_logits(q_map, self.rel_w)  # (B, n, H, Wq, Wk)
        rel_h = self._rel_logits(q_map.transpose(2, 3), self.rel_h).transpose(2, 3)  # (B,n,Hq,W,Hk)
        logits = logits.view(b, n, h, w, h, w) + rel_w[:, :, :, :, None, :] + rel_h[..., None]
        attn = logits.reshape(b, n, h * w, h * w).softmax(dim=-1)
        out = attn @ v.transpose(-2, -1)  # (B, n, N, d)
        return out.transpose(-2, -1).reshape(b, c, h, w)


def botnet_body(
    num_classes: int,
    image_size: int,
    depths: list[int],
    planes: list[int],
    stem_width: int,
    heads: int,
    *,
    dropout: float,
    drop_path: float,
) -> nn.Module:
    # Side of the map entering the last stage: stride-2 convs (k3/p1 or k1/p0) give ceil(s/2).
    size = image_size // stem_reduction(image_size)
    for _ in range(len(depths) - 2):
        size = (size + 1) // 2

    def mhsa(width: int, stride: int) -> nn.Module:
        # The downsampling block attends at full resolution then average-pools, as in BoTNet.
        if stride == 1:
            return RelPosMHSA(width, (size + 1) // 2, heads)
        return nn.Sequential(RelPosMHSA(width, size, heads), nn.AvgPool2d(2, 2, ceil_mode=True))

    mixers = [None] * (len(depths) - 1) + [mhsa]
    return ResNetBody(
        Bottleneck, depths, planes, num_classes, image_size, stem_width, mixers=mixers,
        dropout=dropout, drop_path=drop_path,
    )


register_family(
    "botnet",
    category="Hybrid",
    build=botnet_body,
    sizes={"paper": dict(RESNET50["paper"], heads=4), "tiny": dict(RESNET50["tiny"], heads=2)},
    paper_params_m=18.82,
    description="BoTNet-50: ResNet-50 with relative-position MHSA in the last stage",
)
