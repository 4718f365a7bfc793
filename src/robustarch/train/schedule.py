"""The learning-rate schedule (``training.schedule``).

``per_epoch`` (the authors'): their code wraps ``CosineAnnealingLR(T_max=epochs,
eta_min=min_lr)`` in ildoonet's ``GradualWarmupScheduler(multiplier=1,
total_epoch=warmup_epochs)`` and steps it once after every epoch. Its lr in epoch e (1-based) is
``lr * (e - 1) / W`` while e <= W + 1 (W = warmup_epochs: epoch 1 trains at lr 0, epoch W + 1 at
the full lr), then the cosine restarted at the full lr, ``min_lr + (lr - min_lr) (1 + cos(pi
(e - W - 2) / epochs)) / 2``; so it never reaches min_lr within the run. W = 0 (which their
scheduler cannot do: it divides by W) is the cosine alone from epoch 1.

``per_step``: linear warm-up over W epochs' batches to the full lr, then cosine decay to min_lr
over the remaining batches, stepped after every batch.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..settings import TrainingSettings

SCHEDULES = ("per_epoch", "per_step")


def lr_factor(step: int, *, total_steps: int, warmup_steps: int, min_ratio: float) -> float:
    """Per-step schedule: linear warm-up to 1, then cosine decay to ``min_ratio`` (multiplies the
    base lr)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def epoch_lr_factor(epoch: int, *, epochs: int, warmup_epochs: int, min_ratio: float) -> float:
    """Per-epoch schedule: the factor of the base lr in (1-based) ``epoch``, as the authors'
    GradualWarmupScheduler + CosineAnnealingLR give it (see the module docstring)."""
    if warmup_epochs and epoch <= warmup_epochs + 1:
        return (epoch - 1) / warmup_epochs
    restart = warmup_epochs + 2 if warmup_epochs else 1  # the epoch the cosine starts at 1
    return min_ratio + (1 - min_ratio) * (1 + math.cos(math.pi * (epoch - restart) / epochs)) / 2


class Schedule:
    """A run's lr schedule: a ``LambdaLR`` stepped after every batch (``per_step``) or after
    every epoch (``per_epoch``); the loop calls both hooks, the schedule acts on its own."""

    def __init__(self, optimizer: torch.optim.Optimizer, settings: TrainingSettings,
                 steps_per_epoch: int):
        if settings.schedule not in SCHEDULES:
            raise ValueError(f"unknown training.schedule {settings.schedule!r}; valid: "
                             f"{', '.join(SCHEDULES)}")
        self.per_step = settings.schedule == "per_step"
        min_ratio = settings.min_lr / settings.lr
        if self.per_step:
            kw = dict(total_steps=settings.epochs * steps_per_epoch,
                      warmup_steps=settings.warmup_epochs * steps_per_epoch, min_ratio=min_ratio)

            def factor(step: int) -> float:
                return lr_factor(step, **kw)
        else:
            kw = dict(epochs=settings.epochs, warmup_epochs=settings.warmup_epochs,
                      min_ratio=min_ratio)

            def factor(finished_epochs: int) -> float:
                return epoch_lr_factor(finished_epochs + 1, **kw)

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def batch_done(self) -> None:
        if self.per_step:
            self.scheduler.step()

    def epoch_done(self) -> None:
        if not self.per_step:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)
