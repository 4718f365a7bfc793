"""Per-sample evaluation of a model under one attack: one row per test sample.

Attacks run in fp32 by default (``bf16=True`` runs attack and predictions under bf16 autocast:
faster on GPUs, but low precision can mask gradients) with the model in eval mode, on [0,1]
images (normalization is inside the model).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..atomic import remove_temporaries, write_parquet
from ..attacks import autoattack, paper_pgd, pgd
from ..settings import (
    AttackKind,
    AttackSettings,
    PGDAlgorithm,
    PGDSettings,
    attack_from_mapping,
)

OUTCOME_COLUMNS = ["index", "label", "prediction", "correct"]
_AA_NORMS = {"linf": "Linf", "l2": "L2", "l1": "L1"}


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x).argmax(1)


def evaluate_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: AttackSettings | Mapping[str, Any],
    *,
    batch_size: int = 500,
    seed: int = 0,
    device: str | torch.device | None = None,
    state_path: str | Path | None = None,
    bf16: bool = False,
) -> pd.DataFrame:
    """Outcomes of attack ``settings`` on the uint8 test images ``x``: a frame with columns
    index, label, prediction, correct.

    ``settings``: :func:`robustarch.config.attack_settings` of a validated config, or a
    dictionary with every field of its kind (:mod:`robustarch.settings`). ``state_path``: where
    AutoAttack keeps its resumable state. ``bf16``: run the attack and the predictions under
    bf16 autocast (config ``evaluation.bf16``; off by default, since low precision can mask
    gradients)."""
    settings = attack_from_mapping(settings)
    device = torch.device(device) if device else next(model.parameters()).device
    model.eval()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        if settings.kind is AttackKind.AUTOATTACK:
            predictions = _autoattack_predictions(model, x, y, settings, batch_size=batch_size,
                                                  seed=seed, device=device,
                                                  state_path=state_path)
        else:
            predictions = _batched_predictions(model, x, y, settings, batch_size=batch_size,
                                               seed=seed, device=device)
    labels = y.cpu()
    return pd.DataFrame({
        "index": torch.arange(len(labels)).numpy(),
        "label": labels.numpy(),
        "prediction": predictions.numpy(),
        "correct": (predictions == labels).numpy(),
    })


def _autoattack_predictions(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                            settings: AttackSettings, *, batch_size: int, seed: int,
                            device: torch.device, state_path: str | Path | None) -> torch.Tensor:
    return autoattack(
        model, x.float().div(255), y, norm=_AA_NORMS[settings.norm], eps=settings.eps,
        version=settings.version, attacks=settings.components, seed=seed,
        batch_size=batch_size, state_path=state_path, device=device,
        n_iter=settings.iterations, n_restarts=settings.restarts,
        n_target_classes=settings.target_classes, n_queries=settings.queries,
    ).cpu()


def _batched_predictions(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                         settings: AttackSettings, *, batch_size: int, seed: int,
                         device: torch.device) -> torch.Tensor:
    """Predicted labels on the PGD-attacked (or, for kind clean, the clean) images."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    parts = []
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size].to(device).float().div_(255)
        yb = y[start:start + batch_size].to(device)
        if settings.kind is AttackKind.PGD:
            predicted = _pgd_predictions(model, xb, yb, settings, generator)
        else:
            predicted = _predict(model, xb)
        parts.append(predicted.cpu())
    return torch.cat(parts)


def _pgd_predictions(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     settings: PGDSettings, generator: torch.Generator) -> torch.Tensor:
    """The labels the attack saw at its returned points (with early stop, exactly those that
    stopped it): ours, or the paper's libraries' algorithm."""
    common = dict(norm=settings.norm, eps=settings.eps, steps=settings.steps,
                  step_size=settings.step_size, random_start=settings.random_start,
                  generator=generator, return_predictions=True)
    if settings.algorithm is PGDAlgorithm.ROBUSTARCH:
        _, predicted = pgd(model, x, y, early_stop=settings.early_stop, **common)
    else:  # foolbox (l-inf, l2) or ART 1.16 (l1), as the config's validation pairs them
        _, predicted = paper_pgd(model, x, y, **common)
    return predicted


def write_outcomes(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a per-sample outcome table as parquet, atomically."""
    write_parquet(frame[OUTCOME_COLUMNS], path)


def discard_state(path: str | Path) -> None:
    """Remove a finished evaluation's resume state, and its folder once empty."""
    path = Path(path)
    path.unlink(missing_ok=True)
    remove_temporaries(path)  # left by a killed write
    with contextlib.suppress(OSError):  # not empty: another job of the model still uses it
        path.parent.rmdir()
