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

*Trained weights* exclude the elements that never had a non-zero gradient in training (the
``untrained`` record of ``model.pt``, :mod:`robustarch.train.outputs`): they only shrank by
AdamW's decoupled weight decay, so they measure the initialization, not what training learnt.
Every set is summarized twice, over all its weights and over its trained weights only (with the
threshold's max|w| taken over the trained ones).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
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


def _summary(values: torch.Tensor, threshold: float, bins: int, suffix: str = ""
             ) -> dict[str, Any]:
    """Count, max|w|, sparse count, ratio and histogram of ``values``, keys ending in
    ``suffix``."""
    keys = [f"{key}{suffix}" for key in ("weights", "max_abs", "sparse", "ratio", "histogram")]
    if values.numel() == 0:
        return dict(zip(keys, [0, None, 0, None, None], strict=True))
    values = values.double()
    peak = float(values.abs().max())
    span = peak if peak > 0 else 1.0  # a zero set still gets a well-defined histogram range
    counts = torch.histc(values, bins=bins, min=-span, max=span)
    sparse = _sparse_count(values.abs(), threshold)
    return dict(zip(keys, [
        int(values.numel()), peak, sparse, sparse / values.numel(),
        {"range": [-span, span], "counts": [int(c) for c in counts.tolist()]}], strict=True))


def _component_summary(values: torch.Tensor, trained: torch.Tensor, threshold: float,
                       bins: int) -> dict[str, Any]:
    """A set summarized over all its weights and over its ``trained`` ones (a bool mask)."""
    summary = _summary(values, threshold, bins)
    summary.update(_summary(values[trained], threshold, bins, "_trained"))
    summary["untrained_share"] = (1 - summary["weights_trained"] / summary["weights"]
                                  if summary["weights"] else None)
    return summary


def _trained_mask(name: str, param: torch.Tensor,
                  untrained: Mapping[str, torch.Tensor] | None) -> torch.Tensor:
    """Flat bool mask of the trained elements of weight ``name``."""
    mask = None if untrained is None else untrained.get(name)
    if mask is None:  # no record, or none of this weight's elements went untrained
        return torch.ones(param.numel(), dtype=torch.bool)
    if mask.shape != param.shape or mask.dtype != torch.bool:
        raise ValueError(f"the untrained record of {name} is a {mask.dtype} mask of shape "
                         f"{tuple(mask.shape)}, not a bool mask of the weight's "
                         f"{tuple(param.shape)}: it belongs to another model")
    return ~mask.detach().flatten().cpu()


def sparsity_report(model: nn.Module, threshold: float = 0.01, bins: int = 200,
                    untrained: Mapping[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """Sparsity of all weights and of each component (its own max|w|), with histograms, over
    all weights and over the trained ones.

    ``untrained`` maps parameter names to bool masks of the elements that never trained
    (``model.pt``'s record); None: not recorded, every weight counts as trained and
    ``untrained_known`` is False. ``components`` holds ``all`` and every name of
    :data:`COMPONENTS`: ``weights``, ``max_abs``, ``sparse``, ``ratio``, ``histogram``, the same
    with ``_trained`` over the trained weights only, and ``untrained_share`` (``weights`` 0 and
    ratios None where a model has none); ``untrained_weights`` counts the untrained elements
    of each weight that has some; ``parameters`` lists, per component, the weight names with
    block indices replaced by ``#``, which shows how the rule classified the model.
    """
    params = dict(model.named_parameters())
    unknown = sorted(set(untrained or {}) - set(params))
    if unknown:
        raise ValueError(f"the untrained record names parameters the model lacks: {unknown[:5]}"
                         "; it belongs to another model")
    assigned = weight_components(model)
    groups: dict[str, list[torch.Tensor]] = {c: [] for c in COMPONENTS}
    masks: dict[str, list[torch.Tensor]] = {c: [] for c in COMPONENTS}
    patterns: dict[str, list[str]] = {c: [] for c in COMPONENTS}
    counts: dict[str, int] = {}
    for name, component in assigned.items():
        groups[component].append(params[name].detach().flatten().cpu())
        masks[component].append(_trained_mask(name, params[name], untrained))
        if not masks[component][-1].all():
            counts[name] = int((~masks[component][-1]).sum())
        pattern = re.sub(r"\.\d+(?=\.)", ".#", name)
        if pattern not in patterns[component]:
            patterns[component].append(pattern)
    flat = {c: torch.cat(v) if v else torch.empty(0) for c, v in groups.items()}
    trained = {c: torch.cat(v) if v else torch.empty(0, dtype=torch.bool)
               for c, v in masks.items()}
    components = {"all": _component_summary(torch.cat(list(flat.values())),
                                            torch.cat(list(trained.values())), threshold, bins)}
    components.update({c: _component_summary(flat[c], trained[c], threshold, bins)
                       for c in COMPONENTS})
    return {"threshold": threshold, "bins": bins, "untrained_known": untrained is not None,
            "untrained_weights": counts, "components": components, "parameters": patterns}
