"""PGD as the paper's authors ran it: foolbox 3.0.4 (ℓ∞, ℓ2) and ART 1.16 (ℓ1), re-implemented.

Liu et al. (CVPR 2023) evaluated with foolbox 3.0.4's ``LinfProjectedGradientDescentAttack`` /
``L2ProjectedGradientDescentAttack(rel_stepsize=3/40, steps=20)`` and the Adversarial Robustness
Toolbox's ``ProjectedGradientDescentPyTorch(norm=1, eps=eps, eps_step=1.5*eps/20, max_iter=20,
num_random_init=1)`` on a ``PyTorchClassifier(loss=nn.CrossEntropyLoss(), clip_values=(0, 1))``
(their code: DIG-Beihang/RobustART, ``cifar10/code/test.py``), each scored at the attack's last
iterate. This module computes the same algorithms, read from those libraries' sources, under the
package's conventions (see :mod:`robustarch.attacks.pgd`): images in ``[0, 1]``, normalization
inside the model, the model's mode left as the caller set it, gradients w.r.t. the input only
(``torch.autograd.grad``; no parameter ``.grad`` is touched), float32, batched, and every random
number drawn from the passed ``torch.Generator``. These are the "paper protocol"; the stronger
:func:`robustarch.attacks.pgd` (exact projections, sparse ℓ1 steps, early stopping) is the
"strong protocol".

:func:`foolbox_pgd` (foolbox 3.0.4, ``attacks/gradient_descent_base.py``; unchanged in 3.3.4):

* loss: cross-entropy of the logits, **summed** over the batch (per-sample gradients);
* step size: ``abs_stepsize = rel_stepsize * eps`` (pass it as ``step_size``);
* random start (on by default): ℓ∞ ``x0 + U(-eps, eps)`` per coordinate; ℓ2 uniform in the
  ball, by Voelker et al. (2017): draw ``g ~ N(0, I)`` in ``n + 2`` dimensions,
  ``s = g / ||g||_2``, keep the first ``n`` coordinates, times ``eps``. Then clip to ``[0, 1]``;
* each of ``steps`` iterations: gradient at the iterate; ℓ∞ ``sign(grad)`` (0 where the gradient
  is 0), ℓ2 ``grad / max(||grad||_2, 1e-12)``; ``x = x + step * direction``; project: ℓ∞
  ``x0 + clip(x - x0, -eps, eps)``, ℓ2 ``x0 + (x - x0) * min(1, eps / max(||x - x0||_2,
  1e-12))`` (a rescaling into the ball); *then* clip to ``[0, 1]``;
* result: the last iterate (foolbox's ``clip_perturbation`` of it is the identity, since clipping
  into the box only shrinks the perturbation).

:func:`art116_pgd_l1` (ART 1.16.0, ``ProjectedGradientDescentPyTorch`` and
``art.utils.random_sphere``; ART 1.17 changed the ℓ1 step to a single-coordinate one and the
ℓ1 projection, pull request 2382):

* loss: ``nn.CrossEntropyLoss()`` of the logits, **mean** over the batch ART attacks at once;
  labels ``y`` (given, so not the model's predictions); untargeted (ascent);
* random start (``num_random_init >= 1``), inside the first iteration only: ``eps * (spacings
  of n sorted U(0, 1)) * (±1, equiprobable)``, uniform in the ℓ1 ball (ART draws it in float64
  and casts it to float32; so does this module), added to ``x`` and clipped to ``[0, 1]``;
* each of ``max_iter`` iterations: ``direction = grad / (||grad||_1 + 1e-7)`` (dense; ART's
  ``tol = 10e-8``; with the mean loss the gradient carries a ``1 / batch`` factor, so the
  tolerance bites ``batch`` times earlier: call it with ART's batch to match it exactly);
  ``x = clip(x + eps_step * direction, 0, 1)`` (NaNs set to 0); then the ℓ1 "projection" is a
  **rescaling**, ``x = x0 + (x - x0) * min(1, eps / (||x - x0||_1 + 1e-7))``, not the Euclidean
  projection onto the ℓ1 ball (ART 1.16 has that only as ``art.utils.projection`` with
  ``norm_p`` 1.1 / 1.2, which PGD does not use). The rescaled point stays in the box, being a
  convex combination of two points in it;
* restarts: ``num_random_init = 0`` runs once from ``x``; ``1`` runs once from a random start and
  returns that run's last iterate; ``k > 1`` runs ``k`` times and a later run's point replaces
  the kept one wherever the model's prediction there differs from its prediction on the clean
  image (ART's ``compute_success_array``; not a comparison with the label).

The remaining differences from running the libraries are the random streams (foolbox and ART
draw from torch's and numpy's global generators) and float rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["art116_pgd_l1", "foolbox_pgd", "paper_pgd"]

_FOOLBOX_NORMS = ("linf", "l2")
# foolbox clamps norms at 1e-12 before dividing; ART adds its `tol = 10e-8` to them.
_FOOLBOX_MIN_NORM = 1e-12
_ART_TOL = 10e-8

Output = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def _draw(shape, generator: torch.Generator | None, device, kind: str,
          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Random numbers drawn on the generator's device (CPU if None), then moved to ``device``:
    a CPU generator gives the same numbers wherever the model runs."""
    gdev = generator.device if generator is not None else torch.device("cpu")
    if kind == "uniform":
        r = torch.rand(shape, generator=generator, device=gdev, dtype=dtype)
    elif kind == "normal":
        r = torch.randn(shape, generator=generator, device=gdev, dtype=dtype)
    else:  # pragma: no cover
        raise ValueError(kind)
    return r.to(device)


def _input_gradient(model: torch.nn.Module, x_adv: torch.Tensor, y: torch.Tensor,
                    reduction: str) -> torch.Tensor:
    """Gradient of the cross-entropy (``reduction`` over the batch) w.r.t. the input only."""
    x_adv = x_adv.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x_adv), y, reduction=reduction)
    (grad,) = torch.autograd.grad(loss, x_adv)
    return grad


def _per_sample(v: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """A ``(B,)`` tensor viewed so it broadcasts against ``ref`` of shape ``(B, ...)``."""
    return v.view(-1, *([1] * (ref.dim() - 1)))


def _l2(v: torch.Tensor, keepdim: bool = False) -> torch.Tensor:
    """Per-sample ℓ2 norm computed as eagerpy's ``norms.l2`` (square, sum, sqrt)."""
    return v.flatten(1).square().sum(1, keepdim=keepdim).sqrt()


def _check(x: torch.Tensor, y: torch.Tensor, eps: float, steps: int) -> tuple[torch.Tensor, ...]:
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} samples but y has {y.shape[0]} labels")
    x = x.detach().to(torch.float32)
    return x, y.detach().to(device=x.device, dtype=torch.long)


def _finish(model: torch.nn.Module, x_adv: torch.Tensor, return_predictions: bool) -> Output:
    x_adv = x_adv.detach()
    if not return_predictions:
        return x_adv
    with torch.no_grad():
        return x_adv, model(x_adv).argmax(1)


def foolbox_pgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, norm: str,
                eps: float, steps: int, step_size: float, random_start: bool = True,
                generator: torch.Generator | None = None,
                return_predictions: bool = False) -> Output:
    """foolbox 3.0.4's ``LinfProjectedGradientDescentAttack`` / ``L2ProjectedGradientDescent
    Attack`` (``bounds=(0, 1)``), last iterate; see the module docstring for every step.

    Args:
        model: maps ``[0, 1]`` images ``(B, C, H, W)`` to logits; its mode is left as set.
        x, y: clean images in ``[0, 1]`` and int64 labels.
        norm: ``"linf"`` or ``"l2"``.
        eps: radius (ℓ∞ or ℓ2 over all of C*H*W, in ``[0, 1]`` pixel units).
        steps: gradient steps.
        step_size: foolbox's absolute step size, ``rel_stepsize * eps`` (paper: ``3/40 * eps``).
        random_start: foolbox's default (True).
        generator: source of the random start (``None``: torch's global generator).
        return_predictions: also return the model's labels at the returned points.
    """
    if norm not in _FOOLBOX_NORMS:
        raise ValueError(f"unknown norm {norm!r} for foolbox's PGD; expected one of "
                         f"{_FOOLBOX_NORMS} (ℓ1 is art116_pgd_l1)")
    x0, y = _check(x, y, eps, steps)
    eps = float(eps)
    if random_start:
        if norm == "linf":
            r = _draw(x0.shape, generator, x0.device, "uniform") * (2 * eps) - eps
        else:
            b, n = x0.shape[0], x0[0].numel()
            g = _draw((b, n + 2), generator, x0.device, "normal")
            r = eps * (g / _l2(g, keepdim=True))[:, :n].reshape(x0.shape)
        x_adv = (x0 + r).clamp_(0.0, 1.0)
    else:
        x_adv = x0.clone()
    for _ in range(steps):
        grad = _input_gradient(model, x_adv, y, "sum")
        with torch.no_grad():
            if norm == "linf":
                x_adv = x_adv + step_size * grad.sign_()
                x_adv = x0 + (x_adv - x0).clamp_(-eps, eps)
            else:
                # foolbox's arithmetic, operation for operation (1 / norm, then a product).
                inverse = 1 / _l2(grad).clamp_min_(_FOOLBOX_MIN_NORM)
                x_adv = x_adv + step_size * grad.mul_(_per_sample(inverse, grad))
                delta = x_adv - x0
                factor = (eps / _l2(delta).clamp_min_(_FOOLBOX_MIN_NORM)).clamp_(max=1.0)
                x_adv = x0 + delta.mul_(_per_sample(factor, delta))
            x_adv.clamp_(0.0, 1.0)
    return _finish(model, x_adv, return_predictions)


def _art116_l1_start(x0: torch.Tensor, eps: float, generator) -> torch.Tensor:
    """``art.utils.random_sphere(b, n, eps, norm=1)``: the spacings of ``n`` sorted uniforms
    (uniform in the unit ℓ1 ball's positive orthant), random signs, times ``eps``; float64,
    cast to float32."""
    b, n = x0.shape[0], x0[0].numel()
    v = _draw((b, n), generator, x0.device, "uniform", torch.float64).sort(dim=1).values
    spacings = torch.diff(v, dim=1, prepend=torch.zeros_like(v[:, :1]))
    signs = torch.where(_draw((b, n), generator, x0.device, "uniform") < 0.5, -1.0, 1.0)
    return (eps * spacings * signs).to(torch.float32).reshape(x0.shape)


def _art116_l1_run(model, x0, y, *, eps, step_size, steps, random_init, generator):
    """One run of ART 1.16's ``_generate_batch`` for ``norm=1``: its last iterate."""
    x_adv = x0.clone()
    for i in range(steps):
        if random_init and i == 0:
            x_adv = (x_adv + _art116_l1_start(x0, eps, generator)).clamp_(0.0, 1.0)
        grad = _input_gradient(model, x_adv, y, "mean")
        with torch.no_grad():
            # ART's reductions as ART writes them (sum over the non-batch dimensions; the
            # ℓ1 norm of the flattened perturbation), so the rounding matches too.
            grad.nan_to_num_(nan=0.0)
            l1 = grad.abs().sum(dim=tuple(range(1, grad.dim())), keepdim=True)
            step = grad.div_(l1 + _ART_TOL).mul_(step_size).nan_to_num_(nan=0.0)
            x_adv = (x_adv + step).clamp_(0.0, 1.0)
            delta = (x_adv - x0).reshape(x0.shape[0], -1)
            factor = (eps / (torch.linalg.vector_norm(delta, ord=1, dim=1) + _ART_TOL))
            x_adv = (delta * factor.clamp_(max=1.0).unsqueeze(1)).reshape(x0.shape) + x0
    return x_adv


def art116_pgd_l1(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                  steps: int, step_size: float, num_random_init: int = 1,
                  generator: torch.Generator | None = None,
                  return_predictions: bool = False) -> Output:
    """ART 1.16.0's ``ProjectedGradientDescentPyTorch(norm=1)`` on a ``PyTorchClassifier`` with
    ``nn.CrossEntropyLoss()`` and ``clip_values=(0, 1)``, untargeted, labels given; see the
    module docstring for every step.

    Args:
        model, x, y, generator, return_predictions: as in :func:`foolbox_pgd`. ``x`` is one of
            ART's batches: the loss is averaged over it, as ART does (it only matters through
            ART's tolerance in the step's normalization).
        eps: ℓ1 radius (paper: 40 on CIFAR-10).
        steps: ART's ``max_iter`` (paper: 20).
        step_size: ART's ``eps_step`` (paper: ``1.5 * eps / 20``).
        num_random_init: ART's restarts (paper: 1): 0 starts at ``x``; ``k >= 1`` runs ``k``
            random starts, later ones replacing the kept point where they change the model's
            clean prediction.
    """
    if num_random_init < 0:
        raise ValueError(f"num_random_init must be >= 0, got {num_random_init}")
    x0, y = _check(x, y, eps, steps)
    run = dict(eps=float(eps), step_size=float(step_size), steps=steps,
               random_init=num_random_init > 0, generator=generator)
    x_adv = _art116_l1_run(model, x0, y, **run)
    if num_random_init > 1:
        with torch.no_grad():
            clean = model(x0).argmax(1)
        for _ in range(num_random_init - 1):
            candidate = _art116_l1_run(model, x0, y, **run)
            with torch.no_grad():
                success = model(candidate).argmax(1) != clean
            x_adv[success] = candidate[success]
    return _finish(model, x_adv, return_predictions)


def paper_pgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, norm: str,
              eps: float, steps: int, step_size: float, random_start: bool = True,
              generator: torch.Generator | None = None,
              return_predictions: bool = False) -> Output:
    """The paper's PGD for ``norm``: :func:`foolbox_pgd` for ``"linf"`` / ``"l2"``,
    :func:`art116_pgd_l1` (one random start, or none without ``random_start``) for ``"l1"``.
    ``step_size`` is the absolute step (foolbox: ``rel_stepsize * eps``; ART: ``eps_step``)."""
    common = dict(eps=eps, steps=steps, step_size=step_size, generator=generator,
                  return_predictions=return_predictions)
    if norm == "l1":
        return art116_pgd_l1(model, x, y, num_random_init=int(random_start), **common)
    if norm in _FOOLBOX_NORMS:
        return foolbox_pgd(model, x, y, norm=norm, random_start=random_start, **common)
    raise ValueError(f"unknown norm {norm!r}; expected 'linf', 'l2' or 'l1'")
