"""Resumable AutoAttack evaluation through :class:`pyautoattack.AutoAttack`.

:func:`autoattack` returns, for every sample, the label the model predicts on AutoAttack's final
adversarial input: exactly the ``y_adv`` of
``pyautoattack.AutoAttack(...).run_standard_evaluation(x, y, batch_size=...)`` (the clean
prediction for misclassified samples, the adversarial prediction for samples broken by an attack
stage, the true label for robust samples). Robust accuracy is ``(pred == y).mean()``.

How the work is split. pyautoattack's loop runs the attack stages (e.g. ``apgd-ce, apgd-t, fab-t,
square``) one after another, each on the samples still robust, in index order, in batches of
``batch_size``; every attack reseeds the global RNG (``torch.random.manual_seed(seed)``) at each
``perturb`` call, i.e. per batch, so a sample's result depends on the batch it lands in. This
module drives the same loop one (stage, batch) at a time: it calls
``run_standard_evaluation`` on exactly the batch pyautoattack itself would have formed (the
next ``batch_size`` samples, in index order, among those not broken before this stage), with
``attacks_to_run = [stage]``, on the same configured ``AutoAttack`` object. The batch is
re-checked clean (all correct, being robust so far), attacked with the same seed and the same
content, so the per-sample outcome is identical to one uninterrupted
``run_standard_evaluation`` call (tested in ``tests/test_attacks_crosscheck.py``).

Resuming. With ``state_path``, after the clean pass and after every (stage, batch) the state is
written atomically (:mod:`robustarch.atomic`) as JSON: the configuration and a
fingerprint of ``(x, y)``, the per-sample predictions, the stage that broke each sample, and the
position ``(stage, next batch)``. A preempted run called again with the same arguments reloads it
and continues with the next unfinished batch; because the batches are fixed by the state, the
result equals an uninterrupted run's. A finished state file is kept: calling again returns the
stored predictions without running the model. Delete the file to start over; a state file written
for other arguments or other data raises ``ValueError``.

pyautoattack 0.2.0's own ``state_path`` resumption is deliberately not used, because (checked
against its source, ``pyautoattack/state.py`` and ``autoattack.py``):

1. it stores only the robust flags, not the adversarial predictions of samples broken earlier,
   and on a restored state ``y_adv`` is never initialised, so the resumed run fails as soon as an
   attack breaks a sample (``UnboundLocalError``);
2. the attack set is serialised with ``json.dump(default=str)`` as a string, so
   ``from_disk`` never matches ``set(attacks_to_run)`` and every resume raises ``ValueError``;
3. ``add_run_attack`` saves with a 60 s throttle, so a finished stage is often not on disk;
4. a run preempted inside a stage re-batches the remaining samples on resume, which changes the
   (per-batch seeded) random starts and hence per-sample results.

The model's mode is the caller's business (use ``model.eval()``). The caller's global RNG state
is restored after every pyautoattack call (the attacks reseed it).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ..atomic import write_text

__all__ = ["autoattack"]

_FORMAT = "robustarch.autoattack/1"
_ROBUST = -1  # broken_at value of a sample not (yet) broken; 0 = misclassified clean; s+1 = stage s


def _fingerprint(x: torch.Tensor, y: torch.Tensor) -> str:
    h = hashlib.sha256()
    h.update(str(tuple(x.shape)).encode())
    h.update(x.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    h.update(y.detach().to("cpu", torch.int64).contiguous().numpy().tobytes())
    return h.hexdigest()


def _save_atomic(path: Path, payload: dict) -> None:
    write_text(json.dumps(payload), path)


def _default_device(model: torch.nn.Module, x: torch.Tensor) -> torch.device:
    for p in model.parameters():
        return p.device
    return x.device


def _rng_devices(device: torch.device) -> list[int]:
    if device.type == "cuda" and torch.cuda.is_initialized():
        return list(range(torch.cuda.device_count()))
    return []


def autoattack(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: str = "Linf",
    eps: float,
    version: str = "standard",
    attacks: Sequence[str] | None = None,
    seed: int = 0,
    batch_size: int = 250,
    state_path: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
    n_iter: int | None = None,
    n_restarts: int | None = None,
) -> torch.Tensor:
    """Per-sample predicted labels on AutoAttack's final adversarial inputs (int64, CPU, (N,)).

    Args:
        model: maps ``[0, 1]`` images to logits; put it in eval mode first (not changed here).
        x: images in ``[0, 1]``, ``(N, C, H, W)``; y: int64 labels ``(N,)``.
        norm: ``"Linf"``, ``"L2"`` or ``"L1"`` (pyautoattack's names).
        eps: threat-model radius in ``[0, 1]`` pixel units.
        version: ``"standard"`` (APGD-CE, APGD-T, FAB-T, Square; for L1 pyautoattack's
            standard uses APGD with the ε-schedule ``use_largereps`` and 5 restarts), ``"plus"``,
            ``"rand"``, or ``"custom"`` with ``attacks``, e.g. ``["apgd-ce"]`` for the
            single-attack ``apgd_l2`` / ``apgd_l1`` evaluations (pyautoattack's custom
            defaults: APGD 100 iterations, 5 restarts, no ε-schedule; L1 is supported by
            pyautoattack's APGD with the Croce & Hein 2021 ℓ1 step and ℓ1∩box projection).
        attacks: stage names, only with ``version="custom"``.
        seed: pyautoattack seed (reseeded per attack call, so results are reproducible).
        batch_size: as in ``run_standard_evaluation``; it fixes the batches, so a resumed run
            must use the same value (checked).
        state_path: JSON state file for preemption-safe resumption (see module docstring).
        device: where pyautoattack runs the attacks; default: the model's parameter device.
        n_iter: if given, the iterations of APGD, APGD-T and FAB and the queries of Square
            (``n_iter * 50``) instead of the version's defaults; for quick CPU runs only.
        n_restarts: if given, APGD's restarts instead of the version's default.
    """
    import pyautoattack  # heavy import, only needed here

    if version == "custom":
        if not attacks:
            raise ValueError("version='custom' needs a non-empty list of attacks")
    elif attacks is not None:
        raise ValueError("attacks can only be given with version='custom'")
    if x.shape[0] != y.shape[0]:
        raise ValueError("x and y have different lengths")
    device = torch.device(device) if device is not None else _default_device(model, x)
    x = x.detach().to("cpu", torch.float32)
    y = y.detach().to("cpu", torch.int64)
    n = x.shape[0]

    adversary = pyautoattack.AutoAttack(
        model,
        norm=norm,
        eps=float(eps),
        version=version,
        attacks=list(attacks) if attacks is not None else None,
        seed=seed,
        device=device,
    )
    if n_iter is not None:
        # Reduced budgets are for demos; the paper's evaluation keeps the version's defaults.
        adversary.apgd.n_iter = adversary.apgd_targeted.n_iter = adversary.fab.n_iter = n_iter
        adversary.square.n_queries = n_iter * 50
    if n_restarts is not None:
        adversary.apgd.n_restarts = n_restarts
    stages = list(adversary.attacks_to_run)
    config = {
        "norm": norm,
        "eps": float(eps),
        "version": version,
        "stages": stages,
        "seed": seed,
        "batch_size": int(batch_size),
        "n_iter": n_iter,
        "n_restarts": n_restarts,
        "n": n,
        "data_sha256": _fingerprint(x, y) if state_path is not None else None,
        "pyautoattack": getattr(pyautoattack, "__version__", "unknown"),
    }

    path = Path(state_path) if state_path is not None else None
    state: dict | None = None
    if path is not None and path.exists():
        with path.open() as f:
            state = json.load(f)
        if state.get("format") != _FORMAT or state.get("config") != config:
            raise ValueError(
                f"state file {path} was written for a different evaluation "
                f"(stored {state.get('config')}, requested {config}); delete it to start over"
            )
    if state is None:
        state = {
            "format": _FORMAT,
            "config": config,
            "clean_done": False,
            "stage": 0,
            "next_batch": 0,
            "pred": [0] * n,
            "broken_at": [_ROBUST] * n,
        }

    def save() -> None:
        if path is not None:
            _save_atomic(path, state)

    pred = torch.tensor(state["pred"], dtype=torch.int64)
    broken_at = torch.tensor(state["broken_at"], dtype=torch.int64)
    rng_devices = _rng_devices(device)

    if not state["clean_done"]:
        with torch.no_grad():
            # clean predictions exactly as pyautoattack computes them (.max(dim=1)[1])
            for start in range(0, n, batch_size):
                xb = x[start : start + batch_size].to(device)
                pred[start : start + batch_size] = adversary.get_logits(xb).max(dim=1)[1].cpu()
        broken_at = torch.where(pred == y, _ROBUST, 0)
        state.update(clean_done=True, pred=pred.tolist(), broken_at=broken_at.tolist())
        save()

    while state["stage"] < len(stages):
        s = state["stage"]
        # Samples pyautoattack attacks in stage s: those not broken before it, in index order.
        pool = torch.nonzero((broken_at == _ROBUST) | (broken_at > s), as_tuple=False).flatten()
        n_batches = math.ceil(pool.numel() / batch_size)
        for b in range(state["next_batch"], n_batches):
            idx = pool[b * batch_size : (b + 1) * batch_size]
            adversary.attacks_to_run = [stages[s]]
            with torch.random.fork_rng(devices=rng_devices):
                _, y_adv = adversary.run_standard_evaluation(x[idx], y[idx], batch_size=batch_size)
            y_adv = y_adv.to("cpu", torch.int64)
            hit = y_adv != y[idx]
            pred[idx[hit]] = y_adv[hit]
            broken_at[idx[hit]] = s + 1
            state.update(next_batch=b + 1, pred=pred.tolist(), broken_at=broken_at.tolist())
            save()
        state.update(stage=s + 1, next_batch=0)
        save()
    adversary.attacks_to_run = stages
    return pred
