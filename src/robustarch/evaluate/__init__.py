"""Evaluation: a trained model under an attack or under common corruptions, one row per test
sample, and the merge of a model's outcomes into accuracies and the sample-wise worst case.

The typed API a user calls from Python (RobustBench style)::

    from robustarch.config import load_config, attack_settings
    from robustarch.data import load_split
    from robustarch.evaluate import load_trained_model, evaluate_attack

    config = load_config("config.yaml")
    model, meta = load_trained_model("results/cifar10/resnet/pgd_linf/model.pt")
    x, y = load_split("data/cifar10/test.pt")
    outcomes = evaluate_attack(model, x, y, attack_settings(config, "pgd_linf", "cifar10"))
"""


import importlib

# Imported on first use, so that a job importing only robustarch.evaluate.merge (rule
# merge_outcomes, run once per model) does not pay for torch.
_EXPORTS = {"OUTCOME_COLUMNS": "attack", "evaluate_attack": "attack", "write_outcomes": "attack",
            "load_trained_model": "loading", "prepare_for_evaluation": "loading",
            "MisalignedOutcomesError": "merge", "summarize": "merge"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
