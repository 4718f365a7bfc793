"""Record ``train``: adversarial-training throughput of our loop against the conventional one.

Ours is the real thing: :func:`robustarch.train.train_model` for one epoch over a fixed subset
of ``batches * batch_size`` images, timed by the loop's own per-epoch clock (``time_s`` of its
metrics: the batches and the end-of-epoch clean accuracy on two test images, not the model and
optimizer set-up nor the checkpoint write that follow). The reference is
:class:`robustarch.bench.conventional.ConventionalTrainer` on the same subset, timed over its
whole epoch call. Both train their own copy of one freshly initialized model with the same
settings; each round runs one epoch of each.

Ours runs with the config's settings (``channels_last: auto`` is on for CNNs, on a CPU too;
``fold_batchnorm`` crafts the attacks with the norms folded into the convolutions).
``fast`` may override settings for ours; ours with the unmodified settings then runs in the same
rounds too, and is reported in the details.
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
from typing import Any

import torch
from torch import nn

from robustarch.bench.conventional import ConventionalTrainer
from robustarch.bench.records import Record, median
from robustarch.bench.timing import interleaved, throughputs
from robustarch.settings import TrainingSettings


def our_epoch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, settings: TrainingSettings,
              device: torch.device):
    """A contender running one epoch of ``train_model`` on ``(x, y)``; returns its seconds.

    Every call trains the same ``model`` further (fresh checkpoint directory each time, so
    nothing is resumed).
    """
    from robustarch.train import train_model

    test = (x[:2], y[:2])
    run_settings = dataclasses.replace(settings, epochs=1, warmup_epochs=0, selection="last")

    def run() -> float:
        with tempfile.TemporaryDirectory(prefix="robustarch-bench-") as checkpoints:
            result = train_model(model, (x, y), test, run_settings, checkpoint_dir=checkpoints,
                                 device=device, log=lambda _message: None)
        return float(result.metrics[-1]["time_s"])

    return run


def compare_training(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     settings: TrainingSettings, *, batches: int, warmup: int, repeats: int,
                     device: torch.device, fast: dict[str, Any] | None = None,
                     num_workers: int = 0, progress=None) -> Record:
    """Time ``batches`` training batches of each loop per round.

    ``x, y``: uint8 training images and labels (a seeded subset of ``batches * batch_size`` is
    used); ``fast``: settings overriding ``settings`` for ours (default: none).
    """
    from robustarch.models.memory_format import uses_channels_last

    fast = fast or {}
    batch_size = settings.batch_size
    n = batches * batch_size
    if len(x) < n:
        raise ValueError(f"need {n} training images for {batches} batches, have {len(x)}")
    subset = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:n]
    xs, ys = x[subset].contiguous(), y[subset].contiguous()
    ours_settings = dataclasses.replace(settings, **fast)

    reference = ConventionalTrainer(copy.deepcopy(model), xs, ys, settings,
                                    num_workers=num_workers, device=device)

    def conventional() -> None:
        reference.run(batches)

    contenders = {"ours": our_epoch(copy.deepcopy(model), xs, ys, ours_settings, device)}
    if fast:
        contenders["ours_config_defaults"] = our_epoch(copy.deepcopy(model), xs, ys, settings,
                                                       device)
    contenders["reference"] = conventional
    seconds = interleaved(contenders, warmup=warmup, repeats=repeats, progress=progress)
    details: dict[str, Any] = {}
    if fast:
        defaults = throughputs(seconds["ours_config_defaults"], n)
        details = {"ours_config_defaults": median(defaults),
                   "ours_config_defaults_ratio": median(defaults)
                   / median(throughputs(seconds["reference"], n))}
    return Record.from_samples(
        "train", throughputs(seconds["ours"], n), throughputs(seconds["reference"], n),
        "images/s",
        arch=settings.arch, scale=settings.scale, dataset=settings.dataset,
        batch_size=batch_size, batches_per_round=batches,
        pgd_steps=settings.adversary.steps, bf16=ours_settings.bf16,
        channels_last=uses_channels_last(ours_settings.channels_last, settings.arch, device),
        fold_batchnorm=ours_settings.fold_batchnorm, fast_paths=dict(fast),
        reference_num_workers=num_workers,
        reference="conventional loop (PIL DataLoader, loss.backward() in the attack)",
        **details,
    )
