"""Stochastic depth (drop-path) and its per-block rates, shared by the families.

Private module (leading underscore): the package auto-import skips it, it registers nothing.

Every family follows one rule (docs/architectures.md, "Regularization"): with
``drop_path = p``, the residual blocks of the network, in forward order, drop their residual
branch for a whole sample with probabilities rising linearly from 0 (first block) to ``p``
(last block), the rule of DeiT, Swin and timm; a block with two residual sublayers (attention
and MLP) uses its rate for both. Nothing here holds parameters, so the rates never change a
state dict.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


class DropPath(nn.Module):
    """Zero the input for a whole sample with probability ``drop_prob`` in training mode,
    scaling the kept samples by ``1 / (1 - drop_prob)`` (timm's ``DropPath``); the identity in
    eval mode or at rate 0 (no random number drawn then)."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = float(drop_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob:g}"


def block_rates(drop_path: float, blocks: int) -> list[float]:
    """The rate of each of ``blocks`` residual blocks: ``torch.linspace(0, drop_path, blocks)``,
    as timm's models compute it (one block: 0)."""
    return [r.item() for r in torch.linspace(0, drop_path, blocks, device="cpu")]


def _drop_branch_output(module: nn.Module, _args: tuple, output: torch.Tensor) -> torch.Tensor:
    return module.branch_drop_path(output)


def drop_branches(branches: Iterable[tuple[nn.Module, float]]) -> None:
    """Stochastic depth for residual branches of third-party blocks (vit-pytorch's), which
    compute ``x + branch(x)`` themselves: each ``branch`` with a non-zero rate gets a
    :class:`DropPath` child applied to its output, by a forward hook (appended as the last
    stage of an ``nn.Sequential``, which runs every child). Parameter-free, so the state dict
    is unchanged; at rate 0 nothing is added. Only for modules whose output is used as a
    residual branch and nothing else."""
    for branch, rate in branches:
        if rate <= 0:
            continue
        if isinstance(branch, nn.Sequential):
            branch.append(DropPath(rate))
        else:
            branch.branch_drop_path = DropPath(rate)
            branch.register_forward_hook(_drop_branch_output)
