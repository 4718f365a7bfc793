"""Projected gradient descent (PGD) attacks under ℓ∞, ℓ2 and ℓ1 threat models.

Conventions (shared by the whole attack library):

* The model maps images in ``[0, 1]`` pixel space (normalization lives inside the model) to
  logits. **The caller puts the model in the desired mode** (``model.eval()`` for evaluation;
  adversarial training usually also attacks in eval mode); :func:`pgd` never changes it.
* Gradients are taken with respect to the perturbation only, via :func:`torch.autograd.grad`
  (never ``loss.backward()``), so no parameter ``.grad`` is created or modified.
* The attack runs in float32 (``x`` is cast), batched, with no Python loop over samples. The
  only randomness (the random start) is drawn from the optional ``generator``, so the attack
  is reproducible given a seeded generator (and deterministic model kernels).

Algorithms (each step: gradient of the loss at ``x + delta``, ascent step, exact projection onto
the feasible set, see :mod:`robustarch.attacks.projections`):

* ℓ∞ (Madry et al., ICLR 2018): start uniform in the ε-box; ``delta += step_size * sign(grad)``;
  projection = clip to the ε-box ∩ image box.
* ℓ2: start at a Gaussian direction with radius ``eps * U``, ``U`` uniform in [0, 1];
  ``delta += step_size * grad / ||grad||_2`` (per sample); exact Euclidean projection onto
  ball ∩ box (the usual "rescale into the ball, then clip" is feasible but not always the
  nearest point; the exact one is found by a sort over the KKT breakpoints).
* ℓ1: sparse steepest ascent (Tramèr & Boneh, NeurIPS 2019, "Adversarial training and
  robustness for multiple perturbations", SLIDE; Croce & Hein, ICML 2021, "Mind the box:
  ℓ1-APGD"): keep coordinates not blocked by the box with ``|grad|`` at or above the
  ``l1_percentile``-th per-sample percentile, step ``sign(grad)`` on them with total ℓ1 mass
  ``step_size``; then the exact Euclidean projection onto the ℓ1 ball ∩ box (Croce & Hein's
  sort-based algorithm). Start: a uniform point of the ℓ1 ε-ball clipped into the box.

With early stopping (evaluation), a sample is done at the first point of its path the model
misclassifies, the clean image included, and leaves the batch (AutoAttack's convention).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from robustarch.attacks.projections import project_l1_box, project_l2, project_linf

__all__ = ["pgd"]

_NORMS = ("linf", "l2", "l1")


def _loss(logits: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-batch loss to maximise; summed over the batch so per-sample gradients do not depend
    on the batch size."""
    if kind == "ce":
        return F.cross_entropy(logits, y, reduction="sum")
    if kind == "cw":  # Carlini-Wagner margin: max_{j != y} z_j - z_y
        z_y = logits.gather(1, y[:, None]).squeeze(1)
        other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
        return (other - z_y).sum()
    raise ValueError(f"unknown loss {kind!r}; expected 'ce' or 'cw'")


def _rand(shape, generator, device, kind: str) -> torch.Tensor:
    """Random numbers drawn on the generator's device (CPU if None), then moved to ``device``.

    Drawing on the generator's device keeps results identical for a given generator regardless
    of where the model runs when the generator is a CPU generator.
    """
    gdev = generator.device if generator is not None else torch.device("cpu")
    if kind == "uniform":
        r = torch.rand(shape, generator=generator, device=gdev)
    elif kind == "normal":
        r = torch.randn(shape, generator=generator, device=gdev)
    elif kind == "exponential":
        r = torch.empty(shape, device=gdev).exponential_(generator=generator)
    else:  # pragma: no cover
        raise ValueError(kind)
    return r.to(device)


def _random_start(x: torch.Tensor, norm: str, eps: float, generator) -> torch.Tensor:
    b = x.shape[0]
    n = x[0].numel()
    if norm == "linf":
        # Uniform in the eps-box, then clipped into the image box.
        delta = _rand(x.shape, generator, x.device, "uniform").mul_(2 * eps).sub_(eps)
        return project_linf(delta, x, eps)
    if norm == "l2":
        # Gaussian direction, radius eps * U with U uniform in [0, 1] (torchattacks' convention),
        # then the exact projection onto ball ∩ box. Not uniform in the ball: in n dimensions
        # that puts nearly every start on the sphere, eps away from x, and the attack from
        # there was measurably weaker.
        g = _rand(x.shape, generator, x.device, "normal").reshape(b, -1)
        u = _rand((b, 1), generator, x.device, "uniform")
        g = g / g.norm(dim=1, keepdim=True).clamp_min(1e-12) * (eps * u)
        return project_l2(g.reshape(x.shape), x, eps)
    # l1: uniform in the eps-ball: |d_i| = eps * E_i / (E_1 + ... + E_{n+1}) with i.i.d.
    # standard exponentials E (the first n coordinates of a flat Dirichlet(1,...,1) on n+1
    # components), random signs; then projected onto ball ∩ box (a box clip, since clipping
    # towards x only shrinks |d_i|).
    e = _rand((b, n + 1), generator, x.device, "exponential")
    s = _rand((b, n), generator, x.device, "uniform")
    mag = e[:, :n] / e.sum(1, keepdim=True)
    d = torch.where(s < 0.5, -mag, mag).mul_(eps)
    return project_l1_box(d.reshape(x.shape), x, eps)


def _l1_direction(grad: torch.Tensor, x_adv: torch.Tensor, percentile: float) -> torch.Tensor:
    """Sparse ℓ1 steepest-ascent direction, normalized to unit ℓ1 norm per sample.

    Coordinates at a box face whose gradient pushes them outward are excluded; of the rest, those
    with ``|grad|`` at or above the per-sample ``percentile`` are kept, and the direction is
    ``sign(grad)`` on them divided by their count (Tramèr & Boneh 2019, "SLIDE"; Croce & Hein 2021).
    """
    b = grad.shape[0]
    g = grad.reshape(b, -1)
    xa = x_adv.reshape(b, -1)
    blocked = ((xa <= 0) & (g < 0)) | ((xa >= 1) & (g > 0))
    a = g.abs().masked_fill_(blocked, 0.0)
    n = a.shape[1]
    k = max(1, min(n, math.ceil(n * (1.0 - percentile / 100.0))))  # coordinates to keep
    thr = a.topk(k, dim=1, sorted=False).values.amin(1, keepdim=True)
    keep = (a >= thr) & (a > 0)
    cnt = keep.sum(1, keepdim=True).clamp_min(1)
    direction = torch.where(keep, g.sign(), torch.zeros_like(g)) / cnt
    return direction.reshape(grad.shape)


class _Active:
    """With early stopping: every sample's answer so far, and the rows still attacked (the
    samples the model still classifies correctly); the loop's tensors are cut to those rows."""

    def __init__(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                 x_adv: torch.Tensor):
        self.result = x_adv.clone()
        with torch.no_grad():
            self.predictions = model(x).argmax(1)
        fooled = self.predictions != y
        self.result[fooled] = x[fooled]
        self.rows = (~fooled).nonzero().squeeze(1)

    @staticmethod
    def cut(keep: torch.Tensor, *tensors):
        """``tensors`` (tensors, tuples of tensors, or None) cut to the rows ``keep``."""
        return tuple(None if t is None else tuple(b[keep] for b in t) if isinstance(t, tuple)
                     else t[keep] for t in tensors)

    def keep(self, keep: torch.Tensor, *tensors):
        """Cut the active rows and ``tensors`` to the mask ``keep`` over the active rows."""
        self.rows = self.rows[keep]
        return self.cut(keep, *tensors)

    def record(self, logits: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
        """Store the points misclassified at this step; returns the mask of those kept."""
        predicted = logits.detach().argmax(1)
        fooled = predicted != y
        self.result[self.rows[fooled]] = x_adv[fooled]
        self.predictions[self.rows[fooled]] = predicted[fooled]
        return ~fooled


def pgd(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: str,
    eps: float,
    steps: int,
    step_size: float,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    loss: str = "ce",
    l1_percentile: float = 99.0,
    early_stop: bool = False,
    return_predictions: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Untargeted PGD maximising the loss of ``model`` within ``{||x' - x||_p <= eps} ∩ [0,1]^n``
    (the algorithms are in the module docstring).

    ``model`` maps ``[0, 1]`` images ``(B, C, H, W)`` to logits (its mode is the caller's);
    ``x`` clean images in ``[0, 1]`` (cast to float32), ``y`` int64 labels; ``norm`` "linf",
    "l2" or "l1"; ``eps`` the radius in pixel units over all of C*H*W; ``steps`` gradient steps
    (0 returns the start); ``step_size`` the ℓ∞ sign step, the ℓ2 length or the ℓ1 mass of a
    step; ``random_start`` from a random feasible point, drawn from ``generator`` (None: the
    global RNG); ``loss`` "ce" (cross-entropy, summed over the batch) or "cw" (margin);
    ``l1_percentile``: ℓ1 moves the coordinates at or above this per-sample percentile of
    ``|grad|`` (99 = top 1%); ``early_stop`` (evaluation): each sample stops at the first
    misclassified point of its path, never weaker than the last iterate and much faster (off for
    adversarial training, which needs every last iterate); ``return_predictions``: also return
    the model's labels at the returned points, as the attack saw them.

    Returns detached float32 images (the last iterate; with ``early_stop``, the first
    misclassified point where there is one) within ``eps`` of ``x`` (up to rounding) and in
    ``[0, 1]``; with ``return_predictions``, ``(images, predicted labels)``.
    """
    if norm not in _NORMS:
        raise ValueError(f"unknown norm {norm!r}; expected one of {_NORMS}")
    if steps < 0 or eps < 0:
        raise ValueError(f"steps and eps must be >= 0, got steps={steps}, eps={eps}")
    x = x.detach().to(torch.float32)
    y = y.detach().to(device=x.device, dtype=torch.long)
    eps = float(eps)
    delta = _random_start(x, norm, eps, generator) if random_start and eps > 0 else \
        torch.zeros_like(x)
    # One leaf buffer for the iterate, updated in place; the gradient w.r.t. x_adv equals the
    # gradient w.r.t. the perturbation.
    x_adv = delta.add_(x).clamp_(0.0, 1.0)
    bounds = _linf_bounds(x, eps) if norm == "linf" else None
    active = _Active(model, x, y, x_adv) if early_stop and steps > 0 else None
    if active is not None:
        x, y, x_adv, bounds = active.cut(active.rows, x, y, x_adv, bounds)
    for _ in range(steps):
        if active is not None and len(active.rows) == 0:  # every sample is fooled
            break
        x_adv.requires_grad_(True)
        logits = model(x_adv)
        (grad,) = torch.autograd.grad(_loss(logits, y, loss), x_adv)
        x_adv.requires_grad_(False)
        if active is not None:
            keep = active.record(logits, y, x_adv)
            if not keep.all():
                x, y, x_adv, grad, bounds = active.keep(keep, x, y, x_adv, grad, bounds)
                if len(active.rows) == 0:
                    break
        del logits
        with torch.no_grad():
            x_adv = _ascend(x_adv, grad, x, norm=norm, eps=eps, step_size=step_size,
                            bounds=bounds, l1_percentile=l1_percentile)
        del grad
    return _finish(model, x_adv, y, active, return_predictions)


def _finish(model: torch.nn.Module, x_adv: torch.Tensor, y: torch.Tensor,
            active: _Active | None, return_predictions: bool):
    """The images to return (and the predictions at them, when asked)."""
    if active is None:
        result, rows = x_adv.detach(), slice(None)
        predictions = torch.empty_like(y) if return_predictions else None
    else:
        result, rows, predictions = active.result, active.rows, active.predictions
        result[rows] = x_adv
    if not return_predictions:
        return result
    if len(x_adv):
        with torch.no_grad():
            predictions[rows] = model(x_adv).argmax(1)
    return result, predictions


def _linf_bounds(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The ℓ∞ feasible set is a box: its bounds, kept so each step projects in place."""
    return (x - eps).clamp_(min=0.0), (x + eps).clamp_(max=1.0)


def _ascend(x_adv: torch.Tensor, grad: torch.Tensor, x: torch.Tensor, *, norm: str, eps: float,
            step_size: float, bounds, l1_percentile: float) -> torch.Tensor:
    """One ascent step from ``x_adv`` along ``grad`` and the projection back onto the feasible
    set (in place where the norm allows it; ``grad`` is consumed)."""
    if norm == "linf":
        lo, hi = bounds
        x_adv.add_(grad.sign_(), alpha=step_size)
        torch.maximum(x_adv, lo, out=x_adv)
        return torch.minimum(x_adv, hi, out=x_adv)
    if norm == "l2":
        gn = grad.reshape(grad.shape[0], -1).norm(dim=1).clamp_min_(1e-12)
        step = grad.div_(gn.view(-1, *([1] * (grad.dim() - 1))))
    else:
        step = _l1_direction(grad, x_adv, l1_percentile)
    delta = x_adv.sub_(x).add_(step, alpha=step_size)
    proj = project_l2 if norm == "l2" else project_l1_box
    return proj(delta, x, eps).add_(x).clamp_(0.0, 1.0)
