"""Does bf16 evaluation change robust accuracy? (evaluation.bf16; fp32 is the default).

Each configured PGD attack is evaluated twice with :func:`robustarch.evaluate.evaluate_attack`
on the same samples and seed, once in fp32 and once under bf16 autocast; the report lists both
accuracies and how many per-sample outcomes flipped. Low precision can round small input
gradients to zero (gradient masking), which would show as a higher bf16 robust accuracy.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robustarch.settings import AttackSettings


def bf16_check(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               attacks: dict[str, AttackSettings], *, device: torch.device,
               batch_size: int = 500, seed: int = 0) -> list[dict[str, Any]]:
    """One row per attack: fp32 and bf16 accuracy, flipped outcomes, whether it changed.

    ``x``: uint8 test images; ``attacks``: name -> :func:`robustarch.config.attack_settings`.
    """
    from robustarch.evaluate import evaluate_attack

    rows = []
    for name, settings in attacks.items():
        fp32 = evaluate_attack(model, x, y, settings, batch_size=batch_size, seed=seed,
                               device=device)
        bf16 = evaluate_attack(model, x, y, settings, batch_size=batch_size, seed=seed,
                               device=device, bf16=True)
        flipped = int((fp32["correct"] != bf16["correct"]).sum())
        fp32_acc, bf16_acc = float(fp32["correct"].mean()), float(bf16["correct"].mean())
        rows.append({"attack": name, "samples": len(y), "fp32_accuracy": fp32_acc,
                     "bf16_accuracy": bf16_acc, "outcomes_flipped": flipped,
                     "changed": fp32_acc != bf16_acc})
    return rows
