"""The training loop: vanilla, PGD-ℓ∞ and TRADES adversarial training with one aligned recipe,
optionally with an ℓ1 weight penalty (method ``pgd_linf_l1-<λ>``).

Read it top-down, as airbench's: :func:`train_model` sets a run up (:func:`_start`: model,
device-resident loader, optimizer, schedule, the method's objective), resumes it from its newest
checkpoint when that was written by the same recipe, data and code (:mod:`.fingerprint`), then
runs epochs; :func:`_train_epoch` is the inner loop. Every epoch ends with an atomic checkpoint
of everything needed to continue bit for bit: model, optimizer, scheduler, every random state and
the gradient record (:func:`_state`), plus the run's fingerprint. A stop request (a preemption
signal) checkpoints the current batch and raises ``InterruptedError``. Every backward pass is
observed by a :class:`GradientRecord`: which parameter elements have never had a non-zero
gradient (weights that never trained, e.g. CoAtNet's query/key projections in a stage that
attends over one token).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.loader import DeviceLoader, make_augmentation
from ..models.batchnorm_folding import FoldedView
from ..models.memory_format import uses_channels_last
from ..runtime import resolve_auto, seed_everything, select_device
from ..settings import TrainingSettings
from .checkpoints import (
    load_latest_checkpoint,
    rng_state,
    save_checkpoint,
    set_aside_checkpoints,
    set_rng_state,
)
from .fingerprint import Fingerprint, describe, run_fingerprint
from .objectives import Objective, make_objective
from .outputs import TrainResult
from .schedule import Schedule


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss."""


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


class GradientRecord:
    """Which elements of each parameter have had a non-zero gradient in some backward pass.

    An element whose gradient was always exactly 0 (or None) keeps zero AdamW moments, so the
    optimizer never moved it beyond the decoupled weight decay: it did not train. Observing
    costs two small kernels per parameter that still has such an element; parameters whose
    every element has trained are dropped from the observation after the 1st, 2nd, 4th, 8th...
    update (one host sync each), so after the first batch only the few incomplete ones remain.
    The record only reads gradients: training is the same with or without it.
    """

    def __init__(self, model: nn.Module):
        self._params = dict(model.named_parameters())
        self.seen = {name: torch.zeros_like(p, dtype=torch.bool)
                     for name, p in self._params.items()}
        self._open = list(self.seen)  # names with an element not seen yet
        self._updates = 0

    def update(self) -> None:
        """OR in the gradients of the backward pass just done."""
        for name in self._open:
            grad = self._params[name].grad
            if grad is not None:
                self.seen[name].logical_or_(grad != 0)
        self._updates += 1
        if self._updates & (self._updates - 1) == 0:  # a power of two
            self._drop_complete()

    def _drop_complete(self) -> None:
        if self._open:
            done = torch.stack([self.seen[name].all() for name in self._open]).tolist()
            self._open = [name for name, d in zip(self._open, done, strict=True) if not d]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: mask.cpu().clone() for name, mask in self.seen.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state.keys() != self.seen.keys():
            raise ValueError("the checkpoint's gradient record names other parameters than "
                             "the model's")
        for name, mask in self.seen.items():
            mask.copy_(state[name])
        self._open = list(self.seen)
        self._drop_complete()

    def untrained(self) -> dict[str, torch.Tensor]:
        """``{parameter name: bool mask of its untrained elements}`` (CPU), for the parameters
        with at least one."""
        return {name: (~mask).cpu() for name, mask in self.seen.items()
                if name in self._open and not bool(mask.all())}


@dataclass
class _Run:
    """A run's moving parts and the state carried from epoch to epoch."""

    settings: TrainingSettings
    device: torch.device
    model: nn.Module
    forward: nn.Module  # the model as it trains (compiled when asked)
    objective: Objective
    loader: DeviceLoader
    attack_generator: torch.Generator
    optimizer: torch.optim.Optimizer
    scheduler: Schedule
    memory_format: torch.memory_format
    bf16: bool
    fingerprint: Fingerprint
    gradients: GradientRecord
    metrics: list[dict[str, float]]
    best: dict[str, Any]


def _attack_module(model: nn.Module, settings: TrainingSettings
                   ) -> Callable[[], nn.Module] | None:
    """``() -> module`` to craft attacks on, or None to use the trained forward: a view of the
    model with its eval-mode norms folded into the convolutions (attacks run the model in eval
    mode: the same function, one layer fewer per pass), refreshed before each attack."""
    if not (settings.fold_batchnorm and settings.base_method.adversarial):
        return None
    folded = FoldedView(model)
    if not len(folded):
        return None
    module = torch.compile(folded.module) if settings.compile else folded.module

    def refreshed() -> nn.Module:
        folded.refresh()  # the weights and norm statistics of the last step
        return module

    return refreshed


def _start(model: nn.Module, train_split: tuple[torch.Tensor, torch.Tensor],
           settings: TrainingSettings, device: torch.device, fingerprint: Fingerprint) -> _Run:
    """Everything a run needs, from the settings; the order fixes what the seeds give."""
    on_cuda = device.type == "cuda"
    bf16 = resolve_auto(settings.bf16, on_cuda)
    channels_last = uses_channels_last(settings.channels_last, settings.arch, device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory_format)
    forward = torch.compile(model) if settings.compile else model
    attack_module = _attack_module(model, settings) or (lambda: forward)
    loader = DeviceLoader(
        *train_split, batch_size=settings.batch_size, shuffle=True,
        augmentation=make_augmentation(settings.augment, settings.image_size),
        seed=settings.seed,
        # BatchNorm cannot train on one sample with 1x1 maps (CoAtNet's last stage at 32 px).
        drop_last=len(train_split[1]) % settings.batch_size == 1,
        device=device, memory_format=memory_format)
    attack_generator = torch.Generator(device=device)
    attack_generator.manual_seed(settings.seed + 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, betas=settings.betas,
                                  weight_decay=settings.weight_decay, fused=on_cuda)

    def autocast() -> contextlib.AbstractContextManager:
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    objective = make_objective(settings, model=model, forward=forward,
                               attack_forward=attack_module, generator=attack_generator,
                               autocast=autocast)
    return _Run(settings, device, model, forward, objective, loader, attack_generator, optimizer,
                Schedule(optimizer, settings, len(loader)), memory_format, bf16, fingerprint,
                GradientRecord(model), metrics=[],
                best={"acc": -1.0, "epoch": 0, "state": None, "untrained": None})


def _state(run: _Run, partial: dict[str, Any] | None = None) -> dict[str, Any]:
    """The checkpoint of a run: at an epoch's end, or mid-epoch with its ``partial`` sums."""
    state = {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
             "scheduler": run.scheduler.state_dict(),
             "rng": rng_state(run.loader, run.attack_generator),
             "gradients_seen": run.gradients.state_dict(), "metrics": run.metrics,
             "best": run.best, "fingerprint": run.fingerprint.as_dict()}
    if partial is not None:
        state["partial"] = partial
    return state


def _resume(run: _Run, checkpoint_dir: str | Path, log: Callable[[str], None]
            ) -> tuple[int, dict[str, int | None] | None, dict[str, Any] | None]:
    """Load the newest readable checkpoint into ``run``: ``(first epoch to run, where the run
    resumed from or None, the interrupted epoch's partial sums or None)``. A checkpoint of
    other settings, data or code is not resumed: the folder's checkpoints are set aside as
    ``epoch-NNNN.pt.stale-<what changed>`` and the run starts fresh."""
    checkpoint = load_latest_checkpoint(checkpoint_dir, log=log)
    if checkpoint is None:
        return 1, None, None
    changes = run.fingerprint.changes(checkpoint.get("fingerprint"))
    if changes:
        suffix = "stale-" + "-".join(changes)
        moved = set_aside_checkpoints(checkpoint_dir, suffix)
        log(f"not resuming: the checkpoints in {checkpoint_dir} were written with other "
            f"{describe(changes)}; set aside as {', '.join(p.name for p in moved)}; training "
            "starts fresh")
        return 1, None, None
    run.model.load_state_dict(checkpoint["model"])
    run.optimizer.load_state_dict(checkpoint["optimizer"])
    run.scheduler.load_state_dict(checkpoint["scheduler"])
    set_rng_state(checkpoint["rng"], run.loader, run.attack_generator)
    run.gradients.load_state_dict(checkpoint["gradients_seen"])
    run.metrics = list(checkpoint["metrics"])
    run.best = dict(checkpoint["best"])
    epoch, partial = checkpoint["epoch"], checkpoint.get("partial")
    if partial is None:
        log(f"resuming from the checkpoint of epoch {epoch}")
        return epoch + 1, {"epoch": epoch, "batch": None}, None
    # written on a stop request in the middle of an epoch
    log(f"resuming epoch {epoch} after batch {partial['batches']}")
    return epoch, {"epoch": epoch - 1, "batch": partial["batches"]}, partial


def _train_epoch(run: _Run, epoch: int, partial: dict[str, Any] | None,
                 checkpoint_dir: str | Path, stop_requested: Callable[[], bool]
                 ) -> dict[str, float]:
    """One epoch of updates (continuing ``partial`` when resumed mid-epoch): lr, loss and
    accuracy on the examples trained on, wall time."""
    start = time.perf_counter()
    run.model.train()
    loss_sum = torch.zeros((), device=run.device)
    correct = torch.zeros((), device=run.device, dtype=torch.long)
    seen = 0
    if partial is not None:  # continue the interrupted epoch's running sums
        loss_sum += partial["loss_sum"].to(run.device)
        correct += partial["correct"].to(run.device)
        seen = partial["seen"]
        start -= partial["time_s"]
    for x, y in run.loader:
        loss, logits = run.objective(x, y)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss became {loss.item()} in epoch {epoch} (arch "
                f"{run.settings.arch}, method {run.settings.method}). Lower the learning rate "
                "(training.lr) or disable bf16 (training.bf16: false); no model file was "
                "written.")
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.gradients.update()
        run.optimizer.step()
        run.scheduler.batch_done()
        loss_sum += loss.detach() * len(y)
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        if stop_requested() and run.loader.position < len(run.loader):
            save_checkpoint(checkpoint_dir, epoch, _state(run, partial={
                "batches": run.loader.position, "loss_sum": loss_sum.cpu(),
                "correct": correct.cpu(), "seen": seen, "time_s": time.perf_counter() - start}))
            raise InterruptedError(
                f"stop requested in epoch {epoch}: checkpoint written after batch "
                f"{run.loader.position} of {len(run.loader)}; run the job again to resume there")
    return {"lr": run.optimizer.param_groups[0]["lr"], "train_loss": loss_sum.item() / seen,
            "train_acc": correct.item() / seen, "time_s": time.perf_counter() - start}


def train_model(
    model: nn.Module,
    train_split: tuple[torch.Tensor, torch.Tensor],
    test_split: tuple[torch.Tensor, torch.Tensor],
    settings: TrainingSettings,
    *,
    checkpoint_dir: str | Path,
    device: torch.device | None = None,
    log: Callable[[str], None] = print,
    stop_requested: Callable[[], bool] = lambda: False,
    fingerprint: Fingerprint | None = None,
) -> TrainResult:
    """Train ``model`` (a [0,1]-input model from ``create_model``) with ``settings``.

    Resumes from the newest readable checkpoint in ``checkpoint_dir`` when its fingerprint
    matches ``fingerprint`` (the job's: settings, split files, code; by default
    ``run_fingerprint(settings)``, which leaves the data out of the comparison); raises
    :class:`NonFiniteLossError` on a NaN/inf loss. ``stop_requested`` is polled after each
    batch: when it returns True (a preemption signal arrived), training writes a checkpoint at
    that batch and raises ``InterruptedError``; a rerun continues from the next batch,
    bit-identically on CPU.
    """
    device = device or select_device()
    seed_everything(settings.seed)
    run = _start(model, train_split, settings, device, fingerprint or run_fingerprint(settings))
    first_epoch, resumed_from, partial = _resume(run, checkpoint_dir, log)
    for epoch in range(first_epoch, settings.epochs + 1):
        row = _train_epoch(run, epoch, partial, checkpoint_dir, stop_requested)
        run.scheduler.epoch_done()
        partial = None
        start = time.perf_counter() - row.pop("time_s")
        test_acc = clean_accuracy(run.forward, *test_split, device=device,
                                  memory_format=run.memory_format, autocast=run.bf16)
        row = {"epoch": epoch, **row, "test_clean_acc": test_acc,
               "time_s": time.perf_counter() - start}
        run.metrics.append(row)
        if test_acc > run.best["acc"]:
            run.best = {"acc": test_acc, "epoch": epoch, "state": {
                k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()},
                "untrained": run.gradients.untrained()}
        log(f"epoch {epoch}/{settings.epochs} lr {row['lr']:.3g} loss {row['train_loss']:.4f} "
            f"train_acc {row['train_acc']:.4f} clean_test_acc {test_acc:.4f} "
            f"({row['time_s']:.1f}s)")
        save_checkpoint(checkpoint_dir, epoch, _state(run))
        if stop_requested() and epoch < settings.epochs:
            raise InterruptedError(f"stop requested: checkpoint of epoch {epoch} written; run "
                                   "the job again to resume from it")
    return _result(run, resumed_from)


def _result(run: _Run, resumed_from: dict[str, int | None] | None) -> TrainResult:
    """The selected weights (best clean test accuracy, as the authors' code, or the last) and
    the elements of them that had not trained by then."""
    settings = run.settings
    if settings.selection == "best_clean" and run.best["state"] is not None:
        state, selected = run.best["state"], run.best["epoch"]
        untrained = run.best["untrained"]
    else:
        state = {k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()}
        selected, untrained = settings.epochs, run.gradients.untrained()
    return TrainResult(state_dict=state, metrics=run.metrics, selected_epoch=selected,
                       resumed_from=resumed_from, fingerprint=run.fingerprint.digests(),
                       untrained=untrained,
                       parameter_elements=sum(p.numel() for p in run.model.parameters()),
                       info={"device": str(run.device), "bf16": run.bf16,
                             "channels_last": run.memory_format == torch.channels_last})
