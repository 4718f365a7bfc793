"""Per-sample evaluation: one row per test sample and attack.

The typed API a user calls from Python (RobustBench style)::

    from robustarch.evaluate import load_trained_model, evaluate_attack
    model, meta = load_trained_model("results/cifar10/resnet/pgd_linf/model.pt")
    outcomes = evaluate_attack(model, x_test, y_test, {"name": "pgd_linf", "kind": "pgd",
                               "norm": "linf", "eps": 8/255, "steps": 20, "step_size": 0.6/255})

Attacks run in fp32 by default (``bf16=True`` runs attack and predictions under bf16 autocast:
faster on GPUs, but low precision can mask gradients) with the model in eval mode, on [0,1]
images (normalization is inside the model).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from .checkpoint import load_model_file

OUTCOME_COLUMNS = ["index", "label", "prediction", "correct"]
_AA_NORMS = {"linf": "Linf", "l2": "L2", "l1": "L1"}


def load_trained_model(path: str | Path, device: str | torch.device = "cpu",
                       channels_last: bool | str = "auto",
                       fold_batchnorm: bool = False) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model written by training (``model.pt``) for evaluation: in eval mode, on
    ``device``, its parameters frozen (attacks and analyses need input gradients only), in
    channels_last memory format where that is faster ("auto": on CUDA, and for CNNs on a CPU,
    as in training). ``fold_batchnorm``: fold eval-mode batch norms into the convolutions before
    them (:mod:`robustarch.batchnorm_folding`; the same function, faster), for attacks and
    corruptions; off by default, since it changes the weights that weight analyses read."""
    from .models import create_model

    data = load_model_file(path)
    model = create_model(data["arch"], num_classes=data["num_classes"],
                         image_size=data["image_size"], scale=data["scale"],
                         mean=data["mean"], std=data["std"])
    model.load_state_dict(data["state_dict"])
    meta = {k: v for k, v in data.items() if k != "state_dict"}
    model = prepare_for_evaluation(model, data["arch"], device, channels_last, fold_batchnorm)
    return model, meta


def prepare_for_evaluation(model: nn.Module, arch: str, device: str | torch.device = "cpu",
                           channels_last: bool | str = "auto",
                           fold_batchnorm: bool = False) -> nn.Module:
    """``model`` (of architecture ``arch``) in eval mode on ``device``, parameters frozen,
    channels_last where faster, batch norms folded if asked (see :func:`load_trained_model`)."""
    from .batchnorm_folding import fold_batchnorm as fold
    from .train import uses_channels_last

    device = torch.device(device)
    model.eval().requires_grad_(False)
    if fold_batchnorm:
        fold(model)
    last = uses_channels_last({"arch": arch, "channels_last": channels_last}, device)
    return model.to(device, memory_format=torch.channels_last if last else torch.contiguous_format)


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x).argmax(1)


def evaluate_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: dict[str, Any],
    *,
    batch_size: int = 500,
    seed: int = 0,
    device: str | torch.device | None = None,
    state_path: str | Path | None = None,
    bf16: bool = False,
) -> pd.DataFrame:
    """Outcomes of attack ``settings`` (see :func:`robustarch.config.attack_settings`) on the
    uint8 test images ``x``: a frame with columns index, label, prediction, correct.

    ``bf16``: run the attack and the predictions under bf16 autocast (config
    ``evaluation.bf16``; off by default, since low precision can mask gradients)."""
    device = torch.device(device) if device else next(model.parameters()).device
    model.eval()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        predictions = _attack_predictions(model, x, y, settings, batch_size=batch_size,
                                          seed=seed, device=device, state_path=state_path)
    labels = y.cpu()
    return pd.DataFrame({
        "index": torch.arange(len(labels)).numpy(),
        "label": labels.numpy(),
        "prediction": predictions.numpy(),
        "correct": (predictions == labels).numpy(),
    })


def _attack_predictions(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                        settings: dict[str, Any], *, batch_size: int, seed: int,
                        device: torch.device, state_path: str | Path | None) -> torch.Tensor:
    """Predicted labels on the attacked (or, for kind clean, the clean) images."""
    from .attacks import autoattack, pgd

    kind = settings["kind"]
    if kind == "autoattack":
        predictions = autoattack(
            model, x.float().div(255), y, norm=_AA_NORMS[settings["norm"]], eps=settings["eps"],
            version=settings["version"], attacks=settings.get("components"), seed=seed,
            batch_size=batch_size, state_path=state_path, device=device,
            n_iter=settings.get("iterations"), n_restarts=settings.get("restarts"),
        ).cpu()
    elif kind in ("pgd", "clean"):
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        parts = []
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size].to(device).float().div_(255)
            yb = y[start:start + batch_size].to(device)
            if kind == "pgd":
                # The labels the attack saw: with early stop, exactly those that stopped it.
                _, predicted = pgd(
                    model, xb, yb, norm=settings["norm"], eps=settings["eps"],
                    steps=settings["steps"], step_size=settings["step_size"],
                    random_start=settings.get("random_start", True), generator=generator,
                    early_stop=settings.get("early_stop", True), return_predictions=True)
            else:
                predicted = _predict(model, xb)
            parts.append(predicted.cpu())
        predictions = torch.cat(parts)
    else:
        raise ValueError(f"unknown attack kind {kind!r}; valid kinds: clean, pgd, autoattack")
    return predictions


def write_outcomes(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a per-sample outcome table as parquet, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame[OUTCOME_COLUMNS].to_parquet(tmp, index=False)
    os.replace(tmp, path)
