"""String-keyed model registry, in the style of timm's ``@register_model``.

Every architecture module registers builder functions with the signature
``builder(num_classes: int, image_size: int, scale: str) -> nn.Module``. ``scale`` is ``"paper"``
(the paper's size) or ``"tiny"`` (same family structure, seconds to train on a CPU).
``create_model`` wraps the network so that it takes images in [0, 1] pixel space: the
normalization lives inside the model, which is what lets attacks budget in pixel space.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UnknownModelError, unknown_model

__all__ = ["CATEGORIES", "SCALES", "ModelInfo", "NormalizedModel", "UnknownModelError",
           "count_params", "create_model", "list_models", "model_info", "register_model"]

CATEGORIES = ("CNN", "Transformer", "Hybrid")
SCALES = ("paper", "tiny")

Builder = Callable[[int, int, str], nn.Module]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    category: str
    builder: Builder
    paper_params_m: float | None  # Table 1 / Table 2 count at 32x32, 10 classes (None: no target)
    family: str  # the base architecture a variant belongs to, e.g. "vit" for "vit-p8"
    description: str


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    *,
    category: str,
    paper_params_m: float | None = None,
    family: str | None = None,
    description: str = "",
) -> Callable[[Builder], Builder]:
    """Register ``builder`` under ``name``. Names may carry variant suffixes (``vit-p8``)."""
    if category not in CATEGORIES:
        raise ValueError(f"category {category!r} of {name!r} is not one of {CATEGORIES}")

    def decorator(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"architecture {name!r} is registered twice")
        _REGISTRY[name] = ModelInfo(
            name=name,
            category=category,
            builder=builder,
            paper_params_m=paper_params_m,
            family=family or name.split("-")[0],
            description=description or (builder.__doc__ or "").strip().split("\n")[0],
        )
        return builder

    return decorator


@functools.cache
def _load_families() -> None:
    """Import every family module (each registers its architectures on import)."""
    from . import families  # noqa: F401


def list_models(category: str | None = None) -> list[str]:
    """All registered names (sorted), optionally only those of one category."""
    _load_families()
    return sorted(n for n, i in _REGISTRY.items() if category is None or i.category == category)


def model_info(name: str) -> ModelInfo:
    _load_families()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise unknown_model(name, list_models()) from None


class Normalize(nn.Module):
    """Per-channel (x - mean) / std, as a module so attacks can stay in [0, 1] space."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class NormalizedModel(nn.Module):
    """``net(normalize(x))``; ``x`` is an image batch in [0, 1]."""

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


# CIFAR-10 statistics used by the authors' code; datasets pass their own.
DEFAULT_MEAN = (0.4914, 0.4822, 0.4465)
DEFAULT_STD = (0.2023, 0.1994, 0.2010)


def create_model(
    name: str,
    num_classes: int = 10,
    image_size: int = 32,
    scale: str = "paper",
    mean: Sequence[float] = DEFAULT_MEAN,
    std: Sequence[float] = DEFAULT_STD,
) -> NormalizedModel:
    """Build architecture ``name`` taking [0, 1] images of ``image_size`` pixels."""
    info = model_info(name)
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; use one of {SCALES}")
    net = info.builder(num_classes, image_size, scale)
    return NormalizedModel(net, mean, std)


def count_params(model: nn.Module) -> int:
    """Trainable parameters (what the paper's params column counts)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
