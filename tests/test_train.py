import math

import pytest
import torch
from conftest import tiny_settings

from robustarch.attacks import trades_perturb
from robustarch.config import ConfigError, l1_method, parse_method
from robustarch.models import create_model
from robustarch.train import (
    NonFiniteLossError,
    l1_penalty,
    list_checkpoints,
    lr_factor,
    trades_loss,
    train_model,
)


def _model(arch="resnet", seed=0):
    torch.manual_seed(seed)
    return create_model(arch, 10, 32, "tiny", [0.3054] * 3, [0.3237] * 3)


def _subset(digits, n_train=256, n_test=100):
    return ((digits["x_train"][:n_train], digits["y_train"][:n_train]),
            (digits["x_test"][:n_test], digits["y_test"][:n_test]))


def test_lr_schedule_warms_up_then_decays_to_min():
    kw = dict(total_steps=100, warmup_steps=10, min_ratio=0.05)
    values = [lr_factor(s, **kw) for s in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[9:], values[10:], strict=False))
    assert values[-1] == pytest.approx(0.05, abs=1e-3)
    assert lr_factor(10, **kw) == pytest.approx(1.0)
    assert not any(math.isnan(v) for v in values)


@pytest.mark.parametrize("method", ["vanilla", "pgd_linf", "trades", "pgd_linf_l1-1e-05"])
def test_training_learns_and_checkpoints(digits, tmp_path, method):
    train, test = _subset(digits, n_train=512)
    settings = tiny_settings(method=method, epochs=4, lr=1e-2)
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = train_model(model, train, test, settings, checkpoint_dir=tmp_path,
                         device=torch.device("cpu"), log=lambda m: None)
    assert [r["epoch"] for r in result.metrics] == [1, 2, 3, 4]
    if method == "vanilla":  # an adversarial loss need not fall while robustness is learnt
        assert result.metrics[-1]["train_loss"] < result.metrics[0]["train_loss"]
    chance = 0.1
    assert result.metrics[-1]["test_clean_acc"] > chance + (0.15 if method == "vanilla" else 0.08)
    assert any(not torch.equal(before[k], v) for k, v in result.state_dict.items())
    assert [p.name for p in list_checkpoints(tmp_path)] == ["epoch-0003.pt", "epoch-0004.pt"]
    assert result.resumed_from is None


def test_adversarial_training_leaves_no_input_gradient_state(digits, tmp_path):
    train, test = _subset(digits, n_train=64, n_test=20)
    model = _model()
    train_model(model, train, test, tiny_settings(method="pgd_linf", epochs=1, batch_size=32),
                checkpoint_dir=tmp_path, device=torch.device("cpu"), log=lambda m: None)
    assert model.training is False  # the last thing done was clean evaluation


# stop_requested is polled after each of the 4 batches of an epoch and once at its end.
@pytest.mark.parametrize("stop_after, resumed_from, message", [
    (2 * 5 + 2, {"epoch": 2, "batch": 2}, "epoch 3: checkpoint written after batch 2"),
    (5 + 4, {"epoch": 2, "batch": None}, "checkpoint of epoch 2"),  # last batch of epoch 2
])
def test_resume_is_bit_identical_to_an_uninterrupted_run(digits, tmp_path, stop_after,
                                                         resumed_from, message):
    train, test = _subset(digits)
    settings = tiny_settings(method="pgd_linf", epochs=3, batch_size=64)
    straight = train_model(_model(), train, test, settings, checkpoint_dir=tmp_path / "a",
                           device=torch.device("cpu"), log=lambda m: None)
    batches = {"n": 0}

    def stop_signal_arrived():
        batches["n"] += 1
        return batches["n"] >= stop_after

    with pytest.raises(InterruptedError, match=message):
        train_model(_model(), train, test, settings, checkpoint_dir=tmp_path / "b",
                    device=torch.device("cpu"), log=lambda m: None,
                    stop_requested=stop_signal_arrived)
    resumed = train_model(_model(seed=99), train, test, settings, checkpoint_dir=tmp_path / "b",
                          device=torch.device("cpu"), log=lambda m: None)
    assert resumed.resumed_from == resumed_from
    untimed = [[{k: v for k, v in row.items() if k != "time_s"} for row in run.metrics]
               for run in (straight, resumed)]
    assert untimed[0] == untimed[1]
    for key, value in straight.state_dict.items():
        assert torch.equal(value, resumed.state_dict[key]), key


class _NaNModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x.flatten(1)[:, :10] * self.w * float("nan")


def test_nan_loss_stops_with_a_clear_error(digits, tmp_path):
    train, test = _subset(digits, n_train=64, n_test=10)
    with pytest.raises(NonFiniteLossError, match="loss became nan in epoch 1.*training.lr"):
        train_model(_NaNModel(), train, test, tiny_settings(), checkpoint_dir=tmp_path,
                    device=torch.device("cpu"), log=lambda m: None)


def test_trades_loss_is_cross_entropy_without_perturbation_or_beta():
    torch.manual_seed(0)
    logits, other = torch.randn(8, 10), torch.randn(8, 10)
    y = torch.randint(0, 10, (8,))
    ce = torch.nn.functional.cross_entropy(logits, y)
    assert torch.allclose(trades_loss(logits, other, y, beta=0.0), ce)
    assert torch.allclose(trades_loss(logits, logits.clone(), y, beta=6.0), ce, atol=1e-6)
    # KL(p || q) > 0 for q != p, scaled by beta
    gap = trades_loss(logits, other, y, beta=2.0) - ce
    assert gap > 0
    assert torch.allclose(trades_loss(logits, other, y, beta=4.0) - ce, 2 * gap, atol=1e-5)


def test_trades_perturbation_stays_in_the_ball_and_raises_the_kl(digits):
    model = _model().eval()
    x = digits["x_test"][:16].float().div(255)
    eps = 8 / 255
    x_adv = trades_perturb(model, x, eps=eps, steps=3, step_size=2 / 255,
                           generator=torch.Generator().manual_seed(0))
    assert (x_adv - x).abs().max() <= eps + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    with torch.no_grad():
        clean = model(x)
        kl = [torch.nn.functional.kl_div(torch.log_softmax(model(z), 1),
                                         torch.softmax(clean, 1), reduction="sum")
              for z in (x + 0.001 * torch.randn_like(x), x_adv)]
    assert kl[1] > kl[0]


def test_l1_penalty_and_its_gradient():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                                torch.nn.Flatten(), torch.nn.Linear(2, 3))
    torch.manual_seed(0)
    for p in model.parameters():
        torch.nn.init.normal_(p)
    penalized = [model[0].weight, model[3].weight]  # biases and BatchNorm are not penalized
    expected = sum(p.abs().sum() for p in penalized)
    value = l1_penalty(model)
    assert torch.allclose(value, expected)
    strength = 5e-5
    (strength * value).backward()
    for p in penalized:
        assert torch.equal(p.grad, strength * p.sign())
    for p in (model[0].bias, model[1].weight, model[1].bias, model[3].bias):
        assert p.grad is None


@pytest.mark.parametrize("name, parsed", [
    ("vanilla", ("vanilla", 0.0)), ("trades", ("trades", 0.0)),
    ("pgd_linf_l1-5e-05", ("pgd_linf_l1", 5e-05)), ("pgd_linf_l1-0.001", ("pgd_linf_l1", 1e-3)),
])
def test_method_names(name, parsed):
    assert parse_method(name) == parsed


@pytest.mark.parametrize("name", ["pgd", "pgd_linf_l1-", "pgd_linf_l1-x", "pgd_linf_l1--1"])
def test_bad_method_names_are_refused(name):
    with pytest.raises(ConfigError, match="unknown training method.*pgd_linf_l1-<lambda>"):
        parse_method(name)


def test_l1_method_name_round_trips():
    assert l1_method(0) == "pgd_linf"
    for strength in (1e-6, 5e-6, 1e-5, 5e-5, 0.001):
        assert parse_method(l1_method(strength)) == ("pgd_linf_l1", strength)
