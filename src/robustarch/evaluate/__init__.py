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

from .attack import OUTCOME_COLUMNS, evaluate_attack, write_outcomes
from .loading import load_trained_model, prepare_for_evaluation
from .merge import MisalignedOutcomesError, summarize

__all__ = ["OUTCOME_COLUMNS", "MisalignedOutcomesError", "evaluate_attack",
           "load_trained_model", "prepare_for_evaluation", "summarize", "write_outcomes"]
