"""Typed settings: what one job needs, resolved from the validated configuration.

The configuration is validated once, at planning time, against ``workflow/schemas/
config.schema.yaml``, which also fills in every default; the builders here (``training_settings``,
``attack_settings``, ...) turn the validated dictionary into frozen dataclasses. So defaults live
only in the schema: no code reads a key with a fallback value, and a field that the schema did
not fill is an error, not a silent default.

Snakemake hands these objects to the job scripts as rule parameters (pickled); their ``repr`` is
what Snakemake compares to decide whether a job's parameters changed.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .errors import ConfigError

_FRACTION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*/\s*([0-9]+(?:\.[0-9]+)?)\s*$")
_L1_METHOD = re.compile(r"^pgd_linf_l1-(.+)$")


class Method(StrEnum):
    """A training method; ``PGD_LINF_L1`` stands for every ``pgd_linf_l1-<λ>``."""

    VANILLA = "vanilla"
    PGD_LINF = "pgd_linf"
    TRADES = "trades"
    PGD_LINF_L1 = "pgd_linf_l1"

    @property
    def adversarial(self) -> bool:
        return self is not Method.VANILLA


class AttackKind(StrEnum):
    CLEAN = "clean"
    PGD = "pgd"
    AUTOATTACK = "autoattack"


def parse_budget(value: float | int | str) -> float:
    """A number or a fraction string ``"a/b"`` (e.g. ``"8/255"``) as a float."""
    if isinstance(value, bool):
        raise ConfigError(f"budget {value!r} must be a number or a fraction 'a/b'")
    if isinstance(value, int | float):
        return float(value)
    match = _FRACTION.match(str(value))
    if not match:
        raise ConfigError(f"budget {value!r} must be a number or a fraction 'a/b' such as '8/255'")
    numerator, denominator = (float(g) for g in match.groups())
    if denominator == 0:
        raise ConfigError(f"budget {value!r} divides by zero")
    return numerator / denominator


def l1_method(strength: float) -> str:
    """The method name of PGD-ℓ∞ AT with penalty λ·Σ|w| (λ = 0 is plain ``pgd_linf``)."""
    return "pgd_linf" if strength == 0 else f"pgd_linf_l1-{strength:g}"


def parse_method(name: str) -> tuple[Method, float]:
    """``(base method, ℓ1 penalty strength)`` of a training method name."""
    if name in ("vanilla", "pgd_linf", "trades"):
        return Method(name), 0.0
    match = _L1_METHOD.match(name)
    if match:
        try:
            strength = float(match.group(1))
        except ValueError:
            strength = -1.0
        if strength >= 0 and math.isfinite(strength):
            return Method.PGD_LINF_L1, strength
    raise ConfigError(
        f"unknown training method {name!r}; valid: vanilla, pgd_linf, trades, and "
        "pgd_linf_l1-<lambda> with a non-negative number lambda (e.g. pgd_linf_l1-5e-05)"
    )


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class Adversary:
    """The PGD-ℓ∞ attack crafted during adversarial training (and TRADES' inner maximization)."""

    eps: float
    steps: int
    step_size: float
    random_start: bool


@dataclass(frozen=True)
class Augmentation:
    crop: str | None  # "crop_flip", "resized_crop", "resized_crop_flip" or None
    autoaugment: str | None  # AutoAugment policy ("cifar10", "imagenet") or None
    autoaugment_impl: str  # "authors" (their PIL semantics and tables) or "torchvision"


@dataclass(frozen=True)
class Regularization:
    """``training.regularization``: the rates every family applies where it has a place for
    them (``robustarch.models.create_model``; docs/architectures.md, "Regularization")."""

    drop_path: float  # stochastic depth of the last residual block (linear from 0 before it)
    dropout: float


@dataclass(frozen=True)
class TrainingSettings:
    """Everything one training job needs: the model, the data's shape, the recipe."""

    arch: str
    dataset: str
    method: str  # the full name, e.g. "pgd_linf_l1-5e-05"
    scale: str
    image_size: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: Augmentation
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    regularization: Regularization
    betas: tuple[float, float]
    warmup_epochs: int
    min_lr: float
    schedule: str  # "per_epoch" (the authors' warm-up + cosine, stepped per epoch) or "per_step"
    selection: str  # "best_clean" or "last"
    seed: int
    adversary: Adversary
    trades_beta: float | None  # TRADES' β; None for the other methods
    bf16: bool | str
    channels_last: bool | str
    compile: bool
    fold_batchnorm: bool

    @property
    def base_method(self) -> Method:
        return parse_method(self.method)[0]

    @property
    def l1_strength(self) -> float:
        return parse_method(self.method)[1]


def _epochs(training: Mapping[str, Any], arch: str) -> int:
    """``training.epochs``, unless ``epochs_by_architecture`` names ``arch`` or its family."""
    overrides = training["epochs_by_architecture"]
    for name in (arch, arch.partition("-")[0]):
        if name in overrides:
            return overrides[name]
    return training["epochs"]


def training_settings(config: Mapping[str, Any], dataset: str, arch: str, method: str
                      ) -> TrainingSettings:
    """The training job of ``(dataset, arch, method)`` under a validated ``config``."""
    base, _ = parse_method(method)  # fail early on a bad name
    training = config["training"]
    adversary = training["adversary"]
    data = config["datasets"][dataset]
    return TrainingSettings(
        arch=arch, dataset=dataset, method=method, scale=config["scale"],
        image_size=data["image_size"], num_classes=data["num_classes"],
        mean=tuple(data["mean"]), std=tuple(data["std"]),
        augment=Augmentation(**data["augment"]),
        epochs=_epochs(training, arch), batch_size=training["batch_size"], lr=training["lr"],
        weight_decay=training["weight_decay"],
        regularization=Regularization(**training["regularization"]),
        betas=tuple(training["betas"]),
        warmup_epochs=training["warmup_epochs"], min_lr=training["min_lr"],
        schedule=training["schedule"], selection=training["selection"], seed=training["seed"],
        adversary=Adversary(eps=parse_budget(adversary["eps"]), steps=adversary["steps"],
                            step_size=parse_budget(adversary["step_size"]),
                            random_start=adversary["random_start"]),
        trades_beta=training["trades"]["beta"] if base is Method.TRADES else None,
        bf16=training["bf16"], channels_last=training["channels_last"],
        compile=training["compile"], fold_batchnorm=training["fold_batchnorm"],
    )


# --------------------------------------------------------------------------- attacks


@dataclass(frozen=True)
class CleanSettings:
    """No attack: the model's predictions on the test images."""

    name: str = "clean"
    kind: AttackKind = AttackKind.CLEAN


class PGDAlgorithm(StrEnum):
    """Whose PGD: ours (:func:`robustarch.attacks.pgd`: exact ℓ2/ℓ1 projections, sparse ℓ1
    steps, optional per-sample early stop), or the paper's libraries' as
    :mod:`robustarch.attacks.paper_pgd` reproduces them (foolbox 3.0.4 for ℓ∞/ℓ2, ART 1.16.0
    for ℓ1; last iterate)."""

    ROBUSTARCH = "robustarch"
    FOOLBOX = "foolbox"
    ART_1_16 = "art_1_16"


@dataclass(frozen=True)
class PGDSettings:
    """Projected gradient descent: ``algorithm`` says whose (:class:`PGDAlgorithm`)."""

    name: str
    norm: str  # "linf", "l2" or "l1"
    eps: float
    steps: int
    step_size: float
    random_start: bool
    early_stop: bool  # robustarch's only: the libraries score the last iterate
    algorithm: PGDAlgorithm
    kind: AttackKind = AttackKind.PGD


@dataclass(frozen=True)
class AutoAttackSettings:
    """AutoAttack (:func:`robustarch.attacks.autoattack`)."""

    name: str
    norm: str
    eps: float
    version: str  # "standard", "plus", "rand" or "custom"
    components: tuple[str, ...] | None  # the attacks of version "custom"
    iterations: int | None  # None: the version's own
    restarts: int | None
    target_classes: int | None  # of APGD-T and FAB-T; None: the version's own
    queries: int | None  # Square's; None: 50 x iterations, or the version's own
    kind: AttackKind = AttackKind.AUTOATTACK


AttackSettings = CleanSettings | PGDSettings | AutoAttackSettings
_ATTACK_CLASSES = {AttackKind.CLEAN: CleanSettings, AttackKind.PGD: PGDSettings,
                   AttackKind.AUTOATTACK: AutoAttackSettings}


# The methods' names as the workflow's method wildcard matches them (pgd_linf_l1-<λ> for any λ).
METHOD_PATTERNS = {Method.VANILLA: "vanilla", Method.PGD_LINF: "pgd_linf",
                   Method.TRADES: "trades", Method.PGD_LINF_L1: r"pgd_linf_l1-[^/]+"}


def evaluated_attacks(run: Mapping[str, Any], method: Method | str) -> list[str]:
    """The attacks a model trained with ``method`` (a base method, or a method's name) is
    evaluated under, clean first: its base method's entry of ``run.attacks`` (every
    pgd_linf_l1-<λ> shares the pgd_linf_l1 entry), then, for every adversarially trained
    model, the strong protocol's, so that each of the paper's findings can be checked under
    both protocols."""
    base = method if isinstance(method, Method) else parse_method(method)[0]
    attacks = ["clean"] + list(run["attacks"].get(base, []))
    if base.adversarial:
        attacks += [a for a in run["strong_attacks"] if a not in attacks]
    return attacks


def attack_settings(config: Mapping[str, Any], attack: str, dataset: str) -> AttackSettings:
    """The settings of ``attack`` (a key of ``attacks:``, or ``clean``) on ``dataset``."""
    if attack == "clean":
        return CleanSettings()
    spec = config["attacks"][attack]
    eps = parse_budget(spec["eps"][dataset])
    if spec["kind"] == AttackKind.PGD:
        return PGDSettings(name=attack, norm=spec["norm"], eps=eps, steps=spec["steps"],
                           step_size=spec["step_size_ratio"] * eps,
                           random_start=spec["random_start"], early_stop=spec["early_stop"],
                           algorithm=PGDAlgorithm(spec["algorithm"]))
    components = spec.get("components")  # only version "custom" has them (the schema says so)
    return AutoAttackSettings(name=attack, norm=spec["norm"], eps=eps, version=spec["version"],
                              components=None if components is None else tuple(components),
                              iterations=spec["iterations"], restarts=spec["restarts"],
                              target_classes=spec["target_classes"], queries=spec["queries"])


def attack_from_mapping(settings: Mapping[str, Any] | AttackSettings) -> AttackSettings:
    """Typed attack settings from a plain dictionary (the Python API's convenience); every
    field of the kind is required, so nothing falls back to a default silently."""
    if isinstance(settings, CleanSettings | PGDSettings | AutoAttackSettings):
        return settings
    try:
        kind = AttackKind(settings["kind"])
    except (KeyError, ValueError):
        raise ConfigError(f"attack settings {dict(settings)!r} need a 'kind' of "
                          f"{', '.join(k.value for k in AttackKind)}") from None
    cls = _ATTACK_CLASSES[kind]
    names = [f.name for f in dataclasses.fields(cls) if f.name != "kind"]
    missing = [n for n in names if n not in settings and
               not (cls is CleanSettings and n == "name")]
    unknown = sorted(set(settings) - set(names) - {"kind"})
    if missing or unknown:
        raise ConfigError(f"{kind.value} attack settings: missing {missing}, unknown {unknown}; "
                          f"the fields are {', '.join(names)}")
    values = {n: settings[n] for n in names if n in settings}
    if cls is AutoAttackSettings and values["components"] is not None:
        values["components"] = tuple(values["components"])
    if cls is PGDSettings:
        values["algorithm"] = PGDAlgorithm(values["algorithm"])
    return cls(**values)


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class EvaluationSettings:
    batch_size: int | str  # or "auto"
    num_samples: int | None  # None: the whole test split
    seed: int
    bf16: bool
    fold_batchnorm: bool


def evaluation_settings(config: Mapping[str, Any]) -> EvaluationSettings:
    """The settings an evaluation's outcomes depend on; ``evaluation.jobs`` only lays out the
    workflow's jobs, so switching it reruns nothing."""
    return EvaluationSettings(**{k: v for k, v in config["evaluation"].items() if k != "jobs"})


@dataclass(frozen=True)
class CorruptionSettings:
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    seed: int


# --------------------------------------------------------------------------- analyses


@dataclass(frozen=True)
class SparsitySettings:
    threshold: float
    bins: int


@dataclass(frozen=True)
class LandscapeSettings:
    grid: int
    radius: float
    samples: int
    batch_size: int
    seed: int


@dataclass(frozen=True)
class LipschitzSettings:
    eps: float
    steps: int
    step_size: float
    restarts: int
    samples: int
    batch_size: int
    seed: int


@dataclass(frozen=True)
class AnalysisSettings:
    sparsity: SparsitySettings
    landscape: LandscapeSettings
    lipschitz: LipschitzSettings


def _fields(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    return {f.name: values[f.name] for f in dataclasses.fields(cls)}


def analysis_settings(config: Mapping[str, Any]) -> AnalysisSettings:
    """The per-model analyses' settings (budgets as floats)."""
    section = config["analysis"]
    lipschitz = dict(section["lipschitz"])
    lipschitz["eps"] = parse_budget(lipschitz["eps"])
    lipschitz["step_size"] = parse_budget(lipschitz["step_size"])
    return AnalysisSettings(
        sparsity=SparsitySettings(**_fields(SparsitySettings, section["sparsity"])),
        landscape=LandscapeSettings(**_fields(LandscapeSettings, section["landscape"])),
        lipschitz=LipschitzSettings(**_fields(LipschitzSettings, lipschitz)),
    )


def as_dict(settings: Any) -> dict[str, Any]:
    """A settings object as plain JSON-able values (enums as their strings)."""

    def plain(value: Any) -> Any:
        if isinstance(value, StrEnum):
            return value.value
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, Sequence) and not isinstance(value, str):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(settings))


def from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """The settings object ``cls`` from :func:`as_dict`'s output (tests and the fault-injection
    driver pass settings as JSON). Every field is required; lists become tuples."""
    import typing

    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    missing, unknown = sorted(names - set(data)), sorted(set(data) - names)
    if missing or unknown:
        raise ConfigError(f"{cls.__name__}: missing fields {missing}, unknown fields {unknown}")
    values = {}
    for name in names:
        value, hint = data[name], hints[name]
        if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
            value = from_dict(hint, value)
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    return cls(**values)
