"""Weight loss landscape (paper Fig. 4): cross-entropy around the trained weights along two
random filter-normalized directions (Li et al., NeurIPS 2018).

A direction draws N(0, 1) for every weight (see :mod:`robustarch.analysis.sparsity`: tensors
of two or more dimensions outside normalization layers) and rescales each filter (slice along
the first dimension) to the norm of the matching filter of the weights; biases and
normalization parameters get zero. The loss L(a, b) of ``theta + a d1 + b d2`` is the mean
cross-entropy on fixed, seeded training samples with the model in eval mode (batch-norm running
statistics, no dropout), on a G x G grid over [-r, r]^2 whose centre (odd G) is the trained
model itself.

Sharpness, one number per model: the mean over the grid of L(a, b) - L(0, 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..models.weights import is_weight


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weights of ``model`` by parameter name (shared tensors once)."""
    result: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if is_weight(module, param) and id(param) not in seen:
                seen.add(id(param))
                result[f"{module_name}.{param_name}" if module_name else param_name] = param
    return result


def filter_normalized_direction(model: nn.Module, generator: torch.Generator
                                ) -> dict[str, torch.Tensor]:
    """A random direction for every weight of ``model``, filter-normalized (Li et al. 2018).

    Parameters missing from the result (biases, normalization) stay at zero. Drawn on the CPU,
    so that a seed gives the same direction on every device.
    """
    direction = {}
    for name, weight in _weights(model).items():
        d = torch.randn(weight.shape, generator=generator, dtype=torch.float32)
        w = weight.detach().float().cpu()
        w_norm = w.flatten(1).norm(dim=1)
        d_norm = d.flatten(1).norm(dim=1)
        scale = torch.where(d_norm > 0, w_norm / d_norm.clamp_min(1e-12), torch.zeros_like(w_norm))
        d = d * scale.view(-1, *([1] * (d.ndim - 1)))
        direction[name] = d.to(device=weight.device, dtype=weight.dtype)
    return direction


def grid_coordinates(grid: int, radius: float) -> np.ndarray:
    """``grid`` evenly spaced points over [-radius, radius]; the middle one of an odd grid is
    exactly 0 (np.linspace may leave it at ~1e-17, which would move the centre off theta)."""
    half = (grid - 1) / 2
    return radius * (np.arange(grid) - half) / half


def landscape_samples(n_train: int, samples: int, seed: int) -> torch.Tensor:
    """Indices of the fixed training samples: a seeded draw without replacement, sorted."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n_train, generator=generator)[: min(samples, n_train)].sort().values


@torch.no_grad()
def mean_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
              params: dict[str, torch.Tensor] | None = None) -> float:
    """Mean cross-entropy of ``model`` (or of it with ``params`` substituted) on uint8 or
    [0, 1] float images ``x``."""
    device = next(model.parameters()).device
    total = 0.0
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size].to(device)
        xb = xb.float().div(255) if xb.dtype == torch.uint8 else xb.float()
        yb = y[start:start + batch_size].to(device)
        logits = model(xb) if params is None else functional_call(model, params, (xb,))
        total += float(F.cross_entropy(logits.float(), yb, reduction="sum"))
    return total / len(x)


def loss_landscape(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, grid: int,
                   radius: float, batch_size: int = 500, seed: int = 0) -> dict[str, Any]:
    """L(a, b) on the grid: ``loss[i, j]`` at ``a = coords[i]`` (direction 1), ``b = coords[j]``.

    The model is put in eval mode and never modified: the perturbed weights are passed with
    torch.func.functional_call.
    """
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    d1 = filter_normalized_direction(model, generator)
    d2 = filter_normalized_direction(model, generator)
    base = {name: p.detach() for name, p in _weights(model).items()}
    coords = grid_coordinates(grid, radius)
    loss = np.empty((grid, grid))
    for i, a in enumerate(coords):
        for j, b in enumerate(coords):
            params = {n: w + float(a) * d1[n] + float(b) * d2[n] for n, w in base.items()}
            loss[i, j] = mean_loss(model, x, y, batch_size, params)
    centre = mean_loss(model, x, y, batch_size)
    return {"coords": coords, "loss": loss, "centre_loss": centre,
            "sharpness": sharpness(loss, centre), "samples": len(x)}


def sharpness(loss: np.ndarray, centre_loss: float) -> float:
    """Mean loss increase over the grid relative to the trained weights."""
    return float(np.mean(loss - centre_loss))


__all__ = ["filter_normalized_direction", "grid_coordinates", "landscape_samples",
           "loss_landscape", "mean_loss", "sharpness"]

