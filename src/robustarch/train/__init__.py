"""Training: one aligned recipe for every architecture (:mod:`.loop`), one objective per method
(:mod:`.objectives`), the schedule (:mod:`.schedule`), checkpoints (:mod:`.checkpoints`) guarded
by the run's fingerprint (:mod:`.fingerprint`) and the files a run leaves (:mod:`.outputs`)."""

from .checkpoints import clear_checkpoints, list_checkpoints, load_latest_checkpoint
from .fingerprint import Fingerprint, data_digest, run_fingerprint
from .loop import GradientRecord, NonFiniteLossError, clean_accuracy, train_model
from .objectives import l1_penalty, make_objective, trades_loss
from .outputs import (
    METRIC_COLUMNS,
    TrainResult,
    load_model_file,
    save_trained_model,
    untrained_record,
    write_metrics,
)
from .schedule import epoch_lr_factor, lr_factor

__all__ = [
    "METRIC_COLUMNS",
    "Fingerprint",
    "GradientRecord",
    "NonFiniteLossError",
    "TrainResult",
    "clean_accuracy",
    "clear_checkpoints",
    "data_digest",
    "epoch_lr_factor",
    "l1_penalty",
    "list_checkpoints",
    "load_latest_checkpoint",
    "load_model_file",
    "lr_factor",
    "make_objective",
    "run_fingerprint",
    "save_trained_model",
    "train_model",
    "trades_loss",
    "untrained_record",
    "write_metrics",
]
