"""Empirical local Lipschitz constant (ours; the estimator of Yang et al., NeurIPS 2020).

For a test image x, ``L(x) = max ||f(x') - f(x)||_1 / ||x' - x||_inf`` over x' in the l-inf
ball of radius eps around x (and in [0, 1]), f the model's logits. The maximum is approached
by projected sign-gradient ascent on the ratio from a uniform random start in the ball; the
estimate of a sample is the largest ratio met on the way. The model's constant is the mean
over samples. Every ratio is that of a real pair of points, so the estimate never exceeds the
true local constant; ascent makes it close from below.
"""

from __future__ import annotations

import torch
from torch import nn


def _ratio(out: torch.Tensor, ref: torch.Tensor, x_adv: torch.Tensor, x: torch.Tensor
           ) -> torch.Tensor:
    top = (out - ref).flatten(1).norm(p=1, dim=1)
    bottom = (x_adv - x).flatten(1).abs().amax(dim=1)
    return top / bottom.clamp_min(1e-12)  # a start exactly at x: ratio 0, then ascent moves


def local_lipschitz(model: nn.Module, x: torch.Tensor, *, eps: float, steps: int,
                    step_size: float, restarts: int = 1, batch_size: int = 250, seed: int = 0
                    ) -> torch.Tensor:
    """Per-sample estimates for uint8 or [0, 1] float images ``x`` (a CPU tensor of them): the
    best of ``restarts`` ascents from independent random starts."""
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)  # CPU draws: the same starts on any device
    estimates = []
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        xb = (xb.float().div(255) if xb.dtype == torch.uint8 else xb.float()).to(device)
        with torch.no_grad():
            ref = model(xb)
        best = torch.zeros(len(xb), device=device)
        for _ in range(restarts):
            best = torch.maximum(best, _ascend(model, xb, ref, eps, steps, step_size, generator))
        estimates.append(best.cpu())
    return torch.cat(estimates)


def _ascend(model: nn.Module, xb: torch.Tensor, ref: torch.Tensor, eps: float, steps: int,
            step_size: float, generator: torch.Generator) -> torch.Tensor:
    """The largest ratio met by one projected sign-gradient ascent per sample."""
    noise = torch.rand(xb.shape, generator=generator).mul_(2).sub_(1).mul_(eps)
    x_adv = (xb + noise.to(xb.device)).clamp(0, 1)
    best = torch.zeros(len(xb), device=xb.device)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        ratio = _ratio(model(x_adv), ref, x_adv, xb)
        best = torch.maximum(best, ratio.detach())
        (grad,) = torch.autograd.grad(ratio.sum(), x_adv)
        with torch.no_grad():
            x_adv = x_adv + step_size * grad.sign()
            x_adv = torch.minimum(torch.maximum(x_adv, xb - eps), xb + eps).clamp(0, 1)
    with torch.no_grad():  # the last iterate is scored too
        return torch.maximum(best, _ratio(model(x_adv), ref, x_adv, xb))
