"""The paper protocol's PGD (robustarch.attacks.paper_pgd) against the libraries it re-implements
(foolbox 3.0.4 for ℓ∞/ℓ2, ART 1.16.0 for ℓ1, in its worker process), and the strong protocol's
PGD (robustarch.attacks.pgd with early stopping) against the paper's.

A small CNN is trained (seconds) on scikit-learn's digits (3x32x32) and attacked on all 360 test
images at the paper's CIFAR-10 budgets and settings: ε = 8/255 (ℓ∞), 1.5 (ℓ2), 40 (ℓ1); 20
steps; step 3/40·ε (foolbox's rel_stepsize, and ART's eps_step = 1.5·ε/20 is the same).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustarch.attacks import art116_pgd_l1, foolbox_pgd, paper_pgd, pgd
from robustarch.bench.art116 import Art116L1, art116_missing
from robustarch.data.datasets.digits import load_digits_tensors

BUDGETS = {"linf": 8 / 255, "l2": 1.5, "l1": 40.0}
STEPS = 20
STEP_RATIO = 3 / 40  # foolbox: rel_stepsize; ART: eps_step / eps = 1.5 / 20
SEEDS = (0, 1, 2)  # random starts averaged over
TOLERANCE = 0.02  # robust accuracy, ours vs the library


def _step(norm: str) -> float:
    return STEP_RATIO * BUDGETS[norm]


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def trained():
    """The cross-check's CNN (tests/test_attacks_crosscheck.py): 8 epochs of Adam, clean
    accuracy ~0.96 on the 360 digits test images."""
    data = load_digits_tensors()
    x_train, y_train = data["x_train"].float() / 255, data["y_train"]
    x, y = data["x_test"].float() / 255, data["y_test"]
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 8 * 8, 10),
    )
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(8):
        perm = torch.randperm(len(x_train), generator=g)
        for i in range(0, len(x_train), 64):
            b = perm[i : i + 64]
            loss = F.cross_entropy(model(x_train[b]), y_train[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    clean = _accuracy(model, x, y)
    assert clean > 0.9, clean
    return model, x, y, clean


def _accuracy(model, x, y) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def paper_predictions(trained):
    """Our paper PGD's predictions at its points, per norm, one tensor per seed."""
    model, x, y, _ = trained
    return {norm: [paper_pgd(model, x, y, norm=norm, eps=eps, steps=STEPS, step_size=_step(norm),
                             generator=_generator(seed), return_predictions=True)[1]
                   for seed in SEEDS]
            for norm, eps in BUDGETS.items()}


def _robust(predictions: list[torch.Tensor], y: torch.Tensor) -> float:
    return float(np.mean([(p == y).float().mean().item() for p in predictions]))


def _check_budget(x_adv, x, norm, eps):
    d = (x_adv - x).flatten(1)
    size = {"linf": d.abs().amax(1), "l2": d.norm(dim=1), "l1": d.abs().sum(1)}[norm]
    assert torch.all(size <= eps * (1 + 1e-5)), size.max()
    assert x_adv.min() >= 0 and x_adv.max() <= 1


# --------------------------------------------------------------------------- foolbox 3.0.4


def _foolbox(model, x, y, norm, seed):
    fb = pytest.importorskip("foolbox")
    cls = {"linf": fb.attacks.LinfProjectedGradientDescentAttack,
           "l2": fb.attacks.L2ProjectedGradientDescentAttack}[norm]
    attack = cls(rel_stepsize=STEP_RATIO, steps=STEPS)  # the authors' test.py
    torch.manual_seed(seed)  # foolbox draws its random start from torch's global generator
    raw, _, _ = attack(fb.PyTorchModel(model, bounds=(0, 1), device=x.device), x, y,
                       epsilons=BUDGETS[norm])
    return raw


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_foolbox_pgd_robust_accuracy_matches_foolbox(trained, paper_predictions, norm):
    """Independent random starts (foolbox's seeds are not ours): the mean robust accuracy over
    three starts is within 2 points of foolbox 3's, at a budget where it is informative."""
    model, x, y, clean = trained
    ref = [_foolbox(model, x, y, norm, 1000 + seed) for seed in SEEDS]
    with torch.no_grad():
        ref_robust = _robust([model(a).argmax(1) for a in ref], y)
    ours = _robust(paper_predictions[norm], y)
    print(f"PGD-{norm} eps={BUDGETS[norm]:.4g}: clean {clean:.3f} ours {ours:.3f} "
          f"foolbox {ref_robust:.3f}")
    assert 0.1 < ref_robust < clean - 0.05
    assert abs(ours - ref_robust) <= TOLERANCE


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_foolbox_pgd_same_seed_same_points(trained, norm):
    """With foolbox's generator seeded as ours, the random start is the same stream and every
    operation the same: the adversarial images agree to float rounding."""
    model, x, y, _ = trained
    x, y = x[:120], y[:120]
    ours = foolbox_pgd(model, x, y, norm=norm, eps=BUDGETS[norm], steps=STEPS,
                       step_size=_step(norm), generator=_generator(7))
    ref = _foolbox(model, x, y, norm, 7)
    _check_budget(ours, x, norm, BUDGETS[norm])
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- ART 1.16.0


@pytest.fixture(scope="module")
def art116(trained):
    """ART 1.16.0's PGD-ℓ1 on all test images: three random starts (numpy seeded once) and
    one run without a random start."""
    reason = art116_missing()
    if reason is not None:
        pytest.skip(reason)
    model, x, y, _ = trained
    eps = BUDGETS["l1"]
    with Art116L1(model, x, y, eps=eps, eps_step=_step("l1"), max_iter=STEPS,
                  num_random_init=1, seed=0) as worker:
        for _ in SEEDS:
            worker.run()
        worker.run(num_random_init=0)
        *random, deterministic = worker.close()
    return random, deterministic


def test_art116_pgd_l1_robust_accuracy_matches_art116(trained, paper_predictions, art116):
    """Mean robust accuracy over three random starts within 2 points of ART 1.16.0's."""
    model, x, y, clean = trained
    random, _ = art116
    for adv in random:
        _check_budget(adv, x, "l1", BUDGETS["l1"])
    with torch.no_grad():
        ref = _robust([model(a).argmax(1) for a in random], y)
    ours = _robust(paper_predictions["l1"], y)
    print(f"PGD-l1 eps=40: clean {clean:.3f} ours {ours:.3f} ART 1.16.0 {ref:.3f}")
    assert 0.1 < ref < clean - 0.05
    assert abs(ours - ref) <= TOLERANCE


def test_art116_pgd_l1_without_random_start_equals_art116(trained, art116):
    """Started at x (num_random_init=0) the attack is deterministic: ours computes ART 1.16.0's
    points to float rounding (the whole batch is one ART batch, as the loss's mean needs)."""
    model, x, y, _ = trained
    _, ref = art116
    ours = art116_pgd_l1(model, x, y, eps=BUDGETS["l1"], steps=STEPS, step_size=_step("l1"),
                         num_random_init=0)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- strong vs paper


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_strong_pgd_never_weaker_than_paper_pgd(trained, paper_predictions, norm):
    """The strong protocol's PGD (the config's steps and step sizes, early stopping; ℓ2 and ℓ1
    with exact projections, ℓ1 with sparse steps) fools every sample the paper's PGD fools with
    the same seed. For ℓ∞ this is by construction (same start stream, steps and feasible set;
    the early stop only adds the earlier iterates); for ℓ2 and ℓ1 the paths differ, so robust
    accuracy must not be higher and at most 1% of the samples may be fooled by the paper's
    attack only."""
    model, x, y, _ = trained
    eps = BUDGETS[norm]
    for seed, paper in zip(SEEDS, paper_predictions[norm], strict=True):
        adv, strong = pgd(model, x, y, norm=norm, eps=eps, steps=STEPS, step_size=_step(norm),
                          early_stop=True, generator=_generator(seed), return_predictions=True)
        _check_budget(adv, x, norm, eps)
        paper_only = ((paper != y) & (strong == y)).sum().item()
        print(f"{norm} seed {seed}: robust paper {(paper == y).float().mean():.3f} strong "
              f"{(strong == y).float().mean():.3f}, fooled by paper only {paper_only}")
        assert (strong == y).sum() <= (paper == y).sum()
        assert paper_only == 0 if norm == "linf" else paper_only <= 0.01 * len(y)


# --------------------------------------------------------------------------- properties


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_paper_pgd_conventions(trained, norm):
    """Within budget and box; reproducible from the generator; input gradients only (no
    parameter .grad, mode untouched); predictions are the model's at the returned points."""
    model, x, y, _ = trained
    x, y = x[:32], y[:32]
    model = copy.deepcopy(model).requires_grad_(True)  # parameters that could collect .grad
    kw = dict(norm=norm, eps=BUDGETS[norm], steps=3, step_size=_step(norm))
    a, pred = paper_pgd(model, x, y, generator=_generator(3), return_predictions=True, **kw)
    b = paper_pgd(model, x, y, generator=_generator(3), **kw)
    c = paper_pgd(model, x, y, generator=_generator(4), **kw)
    _check_budget(a, x, norm, BUDGETS[norm])
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert all(p.grad is None for p in model.parameters()) and not model.training
    with torch.no_grad():
        assert torch.equal(pred, model(a).argmax(1))
    assert torch.equal(paper_pgd(model, x, y, random_start=False, **{**kw, "steps": 0}), x)


def test_art116_restarts_only_add_successes(trained):
    """num_random_init=2: the first run is the one-start attack's (same generator stream), and a
    later run only replaces it where it changes the clean prediction, so no sample fooled by
    the first run is unfooled."""
    model, x, y, _ = trained
    kw = dict(eps=BUDGETS["l1"], steps=5, step_size=_step("l1"))
    one = art116_pgd_l1(model, x, y, num_random_init=1, generator=_generator(5), **kw)
    two = art116_pgd_l1(model, x, y, num_random_init=2, generator=_generator(5), **kw)
    with torch.no_grad():
        clean = model(x).argmax(1)
        fooled_one, fooled_two = model(one).argmax(1) != clean, model(two).argmax(1) != clean
    assert torch.all(fooled_two[fooled_one])
    assert torch.equal(two[~fooled_two], one[~fooled_two])


def test_paper_pgd_rejects_bad_arguments(trained):
    model, x, y, _ = trained
    with pytest.raises(ValueError, match="unknown norm"):
        paper_pgd(model, x[:2], y[:2], norm="l3", eps=1.0, steps=1, step_size=0.1)
    with pytest.raises(ValueError, match="art116_pgd_l1"):
        foolbox_pgd(model, x[:2], y[:2], norm="l1", eps=1.0, steps=1, step_size=0.1)
    with pytest.raises(ValueError, match="steps"):
        paper_pgd(model, x[:2], y[:2], norm="linf", eps=0.1, steps=-1, step_size=0.1)
    with pytest.raises(ValueError, match="labels"):
        paper_pgd(model, x[:2], y[:3], norm="l2", eps=0.1, steps=1, step_size=0.1)
    with pytest.raises(ValueError, match="num_random_init"):
        art116_pgd_l1(model, x[:2], y[:2], eps=1.0, steps=1, step_size=0.1, num_random_init=-1)
