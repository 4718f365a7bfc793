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
        # Uniform in the eps-ball: Gaussian direction, radius eps * U^(1/n) (Muller 1959),
        # then the exact projection onto ball ∩ box (clipping toward x keeps it in the ball).
        g = _rand(x.shape, generator, x.device, "normal").reshape(b, -1)
        u = _rand((b, 1), generator, x.device, "uniform")
        g = g / g.norm(dim=1, keepdim=True).clamp_min(1e-12) * (eps * u.pow(1.0 / n))
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
) -> torch.Tensor:
    """Untargeted PGD maximising the loss of ``model`` within ``{||x' - x||_p <= eps} ∩ [0,1]^n``.

    Args:
        model: maps ``[0, 1]`` images ``(B, C, H, W)`` to logits ``(B, K)``. Its mode is left as
            the caller set it (use ``model.eval()`` for evaluation); only ``torch.autograd.grad``
            w.r.t. the input is used, so parameter ``.grad`` fields are untouched.
        x: clean images in ``[0, 1]``, shape ``(B, ...)``; cast to float32.
        y: int64 labels ``(B,)``.
        norm: ``"linf"``, ``"l2"`` or ``"l1"``.
        eps: radius of the threat model (in ``[0, 1]`` pixel units, ℓp norm over all of C*H*W).
        steps: number of gradient steps (0 returns the (random) start).
        step_size: ℓ∞: size of each sign step; ℓ2: ℓ2 length of each step; ℓ1: ℓ1 mass of each
            sparse step.
        random_start: start from a random point of the feasible set instead of ``x``.
        generator: source of all randomness (the random start); ``None`` uses the global RNG.
        loss: ``"ce"`` (cross-entropy, summed over the batch) or ``"cw"`` (margin loss).
        l1_percentile: ℓ1 only: per-sample percentile of ``|grad|`` above which coordinates are
            moved (99 = top 1%).

    Returns:
        Detached float32 adversarial images (the last iterate), each within ``eps`` of ``x`` in
        the chosen norm (up to float rounding) and inside ``[0, 1]``.

    Algorithms (each step: gradient of the loss at ``x + delta``, ascent step, exact projection
    onto the feasible set, see :mod:`robustarch.attacks.projections`):

    * ℓ∞ (Madry et al., ICLR 2018): start uniform in the ε-box; ``delta += step_size *
      sign(grad)``; projection = clip to the ε-box ∩ image box.
    * ℓ2: start uniform in the ε-ball (Gaussian direction, radius ``eps * U^(1/n)``);
      ``delta += step_size * grad / ||grad||_2`` (per sample); exact Euclidean projection onto
      ball ∩ box (the usual "rescale into the ball, then clip" is feasible but not always the
      nearest point; the exact one is found by a sort over the KKT breakpoints).
    * ℓ1: sparse steepest ascent (Tramèr & Boneh, NeurIPS 2019, "Adversarial training and
      robustness for multiple perturbations", SLIDE; Croce & Hein, ICML 2021, "Mind the box:
      ℓ1-APGD"): keep coordinates not blocked by the box with ``|grad|`` at or above the
      ``l1_percentile``-th per-sample percentile, step ``sign(grad)`` on them with total ℓ1 mass
      ``step_size``; then the exact Euclidean projection onto the ℓ1 ball ∩ box (Croce & Hein's
      sort-based algorithm). Start: a uniform point of the ℓ1 ε-ball clipped into the box.
    """
    if norm not in _NORMS:
        raise ValueError(f"unknown norm {norm!r}; expected one of {_NORMS}")
    if steps < 0:
        raise ValueError("steps must be >= 0")
    if eps < 0:
        raise ValueError("eps must be >= 0")
    x = x.detach().to(torch.float32)
    y = y.detach().to(device=x.device, dtype=torch.long)
    eps = float(eps)

    if random_start and eps > 0:
        delta = _random_start(x, norm, eps, generator)
    else:
        delta = torch.zeros_like(x)
    # One leaf buffer for the iterate, updated in place; the gradient w.r.t. x_adv equals the
    # gradient w.r.t. the perturbation.
    x_adv = delta.add_(x).clamp_(0.0, 1.0)
    if norm == "linf":  # the feasible set is a box: keep its bounds, project in place
        lo = (x - eps).clamp_(min=0.0)
        hi = (x + eps).clamp_(max=1.0)
    bshape = (-1, *([1] * (x.dim() - 1)))

    for _ in range(steps):
        x_adv.requires_grad_(True)
        (grad,) = torch.autograd.grad(_loss(model(x_adv), y, loss), x_adv)
        x_adv.requires_grad_(False)
        with torch.no_grad():
            if norm == "linf":
                x_adv.add_(grad.sign_(), alpha=step_size)
                torch.maximum(x_adv, lo, out=x_adv)
                torch.minimum(x_adv, hi, out=x_adv)
            else:
                if norm == "l2":
                    gn = grad.reshape(grad.shape[0], -1).norm(dim=1).clamp_min_(1e-12)
                    step = grad.div_(gn.view(bshape))
                else:
                    step = _l1_direction(grad, x_adv, l1_percentile)
                delta = x_adv.sub_(x).add_(step, alpha=step_size)
                proj = project_l2 if norm == "l2" else project_l1_box
                x_adv = proj(delta, x, eps).add_(x).clamp_(0.0, 1.0)
        del grad

    return x_adv.detach()
