"""Adversarial attacks: PGD (ℓ∞/ℓ2/ℓ1), exact projections, a resumable AutoAttack wrapper,
TRADES' inner maximization, and the paper's own PGD variants (foolbox 3.0.4 ℓ∞/ℓ2, ART 1.16 ℓ1;
:mod:`robustarch.attacks.paper_pgd`).

Models take images in [0, 1] (normalization inside the model); the caller sets the model's mode
(``model.eval()``). pyautoattack is imported only when :func:`autoattack` is called.
"""

from robustarch.attacks.autoattack import autoattack
from robustarch.attacks.paper_pgd import art116_pgd_l1, foolbox_pgd, paper_pgd
from robustarch.attacks.pgd import pgd
from robustarch.attacks.projections import project_l1_box, project_l2, project_linf
from robustarch.attacks.trades import trades_perturb

__all__ = [
    "pgd", "autoattack", "project_linf", "project_l2", "project_l1_box", "trades_perturb",
    "paper_pgd", "foolbox_pgd", "art116_pgd_l1",
]
