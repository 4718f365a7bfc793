"""Which parameters are *weights*: the rule shared by the ℓ1 penalty in training and the
sparsity analysis, so that both act on the same tensors.

Weights are parameters with two or more dimensions (convolution and linear kernels, attention
tables, embeddings, tokens) whose module is not a normalization layer; biases, layer-scale
vectors and normalization parameters (also CvT's 4-d LayerNorm gain and bias) are not.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import torch
from torch import nn

_NORM_CLASS = re.compile(r"Norm(\d+d?)?$")
_TORCH_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


def is_normalization(module: nn.Module) -> bool:
    return isinstance(module, _TORCH_NORMS) or bool(_NORM_CLASS.search(type(module).__name__))


def is_weight(module: nn.Module, param: torch.Tensor) -> bool:
    """Whether ``param``, owned directly by ``module``, is a weight."""
    return param.ndim >= 2 and not is_normalization(module)


def weight_parameters(model: nn.Module) -> Iterator[torch.Tensor]:
    """Every weight of ``model`` once (shared parameters are yielded once)."""
    seen: set[int] = set()
    for module in model.modules():
        for param in module.parameters(recurse=False):
            if id(param) not in seen and is_weight(module, param):
                seen.add(id(param))
                yield param
