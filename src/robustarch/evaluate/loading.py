"""A trained model, rebuilt from its ``model.pt`` and made ready for evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models import create_model
from ..models.batchnorm_folding import fold_batchnorm as fold
from ..models.memory_format import memory_format
from ..train.outputs import load_model_file, untrained_record


def load_trained_model(path: str | Path, device: str | torch.device = "cpu",
                       channels_last: bool | str = "auto",
                       fold_batchnorm: bool = False) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model written by training (``model.pt``) for evaluation: in eval mode, on
    ``device``, its parameters frozen (attacks and analyses need input gradients only), in
    channels_last memory format where that is faster ("auto": on CUDA, and for CNNs on a CPU,
    as in training). ``fold_batchnorm``: fold eval-mode batch norms into the convolutions before
    them (:mod:`robustarch.models.batchnorm_folding`; the same function, faster), for attacks
    and corruptions; off by default, since it changes the weights that weight analyses read.
    Returns the model and the file's metadata, whose ``untrained`` holds the masks of the
    parameter elements that never trained (:mod:`robustarch.train.outputs`; None, with
    ``untrained_known`` False, for a file from before that record). The model is built with the
    regularization rates it was trained with (``model.pt``'s ``regularization``); files written
    before that key get none, which builds the same parameters (rates never change them) and,
    in eval mode, the same function."""
    data = load_model_file(path)
    rates = data.get("regularization") or {}  # absent in files from before the key
    model = create_model(data["arch"], num_classes=data["num_classes"],
                         image_size=data["image_size"], scale=data["scale"],
                         mean=data["mean"], std=data["std"], **rates)
    model.load_state_dict(data["state_dict"])
    meta = {k: v for k, v in data.items() if k != "state_dict"}
    meta["untrained"] = untrained_record(data)
    meta["untrained_known"] = meta["untrained"] is not None
    model = prepare_for_evaluation(model, data["arch"], device, channels_last, fold_batchnorm)
    return model, meta


def prepare_for_evaluation(model: nn.Module, arch: str, device: str | torch.device = "cpu",
                           channels_last: bool | str = "auto",
                           fold_batchnorm: bool = False) -> nn.Module:
    """``model`` (of architecture ``arch``) in eval mode on ``device``, parameters frozen,
    channels_last where faster, batch norms folded if asked (see :func:`load_trained_model`)."""
    device = torch.device(device)
    model.eval().requires_grad_(False)
    if fold_batchnorm:
        fold(model)
    return model.to(device, memory_format=memory_format(channels_last, arch, device))
