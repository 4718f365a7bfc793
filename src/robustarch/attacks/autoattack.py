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

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

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


def _adversary(model: torch.nn.Module, *, norm: str, eps: float, version: str,
               attacks: Sequence[str] | None, seed: int, device: torch.device,
               n_iter: int | None, n_restarts: int | None, n_target_classes: int | None,
               n_queries: int | None):
    """The configured :class:`pyautoattack.AutoAttack`."""
    import pyautoattack

    if version == "custom":
        if not attacks:
            raise ValueError("version='custom' needs a non-empty list of attacks")
    elif attacks is not None:
        raise ValueError("attacks can only be given with version='custom'")
    adversary = pyautoattack.AutoAttack(
        model, norm=norm, eps=float(eps), version=version,
        attacks=list(attacks) if attacks is not None else None, seed=seed, device=device)
    if n_iter is not None:
        # Reduced budgets are for demos; the paper's evaluation keeps the version's defaults.
        adversary.apgd.n_iter = adversary.apgd_targeted.n_iter = adversary.fab.n_iter = n_iter
        adversary.square.n_queries = n_iter * 50
    if n_restarts is not None:
        adversary.apgd.n_restarts = n_restarts
    if n_target_classes is not None:
        adversary.apgd_targeted.n_target_classes = n_target_classes
        adversary.fab.n_target_classes = n_target_classes
    if n_queries is not None:
        adversary.square.n_queries = n_queries
    return adversary


def _load_state(path: Path | None, config: dict, n: int) -> dict:
    """The saved state of this evaluation, or a fresh one; a state of another is an error."""
    if path is not None and path.exists():
        with path.open() as f:
            state = json.load(f)
        if state.get("format") != _FORMAT or state.get("config") != config:
            raise ValueError(
                f"state file {path} was written for a different evaluation "
                f"(stored {state.get('config')}, requested {config}); delete it to start over"
            )
        return state
    return {"format": _FORMAT, "config": config, "clean_done": False, "stage": 0,
            "next_batch": 0, "pred": [0] * n, "broken_at": [_ROBUST] * n}


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
    n_target_classes: int | None = None,
    n_queries: int | None = None,
) -> torch.Tensor:
    """Per-sample predicted labels on AutoAttack's final adversarial inputs (int64, CPU, (N,)).

    ``model`` maps ``[0, 1]`` images to logits (put it in eval mode first); ``x`` images in
    ``[0, 1]`` ``(N, C, H, W)``, ``y`` int64 labels. ``norm``: "Linf", "L2" or "L1"
    (pyautoattack's names); ``eps`` in pixel units. ``version``: "standard" (APGD-CE, APGD-T,
    FAB-T, Square; for L1 pyautoattack's standard uses APGD with the ε-schedule
    ``use_largereps`` and 5 restarts), "plus", "rand", or "custom" with ``attacks``, e.g.
    ``["apgd-ce"]`` for the single-attack apgd_l2 / apgd_l1 evaluations (pyautoattack's custom
    defaults: APGD 100 iterations, 5 restarts, no ε-schedule; its ℓ1 APGD has Croce & Hein's
    2021 ℓ1 step and ℓ1∩box projection). ``seed``: pyautoattack's seed (reseeded per attack
    call). ``batch_size`` fixes the batches, so a resumed run must use the same value
    (checked). ``state_path``: the JSON state for preemption-safe resumption (module
    docstring). ``device``: where the attacks run (default: the model's). ``n_iter``: the
    iterations of APGD, APGD-T and FAB and the queries of Square (``n_iter * 50``) instead of
    the version's (quick CPU runs only); ``n_restarts``: APGD's restarts;
    ``n_target_classes``: the targets of APGD-T and FAB-T; ``n_queries``: Square's queries
    (after ``n_iter``'s).
    """
    import pyautoattack  # heavy import, only needed here

    if x.shape[0] != y.shape[0]:
        raise ValueError("x and y have different lengths")
    device = torch.device(device) if device is not None else _default_device(model, x)
    adversary = _adversary(model, norm=norm, eps=eps, version=version, attacks=attacks,
                           seed=seed, device=device, n_iter=n_iter, n_restarts=n_restarts,
                           n_target_classes=n_target_classes, n_queries=n_queries)
    x = x.detach().to("cpu", torch.float32)
    y = y.detach().to("cpu", torch.int64)
    stages = list(adversary.attacks_to_run)
    config = {
        "norm": norm, "eps": float(eps), "version": version, "stages": stages, "seed": seed,
        "batch_size": int(batch_size), "n_iter": n_iter, "n_restarts": n_restarts,
        "n_target_classes": n_target_classes, "n_queries": n_queries,
        "n": x.shape[0], "data_sha256": _fingerprint(x, y) if state_path is not None else None,
        "pyautoattack": getattr(pyautoattack, "__version__", "unknown"),
    }
    path = Path(state_path) if state_path is not None else None
    state = _load_state(path, config, x.shape[0])
    run = _StagedRun(adversary, x, y, stages, state, path, batch_size, device)
    if not state["clean_done"]:
        run.clean_pass()
    while state["stage"] < len(stages):
        run.stage(state["stage"])
    adversary.attacks_to_run = stages
    return run.pred


class _Checks:
    """pyautoattack's model checks (randomized or dynamic model, output range, number of
    classes) only warn, and it runs them on every ``run_standard_evaluation`` call, which the
    staged run makes once per stage and batch (on a small model a quarter of the time). They
    run on the first call of an evaluation; later calls skip them (its after-run Square check
    stays). The checks draw no random numbers, so outcomes are unchanged."""

    def __init__(self):
        self.done = False

    @contextlib.contextmanager
    def once(self):
        from pyautoattack import autoattack as module

        if not self.done:
            self.done = True
            yield
            return
        real = module.checks
        module.checks = SimpleNamespace(
            check_randomized=_skip, check_range_output=_skip, check_dynamic=_skip,
            check_n_classes=_skip, check_square_sr=real.check_square_sr)
        try:
            yield
        finally:
            module.checks = real


def _skip(*_args, **_kwargs) -> None:
    return None


class _StagedRun:
    """pyautoattack's loop, one (stage, batch) at a time, saving the state after each."""

    def __init__(self, adversary, x, y, stages, state, path, batch_size, device):
        self.adversary, self.x, self.y, self.stages = adversary, x, y, stages
        self.state, self.path, self.batch_size = state, path, batch_size
        self.device, self.rng_devices = device, _rng_devices(device)
        self.pred = torch.tensor(state["pred"], dtype=torch.int64)
        self.checks = _Checks()
        self.broken_at = torch.tensor(state["broken_at"], dtype=torch.int64)

    def save(self, **changes) -> None:
        self.state.update(changes, pred=self.pred.tolist(), broken_at=self.broken_at.tolist())
        if self.path is not None:
            _save_atomic(self.path, self.state)

    def clean_pass(self) -> None:
        with torch.no_grad():
            # clean predictions exactly as pyautoattack computes them (.max(dim=1)[1])
            for start in range(0, len(self.x), self.batch_size):
                xb = self.x[start : start + self.batch_size].to(self.device)
                self.pred[start : start + self.batch_size] = (
                    self.adversary.get_logits(xb).max(dim=1)[1].cpu())
        self.broken_at = torch.where(self.pred == self.y, _ROBUST, 0)
        self.save(clean_done=True)

    def stage(self, s: int) -> None:
        """Stage ``s`` from its next unfinished batch on."""
        # Samples pyautoattack attacks in stage s: those not broken before it, in index order.
        pool = torch.nonzero((self.broken_at == _ROBUST) | (self.broken_at > s),
                             as_tuple=False).flatten()
        for b in range(self.state["next_batch"], math.ceil(pool.numel() / self.batch_size)):
            idx = pool[b * self.batch_size : (b + 1) * self.batch_size]
            self.adversary.attacks_to_run = [self.stages[s]]
            with torch.random.fork_rng(devices=self.rng_devices), self.checks.once():
                _, y_adv = self.adversary.run_standard_evaluation(self.x[idx], self.y[idx],
                                                                  batch_size=self.batch_size)
            y_adv = y_adv.to("cpu", torch.int64)
            hit = y_adv != self.y[idx]
            self.pred[idx[hit]] = y_adv[hit]
            self.broken_at[idx[hit]] = s + 1
            self.save(next_batch=b + 1)
        self.save(stage=s + 1, next_batch=0)
