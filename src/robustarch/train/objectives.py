"""The training objective of each method: a function of a clean batch that returns the loss to
minimize and the logits of the examples trained on.

Adversarial examples are crafted with the model in eval mode, as in the authors' code, with
gradients taken with respect to the input only (:mod:`robustarch.attacks`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import pgd, trades_perturb
from ..models.weights import weight_parameters
from ..settings import Method, TrainingSettings

Objective = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def l1_penalty(model: nn.Module) -> torch.Tensor:
    """Σ|w| over the model's weights (:mod:`robustarch.models.weights`: convolution, linear and
    attention kernels, embeddings; not biases or normalization parameters), the same tensors
    whose sparsity the analysis measures."""
    return sum(p.abs().sum() for p in weight_parameters(model))


def trades_loss(logits_clean: torch.Tensor, logits_adv: torch.Tensor, y: torch.Tensor,
                beta: float) -> torch.Tensor:
    """TRADES (Zhang et al. 2019): CE(f(x), y) + β · KL(f(x) ‖ f(x′)), KL averaged over the
    batch."""
    kl = F.kl_div(F.log_softmax(logits_adv.float(), dim=1),
                  F.softmax(logits_clean.float(), dim=1), reduction="batchmean")
    return F.cross_entropy(logits_clean.float(), y) + beta * kl


@contextlib.contextmanager
def _crafting(model: nn.Module) -> Iterator[None]:
    """Batch norm and dropout in eval mode while an attack is crafted, as the authors' code."""
    model.eval()
    try:
        yield
    finally:
        model.train()


def make_objective(settings: TrainingSettings, *, model: nn.Module, forward: nn.Module,
                   attack_forward: Callable[[], nn.Module], generator: torch.Generator,
                   autocast: Callable[[], contextlib.AbstractContextManager]) -> Objective:
    """The objective of ``settings.method``.

    ``forward`` is the (maybe compiled) model that trains; ``attack_forward()`` returns the
    module attacks are crafted on (a folded view, refreshed, or ``forward``); ``autocast()``
    opens the precision context of every forward pass.
    """
    method, adversary = settings.base_method, settings.adversary

    def cross_entropy(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast():
            logits = forward(x)
        return F.cross_entropy(logits.float(), y), logits

    def pgd_at(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with _crafting(model), autocast():
            x_adv = pgd(attack_forward(), x, y, norm="linf", eps=adversary.eps,
                        steps=adversary.steps, step_size=adversary.step_size,
                        random_start=adversary.random_start, generator=generator)
        return cross_entropy(x_adv, y)

    def trades(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with _crafting(model), autocast():
            x_adv = trades_perturb(attack_forward(), x, eps=adversary.eps, steps=adversary.steps,
                                   step_size=adversary.step_size, generator=generator)
        with autocast():
            logits_clean = forward(x)
            logits = forward(x_adv)
        return trades_loss(logits_clean, logits, y, settings.trades_beta), logits

    objective = {Method.VANILLA: cross_entropy, Method.PGD_LINF: pgd_at,
                 Method.PGD_LINF_L1: pgd_at, Method.TRADES: trades}[method]
    strength = settings.l1_strength
    if not strength:
        return objective

    def penalized(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loss, logits = objective(x, y)
        return loss + strength * l1_penalty(model), logits

    return penalized
