"""String-keyed model registry, in the style of timm's ``@register_model``.

A family module (one per architecture, under :mod:`robustarch.models.families`) registers
itself with one call of :func:`register_family`, whose arguments are data: a builder
``build(num_classes, image_size, **config)``, the configuration of each scale, the named
variants (extra builder keyword arguments, each with its own metadata) and whether a ``-relu``
twin exists. ``scale`` is ``"paper"`` (the paper's size) or ``"tiny"`` (same family structure,
seconds to train on a CPU). :func:`register_model` is the primitive underneath, one name and a
``builder(num_classes, image_size, scale)`` at a time.

``create_model`` wraps the network so that it takes images in [0, 1] pixel space: the
normalization lives inside the model, which is what lets attacks budget in pixel space.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import UnknownModelError, unknown_model

__all__ = ["CATEGORIES", "REGULARIZERS", "RELU_TWIN", "SCALES", "ModelInfo", "NormalizedModel",
           "UnknownModelError", "Variant", "count_params", "create_model", "list_models",
           "model_info", "patch_variants", "register_family", "register_model"]

CATEGORIES = ("CNN", "Transformer", "Hybrid")
SCALES = ("paper", "tiny")

Builder = Callable[..., nn.Module]  # builder(num_classes, image_size, scale, **regularization)
Config = Mapping[str, Any]

# The regularizers create_model passes to the families (keyword arguments of their builders).
REGULARIZERS = ("drop_path", "dropout")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    category: str
    builder: Builder
    paper_params_m: float | None  # Table 1 / Table 2 count at 32x32, 10 classes (None: no target)
    family: str  # the base architecture a variant belongs to, e.g. "vit" for "vit-p8"
    description: str
    # The REGULARIZERS the builder applies; each other one maps to why the family cannot.
    regularizers: tuple[str, ...] = ()
    no_regularization: Mapping[str, str] = field(default_factory=dict, hash=False)


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    *,
    category: str,
    paper_params_m: float | None = None,
    family: str | None = None,
    description: str = "",
    regularizers: Sequence[str] = (),
    no_regularization: Mapping[str, str] | None = None,
) -> Callable[[Builder], Builder]:
    """Register ``builder`` under ``name`` (the primitive :func:`register_family` calls).

    Names may carry variant suffixes (``vit-p8``); the family defaults to the part before the
    first ``-``. ``builder(num_classes, image_size, scale, **rates)`` gets the rates of the
    ``regularizers`` it applies; every other one of :data:`REGULARIZERS` needs its reason in
    ``no_regularization``.
    """
    if category not in CATEGORIES:
        raise ValueError(f"category {category!r} of {name!r} is not one of {CATEGORIES}")
    reasons = dict(no_regularization or {})
    _check_regularizers(name, tuple(regularizers), reasons)

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
            regularizers=tuple(regularizers),
            no_regularization=reasons,
        )
        return builder

    return decorator


def _check_regularizers(name: str, regularizers: tuple[str, ...], reasons: Mapping[str, str]
                        ) -> None:
    """Each of :data:`REGULARIZERS` is either applied or given a reason, never both."""
    unknown = sorted((set(regularizers) | set(reasons)) - set(REGULARIZERS))
    if unknown:
        raise ValueError(f"{name!r}: unknown regularizers {unknown}; known: {REGULARIZERS}")
    both = sorted(set(regularizers) & set(reasons))
    neither = [r for r in REGULARIZERS if r not in regularizers and r not in reasons]
    if both or neither:
        raise ValueError(
            f"{name!r}: each of {REGULARIZERS} must be either a keyword argument of its builder "
            f"or have a reason in no_regularization (why the architecture has no place for it); "
            f"both: {both}, neither: {neither}")


@dataclass(frozen=True)
class Variant:
    """A named variant of a family: builder keyword arguments added to (or replacing) the
    scale's configuration, and the variant's own description and paper count."""

    config: Config
    description: str
    paper_params_m: float | None = None


def patch_variants(patches: Sequence[int], describe: Callable[[int], str], *,
                   paper_params_m: float | None, default: int = 4) -> dict[str, Variant]:
    """The patch-size study's variants of a family: ``p<P>`` for each P of ``patches``, builder
    ``patch_size=P``, described by ``describe(P)``; only the family's own patch (``default``)
    has the paper's count ``paper_params_m``."""
    return {f"p{p}": Variant({"patch_size": p}, describe(p),
                             paper_params_m=paper_params_m if p == default else None)
            for p in patches}


# The activation switch of the ``-relu`` twins: every GELU family's builder takes ``act``.
RELU_TWIN: Config = {"act": "relu"}


def _scaled_builder(name: str, build: Callable[..., nn.Module], sizes: Mapping[str, Config],
                    config: Config) -> Builder:
    """``builder(num_classes, image_size, scale, **rates)`` = ``build(..., **sizes[scale],
    **config, **rates)``."""

    def builder(num_classes: int, image_size: int, scale: str, **rates: float) -> nn.Module:
        if scale not in sizes:
            raise ValueError(f"unknown scale {scale!r} for {name!r}; use one of {tuple(sizes)}")
        # A copy per build: a builder may edit what it is given without changing the next one.
        return build(num_classes, image_size, **copy.deepcopy({**sizes[scale], **config}),
                     **rates)

    builder.__name__ = builder.__qualname__ = f"build_{name.replace('-', '_')}"
    return builder


def _name_of(build: Callable[..., nn.Module]) -> str:
    return getattr(build, "__name__", repr(build))


def _builder_regularizers(build: Callable[..., nn.Module]) -> tuple[str, ...]:
    """The :data:`REGULARIZERS` ``build`` takes as keyword arguments."""
    parameters = inspect.signature(build).parameters
    return tuple(r for r in REGULARIZERS if r in parameters
                 and parameters[r].kind in (inspect.Parameter.KEYWORD_ONLY,
                                            inspect.Parameter.POSITIONAL_OR_KEYWORD))


def _check_family(name: str, category: str, build: Callable[..., nn.Module],
                  sizes: Mapping[str, Config], entries: dict[str, Config],
                  no_regularization: Mapping[str, str]) -> None:
    """Refuse the whole family before registering any of it: a bad category, scales other than
    :data:`SCALES`, a name taken, a configuration the builder does not accept, or a regularizer
    neither applied nor explained."""
    _check_regularizers(name, _builder_regularizers(build), no_regularization)
    if category not in CATEGORIES:
        raise ValueError(f"category {category!r} of {name!r} is not one of {CATEGORIES}")
    if sorted(sizes) != sorted(SCALES):
        raise ValueError(f"family {name!r} gives the scales {sorted(sizes)}; it needs exactly "
                         f"{list(SCALES)}, one configuration each")
    taken = [n for n in entries if n in _REGISTRY]
    if taken:
        raise ValueError(f"architecture {taken[0]!r} (family {name!r}) is registered twice")
    signature = inspect.signature(build)
    rates = dict.fromkeys(_builder_regularizers(build), 0.0)
    for full_name, config in entries.items():
        for scale, size in sizes.items():
            try:
                signature.bind(0, 0, **{**size, **config}, **rates)
            except TypeError as exc:
                raise ValueError(f"{full_name!r} at scale {scale!r}: {_name_of(build)} cannot "
                                 f"take the configuration {sorted({**size, **config})}: {exc}"
                                 ) from None


def register_family(
    name: str,
    *,
    category: str,
    build: Callable[..., nn.Module],
    sizes: Mapping[str, Config],
    description: str,
    paper_params_m: float | None = None,
    variants: Mapping[str, Variant] | None = None,
    relu_twin: str | None = None,
    no_regularization: Mapping[str, str] | None = None,
) -> list[str]:
    """Register architecture family ``name``, its named variants and its ``-relu`` twin.

    ``build(num_classes, image_size, **config)`` makes the network; ``config`` is ``sizes[scale]``
    (one entry per scale of :data:`SCALES`) updated with the variant's ``config``. Registered:

    * ``name``: the scale's configuration alone, with ``paper_params_m`` and ``description``;
    * ``name-<suffix>`` for each ``variants[suffix]``, with that variant's metadata;
    * ``name-relu`` if ``relu_twin`` is given (its description): the configuration plus
      :data:`RELU_TWIN` (``act="relu"``), no paper count.

    Regularization: ``build`` takes ``drop_path=`` and ``dropout=`` (keyword arguments, the
    rates) where the architecture has a place for them; ``no_regularization`` maps each one it
    does not take to the reason (e.g. "VGG has no residual branches"), which is the error a
    non-zero rate gets.

    Every name has family ``name``. Nothing is registered if any name is taken or any
    configuration does not fit the builder's signature. Returns the names registered.
    """
    entries: dict[str, Config] = {name: {}}
    meta: dict[str, tuple[str, float | None]] = {name: (description, paper_params_m)}
    for suffix, variant in (variants or {}).items():
        entries[f"{name}-{suffix}"] = variant.config
        meta[f"{name}-{suffix}"] = (variant.description, variant.paper_params_m)
    if relu_twin is not None:
        if f"{name}-relu" in entries:
            raise ValueError(f"family {name!r} has both a 'relu' variant and a relu_twin")
        if "act" not in inspect.signature(build).parameters:
            raise ValueError(f"the -relu twin of {name!r} needs {_name_of(build)} to take act=")
        entries[f"{name}-relu"] = RELU_TWIN
        meta[f"{name}-relu"] = (relu_twin, None)
    reasons = dict(no_regularization or {})
    _check_family(name, category, build, sizes, entries, reasons)
    # Copies: editing the module's configuration dicts later does not change the registry.
    sizes = {scale: dict(sizes[scale]) for scale in SCALES}
    for full_name, config in entries.items():
        text, target = meta[full_name]
        register_model(full_name, category=category, paper_params_m=target, family=name,
                       description=text, regularizers=_builder_regularizers(build),
                       no_regularization=reasons,
                       )(_scaled_builder(full_name, build, sizes, dict(config)))
    return list(entries)


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
    *,
    drop_path: float = 0.0,
    dropout: float = 0.0,
) -> NormalizedModel:
    """Build architecture ``name`` taking [0, 1] images of ``image_size`` pixels.

    ``drop_path``: the stochastic-depth rate of the last residual block (earlier blocks get
    linearly less, from 0 at the first); ``dropout``: the dropout probability (where each
    family applies them: docs/architectures.md, "Regularization"). Both act in training mode
    only and change no parameter; a non-zero rate the architecture has no place for is an error.
    """
    info = model_info(name)
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; use one of {SCALES}")
    rates = {"drop_path": drop_path, "dropout": dropout}
    for key, rate in rates.items():
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
            raise ValueError(f"{key} must be a number in [0, 1), got {rate!r} "
                             f"(training.regularization.{key})")
        if rate and key in info.no_regularization:
            raise ValueError(
                f"{name!r} cannot apply {key}={rate:g}: {info.no_regularization[key]}. Set "
                f"training.regularization.{key} to 0 for it.")
    net = info.builder(num_classes, image_size, scale,
                       **{key: float(rates[key]) for key in info.regularizers})
    return NormalizedModel(net, mean, std)


def count_params(model: nn.Module) -> int:
    """Trainable parameters (what the paper's params column counts)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
