"""TRADES' inner maximization (Zhang et al., ICML 2019): the adversarial example of its loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["trades_perturb"]


def trades_perturb(model: nn.Module, x: torch.Tensor, *, eps: float, steps: int,
                   step_size: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """ℓ∞ PGD on KL(f(x) ‖ f(x′)) from x + 0.001·N(0, 1) (the TRADES code's start), gradients
    with respect to the input only. The caller sets the model's mode (eval, as for PGD)."""
    with torch.no_grad():
        target = F.softmax(model(x).float(), dim=1)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    x_adv = (x + 0.001 * noise).clamp(0, 1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        kl = F.kl_div(F.log_softmax(model(x_adv).float(), dim=1), target, reduction="sum")
        (grad,) = torch.autograd.grad(kl, x_adv)
        with torch.no_grad():
            x_adv = x_adv + step_size * grad.sign()
            x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp_(0, 1)
    return x_adv.detach()
