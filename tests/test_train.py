import math

import pytest
import torch
from conftest import tiny_settings

from robustarch.checkpoint import list_checkpoints
from robustarch.models import create_model
from robustarch.train import NonFiniteLossError, lr_factor, train_model


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


@pytest.mark.parametrize("method", ["vanilla", "pgd_linf"])
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
    assert result.resumed_from_epoch is None


def test_adversarial_training_leaves_no_input_gradient_state(digits, tmp_path):
    train, test = _subset(digits, n_train=64, n_test=20)
    model = _model()
    train_model(model, train, test, tiny_settings(method="pgd_linf", epochs=1, batch_size=32),
                checkpoint_dir=tmp_path, device=torch.device("cpu"), log=lambda m: None)
    assert model.training is False  # the last thing done was clean evaluation


def test_resume_is_bit_identical_to_an_uninterrupted_run(digits, tmp_path):
    train, test = _subset(digits)
    settings = tiny_settings(method="pgd_linf", epochs=3, batch_size=64)
    straight = train_model(_model(), train, test, settings, checkpoint_dir=tmp_path / "a",
                           device=torch.device("cpu"), log=lambda m: None)
    batches = {"n": 0}

    def stop_in_epoch_three():
        batches["n"] += 1
        return batches["n"] > 2 * 4 + 1  # 4 batches per epoch: stop early in epoch 3

    with pytest.raises(InterruptedError, match="epoch 3"):
        train_model(_model(), train, test, settings, checkpoint_dir=tmp_path / "b",
                    device=torch.device("cpu"), log=lambda m: None,
                    stop_requested=stop_in_epoch_three)
    resumed = train_model(_model(seed=99), train, test, settings, checkpoint_dir=tmp_path / "b",
                          device=torch.device("cpu"), log=lambda m: None)
    assert resumed.resumed_from_epoch == 2
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
