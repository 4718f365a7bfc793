"""Training: vanilla, PGD-ℓ∞ and TRADES adversarial training with the paper's aligned recipe,
optionally with an ℓ1 weight penalty (method ``pgd_linf_l1-<λ>``).

One recipe for every architecture (AdamW, linear warm-up then cosine decay, per-step schedule).
Adversarial examples are crafted with the model in eval mode, as in the authors' code, with
gradients taken with respect to the input only. Every epoch ends with an atomic checkpoint of
everything needed to continue bit-for-bit: model, optimizer, scheduler and every RNG state.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .attacks import pgd
from .batchnorm_folding import FoldedView
from .checkpoint import clear_checkpoints, load_latest_checkpoint, save_checkpoint
from .data.loader import DeviceLoader, make_augmentation
from .models.weights import weight_parameters

METRIC_COLUMNS = ["epoch", "lr", "train_loss", "train_acc", "test_clean_acc", "time_s"]


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss."""


@dataclass
class TrainResult:
    state_dict: dict[str, torch.Tensor]
    metrics: list[dict[str, float]]
    selected_epoch: int
    # None: trained from scratch in one go; else {"epoch": last finished epoch, "batch": batches
    # of the next epoch done (None when resumed at an epoch boundary)}
    resumed_from: dict[str, int | None] | None
    info: dict[str, Any] = field(default_factory=dict)


def select_device(preferred: str | None = None) -> torch.device:
    if preferred:
        return torch.device(preferred)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def lr_factor(step: int, *, total_steps: int, warmup_steps: int, min_ratio: float) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_ratio`` (multiplies the base lr)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _rng_state(loader: DeviceLoader, attack_generator: torch.Generator) -> dict[str, Any]:
    np_state = np.random.get_state(legacy=True)
    return {
        "python": random.getstate(),
        # weights_only loading accepts tensors and plain containers, not numpy arrays
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": loader.state_dict(),
        "attack": attack_generator.get_state(),
    }


def _set_rng_state(state: dict[str, Any], loader: DeviceLoader,
                   attack_generator: torch.Generator) -> None:
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    loader.load_state_dict(state["loader"])
    attack_generator.set_state(state["attack"])


@torch.no_grad()
def clean_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 500,
                   device: torch.device, memory_format=torch.contiguous_format,
                   autocast: bool = False) -> float:
    """Top-1 accuracy on uint8 images ``x`` (model switched to eval mode)."""
    model.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size].to(device).float().div_(255)
        xb = xb.contiguous(memory_format=memory_format)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(xb)
        correct += (logits.argmax(1) == y[start:start + batch_size].to(device)).sum().item()
    return correct / len(x)


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


def trades_perturb(model: nn.Module, x: torch.Tensor, *, eps: float, steps: int,
                   step_size: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """TRADES' inner maximization: ℓ∞ PGD on KL(f(x) ‖ f(x′)) from x + 0.001·N(0, 1)
    (the TRADES code's start), gradients with respect to the input only."""
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


def _is_convolutional(arch: str) -> bool:
    """CNNs gain from channels_last on the CPU too (docs/benchmarks.md); others only on CUDA."""
    from .models import model_info

    try:
        return model_info(arch).category == "CNN"
    except KeyError:  # a model built outside the registry
        return False


def _resolve_auto(value: Any, default: bool) -> bool:
    return default if value == "auto" else bool(value)


def uses_channels_last(settings: dict[str, Any], device: torch.device) -> bool:
    """``settings["channels_last"]`` resolved: "auto" is on CUDA, and for CNNs on a CPU too."""
    return _resolve_auto(settings.get("channels_last", "auto"),
                         device.type == "cuda" or _is_convolutional(settings["arch"]))


def train_model(
    model: nn.Module,
    train_split: tuple[torch.Tensor, torch.Tensor],
    test_split: tuple[torch.Tensor, torch.Tensor],
    settings: dict[str, Any],
    *,
    checkpoint_dir: str | Path,
    device: torch.device | None = None,
    log: Callable[[str], None] = print,
    stop_requested: Callable[[], bool] = lambda: False,
) -> TrainResult:
    """Train ``model`` (a [0,1]-input model from ``create_model``) with ``settings``.

    ``settings`` is :func:`robustarch.config.training_settings`'s dictionary. Resumes from the
    newest readable checkpoint in ``checkpoint_dir``; raises :class:`NonFiniteLossError` on a
    NaN/inf loss. ``stop_requested`` is polled after each batch: when it returns True (a
    preemption signal arrived), training writes a checkpoint at that batch and raises
    ``InterruptedError``; a rerun continues from the next batch, bit-identically on CPU.
    """
    from .config import parse_method

    device = device or select_device()
    method, l1_lambda = parse_method(settings["method"])
    seed_everything(settings["seed"])
    on_cuda = device.type == "cuda"
    use_bf16 = _resolve_auto(settings.get("bf16", "auto"), on_cuda)
    channels_last = uses_channels_last(settings, device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    model = model.to(device, memory_format=memory_format)
    forward = torch.compile(model) if settings.get("compile") else model
    # Attacks are crafted in eval mode, where each conv -> norm pair is one fixed convolution:
    # a folded view of the model crafts them (the same function, one layer fewer per pass).
    folded = None
    if settings.get("fold_batchnorm", True) and method in ("pgd_linf", "pgd_linf_l1", "trades"):
        folded = FoldedView(model)
        folded = folded if len(folded) else None
    attack_forward = forward if folded is None else (
        torch.compile(folded.module) if settings.get("compile") else folded.module)
    augment = settings.get("augment", {})
    loader = DeviceLoader(
        *train_split,
        batch_size=settings["batch_size"],
        shuffle=True,
        augmentation=make_augmentation(augment.get("crop"), augment.get("autoaugment"),
                                       settings["image_size"]),
        seed=settings["seed"],
        # BatchNorm cannot train on one sample with 1x1 maps (CoAtNet's last stage at 32 px).
        drop_last=len(train_split[1]) % settings["batch_size"] == 1,
        device=device,
        memory_format=memory_format,
    )
    attack_generator = torch.Generator(device=device)
    attack_generator.manual_seed(settings["seed"] + 1)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings["lr"], betas=tuple(settings["betas"]),
        weight_decay=settings["weight_decay"], fused=on_cuda,
    )
    epochs = settings["epochs"]
    steps_per_epoch = len(loader)
    schedule = dict(total_steps=epochs * steps_per_epoch,
                    warmup_steps=settings["warmup_epochs"] * steps_per_epoch,
                    min_ratio=settings["min_lr"] / settings["lr"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, **schedule))

    metrics: list[dict[str, float]] = []
    best = {"acc": -1.0, "epoch": 0, "state": None}
    start_epoch, resumed_from, partial = 1, None, None
    checkpoint = load_latest_checkpoint(checkpoint_dir, log=log)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        _set_rng_state(checkpoint["rng"], loader, attack_generator)
        metrics = list(checkpoint["metrics"])
        best = dict(checkpoint["best"])
        partial = checkpoint.get("partial")
        if partial is None:
            resumed_from = {"epoch": checkpoint["epoch"], "batch": None}
            start_epoch = checkpoint["epoch"] + 1
            log(f"resuming from the checkpoint of epoch {checkpoint['epoch']}")
        else:  # written on a stop request in the middle of an epoch
            resumed_from = {"epoch": checkpoint["epoch"] - 1, "batch": partial["batches"]}
            start_epoch = checkpoint["epoch"]
            log(f"resuming epoch {start_epoch} after batch {partial['batches']}")

    adversary = settings["adversary"]
    beta = settings["trades"]["beta"] if method == "trades" else 0.0
    for epoch in range(start_epoch, epochs + 1):
        start = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        if partial is not None:  # continue the interrupted epoch's running sums
            loss_sum += partial["loss_sum"].to(device)
            correct += partial["correct"].to(device)
            seen = partial["seen"]
            start -= partial["time_s"]
            partial = None
        for x, y in loader:
            logits_clean = None
            if folded is not None:
                folded.refresh()  # the weights and norm statistics of the last step
            if method in ("pgd_linf", "pgd_linf_l1"):
                model.eval()  # craft as the authors' code does: BN/dropout in eval mode
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    x = pgd(attack_forward, x, y, norm="linf", eps=adversary["eps"],
                            steps=adversary["steps"], step_size=adversary["step_size"],
                            random_start=adversary["random_start"], generator=attack_generator)
                model.train()
            elif method == "trades":
                model.eval()
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    x_adv = trades_perturb(attack_forward, x, eps=adversary["eps"],
                                           steps=adversary["steps"],
                                           step_size=adversary["step_size"],
                                           generator=attack_generator)
                model.train()
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    logits_clean = forward(x)
                x = x_adv
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                logits = forward(x)
            if logits_clean is not None:
                loss = trades_loss(logits_clean, logits, y, beta)
            else:
                loss = F.cross_entropy(logits.float(), y)
            if l1_lambda:
                loss = loss + l1_lambda * l1_penalty(model)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"training loss became {loss.item()} in epoch {epoch} "
                    f"(arch {settings['arch']}, method {method}). Lower the learning rate "
                    "(training.lr) or disable bf16 (training.bf16: false); no model file was "
                    "written."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            if stop_requested() and loader.position < steps_per_epoch:
                save_checkpoint(checkpoint_dir, epoch, {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": _rng_state(loader, attack_generator),
                    "metrics": metrics,
                    "best": best,
                    "partial": {"batches": loader.position, "loss_sum": loss_sum.cpu(),
                                "correct": correct.cpu(), "seen": seen,
                                "time_s": time.perf_counter() - start},
                })
                raise InterruptedError(
                    f"stop requested in epoch {epoch}: checkpoint written after batch "
                    f"{loader.position} of {steps_per_epoch}; run the job again to resume there"
                )
        test_acc = clean_accuracy(forward, *test_split, device=device,
                                  memory_format=memory_format, autocast=use_bf16)
        row = {
            "epoch": epoch,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": loss_sum.item() / seen,
            "train_acc": correct.item() / seen,
            "test_clean_acc": test_acc,
            "time_s": time.perf_counter() - start,
        }
        metrics.append(row)
        if test_acc > best["acc"]:
            best = {"acc": test_acc, "epoch": epoch,
                    "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
        log(f"epoch {epoch}/{epochs} lr {row['lr']:.3g} loss {row['train_loss']:.4f} "
            f"train_acc {row['train_acc']:.4f} clean_test_acc {test_acc:.4f} "
            f"({row['time_s']:.1f}s)")
        save_checkpoint(checkpoint_dir, epoch, {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": _rng_state(loader, attack_generator),
            "metrics": metrics,
            "best": best,
        })
        if stop_requested() and epoch < epochs:
            raise InterruptedError(f"stop requested: checkpoint of epoch {epoch} written; run "
                                   "the job again to resume from it")

    if settings["selection"] == "best_clean" and best["state"] is not None:
        state, selected = best["state"], best["epoch"]
    else:
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        selected = epochs
    return TrainResult(
        state_dict=state, metrics=metrics, selected_epoch=selected,
        resumed_from=resumed_from,
        info={"device": str(device), "bf16": use_bf16, "channels_last": channels_last},
    )


def finish(checkpoint_dir: str | Path) -> None:
    """Drop a finished run's checkpoints (its model file now holds the result)."""
    clear_checkpoints(checkpoint_dir)


def save_trained_model(path: str | Path, result: TrainResult, settings: dict[str, Any]) -> None:
    """Write ``model.pt``: weights plus everything needed to rebuild and audit the model."""
    from . import __version__
    from .checkpoint import atomic_save

    atomic_save({
        "state_dict": result.state_dict,
        "arch": settings["arch"],
        "num_classes": settings["num_classes"],
        "image_size": settings["image_size"],
        "scale": settings["scale"],
        "mean": list(settings["mean"]),
        "std": list(settings["std"]),
        "method": settings["method"],
        "dataset": settings["dataset"],
        "selected_epoch": result.selected_epoch,
        "selection": settings["selection"],
        "epochs": settings["epochs"],
        "resumed": result.resumed_from is not None,
        "resumed_from_epoch": None if result.resumed_from is None else result.resumed_from["epoch"],
        "resumed_from_batch": None if result.resumed_from is None else result.resumed_from["batch"],
        "robustarch_version": __version__,
        "torch_version": str(torch.__version__),
        **{k: v for k, v in result.info.items() if isinstance(v, str | bool | int | float)},
    }, path)


def write_metrics(metrics: list[dict[str, float]], path: str | Path) -> None:
    import os

    import pandas as pd

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    pd.DataFrame(metrics, columns=METRIC_COLUMNS).to_csv(tmp, index=False)
    os.replace(tmp, path)
