"""Weight sparsity (paper Figs. 1 and 2): histograms and the sparsity ratio of a model's weights.

*Weights* are every parameter with two or more dimensions (convolution and linear kernels,
attention tables, embeddings, tokens) whose module is not a normalization layer; biases,
layer-scale vectors and normalization parameters are not weights. The *sparsity ratio* of a set
of weights is the share with ``|w| < threshold * max|w|``, the maximum taken over that set
(paper: threshold 0.01).

Components, decided per weight from module names and types (docs/analysis.md lists what
this gives per family), first match wins:

1. ``qkv``: below a module named q, k, v, qkv, kqv, kv, to_q, to_k, to_v, to_qkv or to_kv, or
   a ``MultiheadAttention``'s ``in_proj_weight``: the query/key/value projections.
2. ``attn_other``: any other weight below an attention module (class name ending in
   ``Attention`` or ``MHSA``): output projections, spatial-reduction convolutions, relative
   position tables; also ``proj``/``to_out`` beside a QKV projection in a block that inlines
   its attention (ViTAE's normal cells).
3. ``ffn``: below a feed-forward block (class ``Mlp*``, ``*FeedForward``, ``LeFF``, or a module
   named mlp, ff, ffn, leff, token_mlp, channel_mlp, linear1, linear2), whatever its layer type
   (PVTv2's depth-wise convolution and PoolFormer's 1x1 convolutions included).
4. ``conv``: any other convolution (stems, patch embeddings, convolution blocks, shortcuts).
5. ``other``: the rest (classifier heads, squeeze-excite and patch-merging linears, position
   embeddings and class tokens).
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from ..models.weights import is_weight
from . import COMPONENTS

QKV_NAMES = frozenset({"q", "k", "v", "qkv", "kqv", "kv", "to_q", "to_k", "to_v", "to_qkv",
                       "to_kv"})
ATTN_OUT_NAMES = frozenset({"proj", "to_out", "out_proj"})
FFN_NAMES = frozenset({"mlp", "ff", "ffn", "leff", "token_mlp", "channel_mlp", "linear1",
                       "linear2"})
_ATTENTION_CLASS = re.compile(r"(Attention|MHSA)$")
_FFN_CLASS = re.compile(r"^(Mlp\w*|\w*FeedForward|LeFF)$")
# Class names of normalization layers outside torch.nn (timm's LayerNorm2d and GroupNorm1,
# vit-pytorch's LayerNorm, our TokenBatchNorm); anchored so that e.g. ViTAE's NormalCell is not.
def _component(path: list[tuple[str, nn.Module]], param_name: str) -> str:
    """The component of the parameter ``param_name`` of ``path[-1][1]``; ``path`` runs from the
    model's first child down to the owning module as (name, module) pairs."""
    names = [name for name, _ in path]
    if QKV_NAMES.intersection(names) or param_name == "in_proj_weight":
        return "qkv"
    if any(_ATTENTION_CLASS.search(type(m).__name__) for _, m in path):
        return "attn_other"
    for i, name in enumerate(names):
        parent = path[i - 1][1] if i else None
        if name in ATTN_OUT_NAMES and parent is not None and any(
                child in QKV_NAMES for child, _ in parent.named_children()):
            return "attn_other"
    if FFN_NAMES.intersection(names) or any(_FFN_CLASS.search(type(m).__name__)
                                            for _, m in path):
        return "ffn"
    if isinstance(path[-1][1], nn.modules.conv._ConvNd):
        return "conv"
    return "other"


def weight_components(model: nn.Module) -> dict[str, str]:
    """Every weight of ``model`` by parameter name, mapped to its component."""
    modules = dict(model.named_modules())
    result: dict[str, str] = {}
    for module_name, module in modules.items():
        parts = module_name.split(".") if module_name else []
        path = [(parts[i], modules[".".join(parts[: i + 1])]) for i in range(len(parts))]
        for param_name, param in module.named_parameters(recurse=False):
            if is_weight(module, param):
                full = f"{module_name}.{param_name}" if module_name else param_name
                result[full] = _component(path or [("", model)], param_name)
    return result


def _sparse_count(magnitude: torch.Tensor, threshold: float) -> int:
    peak = magnitude.max()
    if peak == 0:  # all zero: every weight is as sparse as can be
        return magnitude.numel()
    return int((magnitude < threshold * peak).sum())


def sparsity_ratio(weights: torch.Tensor, threshold: float = 0.01) -> float:
    """Share of ``weights`` with ``|w| < threshold * max|w|`` (NaN for an empty set)."""
    magnitude = weights.detach().abs().flatten().double()
    if magnitude.numel() == 0:
        return float("nan")
    return _sparse_count(magnitude, threshold) / magnitude.numel()


def _summary(values: torch.Tensor, threshold: float, bins: int) -> dict[str, Any]:
    if values.numel() == 0:
        return {"weights": 0, "max_abs": None, "sparse": 0, "ratio": None, "histogram": None}
    values = values.double()
    peak = float(values.abs().max())
    span = peak if peak > 0 else 1.0  # a zero set still gets a well-defined histogram range
    counts = torch.histc(values, bins=bins, min=-span, max=span)
    sparse = _sparse_count(values.abs(), threshold)
    return {
        "weights": int(values.numel()),
        "max_abs": peak,
        "sparse": sparse,
        "ratio": sparse / values.numel(),
        "histogram": {"range": [-span, span], "counts": [int(c) for c in counts.tolist()]},
    }


def sparsity_report(model: nn.Module, threshold: float = 0.01, bins: int = 200
                    ) -> dict[str, Any]:
    """Sparsity of all weights and of each component (its own max|w|), with histograms.

    ``components`` holds ``all`` and every name of :data:`COMPONENTS` (``weights`` 0 and
    ``ratio`` None where a model has none); ``parameters`` lists, per component, the weight
    names with block indices replaced by ``#``, which shows how the rule classified the model.
    """
    params = dict(model.named_parameters())
    assigned = weight_components(model)
    groups: dict[str, list[torch.Tensor]] = {c: [] for c in COMPONENTS}
    patterns: dict[str, list[str]] = {c: [] for c in COMPONENTS}
    for name, component in assigned.items():
        groups[component].append(params[name].detach().flatten().cpu())
        pattern = re.sub(r"\.\d+(?=\.)", ".#", name)
        if pattern not in patterns[component]:
            patterns[component].append(pattern)
    flat = {c: torch.cat(v) if v else torch.empty(0) for c, v in groups.items()}
    components = {"all": _summary(torch.cat(list(flat.values())), threshold, bins)}
    components.update({c: _summary(flat[c], threshold, bins) for c in COMPONENTS})
    return {"threshold": threshold, "bins": bins, "components": components,
            "parameters": patterns}

