"""Configuration: JSON-schema validation with defaults, readable errors, cross-references.

Errors name the key, the bad value and what is allowed, because a typo in a week-long run's
config must fail at planning time, not silently fall back to a default.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

_FRACTION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*/\s*([0-9]+(?:\.[0-9]+)?)\s*$")


class ConfigError(ValueError):
    """The configuration is invalid; the message lists every problem found."""


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


def _validator_with_defaults(schema: Mapping[str, Any]) -> jsonschema.Draft7Validator:
    """A Draft-7 validator that also fills in the schema's defaults."""
    base = jsonschema.Draft7Validator
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, subschema in properties.items():
                if "default" in subschema and key not in instance:
                    instance[key] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    cls = jsonschema.validators.extend(base, {"properties": set_defaults})
    return cls(schema)


def _key(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    key = _key(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        lines = []
        for name in extra:
            full = f"{key}.{name}" if error.absolute_path else name
            hint = difflib.get_close_matches(name, allowed, n=1)
            did_you_mean = f" (did you mean '{hint[0]}'?)" if hint else ""
            lines.append(
                f"config key '{full}' is not a valid key{did_you_mean}; "
                f"valid keys here: {', '.join(allowed)}"
            )
        return "\n".join(lines)
    if error.validator == "oneOf" and "description" in error.schema:
        return (f"config key '{key}': {error.instance!r} is invalid: must be "
                f"{error.schema['description']}")
    if error.validator == "required":
        return f"config key '{key}': {error.message}"
    return f"config key '{key}': {error.message}"


def load_schema(path: str | Path) -> dict[str, Any]:
    with open(path) as fh:
        return yaml.safe_load(fh)


def validate_config(
    config: Mapping[str, Any],
    schema: Mapping[str, Any],
    *,
    known_architectures: Iterable[str] | None = None,
    known_datasets: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Validate ``config`` against ``schema`` and its cross-references; return it with defaults.

    Raises :class:`ConfigError` listing every problem, each naming the key, the bad value and
    what is allowed.
    """
    config = copy.deepcopy(dict(config))
    validator = _validator_with_defaults(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(_describe(e) for e in errors))
    if config.get("analysis", {}).get("dataset", "") is None:  # default: Table 1's dataset
        config["analysis"]["dataset"] = config["report"]["table1_dataset"]
    problems = _cross_reference_problems(config, known_architectures, known_datasets)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return config


def _unknown(kind: str, key: str, names: Iterable[str], valid: Iterable[str]) -> list[str]:
    valid = list(valid)
    bad = [n for n in names if n not in valid]
    if not bad:
        return []
    listed = ", ".join(f"'{n}'" for n in bad)
    return [f"config key '{key}': unknown {kind}{'s' if len(bad) > 1 else ''} {listed}; "
            f"valid {kind}s: {', '.join(valid)}"]


def _cross_reference_problems(
    config: dict[str, Any],
    known_architectures: Iterable[str] | None,
    known_datasets: Iterable[str] | None,
) -> list[str]:
    run = config["run"]
    problems: list[str] = []
    if known_architectures is not None:
        problems += _unknown("architecture", "run.architectures", run["architectures"],
                             sorted(known_architectures))
    configured = sorted(config["datasets"])
    valid_datasets = sorted(known_datasets) if known_datasets is not None else configured
    problems += _unknown("dataset", "run.datasets", run["datasets"], valid_datasets)
    problems += [
        f"config key 'run.datasets': dataset '{d}' has no settings under 'datasets' "
        f"(image_size, num_classes, mean, std)"
        for d in run["datasets"]
        if d in valid_datasets and d not in config["datasets"]
    ]
    attack_names = sorted(config["attacks"])
    used: set[str] = set(run["worst_case"])
    for method, attacks in run["attacks"].items():
        problems += _unknown("attack", f"run.attacks.{method}", attacks, attack_names)
        used.update(attacks)
    problems += _unknown("attack", "run.worst_case", run["worst_case"], attack_names)
    for name in sorted(used & set(attack_names)):
        spec = config["attacks"][name]
        for dataset in run["datasets"]:
            if dataset not in spec["eps"]:
                problems.append(
                    f"config key 'attacks.{name}.eps': no budget for dataset '{dataset}'; "
                    f"add 'attacks.{name}.eps.{dataset}'"
                )
        if spec["kind"] == "autoattack" and spec["version"] == "custom" and not spec.get(
            "components"
        ):
            problems.append(f"config key 'attacks.{name}.components': required for version custom")
    problems += _study_problems(config, known_architectures, valid_datasets)
    table_dataset = config["report"]["table1_dataset"]
    if table_dataset not in run["datasets"]:
        problems.append(
            f"config key 'report.table1_dataset': '{table_dataset}' is not one of run.datasets "
            f"({', '.join(run['datasets'])})"
        )
    for key, value in [("training.adversary.eps", config["training"]["adversary"]["eps"]),
                       ("training.adversary.step_size",
                        config["training"]["adversary"]["step_size"])]:
        try:
            parse_budget(value)
        except ConfigError as exc:
            problems.append(f"config key '{key}': {exc}")
    return problems


def _study_problems(config: dict[str, Any], known_architectures: Iterable[str] | None,
                    valid_datasets: list[str]) -> list[str]:
    """Cross-references of the studies and analysis sections: names, datasets, twins."""
    problems: list[str] = []
    known = sorted(known_architectures) if known_architectures is not None else None
    configured = set(config["datasets"])

    def check_dataset(key: str, dataset: str) -> None:
        if dataset not in valid_datasets or dataset not in configured:
            problems.append(f"config key '{key}': dataset '{dataset}' is not configured; "
                            f"configured datasets: {', '.join(sorted(configured))}")

    def check_archs(key: str, names: Iterable[str] | None) -> None:
        if names is not None and known is not None:
            problems.extend(_unknown("architecture", key, names, known))

    sections = [(f"studies.{name}", study) for name, study in config["studies"].items()]
    sections.append(("analysis", config["analysis"]))
    for key, section in sections:
        if "dataset" in section:
            check_dataset(f"{key}.dataset", section["dataset"])
        for dataset in section.get("datasets") or []:
            check_dataset(f"{key}.datasets", dataset)
        check_archs(f"{key}.architectures", section.get("architectures"))
    if "l1_penalty" in config["studies"]:
        check_archs("studies.l1_penalty.architecture",
                    [config["studies"]["l1_penalty"]["architecture"]])
    activation = config["studies"].get("activation")
    if activation is not None and known is not None:
        missing = [a for a in activation["architectures"] if f"{a}-relu" not in known]
        if missing:
            twins = sorted(n[: -len("-relu")] for n in known if n.endswith("-relu"))
            problems.append(
                f"config key 'studies.activation.architectures': no ReLU twin registered for "
                f"{', '.join(map(repr, missing))}; architectures with one: {', '.join(twins)}")
    for figure in ("figure1", "figure2"):
        check_archs(f"analysis.sparsity.{figure}", config["analysis"]["sparsity"].get(figure))
    check_archs("analysis.landscape.figure4", config["analysis"]["landscape"].get("figure4"))
    for key in ("eps", "step_size"):
        try:
            parse_budget(config["analysis"]["lipschitz"][key])
        except ConfigError as exc:
            problems.append(f"config key 'analysis.lipschitz.{key}': {exc}")
    return problems


BASE_METHODS = ("vanilla", "pgd_linf", "trades", "pgd_linf_l1")
_L1_METHOD = re.compile(r"^pgd_linf_l1-(.+)$")


def l1_method(strength: float) -> str:
    """The method name of PGD-ℓ∞ AT with penalty λ·Σ|w| (λ = 0 is plain ``pgd_linf``)."""
    return "pgd_linf" if strength == 0 else f"pgd_linf_l1-{strength:g}"


def parse_method(name: str) -> tuple[str, float]:
    """``(base method, ℓ1 penalty strength)`` of a training method name."""
    if name in ("vanilla", "pgd_linf", "trades"):
        return name, 0.0
    match = _L1_METHOD.match(name)
    if match:
        try:
            strength = float(match.group(1))
        except ValueError:
            strength = -1.0
        if strength >= 0 and math.isfinite(strength):
            return "pgd_linf_l1", strength
    raise ConfigError(
        f"unknown training method {name!r}; valid: vanilla, pgd_linf, trades, and "
        "pgd_linf_l1-<lambda> with a non-negative number lambda (e.g. pgd_linf_l1-5e-05)"
    )


def attack_settings(config: Mapping[str, Any], attack: str, dataset: str) -> dict[str, Any]:
    """The resolved settings of ``attack`` on ``dataset`` (budgets as floats)."""
    if attack == "clean":
        return {"name": "clean", "kind": "clean"}
    spec = dict(config["attacks"][attack])
    eps = parse_budget(spec.pop("eps")[dataset])
    settings = {"name": attack, "kind": spec["kind"], "norm": spec["norm"], "eps": eps}
    if spec["kind"] == "pgd":
        settings.update(steps=spec["steps"], step_size=spec["step_size_ratio"] * eps,
                        random_start=spec["random_start"], early_stop=spec["early_stop"])
    else:
        settings.update(version=spec["version"], components=spec.get("components"),
                        iterations=spec["iterations"], restarts=spec["restarts"])
    return settings


def training_settings(config: Mapping[str, Any], dataset: str, arch: str, method: str
                      ) -> dict[str, Any]:
    """Everything one training job needs, resolved (plain JSON-able values)."""
    parse_method(method)  # fail early on a bad name
    training = copy.deepcopy(dict(config["training"]))
    adversary = training.pop("adversary")
    trades = training.pop("trades")
    if method == "trades":  # only where it matters, so other models' params stay unchanged
        training["trades"] = trades
    adversary["eps"] = parse_budget(adversary["eps"])
    adversary["step_size"] = parse_budget(adversary["step_size"])
    data = config["datasets"][dataset]
    return {
        **training,
        "adversary": adversary,
        "method": method,
        "arch": arch,
        "dataset": dataset,
        "scale": config["scale"],
        "image_size": data["image_size"],
        "num_classes": data["num_classes"],
        "mean": list(data["mean"]),
        "std": list(data["std"]),
        "augment": dict(data.get("augment", {})),
    }
