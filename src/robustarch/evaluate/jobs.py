"""The evaluation jobs: one model under one attack (rule ``evaluate``), under every attack of its
method (rules ``evaluate_model_<method>``) and under every corruption (rule
``evaluate_corruptions``). The merge of a model's outcomes (rule ``merge_outcomes``) is
:func:`robustarch.evaluate.merge.run_merge_job`, which needs no torch."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..data.corruption_files import load_corruption
from ..data.download import md5sum
from ..data.splits import load_split
from ..runtime import select_device
from ..settings import AttackSettings, CleanSettings, EvaluationSettings
from .attack import discard_state, evaluate_attack, write_outcomes
from .batch_size import eval_batch_size
from .corruption_accuracy import evaluate_corruptions, write_corruption_outcomes
from .kept_results import discard_kept, load_kept, open_kept
from .loading import load_trained_model


def run_attack_job(*, model: str | Path, test: str | Path, attack: AttackSettings,
                   evaluation: EvaluationSettings, outcomes: str | Path,
                   state_path: str | Path, log: Callable[[str], None]) -> None:
    """Write one row per test sample of ``model`` under ``attack``."""
    device = select_device()
    net, meta, x, y = _model_and_test(model, test, evaluation, device)
    frame = _attack_outcomes(net, meta, x, y, attack, evaluation, device, state_path, log)
    write_outcomes(frame, outcomes)
    discard_state(state_path)


def run_model_attacks_job(*, model: str | Path, test: str | Path,
                          attacks: Mapping[str, AttackSettings], evaluation: EvaluationSettings,
                          outcomes: Mapping[str, str | Path], state_dir: str | Path,
                          log: Callable[[str], None]) -> None:
    """Write one row per test sample of ``model`` under each of ``attacks`` to its path in
    ``outcomes`` (config ``evaluation.jobs: per_model``: the model and its test split load
    once). Each finished attack's outcomes wait in ``state_dir``/outcomes until every attack
    is done (:mod:`.kept_results`, keyed by the model file's md5 and the settings): a killed
    job resumes at the attack it was in (AutoAttack at its batch); a retrained model or
    changed settings start over."""
    if set(attacks) != set(outcomes):
        raise ValueError(f"attacks {sorted(attacks)} and outcome files {sorted(outcomes)} "
                         "name different attacks")
    device = select_device()
    net, meta, x, y = _model_and_test(model, test, evaluation, device)
    state_dir = Path(state_dir)
    kept = state_dir / "outcomes"  # AutoAttack's states stay where per_attack jobs keep them
    open_kept(kept, {"model_md5": md5sum(model), "evaluation": _plain(evaluation),
                     "attacks": {name: _plain(attack) for name, attack in attacks.items()}})
    frames = {}
    for name, attack in attacks.items():
        frames[name] = load_kept(kept / f"{name}.parquet", log)
        if frames[name] is None:
            frames[name] = _attack_outcomes(net, meta, x, y, attack, evaluation, device,
                                            state_dir / f"{name}.state", log)
            write_outcomes(frames[name], kept / f"{name}.parquet")
        else:
            log(f"{name}: finished before, read from {kept / f'{name}.parquet'}")
    for name, frame in frames.items():
        write_outcomes(frame, outcomes[name])
    for name in attacks:  # only once every output is written
        discard_state(state_dir / f"{name}.state")
    discard_kept(kept)


def _model_and_test(model: str | Path, test: str | Path, evaluation: EvaluationSettings,
                    device) -> tuple:
    net, meta = load_trained_model(model, device=device,
                                   fold_batchnorm=evaluation.fold_batchnorm)
    x, y = load_split(test)
    if evaluation.num_samples is not None:
        x, y = x[: evaluation.num_samples], y[: evaluation.num_samples]
    return net, meta, x, y


def _attack_outcomes(net, meta, x, y, attack: AttackSettings, evaluation: EvaluationSettings,
                     device, state_path: str | Path, log: Callable[[str], None]):
    batch_size = eval_batch_size(net, x, y, attack, configured=evaluation.batch_size,
                                 device=device, meta=meta, bf16=evaluation.bf16)
    log(f"{meta['arch']}/{meta['method']}: {attack} on {len(y)} samples ({device}, "
        f"batch {batch_size}{', bf16' if evaluation.bf16 else ''})")
    frame = evaluate_attack(net, x, y, attack, batch_size=batch_size, seed=evaluation.seed,
                            device=device, state_path=state_path, bf16=evaluation.bf16)
    log(f"accuracy under {attack.name}: {frame['correct'].mean():.4f}")
    return frame


def _plain(settings) -> dict:
    """Settings as JSON values (enums by value), to compare with a stored key."""
    return json.loads(json.dumps(dataclasses.asdict(settings), default=str))


def run_corruption_job(*, model: str | Path, corruption_files: Sequence[str | Path],
                       corruptions: Sequence[str], severities: Sequence[int],
                       evaluation: EvaluationSettings, outcomes: str | Path,
                       state_dir: str | Path, log: Callable[[str], None]) -> None:
    """Write one row per (corruption, severity, test sample) of ``model``; resumes per
    corruption from ``state_dir``."""
    device = select_device()
    net, meta = load_trained_model(model, device=device,
                                   fold_batchnorm=evaluation.fold_batchnorm)
    files = dict(zip(corruptions, corruption_files, strict=True))
    batch_size = evaluation.batch_size
    if batch_size == "auto":  # probe forward passes on the first corrupted set's images
        probe = load_corruption(corruption_files[0])
        batch_size = eval_batch_size(net, probe["x"][0], probe["y"], CleanSettings(),
                                     configured="auto", device=device, meta=meta)
    log(f"{meta['arch']}/{meta['method']}: {len(files)} corruptions x severities "
        f"{list(severities)}, num_samples {evaluation.num_samples} ({device})")
    frame = evaluate_corruptions(
        net, files, severities, batch_size=batch_size, num_samples=evaluation.num_samples,
        device=device, state_dir=state_dir,
        # A retrained model must not reuse the partial results of the previous one.
        state_key={"model_md5": md5sum(model)}, log=log,
    )
    write_corruption_outcomes(frame, outcomes)
    discard_kept(state_dir)
    log(f"mean corruption accuracy: {frame['correct'].mean():.4f}")
