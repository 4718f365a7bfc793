"""The training job (rule ``train``): build the model, train it, write its files.

SIGTERM/SIGUSR1 (what SLURM sends before preemption or the time limit) stop training after the
current batch with a checkpoint of that point; the requeued job resumes from the next batch,
provided its settings, split files and code are those the checkpoint records
(:mod:`.fingerprint`).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from ..data.splits import load_split
from ..models import count_params, create_model
from ..runtime import seed_everything, select_device
from ..settings import TrainingSettings
from . import loop
from .checkpoints import clear_checkpoints
from .fingerprint import data_digest, run_fingerprint
from .outputs import save_trained_model, write_metrics


def run_training_job(*, train: str | Path, test: str | Path, settings: TrainingSettings,
                     model_path: str | Path, metrics_path: str | Path,
                     checkpoint_dir: str | Path, log: Callable[[str], None]) -> None:
    """Train one (dataset, architecture, method) model; exit with status 1 on a stop signal,
    after the checkpoint of the current batch is written."""
    stop = {"signal": None}

    def request_stop(signum, _frame):
        stop["signal"] = signal.Signals(signum).name

    for sig in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, request_stop)
    device = select_device()
    seed_everything(settings.seed)  # the initial weights follow training.seed
    reg = settings.regularization
    model = create_model(settings.arch, num_classes=settings.num_classes,
                         image_size=settings.image_size, scale=settings.scale,
                         mean=settings.mean, std=settings.std, drop_path=reg.drop_path,
                         dropout=reg.dropout)
    log(f"{settings.arch} ({count_params(model) / 1e6:.3f}M params, drop-path {reg.drop_path:g}, "
        f"dropout {reg.dropout:g}), method {settings.method}, {settings.epochs} epochs on "
        f"{device}")
    fingerprint = run_fingerprint(settings, data=data_digest(train, test))
    try:
        # looked up at call time, so the fault-injection tests can wrap it; the train split may
        # hold full frames with their sizes (ImageNette), which the loader crops
        result = loop.train_model(model, load_split(train, with_sizes=True), load_split(test),
                                  settings, checkpoint_dir=checkpoint_dir, device=device, log=log,
                                  stop_requested=lambda: stop["signal"] is not None,
                                  fingerprint=fingerprint)
    except InterruptedError as exc:
        log(f"received {stop['signal']}: {exc}")
        raise SystemExit(1) from None
    save_trained_model(model_path, result, settings)
    write_metrics(result.metrics, metrics_path)
    clear_checkpoints(checkpoint_dir)
    log(f"done; selected epoch {result.selected_epoch} ({settings.selection})")
