"""Weight sparsity, loss landscape and local Lipschitz analyses (robustarch.analysis)."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustarch.analysis import COMPONENTS
from robustarch.analysis.landscape import (
    filter_normalized_direction,
    grid_coordinates,
    landscape_samples,
    loss_landscape,
)
from robustarch.analysis.landscape_file import load_landscape, save_landscape
from robustarch.analysis.lipschitz import local_lipschitz
from robustarch.analysis.sparsity import sparsity_ratio, sparsity_report, weight_components
from robustarch.atomic import write_json
from robustarch.models import create_model, list_models, model_info
from robustarch.report.analysis_tables import (
    analysis_frame,
    landscape_frame,
    lipschitz_frame,
    sparsity_frame,
    write_analysis_table,
)


class ChannelNorm(nn.Module):
    """A normalization layer with 4-d parameters, like vit-pytorch's LayerNorm in CvT."""

    def __init__(self, channels):
        super().__init__()
        self.g = nn.Parameter(torch.full((1, channels, 1, 1), 0.001))
        self.b = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x):
        return x * self.g + self.b


def _hand_built():
    """conv (2 filters) -> 4-d norm -> BN -> linear; every weight value chosen by hand."""
    conv = nn.Conv2d(1, 2, kernel_size=(1, 2), bias=True)
    linear = nn.Linear(4, 2, bias=True)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 0.005, -0.2, 0.0]).view(2, 1, 1, 2))
        conv.bias.fill_(0.0001)  # a bias: never a weight
        linear.weight.copy_(torch.tensor([[0.5, -0.009, 0.004, 0.3],
                                          [-0.001, 0.2, 0.006, -0.1]]))
    model = nn.Sequential(conv, ChannelNorm(2), nn.BatchNorm2d(2), nn.Flatten(), linear)
    model[2].weight.data.fill_(1e-6)  # tiny normalization parameters must not count
    return model


def test_sparsity_ratio_of_a_hand_built_model():
    model = _hand_built()
    report = sparsity_report(model, threshold=0.01, bins=10)
    comps = report["components"]
    # All 12 weights, max|w| = 1.0: below 0.01 are 0.005, 0.0, -0.009, 0.004, 0.006, -0.001.
    assert comps["all"]["weights"] == 12 and comps["all"]["sparse"] == 6
    assert comps["all"]["ratio"] == pytest.approx(6 / 12)
    assert comps["all"]["max_abs"] == pytest.approx(1.0)
    # Each component against its own max: conv max 1.0 -> {0.005, 0.0} of 4.
    assert comps["conv"]["ratio"] == pytest.approx(2 / 4)
    # The linear head ("other"), max 0.5 -> threshold 0.005: {0.004, -0.001} of 8.
    assert comps["other"]["ratio"] == pytest.approx(2 / 8)
    for name in ("qkv", "attn_other", "ffn"):
        assert comps[name]["weights"] == 0 and comps[name]["ratio"] is None
    assert sum(comps["all"]["histogram"]["counts"]) == 12
    assert comps["all"]["histogram"]["range"] == pytest.approx([-1.0, 1.0])
    assert sparsity_ratio(torch.tensor([1.0, 0.005, -0.2, 0.0])) == pytest.approx(0.5)
    assert sparsity_ratio(torch.zeros(3)) == 1.0
    assert np.isnan(sparsity_ratio(torch.empty(0)))


def test_sparsity_of_the_trained_weights_leaves_the_untrained_out():
    model = _hand_built()
    # conv's 1.0 and the head's 0.5 (the two largest weights) never trained; so did the conv
    # bias, which is no weight and changes nothing
    untrained = {"0.weight": torch.tensor([True, False, False, False]).view(2, 1, 1, 2),
                 "4.weight": torch.tensor([[True, False, False, False], [False] * 4]),
                 "0.bias": torch.ones(2, dtype=torch.bool)}
    report = sparsity_report(model, threshold=0.01, bins=10, untrained=untrained)
    comps = report["components"]
    assert report["untrained_known"] is True
    assert report["untrained_weights"] == {"0.weight": 1, "4.weight": 1}
    every = comps["all"]
    # all weights, as without the record
    assert (every["weights"], every["sparse"], every["max_abs"]) == (12, 6, pytest.approx(1.0))
    # trained: 0.005 -0.2 0.0 | -0.009 0.004 0.3 -0.001 0.2 0.006 -0.1; max 0.3 -> below 0.003:
    # 0.0 and -0.001
    assert every["weights_trained"] == 10 and every["sparse_trained"] == 2
    assert every["max_abs_trained"] == pytest.approx(0.3)
    assert every["ratio_trained"] == pytest.approx(2 / 10)
    assert every["untrained_share"] == pytest.approx(2 / 12)
    assert sum(every["histogram_trained"]["counts"]) == 10
    assert every["histogram_trained"]["range"] == pytest.approx([-0.3, 0.3])
    # each component against its own trained max: conv {0.005, -0.2, 0.0}, max 0.2 -> {0.0}
    assert comps["conv"]["ratio_trained"] == pytest.approx(1 / 3)
    assert comps["conv"]["ratio"] == pytest.approx(2 / 4)
    assert comps["other"]["ratio_trained"] == pytest.approx(1 / 7)  # -0.001 < 0.003
    assert comps["qkv"]["weights_trained"] == 0 and comps["qkv"]["ratio_trained"] is None
    assert comps["qkv"]["untrained_share"] is None
    # no record (a model file from before it): unknown, every weight counted as trained
    plain = sparsity_report(model, threshold=0.01, bins=10)
    assert plain["untrained_known"] is False and plain["untrained_weights"] == {}
    for name, summary in plain["components"].items():
        for key in ("weights", "max_abs", "sparse", "ratio", "histogram"):
            assert summary[f"{key}_trained"] == summary[key], (name, key)
    assert plain["components"]["all"]["untrained_share"] == 0
    with pytest.raises(ValueError, match="lacks"):
        sparsity_report(model, untrained={"9.weight": torch.ones(1, dtype=torch.bool)})
    with pytest.raises(ValueError, match="another model"):
        sparsity_report(model, untrained={"0.weight": torch.ones(4, dtype=torch.bool)})


def test_sparsity_of_a_trained_coatnet_at_32px(tmp_path):
    """End to end: a tiny CoAtNet trained a few steps at 32 px, its model file, the analysis's
    loader and report: the untrained weights are QKV weights of the last stage plus its
    relative bias (attn_other); convolution and feed-forward weights all trained."""
    from conftest import tiny_settings

    from robustarch.evaluate.loading import load_trained_model
    from robustarch.train import save_trained_model, train_model

    torch.manual_seed(0)
    model = create_model("coatnet", 10, 32, "tiny", [0.5] * 3, [0.25] * 3)
    settings = tiny_settings(arch="coatnet", epochs=1, batch_size=16, warmup_epochs=0)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (32,), generator=g)
    result = train_model(model, (x, y), (x[:8], y[:8]), settings, checkpoint_dir=tmp_path,
                         device=torch.device("cpu"), log=lambda m: None)
    save_trained_model(tmp_path / "model.pt", result, settings)
    net, meta = load_trained_model(tmp_path / "model.pt")
    report = sparsity_report(net, untrained=meta["untrained"])
    comps = report["components"]
    attn = net.net.stages[3][0].attn
    qk = 2 * attn.to_qkv.weight.numel() // 3
    assert report["untrained_weights"] == {"net.stages.3.0.attn.to_qkv.weight": qk,
                                           "net.stages.3.0.attn.rel_bias": attn.rel_bias.numel()}
    assert comps["qkv"]["weights"] - comps["qkv"]["weights_trained"] == qk
    assert comps["attn_other"]["weights"] - comps["attn_other"]["weights_trained"] == 2
    for name in ("conv", "ffn", "other"):
        assert comps[name]["untrained_share"] == 0, name
    assert comps["all"]["weights_trained"] == comps["all"]["weights"] - qk - 2


class Attention(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.to_qkv = nn.Linear(dim, 3 * dim)
        self.to_out = nn.Linear(dim, dim)
        self.rel_bias = nn.Parameter(torch.zeros(4, 4))


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim),
                                 nn.Linear(2 * dim, dim))


class InlineCell(nn.Module):
    """Attention written into the block itself, as in ViTAE's normal cells."""

    def __init__(self, dim):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.pcm = nn.Conv2d(dim, dim, 3)
        self.mlp = nn.Sequential(nn.Linear(dim, dim))


def test_components_of_a_toy_transformer():
    model = nn.Module()
    model.stem = nn.Conv2d(3, 8, 3)
    model.attn = Attention(8)
    model.ff = FeedForward(8)
    model.cell = InlineCell(8)
    model.head = nn.Linear(8, 10)
    model.pos_embed = nn.Parameter(torch.zeros(1, 4, 8))
    assert weight_components(model) == {
        "stem.weight": "conv", "attn.to_qkv.weight": "qkv", "attn.to_out.weight": "attn_other",
        "attn.rel_bias": "attn_other", "ff.net.1.weight": "ffn", "ff.net.2.weight": "ffn",
        "cell.qkv.weight": "qkv", "cell.proj.weight": "attn_other", "cell.pcm.weight": "conv",
        "cell.mlp.0.weight": "ffn", "head.weight": "other", "pos_embed": "other",
    }


# The components each family has (docs/analysis.md lists which layers fall in which).
_ALL = set(COMPONENTS)
FAMILY_COMPONENTS = {
    **dict.fromkeys(["vgg", "wideresnet", "densenet", "preactresnet", "resnet", "resnext"],
                    {"conv", "other"}),
    **dict.fromkeys(["vit", "cpvt", "ceit", "swin", "pvtv2", "coatnet", "vitae", "cct", "levit",
                     "mobilevit", "cvt"], _ALL),
    "mlpmixer": {"conv", "ffn", "other"},
    "poolformer": {"conv", "ffn", "other"},
    "botnet": {"conv", "qkv", "attn_other", "other"},
}


def test_every_family_is_classified():
    families = sorted({model_info(name).family for name in list_models()})
    assert set(families) == set(FAMILY_COMPONENTS)
    for family in families:
        model = create_model(family, num_classes=10, image_size=32, scale="tiny")
        assigned = weight_components(model)
        params = dict(model.named_parameters())
        present = {c for c in assigned.values()}
        assert present == FAMILY_COMPONENTS[family], family
        # Every 2+-d parameter is a weight unless a normalization layer owns it.
        for name, param in params.items():
            if param.ndim >= 2 and name not in assigned:
                owner = model.get_submodule(name.rpartition(".")[0])
                assert "Norm" in type(owner).__name__, (family, name)
            if param.ndim < 2:
                assert name not in assigned, (family, name)
    pvtv2 = weight_components(create_model("pvtv2", scale="tiny"))
    assert pvtv2["net.stages.0.blocks.0.mlp.dwconv.weight"] == "ffn"
    assert pvtv2["net.stages.0.blocks.0.attn.sr.weight"] == "attn_other"
    assert pvtv2["net.stages.0.blocks.0.attn.kv.weight"] == "qkv"


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(F.relu(self.bn(self.conv(x))).mean(dim=(2, 3)))


def _trained_tiny_cnn():
    torch.manual_seed(0)
    model = TinyCNN()
    model.train()
    with torch.no_grad():  # non-trivial running statistics, so that eval mode matters
        for _ in range(3):
            model(torch.rand(16, 3, 8, 8) * 2)
    return model.eval()


def test_filter_normalized_direction_has_the_weights_filter_norms():
    model = _trained_tiny_cnn()
    direction = filter_normalized_direction(model, torch.Generator().manual_seed(1))
    assert set(direction) == {"conv.weight", "fc.weight"}  # biases and BN get no direction
    for name, d in direction.items():
        w = dict(model.named_parameters())[name].detach()
        assert d.shape == w.shape
        torch.testing.assert_close(d.flatten(1).norm(dim=1), w.flatten(1).norm(dim=1))
        assert not torch.allclose(d, w)  # a random direction, not the weights themselves
    again = filter_normalized_direction(model, torch.Generator().manual_seed(1))
    assert all(torch.equal(direction[n], again[n]) for n in direction)  # seeded


def test_landscape_centre_is_the_models_own_loss():
    model = _trained_tiny_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8)
    y = torch.randint(0, 3, (20,))
    result = loss_landscape(model, x, y, grid=5, radius=0.5, batch_size=7, seed=3)
    with torch.no_grad():
        own = F.cross_entropy(model(x.float() / 255), y).item()
    assert result["loss"].shape == (5, 5)
    assert result["loss"][2, 2] == pytest.approx(own, rel=1e-5)
    assert result["centre_loss"] == pytest.approx(own, rel=1e-5)
    assert result["coords"][2] == 0.0 and result["coords"][[0, -1]].tolist() == [-0.5, 0.5]
    assert not np.allclose(result["loss"], own)  # the directions do move the loss
    assert result["loss"][2, 2] == result["centre_loss"]  # theta + 0 d1 + 0 d2 is theta
    assert result["sharpness"] == pytest.approx(np.mean(result["loss"] - result["centre_loss"]))
    for key, value in model.state_dict().items():  # weights and BN statistics untouched
        assert torch.equal(value, before[key]), key
    assert not model.training


def test_grid_and_samples_are_fixed():
    assert grid_coordinates(3, 1.0).tolist() == [-1.0, 0.0, 1.0]
    assert grid_coordinates(51, 1.0)[25] == 0.0
    a, b = landscape_samples(100, 10, seed=0), landscape_samples(100, 10, seed=0)
    assert torch.equal(a, b) and len(set(a.tolist())) == 10 and a.max() < 100
    assert not torch.equal(a, landscape_samples(100, 10, seed=1))
    assert len(landscape_samples(5, 10, seed=0)) == 5


def _infinity_to_one_norm(weight):
    signs = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=weight.shape[1])),
                         dtype=torch.float64)
    return (signs @ weight.double().T).abs().sum(dim=1).max().item()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lipschitz_of_a_linear_map_is_its_operator_norm_from_below(seed):
    torch.manual_seed(seed)
    linear = nn.Linear(10, 4, bias=False)
    exact = _infinity_to_one_norm(linear.weight.detach())
    x = torch.full((24, 10), 0.5)  # eps 0.1 keeps the ball inside [0, 1]
    estimates = local_lipschitz(linear, x, eps=0.1, steps=10, step_size=0.03, restarts=8,
                                batch_size=10, seed=seed)
    assert estimates.shape == (24,)
    assert estimates.max().item() <= exact * (1 + 1e-5)  # a real pair of points: never above
    assert estimates.mean().item() >= 0.9 * exact  # ascent gets close
    one = local_lipschitz(linear, x, eps=0.1, steps=10, step_size=0.03, seed=seed)
    assert (one <= exact * (1 + 1e-5)).all() and one.mean() > 0.7 * exact


def test_lipschitz_respects_the_image_box():
    """From a black image x' can only brighten: for f(x) = w.x with w = (1 x6, -1 x6) the
    ratio is then at most 6, half the unconstrained bound ||w||_1 = 12."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 1, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0] * 6 + [-1.0] * 6]))
    x = torch.zeros(8, 3, 2, 2, dtype=torch.uint8)
    estimates = local_lipschitz(model, x, eps=8 / 255, steps=5, step_size=2 / 255, seed=0)
    assert (estimates <= 6.0 * (1 + 1e-4)).all()
    assert estimates.mean() > 0.9 * 6.0


def _write_model_files(tmp_path, arch, method, ratio, sharp, lip, dataset="digits",
                       trained_ratio=None):
    """A model's three analysis files; ``trained_ratio``: the trained-only sparsity of its
    8 trained weights out of 10 (None: a report from before trained-only numbers)."""
    model_dir = tmp_path / dataset / arch / method
    every = {"weights": 10, "max_abs": 1.0, "sparse": round(10 * ratio), "ratio": ratio,
             "histogram": {"range": [-1.0, 1.0], "counts": [1, 4, 4, 1]}}
    empty = {"weights": 0, "max_abs": None, "sparse": 0, "ratio": None, "histogram": None}
    known = trained_ratio is not None
    if known:
        every.update(weights_trained=8, max_abs_trained=0.5,
                     sparse_trained=round(8 * trained_ratio), ratio_trained=trained_ratio,
                     histogram_trained={"range": [-0.5, 0.5], "counts": [1, 3, 3, 1]},
                     untrained_share=0.2)
        empty.update({f"{k}_trained": v for k, v in empty.items()}, untrained_share=None)
    report = {"dataset": dataset, "arch": arch, "method": method, "threshold": 0.01,
              "bins": 4, "components": {"all": every, **{c: dict(empty) for c in COMPONENTS}}}
    if known:
        report["untrained_known"] = True
    write_json(report, model_dir / "sparsity.json")
    coords = grid_coordinates(3, 1.0)
    loss = np.full((3, 3), 1.0 + sharp * 9 / 8)
    loss[1, 1] = 1.0
    save_landscape({"coords": coords, "loss": loss, "centre_loss": 1.0, "sharpness": sharp,
                    "samples": 8}, str(model_dir / "landscape.npz"),
                   dataset=dataset, arch=arch, method=method)
    write_json({"dataset": dataset, "arch": arch, "method": method, "samples": 8, "eps": 0.03,
                "steps": 5, "step_size": 0.01, "restarts": 1, "seed": 0, "lipschitz": lip,
                "lipschitz_std": 0.0, "lipschitz_median": lip}, model_dir / "lipschitz.json")
    return model_dir


def test_tables_and_figures(tmp_path):
    from robustarch.report.figures import (
        figure1,
        figure2,
        figure4,
        sparsity_scatter,
        spearman,
    )

    specs = [("resnet", 0.05, 3.0, 90.0, 0.29), ("pvtv2", 0.28, 0.2, 50.0, 0.47),
             ("coatnet", 0.10, 5.0, 99.0, 0.31)]
    dirs = [_write_model_files(tmp_path, a, "pgd_linf", r, s, lip, trained_ratio=r / 2)
            for a, r, s, lip, _ in specs[:2]]
    # CoAtNet's report predates the trained-only numbers
    dirs.append(_write_model_files(tmp_path, specs[2][0], "pgd_linf", *specs[2][1:4]))
    dirs.append(_write_model_files(tmp_path, "resnet", "vanilla", 0.04, 7.0, 900.0))
    sparsity = sparsity_frame([d / "sparsity.json" for d in dirs])
    assert sparsity["component"].tolist()[:6] == ["all", *COMPONENTS]
    first, old = sparsity.iloc[0], sparsity.iloc[12]
    assert (first["weights"], first["sparse"], first["sparsity"]) == (10, 0, 0.05)
    assert (first["weights_trained"], first["sparse_trained"]) == (8, 0)
    assert first["sparsity_trained"] == pytest.approx(0.025)
    assert first["untrained_share"] == pytest.approx(0.2) and first["untrained_known"]
    assert old["arch"] == "coatnet" and not old["untrained_known"]  # unknown: all trained
    assert old[["weights_trained", "sparse_trained", "sparsity_trained", "untrained_share"]
               ].tolist() == [10, 1, pytest.approx(0.10), 0.0]
    landscape = landscape_frame([d / "landscape.npz" for d in dirs])
    assert landscape.loc[0, "sharpness"] == pytest.approx(3.0)
    assert landscape.loc[0, "max_increase"] == pytest.approx(3.0 * 9 / 8)
    assert landscape.loc[0, ["grid", "samples"]].tolist() == [3, 8]
    lipschitz = lipschitz_frame([d / "lipschitz.json" for d in dirs])
    summaries = [{"dataset": "digits", "arch": a, "method": "pgd_linf", "worst_case": w}
                 for a, *_, w in specs]
    models = [(a, "pgd_linf") for a, *_ in specs]
    frame = analysis_frame(models, sparsity=sparsity, landscape=landscape, lipschitz=lipschitz,
                           summaries=summaries, dataset="digits",
                           categories={"resnet": "CNN", "pvtv2": "Hybrid", "coatnet": "Hybrid"})
    assert frame["architecture"].tolist() == ["ResNet", "PVTv2", "CoAtNet"]
    row = frame.iloc[1]
    assert row["sparsity"] == pytest.approx(28.0) and row["worst_case"] == pytest.approx(47.0)
    assert row["sparsity_trained"] == pytest.approx(14.0)
    assert row["sharpness"] == pytest.approx(0.2) and row["lipschitz"] == pytest.approx(50.0)
    tex, csv = tmp_path / "table_analysis.tex", tmp_path / "table_analysis.csv"
    write_analysis_table(frame, tex, csv, caption="Analysis")
    text = tex.read_text()
    assert "Sparsity (\\%)" in text and "Worst-case (\\%)" in text and "Method" not in text
    assert "Sparsity, trained (\\%)" in text
    assert "28.00" in text and "47.00" in text
    assert pd.read_csv(csv)["arch"].tolist() == ["resnet", "pvtv2", "coatnet"]

    assert spearman([1, 2, 3, 4], [10, 20, 25, 40])[0] == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1])[0] == pytest.approx(-1.0)
    assert np.isnan(spearman([1, 2], [1, 2])[0])
    rho, _ = sparsity_scatter(pd.read_csv(csv), tmp_path / "scatter.pdf")
    assert rho == pytest.approx(1.0)  # sparsity and worst case both rank (1, 3, 2)
    reports = [json.loads((d / "sparsity.json").read_text()) for d in dirs]
    figure1(reports[:3], tmp_path / "f1.pdf")
    figure2(reports[2:3], tmp_path / "f2.pdf")  # a report from before trained-only numbers
    figure2(reports[1:2], tmp_path / "f2_trained.pdf")
    landscapes = {(a, m): load_landscape(tmp_path / "digits" / a / m / "landscape.npz")
                  for a, m in [("resnet", "pgd_linf"), ("resnet", "vanilla")]}
    figure4(landscapes, ["resnet"], ["vanilla", "pgd_linf"], tmp_path / "f4.pdf")
    for name in ("scatter.pdf", "f1.pdf", "f2.pdf", "f2_trained.pdf", "f4.pdf"):
        assert (tmp_path / name).read_bytes()[:4] == b"%PDF"
