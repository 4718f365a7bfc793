import functools
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@functools.cache
def _digits():
    from robustarch.data.datasets.digits import load_digits_tensors

    return load_digits_tensors()


@pytest.fixture(scope="session")
def digits():
    return _digits()


@pytest.fixture(scope="session")
def paper_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.fixture(scope="session")
def schema() -> dict:
    from robustarch.config import load_schema

    return load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")


def tiny_settings_dict(**overrides) -> dict:
    """:func:`tiny_settings` as plain values (what the fault-injection driver reads as JSON)."""
    settings = dict(
        epochs=2, batch_size=64, lr=3e-3, weight_decay=0.01, betas=[0.9, 0.999],
        regularization=dict(drop_path=0.0, dropout=0.0),
        warmup_epochs=1, min_lr=1e-4, schedule="per_epoch", selection="last", seed=0,
        adversary=dict(eps=8 / 255, steps=2, step_size=4 / 255, random_start=True),
        bf16=False, channels_last=False, compile=False, fold_batchnorm=True, method="vanilla",
        arch="resnet", dataset="digits", scale="tiny", image_size=32, num_classes=10,
        mean=[0.3054] * 3, std=[0.3237] * 3, augment=dict(crop="crop_flip", autoaugment=None,
                                                       autoaugment_impl="authors"),
        trades_beta=None,
    )
    settings.update(overrides)
    if settings["method"] == "trades" and settings["trades_beta"] is None:
        settings["trades_beta"] = 6.0
    return settings


def tiny_settings(**overrides):
    """Training settings for a tiny model on digits, a few seconds on a CPU."""
    from robustarch.settings import TrainingSettings, from_dict

    return from_dict(TrainingSettings, tiny_settings_dict(**overrides))


@pytest.fixture(autouse=True)
def _one_thread():
    # Tests run on 2 cores; one intra-op thread keeps timings stable and avoids oversubscription.
    torch.set_num_threads(1)
