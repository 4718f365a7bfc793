"""Train one (dataset, architecture, method) model (rule train).

SIGTERM/SIGUSR1 (what SLURM sends before preemption or the time limit) stop training after the
current batch with a checkpoint of that point; the requeued job resumes from the next batch.
"""

import signal
import sys

from robustarch.data import load_split
from robustarch.jobs import setup_job
from robustarch.models import count_params, create_model
from robustarch.train import (
    finish,
    save_trained_model,
    seed_everything,
    select_device,
    train_model,
    write_metrics,
)

log = setup_job(snakemake)
settings = snakemake.params.settings
stop = {"signal": None}


def _request_stop(signum, _frame):
    stop["signal"] = signal.Signals(signum).name


for sig in (signal.SIGTERM, signal.SIGUSR1):
    signal.signal(sig, _request_stop)

device = select_device()
seed_everything(settings["seed"])  # the initial weights follow training.seed
model = create_model(settings["arch"], num_classes=settings["num_classes"],
                     image_size=settings["image_size"], scale=settings["scale"],
                     mean=settings["mean"], std=settings["std"])
log(f"{settings['arch']} ({count_params(model) / 1e6:.3f}M params), method "
    f"{settings['method']}, {settings['epochs']} epochs on {device}")
try:
    result = train_model(
        model, load_split(snakemake.input.train), load_split(snakemake.input.test), settings,
        checkpoint_dir=snakemake.params.checkpoint_dir, device=device, log=log,
        stop_requested=lambda: stop["signal"] is not None,
    )
except InterruptedError as exc:
    log(f"received {stop['signal']}: {exc}")
    sys.exit(1)
save_trained_model(snakemake.output.model, result, settings)
write_metrics(result.metrics, snakemake.output.metrics)
finish(snakemake.params.checkpoint_dir)
log(f"done; selected epoch {result.selected_epoch} ({settings['selection']})")
