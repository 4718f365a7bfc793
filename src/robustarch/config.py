"""Configuration (workflow glue): JSON-schema validation with defaults, readable errors,
cross-references; then :mod:`robustarch.settings` turns the validated dictionary into the typed
settings of each job.

Errors name the key, the bad value and what is allowed, because a typo in a week-long run's
config must fail at planning time, not silently fall back to a default.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .data.registry import DatasetSpec, registered_datasets
from .errors import ConfigError, unknown_dataset
from .settings import (
    attack_settings,
    l1_method,
    parse_budget,
    parse_method,
    training_settings,
)

__all__ = ["ConfigError", "attack_settings", "l1_method", "load_schema", "parse_budget",
           "parse_method", "training_settings", "validate_config"]


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
    known_datasets: Mapping[str, DatasetSpec] | None = None,
) -> dict[str, Any]:
    """Validate ``config`` against ``schema`` and its cross-references; return it with defaults.

    The datasets' facts come from their modules (``known_datasets``, by default every
    registered dataset): after validation ``datasets.<name>`` holds every registered dataset's
    facts with the config's overrides merged over them, and ``attacks.<attack>.eps.<name>``
    the dataset's budget for the attack's norm unless the config gives one.

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
    datasets = registered_datasets() if known_datasets is None else known_datasets
    problems = _dataset_name_problems(config, sorted(datasets))
    if not problems:
        problems = _resolve_datasets(config, datasets, schema["properties"]["datasets"])
    problems += _cross_reference_problems(config, known_architectures)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return config


def _dataset_name_problems(config: dict[str, Any], registered: list[str]) -> list[str]:
    """Every dataset name the config uses that no dataset module registers."""
    named: list[tuple[str, str]] = [("datasets", d) for d in config["datasets"]]
    named += [("run.datasets", d) for d in config["run"]["datasets"]]
    named.append(("report.table1_dataset", config["report"]["table1_dataset"]))
    named += [(f"attacks.{a}.eps", d) for a, spec in config["attacks"].items()
              for d in spec["eps"]]
    for key, section in _dataset_sections(config):
        if "dataset" in section:
            named.append((f"{key}.dataset", section["dataset"]))
        named += [(f"{key}.datasets", d) for d in section.get("datasets") or []]
    return [f"config key '{key}': {unknown_dataset(name, registered)}"
            for key, name in named if name not in registered]


def _dataset_sections(config: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    sections = [(f"studies.{name}", study) for name, study in config["studies"].items()]
    return [*sections, ("analysis", config["analysis"])]


def _resolve_datasets(config: dict[str, Any], datasets: Mapping[str, DatasetSpec],
                      schema: Mapping[str, Any]) -> list[str]:
    """Merge the config's dataset overrides over the modules' facts and fill in the attack
    budgets the config does not give; the problems of the merged entries."""
    entry_schema = schema["additionalProperties"]
    overrides = config["datasets"]
    resolved: dict[str, Any] = {}
    problems: list[str] = []
    for name in sorted(datasets):
        facts = datasets[name].config_facts()
        override = overrides.get(name, {})
        entry = facts | override
        entry["augment"] = facts["augment"] | override.get("augment", {})
        # The schema fills in the config's own defaults (e.g. augment.autoaugment_impl).
        for error in _validator_with_defaults(entry_schema).iter_errors(entry):
            key = _key(["datasets", name, *error.absolute_path])
            problems.append(f"config key '{key}' (robustarch/data/datasets/{name}.py unless "
                            f"the config sets it): {error.message}")
        resolved[name] = entry
    config["datasets"] = resolved
    for spec in config["attacks"].values():
        budgets = {name: ds.budgets[spec["norm"]] for name, ds in sorted(datasets.items())
                   if spec["norm"] in ds.budgets}
        spec["eps"] = budgets | spec["eps"]
    # Every dataset a model is trained on is evaluated under the run's attacks.
    used = set(config["run"]["datasets"])
    for _, section in _dataset_sections(config):
        used.update([section["dataset"]] if "dataset" in section else [])
        used.update(section.get("datasets") or [])
    for name in sorted(_used_attacks(config)):
        spec = config["attacks"][name]
        problems += [
            f"config key 'attacks.{name}.eps': no budget for dataset '{dataset}'; add "
            f"'attacks.{name}.eps.{dataset}' (its module gives no {spec['norm']} budget)"
            for dataset in sorted(used) if dataset not in spec["eps"]
        ]
    return problems


def _used_attacks(config: dict[str, Any]) -> set[str]:
    """The configured attacks the run evaluates."""
    run = config["run"]
    used = set(run["worst_case"]).union(run["strong_attacks"], *run["attacks"].values())
    return used & set(config["attacks"])


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
) -> list[str]:
    run = config["run"]
    problems: list[str] = []
    if known_architectures is not None:
        problems += _unknown("architecture", "run.architectures", run["architectures"],
                             sorted(known_architectures))
    attack_names = sorted(config["attacks"])
    for method, attacks in run["attacks"].items():
        problems += _unknown("attack", f"run.attacks.{method}", attacks, attack_names)
    problems += _unknown("attack", "run.worst_case", run["worst_case"], attack_names)
    problems += _unknown("attack", "run.strong_attacks", run["strong_attacks"], attack_names)
    for name in sorted(_used_attacks(config)):
        problems += _attack_problems(name, config["attacks"][name])
    problems += _study_problems(config, known_architectures)
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


# The norms each PGD algorithm implements (robustarch.attacks.pgd / paper_pgd).
_PGD_NORMS = {"robustarch": ("linf", "l2", "l1"), "foolbox": ("linf", "l2"), "art_1_16": ("l1",)}


def _attack_problems(name: str, spec: Mapping[str, Any]) -> list[str]:
    """The settings of one attack that do not go together."""
    key = f"attacks.{name}"
    if spec["kind"] == "autoattack":
        if spec["version"] == "custom" and not spec.get("components"):
            return [f"config key '{key}.components': required for version custom"]
        return []
    algorithm = spec["algorithm"]
    problems = []
    if spec["norm"] not in _PGD_NORMS[algorithm]:
        problems.append(f"config key '{key}.algorithm': {algorithm} has no {spec['norm']} PGD; "
                        f"its norms: {', '.join(_PGD_NORMS[algorithm])}")
    if spec["early_stop"] and algorithm != "robustarch":
        problems.append(f"config key '{key}.early_stop': only algorithm robustarch stops "
                        f"early; {algorithm} scores the last iterate (set early_stop: false)")
    return problems


def _study_problems(config: dict[str, Any], known_architectures: Iterable[str] | None
                    ) -> list[str]:
    """Cross-references of the studies and analysis sections: architectures and twins (their
    datasets are checked with every other dataset name)."""
    problems: list[str] = []
    known = sorted(known_architectures) if known_architectures is not None else None

    def check_archs(key: str, names: Iterable[str] | None) -> None:
        if names is not None and known is not None:
            problems.extend(_unknown("architecture", key, names, known))

    for key, section in _dataset_sections(config):
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
    check_archs("training.epochs_by_architecture",
                list(config["training"]["epochs_by_architecture"]))
    for key in ("eps", "step_size"):
        try:
            parse_budget(config["analysis"]["lipschitz"][key])
        except ConfigError as exc:
            problems.append(f"config key 'analysis.lipschitz.{key}': {exc}")
    return problems


def default_schema_path() -> Path:
    """``workflow/schemas/config.schema.yaml`` of the checkout this package is installed from."""
    path = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
    if not path.exists():
        raise ConfigError(f"config schema not found at {path}: robustarch is used from its "
                          "checkout (pip install -e .); pass schema= explicitly otherwise")
    return path


def load_config(*paths: str | Path, schema: str | Path | None = None) -> dict[str, Any]:
    """The validated configuration of YAML files layered in order (later files override:
    dictionaries merge key by key, lists are replaced), as the workflow sees it; e.g.
    ``load_config("config.yaml")`` or ``load_config("config.yaml",
    "profiles/demo/config.yaml")``."""
    from .models.catalog import list_models

    def merge(base: dict[str, Any], over: Mapping[str, Any]) -> None:
        for key, value in over.items():
            if isinstance(value, Mapping) and isinstance(base.get(key), dict):
                merge(base[key], value)
            else:
                base[key] = copy.deepcopy(value)

    config: dict[str, Any] = {}
    for path in paths:
        merge(config, yaml.safe_load(Path(path).read_text()) or {})
    return validate_config(config, load_schema(schema or default_schema_path()),
                           known_architectures=list_models())
