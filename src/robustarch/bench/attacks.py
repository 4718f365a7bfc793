"""Records ``attack_pgd_*`` (the strong protocol) and ``attack_paper_pgd_*`` (the paper
protocol): attack throughput and robust accuracy, ours against a reference, for ℓ∞, ℓ2, ℓ1.

Strong protocol: our :func:`robustarch.attacks.pgd` against torchattacks' ``PGD`` / ``PGDL2``
(ℓ∞ / ℓ2) and the current Adversarial Robustness Toolbox's ``ProjectedGradientDescent(norm=1)``
(ℓ1): same model (eval mode), same batch, budget, step size, number of steps, random start on
both sides. Each round attacks the whole batch once with each; besides the speed, the record
keeps both robust accuracies (averaged over the rounds, each round a fresh random start), since
a faster attack only counts if it is not weaker.

Ours runs as the evaluation runs it: with the attack's ``early_stop`` (on by default), samples
leave the batch once misclassified, and with ``evaluation.fold_batchnorm`` (on by default), the
batch norms folded into the convolutions before them. Ours scoring the last iterate of every
sample (the references' convention) is timed in the same rounds and reported beside it.

Paper protocol: our :mod:`robustarch.attacks.paper_pgd` against the libraries the paper's
authors ran, with the same settings: foolbox 3.0.4's ``Linf`` / ``L2ProjectedGradientDescent
Attack`` (in this process; its random start is drawn from torch's global generator, seeded as
ours, so both draw the same starts on a CPU) and ART 1.16.0's ``ProjectedGradientDescentPyTorch
(norm=1)`` (in its worker process, :mod:`robustarch.bench.art116`, which times each
``generate`` call itself: start-up and imports are not counted, ART's numpy conversions are).
Both sides score the last iterate; the robust accuracies should agree, not differ.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from robustarch.bench.records import Record, median
from robustarch.bench.timing import interleaved, throughputs
from robustarch.settings import PGDSettings

REFERENCES = {
    "linf": "torchattacks PGD",
    "l2": "torchattacks PGDL2",
    "l1": "ART ProjectedGradientDescent(norm=1)",
}
PAPER_REFERENCES = {
    "linf": "foolbox 3.0.4 LinfProjectedGradientDescentAttack",
    "l2": "foolbox 3.0.4 L2ProjectedGradientDescentAttack",
    "l1": "ART 1.16.0 ProjectedGradientDescentPyTorch(norm=1)",
}


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    correct = 0
    for start in range(0, len(x), batch_size):
        logits = model(x[start:start + batch_size])
        correct += (logits.argmax(1) == y[start:start + batch_size]).sum().item()
    return correct / len(x)


Attack = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def reference_attack(model: nn.Module, settings: PGDSettings, *, input_shape: tuple[int, ...],
                     batch_size: int, num_classes: int) -> Attack:
    """The reference implementation of PGD for ``settings.norm``, as ``attack(x, y)``."""
    norm, eps = settings.norm, settings.eps
    steps, step_size = settings.steps, settings.step_size
    if norm in ("linf", "l2"):
        import torchattacks

        cls = torchattacks.PGD if norm == "linf" else torchattacks.PGDL2
        attack = cls(model, eps=eps, alpha=step_size, steps=steps, random_start=True)
        return attack
    if norm == "l1":
        from art.attacks.evasion import ProjectedGradientDescent
        from art.estimators.classification import PyTorchClassifier

        device = next(model.parameters()).device
        classifier = PyTorchClassifier(
            model=model, loss=nn.CrossEntropyLoss(), input_shape=input_shape,
            nb_classes=num_classes, clip_values=(0.0, 1.0),
            device_type="gpu" if device.type == "cuda" else "cpu",
        )
        art_pgd = ProjectedGradientDescent(
            classifier, norm=1, eps=eps, eps_step=step_size, max_iter=steps,
            num_random_init=1, batch_size=batch_size, verbose=False,
        )

        def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            # ART works on numpy arrays: the conversions are part of using it.
            adv = art_pgd.generate(x.cpu().numpy(), y=y.cpu().numpy())
            return torch.from_numpy(np.asarray(adv)).to(x.device)

        return run
    raise ValueError(f"unknown norm {norm!r}")


def _timed(outputs: list[torch.Tensor], attack: Callable[[], torch.Tensor],
           cuda: bool) -> Callable[[], float]:
    """A contender timing one call of ``attack`` (device work included) and keeping its
    adversarial images in ``outputs``."""
    def run() -> float:
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        adv = attack()
        if cuda:
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        outputs.append(adv)
        return elapsed
    return run


def compare_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, settings: PGDSettings,
                   *, warmup: int, repeats: int, num_classes: int = 10, seed: int = 0,
                   model_description: str = "", arch: str = "", fold_batchnorm: bool = True,
                   progress=None) -> Record:
    """Time our PGD and the reference on the float ``[0, 1]`` batch ``x`` (on the model's
    device); record ``attack_pgd_<norm>``.

    The reference attacks ``model`` as given; ours a copy prepared as our evaluation prepares a
    loaded model of architecture ``arch`` (:func:`robustarch.evaluate.prepare_for_evaluation`:
    frozen parameters, channels_last where faster, batch norms folded into the convolutions
    before them as ``evaluation.fold_batchnorm`` asks)."""
    from robustarch.attacks import pgd
    from robustarch.evaluate import prepare_for_evaluation

    model.eval()
    ours_model = prepare_for_evaluation(copy.deepcopy(model), arch, x.device,
                                        fold_batchnorm=fold_batchnorm)
    norm = settings.norm
    reference = reference_attack(model, settings, input_shape=tuple(x.shape[1:]),
                                 batch_size=len(x), num_classes=num_classes)
    early_stop = settings.early_stop
    outputs: dict[str, list[torch.Tensor]] = {"ours": [], "reference": []}
    if early_stop:
        outputs["ours_last_iterate"] = []

    def ours_with(early_stop: bool) -> Callable[[], torch.Tensor]:
        # Each of ours has its own generator, equally seeded: the same random starts each round.
        generator = torch.Generator(device=x.device).manual_seed(seed)

        def attack() -> torch.Tensor:
            return pgd(ours_model, x, y, norm=norm, eps=settings.eps, steps=settings.steps,
                       step_size=settings.step_size, random_start=True, generator=generator,
                       early_stop=early_stop)
        return attack

    def timed(name: str, attack: Callable[[], torch.Tensor]):
        return _timed(outputs[name], attack, x.is_cuda)

    torch.manual_seed(seed)  # torchattacks and ART draw their random starts from the global RNGs
    np.random.seed(seed)
    contenders = {"ours": timed("ours", ours_with(early_stop))}
    if early_stop:  # what the early stop buys, timed in the same rounds
        contenders["ours_last_iterate"] = timed("ours_last_iterate", ours_with(False))
    contenders["reference"] = timed("reference", lambda: reference(x, y))
    seconds = interleaved(contenders, warmup=warmup, repeats=repeats, progress=progress)
    # Each contender's points are scored on the model it attacked.
    robust = {name: float(np.mean([accuracy(model if name == "reference" else ours_model, adv, y)
                                   for adv in advs]))
              for name, advs in outputs.items()}
    details: dict[str, Any] = {"early_stop": early_stop, "fold_batchnorm": fold_batchnorm}
    if early_stop:
        last = median(throughputs(seconds["ours_last_iterate"], len(x)))
        details.update(ours_last_iterate=last,
                       ours_last_iterate_ratio=last / median(throughputs(seconds["reference"],
                                                                         len(x))),
                       ours_last_iterate_robust_accuracy=robust["ours_last_iterate"])
    return Record.from_samples(
        f"attack_pgd_{norm}", throughputs(seconds["ours"], len(x)),
        throughputs(seconds["reference"], len(x)), "images/s",
        reference=REFERENCES[norm], model=model_description, eps=settings.eps,
        steps=settings.steps, step_size=settings.step_size, batch_size=len(x),
        clean_accuracy=accuracy(model, x, y),
        ours_robust_accuracy=robust["ours"], reference_robust_accuracy=robust["reference"],
        **details,
    )


def _foolbox_reference(model: nn.Module, settings: PGDSettings, device: torch.device) -> Attack:
    """foolbox 3.0.4's PGD for ``settings.norm`` as the authors called it, as ``attack(x, y)``
    returning the last iterate."""
    import foolbox

    cls = (foolbox.attacks.LinfProjectedGradientDescentAttack if settings.norm == "linf"
           else foolbox.attacks.L2ProjectedGradientDescentAttack)
    attack = cls(rel_stepsize=settings.step_size / settings.eps, steps=settings.steps)
    fmodel = foolbox.PyTorchModel(model, bounds=(0, 1), device=device)

    def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raw, _, _ = attack(fmodel, x, y, epsilons=settings.eps)
        return raw

    return run


def compare_paper_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                         settings: PGDSettings, *, warmup: int, repeats: int,
                         num_classes: int = 10, seed: int = 0, model_description: str = "",
                         arch: str = "", fold_batchnorm: bool = True,
                         progress=None) -> Record:
    """Time our paper-protocol PGD (:func:`robustarch.attacks.paper_pgd`) and the paper's
    library (foolbox 3.0.4 for ℓ∞/ℓ2, ART 1.16.0 for ℓ1) on the float ``[0, 1]`` batch ``x``
    with ``settings``' budget, steps and step size; record ``attack_paper_pgd_<norm>``.

    The reference attacks ``model`` as given, ours a copy prepared as our evaluation prepares a
    loaded model (see :func:`compare_attack`). Each round is a fresh random start on both sides;
    both score the last iterate."""
    from robustarch.attacks import paper_pgd
    from robustarch.bench.art116 import Art116L1
    from robustarch.evaluate import prepare_for_evaluation

    model.eval()
    ours_model = prepare_for_evaluation(copy.deepcopy(model), arch, x.device,
                                        fold_batchnorm=fold_batchnorm)
    norm = settings.norm
    outputs: dict[str, list[torch.Tensor]] = {"ours": [], "reference": []}
    generator = torch.Generator(device=x.device).manual_seed(seed)
    torch.manual_seed(seed)  # foolbox's random starts: torch's global generator, seeded as ours
    contenders = {"ours": _timed(outputs["ours"], lambda: paper_pgd(
        ours_model, x, y, norm=norm, eps=settings.eps, steps=settings.steps,
        step_size=settings.step_size, generator=generator), x.is_cuda)}
    with contextlib.ExitStack() as stack:
        if norm == "l1":
            worker = stack.enter_context(Art116L1(
                model, x, y, eps=settings.eps, eps_step=settings.step_size,
                max_iter=settings.steps, num_random_init=1, seed=seed,
                num_classes=num_classes))
            contenders["reference"] = worker.run  # returns the seconds the worker measured
            timing = "worker process: each generate call timed inside it, start-up excluded"
        else:
            reference = _foolbox_reference(model, settings, x.device)
            contenders["reference"] = _timed(outputs["reference"], lambda: reference(x, y),
                                             x.is_cuda)
            timing = "in process"
        seconds = interleaved(contenders, warmup=warmup, repeats=repeats, progress=progress)
        if norm == "l1":
            outputs["reference"] = [a.to(x.device) for a in worker.close()[warmup:]]
    outputs["ours"] = outputs["ours"][warmup:]
    if norm != "l1":
        outputs["reference"] = outputs["reference"][warmup:]
    robust = {name: float(np.mean([accuracy(model if name == "reference" else ours_model, adv, y)
                                   for adv in advs]))
              for name, advs in outputs.items()}
    return Record.from_samples(
        f"attack_paper_pgd_{norm}", throughputs(seconds["ours"], len(x)),
        throughputs(seconds["reference"], len(x)), "images/s",
        reference=PAPER_REFERENCES[norm], reference_timing=timing, model=model_description,
        eps=settings.eps, steps=settings.steps, step_size=settings.step_size,
        batch_size=len(x), clean_accuracy=accuracy(model, x, y),
        ours_robust_accuracy=robust["ours"], reference_robust_accuracy=robust["reference"],
        fold_batchnorm=fold_batchnorm,
    )
