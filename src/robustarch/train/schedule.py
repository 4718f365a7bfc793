"""The learning-rate schedule: linear warm-up, then cosine decay, stepped after every batch."""

from __future__ import annotations

import math

import torch

from ..settings import TrainingSettings


def lr_factor(step: int, *, total_steps: int, warmup_steps: int, min_ratio: float) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_ratio`` (multiplies the base lr)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_scheduler(optimizer: torch.optim.Optimizer, settings: TrainingSettings,
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The schedule of ``settings`` over its epochs, one step per batch."""
    schedule = dict(total_steps=settings.epochs * steps_per_epoch,
                    warmup_steps=settings.warmup_epochs * steps_per_epoch,
                    min_ratio=settings.min_lr / settings.lr)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, **schedule))
