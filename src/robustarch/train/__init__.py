"""Training: one aligned recipe for every architecture (:mod:`.loop`), one objective per method
(:mod:`.objectives`), the schedule (:mod:`.schedule`), checkpoints (:mod:`.checkpoints`) and the
files a run leaves (:mod:`.outputs`)."""

from .checkpoints import clear_checkpoints, list_checkpoints, load_latest_checkpoint
from .loop import NonFiniteLossError, clean_accuracy, train_model
from .objectives import l1_penalty, make_objective, trades_loss
from .outputs import (
    METRIC_COLUMNS,
    TrainResult,
    load_model_file,
    save_trained_model,
    write_metrics,
)
from .schedule import lr_factor

__all__ = [
    "METRIC_COLUMNS",
    "NonFiniteLossError",
    "TrainResult",
    "clean_accuracy",
    "clear_checkpoints",
    "l1_penalty",
    "list_checkpoints",
    "load_latest_checkpoint",
    "load_model_file",
    "lr_factor",
    "make_objective",
    "save_trained_model",
    "train_model",
    "trades_loss",
    "write_metrics",
]
