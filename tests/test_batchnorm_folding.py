"""Folding eval-mode batch norms into convolutions: the same function, fewer layers."""

import copy

import pytest
import torch
import torch.nn.functional as F
import yaml
from conftest import REPO
from torch import nn

from robustarch.models import create_model
from robustarch.models.batchnorm_folding import FoldedView, fold_batchnorm

PAPER_ARCHITECTURES = yaml.safe_load((REPO / "config.yaml").read_text())["run"]["architectures"]


def _with_running_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial norms, as after training: random running statistics and affine parameters
    (at initialization every norm is nearly the identity, and folding it would prove little)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 2 + 0.2)
            if m.affine:
                m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
    return model.eval()


def _count(model: nn.Module, kind: type) -> int:
    return sum(type(m) is kind for m in model.modules())


@pytest.mark.parametrize("arch", PAPER_ARCHITECTURES)
def test_folded_model_computes_the_same_function_and_input_gradient(arch):
    torch.manual_seed(0)
    model = _with_running_statistics(create_model(arch, 10, 32, "tiny"))
    folded = copy.deepcopy(model)
    n = fold_batchnorm(folded)
    assert _count(folded, nn.BatchNorm2d) == _count(model, nn.BatchNorm2d) - n
    x = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    y = torch.arange(6)
    out = {}
    for name, m in (("model", model), ("folded", folded)):
        xi = x.clone().requires_grad_(True)
        logits = m(xi)
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), xi)
        out[name] = logits.detach(), grad
    torch.testing.assert_close(out["folded"][0], out["model"][0], atol=1e-4, rtol=1e-4)
    scale = out["model"][1].abs().max()
    torch.testing.assert_close(out["folded"][1], out["model"][1], atol=1e-4 * scale, rtol=1e-3)


@pytest.mark.parametrize("arch", ["resnet", "vgg", "resnext", "mobilevit"])
def test_conv_then_norm_pairs_of_cnns_are_all_folded(arch):
    """Post-activation CNNs put every norm right after a convolution in a Sequential."""
    model = create_model(arch, 10, 32, "tiny").eval()
    norms = _count(model, nn.BatchNorm2d)
    assert norms > 0
    assert fold_batchnorm(model) == norms
    assert _count(model, nn.BatchNorm2d) == 0


def test_pre_activation_norms_are_kept():
    """In a pre-activation block the norm comes before the convolution: nothing to fold into."""
    model = create_model("preactresnet", 10, 32, "tiny").eval()
    norms = _count(model, nn.BatchNorm2d)
    fold_batchnorm(model)
    assert _count(model, nn.BatchNorm2d) == norms


class _StandardizedConv(nn.Conv2d):
    """A convolution that transforms its weight in forward (weight standardization)."""

    def forward(self, x):
        w = self.weight
        w = (w - w.mean((1, 2, 3), keepdim=True)) / (w.std((1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


class _Parallel(nn.Sequential):
    """A Sequential subclass whose forward does not chain its children."""

    def forward(self, x):
        return sum(m(x) for m in self)


def test_only_exact_conv_norm_chains_are_folded():
    block = nn.Sequential(
        _StandardizedConv(3, 4, 3, padding=1), nn.BatchNorm2d(4),  # weight transformed: kept
        nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4),                     # folded
        _Parallel(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)),          # not a chain: kept
        nn.Conv2d(4, 8, 1), nn.ReLU(), nn.BatchNorm2d(8),          # not adjacent: kept
    )
    _with_running_statistics(block)
    before = copy.deepcopy(block)
    assert fold_batchnorm(block) == 1
    assert _count(block, nn.BatchNorm2d) == 3
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(block(x), before(x), atol=1e-5, rtol=1e-5)


def test_training_mode_is_refused():
    model = create_model("resnet", 10, 32, "tiny")  # training mode after construction
    with pytest.raises(ValueError, match=r"eval mode.*model\.eval\(\)"):
        fold_batchnorm(model)
    assert _count(model, nn.BatchNorm2d) > 0


def _logits_and_input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    xi = x.clone().requires_grad_(True)
    logits = model(xi)
    (grad,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), xi)
    return logits.detach(), grad


def test_folded_view_tracks_the_live_model():
    """The view computes what the live model computes in eval mode; it shares every tensor
    but the folded convolutions, which refresh() recomputes after the live weights change."""
    torch.manual_seed(0)
    model = _with_running_statistics(create_model("resnet", 10, 32, "tiny")).train()
    view = FoldedView(model)
    assert len(view) == _count(model, nn.BatchNorm2d) and not view.module.training
    assert _count(view.module, nn.BatchNorm2d) == 0
    assert set(model.state_dict()) == set(_with_running_statistics(
        create_model("resnet", 10, 32, "tiny")).state_dict())  # nothing registered on model
    x, y = torch.rand(8, 3, 32, 32), torch.arange(8) % 10

    def close_to_live():
        model.eval()
        live = _logits_and_input_gradient(model, x, y)
        model.train()
        ours = _logits_and_input_gradient(view.module, x, y)
        return all(torch.allclose(a, b, atol=1e-4 * b.abs().max(), rtol=1e-3)
                   for a, b in zip(ours, live, strict=True))

    assert close_to_live()
    # A training step: the weights move and the norms' running statistics with them.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
    assert not close_to_live()  # the folded convolutions still hold the old weights
    view.refresh()
    assert close_to_live()
    with torch.no_grad():  # an unfolded parameter is the live tensor itself
        head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        head.bias += 1.0
    assert close_to_live()
    assert not any(p.requires_grad for m, _, t in view._targets for p in t.parameters())


def test_training_crafts_attacks_with_a_refreshed_folded_view(digits, monkeypatch, tmp_path):
    """train_model crafts each batch's attack with the folded view, refreshed before it; with
    training.fold_batchnorm off, with the live model."""
    from conftest import tiny_settings

    from robustarch.train import loop as train_module
    from robustarch.train import objectives

    refreshed, crafted_by = [], []
    refresh = FoldedView.refresh
    monkeypatch.setattr(FoldedView, "refresh",
                        lambda self: refreshed.append(1) or refresh(self))
    pgd = objectives.pgd
    monkeypatch.setattr(objectives, "pgd",
                        lambda model, *a, **k: crafted_by.append(model) or pgd(model, *a, **k))
    x, y = digits["x_train"][:256], digits["y_train"][:256]
    for fold in (True, False):
        refreshed.clear(), crafted_by.clear()
        torch.manual_seed(0)
        model = create_model("resnet", 10, 32, "tiny")
        settings = tiny_settings(epochs=1, batch_size=64, method="pgd_linf",
                                 fold_batchnorm=fold)
        train_module.train_model(model, (x, y), (x[:64], y[:64]), settings,
                                 checkpoint_dir=tmp_path / f"fold-{fold}", log=lambda m: None,
                                 device=torch.device("cpu"))
        assert len(crafted_by) == 4
        if fold:
            assert len(refreshed) == 1 + 4  # at construction, then before each attack
            assert all(m is not model and m is crafted_by[0] for m in crafted_by)
        else:
            assert refreshed == [] and all(m is model for m in crafted_by)

