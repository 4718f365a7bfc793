"""Cross-checks of robustarch.attacks against reference implementations on a small trained model.

A small CNN is trained (seconds) on scikit-learn's digits (3x32x32); attacks are run on 200
test images. References (test-only dependencies, skipped when absent): torchattacks' PGD / PGDL2,
the Adversarial Robustness Toolbox's ProjectedGradientDescent(norm=1), and pyautoattack called
directly.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustarch.attacks import autoattack, pgd
from robustarch.data.datasets.digits import load_digits_tensors

N_TEST = 200
STEPS = 20


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    # These tiny models are faster single-threaded, especially on a shared machine.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def trained():
    data = load_digits_tensors()
    x_train = data["x_train"].float() / 255
    y_train = data["y_train"]
    x_test = data["x_test"][:N_TEST].float() / 255
    y_test = data["y_test"][:N_TEST]
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 8 * 8, 10),
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
    clean = _acc(model, x_test, y_test)
    assert clean > 0.9, clean
    return model, x_test, y_test, clean


def _acc(model, x, y) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def _check_budget(x_adv, x, norm, eps):
    d = (x_adv - x).flatten(1)
    size = {"linf": d.abs().amax(1), "l2": d.norm(dim=1), "l1": d.abs().sum(1)}[norm]
    assert torch.all(size <= eps * (1 + 1e-4)), size.max()
    assert x_adv.min() >= 0 and x_adv.max() <= 1


@pytest.mark.parametrize(("norm", "eps"), [("linf", 0.06), ("l2", 1.5)])
def test_pgd_matches_torchattacks(trained, norm, eps):
    """Same budget, steps and step size: our robust accuracy is within 2 pp of torchattacks'
    (or lower, i.e. stronger)."""
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y, clean = trained
    step = eps / 4
    x_ours = pgd(
        model,
        x,
        y,
        norm=norm,
        eps=eps,
        steps=STEPS,
        step_size=step,
        generator=torch.Generator().manual_seed(0),
    )
    _check_budget(x_ours, x, norm, eps)
    cls = torchattacks.PGD if norm == "linf" else torchattacks.PGDL2
    torch.manual_seed(0)
    x_ref = cls(model, eps=eps, alpha=step, steps=STEPS, random_start=True)(x, y)
    ours, ref = _acc(model, x_ours, y), _acc(model, x_ref, y)
    print(f"PGD-{norm} eps={eps}: clean {clean:.3f} ours {ours:.3f} torchattacks {ref:.3f}")
    assert 0 < ref < clean  # a budget where the comparison is informative
    assert ours <= ref + 0.02


def test_pgd_linf_without_random_start_equals_torchattacks(trained):
    """Deterministic ℓ∞ PGD (start at x) is the same algorithm as torchattacks' PGD: the
    iterates agree to float rounding."""
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y, _ = trained
    eps, step = 0.06, 0.015
    ours = pgd(model, x, y, norm="linf", eps=eps, steps=STEPS, step_size=step, random_start=False)
    ref = torchattacks.PGD(model, eps=eps, alpha=step, steps=STEPS, random_start=False)(x, y)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_pgd_l1_at_least_as_strong_as_art(trained):
    """ℓ1 PGD with the paper's step rule (step = 1.5 * eps / steps, 20 steps) at eps = 10
    (digits' 3x32x32 inputs are mostly saturated strokes, a budget where the model is neither
    broken nor untouched) is at least as strong as ART's ProjectedGradientDescent(norm=1)."""
    pytest.importorskip("art")
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    model, x, y, clean = trained
    eps = 10.0
    step = 1.5 * eps / STEPS
    x_ours = pgd(
        model,
        x,
        y,
        norm="l1",
        eps=eps,
        steps=STEPS,
        step_size=step,
        generator=torch.Generator().manual_seed(0),
    )
    _check_budget(x_ours, x, "l1", eps)
    clf = PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=(3, 32, 32),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    np.random.seed(0)
    accs = {}
    for n_init in (0, 1):  # ART's default start (x) and its random start
        art_pgd = ProjectedGradientDescent(
            clf,
            norm=1,
            eps=eps,
            eps_step=step,
            max_iter=STEPS,
            num_random_init=n_init,
            batch_size=N_TEST,
            verbose=False,
        )
        x_art = torch.from_numpy(art_pgd.generate(x.numpy(), y=y.numpy()))
        accs[n_init] = _acc(model, x_art, y)
    ours = _acc(model, x_ours, y)
    print(f"PGD-l1 eps={eps}: clean {clean:.3f} ours {ours:.3f} ART {accs}")
    assert 0 < ours < clean
    assert ours <= min(accs.values())


# --------------------------------------------------------------------------- AutoAttack

AA_N = 64
AA_BATCH = 16


@pytest.fixture
def small_autoattack(monkeypatch):
    """Shrink pyautoattack's iteration budgets (for both our wrapper and the direct reference
    calls, so the comparison stays exact) to keep the tests fast."""
    pyautoattack = pytest.importorskip("pyautoattack")
    cls = pyautoattack.AutoAttack
    orig_init = cls.__init__

    def init(self, *args, **kwargs):
        orig_init(self, *args, **kwargs)
        for atk in (self.apgd, self.apgd_targeted):
            atk.n_iter = atk.n_iter_orig = 10
            atk.n_iter_2, atk.n_iter_min, atk.size_decr = 2, 1, 1
        self.apgd_targeted.n_target_classes = 3
        self.fab.n_iter = 5
        self.fab.n_target_classes = 3
        self.square.n_queries = 50

    monkeypatch.setattr(cls, "__init__", init)
    return cls


def _direct(cls, model, x, y, **kw):
    adversary = cls(model, device="cpu", seed=0, **kw)
    _, y_adv = adversary.run_standard_evaluation(x, y, batch_size=AA_BATCH)
    return y_adv


@pytest.mark.parametrize(
    "kw",
    [
        dict(norm="Linf", eps=0.06, version="standard"),
        dict(norm="L2", eps=1.5, version="custom", attacks=["apgd-ce"]),
        dict(norm="L1", eps=10.0, version="custom", attacks=["apgd-ce"]),
    ],
    ids=["standard-Linf", "apgd_l2", "apgd_l1"],
)
def test_autoattack_matches_direct_pyautoattack(trained, small_autoattack, kw):
    model, x, y, clean = trained
    x, y = x[:AA_N], y[:AA_N]
    ours = autoattack(model, x, y, batch_size=AA_BATCH, seed=0, **kw)
    ref = _direct(small_autoattack, model, x, y, **kw)
    assert ours.dtype == torch.int64 and ours.shape == (AA_N,)
    rob = (ours == y).float().mean().item()
    print(f"AutoAttack {kw}: clean {_acc(model, x, y):.3f} robust {rob:.3f}")
    assert torch.equal(ours, ref.cpu())
    assert 0 < rob < 1


def test_autoattack_runs_the_model_checks_once(trained, small_autoattack, monkeypatch):
    """pyautoattack checks the model on every call; the staged run (one call per stage and
    batch) lets only its first call check, and leaves pyautoattack's module as it was."""
    import pyautoattack.autoattack as module
    from pyautoattack import checks

    model, x, y, _ = trained
    calls = {"n": 0}
    real = checks.check_randomized

    def counted(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(checks, "check_randomized", counted)
    autoattack(model, x[:AA_N], y[:AA_N], norm="Linf", eps=0.06, batch_size=AA_BATCH, seed=0)
    assert calls["n"] == 1
    assert module.checks is checks


def test_autoattack_budgets_reach_pyautoattack(trained):
    """The demo's reduced budgets: iterations, restarts, target classes, Square's queries."""
    pytest.importorskip("pyautoattack")
    from robustarch.attacks.autoattack import _adversary

    model = trained[0]
    adversary = _adversary(model, norm="Linf", eps=0.03, version="standard", attacks=None,
                           seed=0, device=torch.device("cpu"), n_iter=2, n_restarts=1,
                           n_target_classes=3, n_queries=20)
    assert adversary.apgd.n_iter == adversary.apgd_targeted.n_iter == adversary.fab.n_iter == 2
    assert adversary.apgd_targeted.n_target_classes == adversary.fab.n_target_classes == 3
    assert adversary.square.n_queries == 20 and adversary.apgd.n_restarts == 1
    default = _adversary(model, norm="Linf", eps=0.03, version="standard", attacks=None, seed=0,
                         device=torch.device("cpu"), n_iter=2, n_restarts=None,
                         n_target_classes=None, n_queries=None)
    assert default.fab.n_target_classes == 9 and default.square.n_queries == 100


def test_autoattack_resumes_after_interruption(trained, small_autoattack, tmp_path, monkeypatch):
    """Preempted during the second stage (after its first batch), a resumed run continues from
    the state file and gives exactly the per-sample predictions of an uninterrupted run."""
    model, x, y, _ = trained
    x, y = x[:AA_N], y[:AA_N]
    kw = dict(norm="Linf", eps=0.06, version="standard", batch_size=AA_BATCH, seed=0)
    full = autoattack(model, x, y, **kw)
    state = tmp_path / "aa_state.json"

    from pyautoattack.autopgd_base import APGDAttack_targeted

    orig = APGDAttack_targeted.perturb
    calls = {"n": 0}

    class Preempted(Exception):
        pass

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Preempted
        return orig(self, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(APGDAttack_targeted, "perturb", flaky)
        with pytest.raises(Preempted):
            autoattack(model, x, y, state_path=state, **kw)
    saved = json.loads(state.read_text())
    assert saved["stage"] == 1 and saved["next_batch"] == 1  # apgd-t, one batch done
    assert saved["config"]["stages"] == ["apgd-ce", "apgd-t", "fab-t", "square"]

    resumed = autoattack(model, x, y, state_path=state, **kw)
    assert torch.equal(resumed, full)
    assert json.loads(state.read_text())["stage"] == 4

    # A finished state is reused without touching the model again ...
    with monkeypatch.context() as m:
        m.setattr(model, "forward", lambda *a: (_ for _ in ()).throw(AssertionError("ran")))
        assert torch.equal(autoattack(model, x, y, state_path=state, **kw), full)
    # ... and a state written for other arguments or data is refused.
    with pytest.raises(ValueError, match="different evaluation"):
        autoattack(model, x, y, state_path=state, **{**kw, "eps": 0.05})
    with pytest.raises(ValueError, match="different evaluation"):
        autoattack(model, x.flip(0), y.flip(0), state_path=state, **kw)
