"""The cost model: FLOP counts (robustarch.models.flops) against multiply-adds counted by hand
on two small networks, the job formulas (robustarch.workflow.costs) on those counts, and the
committed table (models/flops.json)."""

from __future__ import annotations

import json
import math
import shutil

import pandas as pd
import pytest
import torch
from torch import nn

from robustarch.models.flops import (
    FLOPS_PATH,
    SCALES,
    FlopCount,
    count_architecture,
    count_model,
    image_sizes,
    read_flops,
)
from robustarch.workflow.costs import (
    DEFAULT_THROUGHPUT,
    CostModel,
    FlopTable,
    allocations,
    paper_prior,
    runtime_minutes,
)

# --------------------------------------------------------------------------- hand counts

# An MLP on 3x4x4 images: Linear(48, 16), ReLU, Linear(16, 10).
MLP_MACS = (48 * 16, 16 * 10)
# A CNN on 3x8x8 images: Conv2d(3, 6, 3), depthwise Conv2d(6, 6, 3, groups=6), Linear(384, 10).
CNN_MACS = (6 * 3 * 9 * 64, 6 * 1 * 9 * 64, 6 * 64 * 10)


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.ReLU(), nn.Linear(16, 10))


def _cnn(device: str = "cpu") -> nn.Module:
    torch.manual_seed(0)
    with torch.device(device):
        return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(),
                             nn.Conv2d(6, 6, 3, padding=1, groups=6), nn.Flatten(),
                             nn.Linear(6 * 64, 10))


def _hand_counts(macs: tuple[int, ...]) -> tuple[int, int, int]:
    """2 FLOPs per multiply-add. Forward: every layer once. Attack step: the forward and every
    layer's input gradient (as many multiply-adds as its forward). Training step: the forward,
    every weight gradient, and the input gradients of all layers but the first (the images
    need none)."""
    forward = 2 * sum(macs)
    return forward, 2 * forward, 2 * forward + 2 * sum(macs[1:])


def test_counts_match_hand_counted_multiply_adds():
    mlp = _mlp()
    assert count_model(mlp, image_size=4) == _hand_counts(MLP_MACS)
    cnn = _cnn()
    assert count_model(cnn, image_size=8) == _hand_counts(CNN_MACS)
    assert count_model(_cnn("meta"), image_size=8, device="meta") == _hand_counts(CNN_MACS)
    # mode and gradients as they were
    assert cnn.training and all(p.grad is None for p in cnn.parameters())
    cnn.eval()
    count_model(cnn, image_size=8)
    assert not cnn.training and all(p.grad is None for p in cnn.parameters())


def test_grouped_convolution_backward_is_counted_per_group():
    """torch's own counter charges the depthwise weight gradient as an ungrouped one (6x)."""
    from torch.utils.flop_counter import FlopCounterMode

    cnn, x = _cnn(), torch.rand(2, 3, 8, 8)
    raw = FlopCounterMode(display=False)
    with raw:
        cnn(x).sum().backward()
    ours = count_model(cnn, image_size=8)[2]
    assert raw.get_total_flops() / 2 > ours  # what the fix removes
    assert ours == _hand_counts(CNN_MACS)[2]


def test_fused_cpu_attention_is_counted():
    """The CPU's fused attention kernel counts as the meta device's matrix products."""
    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Conv2d(3, 3, 1)

        def forward(self, x):
            q = self.proj(x).flatten(2).transpose(1, 2).unsqueeze(1)  # (B, 1, tokens, channels)
            return nn.functional.scaled_dot_product_attention(q, q, q).flatten(1)[:, :10]

    cpu = count_model(Attention(), image_size=8, device="cpu")
    with torch.device("meta"):
        meta = count_model(Attention(), image_size=8, device="meta")
    # the projection, then QK^T and PV: 2 x tokens^2 x channels multiply-adds
    assert cpu[0] == meta[0] == 2 * (3 * 3 * 64) + 2 * 2 * 64 * 64 * 3


# --------------------------------------------------------------------------- the job formulas


class _Counts:
    """A FlopTable of the hand-counted networks: resnet (a CNN) is the CNN, vit the MLP."""

    current = True

    def __init__(self):
        self.counts = {arch: FlopCount(arch, "paper", 32, *map(float, _hand_counts(macs)),
                                       device="cpu")
                       for arch, macs in (("resnet", CNN_MACS), ("vit", MLP_MACS))}

    def __call__(self, arch, scale, image_size):
        return self.counts[arch]


@pytest.fixture
def config(paper_config, schema):
    from robustarch.config import validate_config

    return validate_config(paper_config, schema)


@pytest.fixture
def costs(config, tmp_path):
    return CostModel(config, root=tmp_path, flops=_Counts())


def test_training_costs(costs):
    F, A, T = (float(v) for v in _hand_counts(CNN_MACS))
    epochs, n_train, n_test, steps = 100, 50_000, 10_000, 15  # config.yaml, CIFAR-10
    pgd = costs.train("cifar10", "resnet", "pgd_linf")
    assert pgd.flops == epochs * (n_train * (steps * A + T) + n_test * F)
    assert pgd.seconds == pgd.flops / DEFAULT_THROUGHPUT["fp32"]["CNN"]  # fp32, a CNN
    assert pgd.resumable
    assert costs.train("cifar10", "resnet", "vanilla").flops == epochs * (n_train * T + n_test * F)
    assert costs.train("cifar10", "resnet", "trades").flops == epochs * (
        n_train * (steps * A + F + 2 * T) + n_test * F)
    assert costs.train("cifar10", "resnet", "pgd_linf_l1-1e-05").flops == pgd.flops
    vit = costs.train("cifar10", "vit", "pgd_linf")
    F, A, T = (float(v) for v in _hand_counts(MLP_MACS))
    assert vit.flops == epochs * (n_train * (steps * A + T) + n_test * F)
    assert vit.seconds == vit.flops / DEFAULT_THROUGHPUT["fp32"]["Transformer"]


def test_evaluation_costs(costs):
    F, A, _ = (float(v) for v in _hand_counts(CNN_MACS))
    n = 10_000
    assert costs.evaluate("cifar10", "resnet", "pgd_linf", "clean").flops == n * F
    # The paper's ResNet (Table 1): clean 87.92, PGD-20 54.18, AA 45.40.
    c, pgd, aa = 0.8792, 54.18 / 87.92, 45.40 / 87.92
    # The strong protocol's PGD stops early: the samples broken leave halfway on average.
    got = costs.evaluate("cifar10", "resnet", "pgd_linf", "pgd_linf_es").flops
    assert got == pytest.approx(n * (F + 20 * c * (pgd + (1 - pgd) / 2) * A + c * pgd * F))
    # The paper's (foolbox) PGD scores the last iterate: every sample takes every step.
    last = costs.evaluate("cifar10", "resnet", "pgd_linf", "pgd_linf").flops
    assert last == pytest.approx(n * (20 * A + F))
    first = (pgd + aa) / 2
    apgd_ce = c * (3 * F + 101 * A + F)
    apgd_t = c * first * (3 * F + 101 * A + 2 * F) + 8 * c * aa * (101 * A + 2 * F)
    fab_t = c * aa * (3 * F + 100 * A + 103 * F) + 8 * c * aa * (100 * A + 103 * F)
    square = c * aa * (2 * F + 5001 * F)
    got = costs.evaluate("cifar10", "resnet", "pgd_linf", "aa_linf")
    assert got.flops == pytest.approx(n * (F + apgd_ce + apgd_t + fab_t + square))
    assert got.resumable
    vanilla = costs.evaluate("cifar10", "resnet", "vanilla", "aa_linf").flops
    assert vanilla == pytest.approx(n * (F + 0.956 * (4 * F + 101 * A)))  # all broken at once
    assert costs.evaluate_corruptions("cifar10", "resnet", "pgd_linf").flops == n * 15 * 5 * F
    assert costs.analyse_model("cifar10", "resnet", "pgd_linf").flops == (
        (51 ** 2 + 1) * 1000 * F + 500 * (F + 10 * A + F))
    assert costs.job("merge_outcomes", {"dataset": "cifar10"}) is None
    assert costs.job("evaluate", {"dataset": "cifar10", "arch": "resnet", "method": "pgd_linf",
                                  "attack": "aa_linf"}) == got


def test_paper_prior():
    prior = paper_prior("resnet", "autoattack", "linf", adversarial=True)
    assert prior.clean == pytest.approx(0.8792) and prior.final == pytest.approx(45.40 / 87.92)
    assert paper_prior("resnet", "pgd", "l2", True).final == pytest.approx(17.52 / 87.92)
    assert paper_prior("resnet", "autoattack", "l2", True).final == pytest.approx(17.52 / 87.92)
    assert paper_prior("coatnet-CCTC", "pgd", "linf", True).clean == pytest.approx(0.7954)
    unknown = paper_prior("vit-p8", "pgd", "linf", True)  # no row: the Table 1 mean
    assert 0.7 < unknown.clean < 0.85 and 0 < unknown.final < 1
    assert paper_prior("vit", "pgd", "linf", False).final == 0.0


def test_this_runs_files_replace_the_prior(costs, tmp_path):
    """metrics.csv (clean accuracy), checkpoints (epochs done), other models' outcomes (robust
    share) and the job's AutoAttack state (finished stages) are what the model uses."""
    F, A, _ = (float(v) for v in _hand_counts(CNN_MACS))
    n = 10_000
    model = tmp_path / "results/cifar10/resnet/pgd_linf"
    model.mkdir(parents=True)
    pd.DataFrame({"epoch": [1, 2], "test_clean_acc": [0.5, 0.6]}).to_csv(
        model / "metrics.csv", index=False)
    other = tmp_path / "results/cifar10/vgg/pgd_linf/eval"
    other.mkdir(parents=True)
    pd.DataFrame({"correct": [True] * 8 + [False] * 2}).to_parquet(other / "clean.parquet")
    pd.DataFrame({"correct": [True] * 4 + [False] * 6}).to_parquet(
        other / "pgd_linf_es.parquet")
    got = costs.evaluate("cifar10", "resnet", "pgd_linf", "pgd_linf_es").flops
    c, s = 0.6, 0.5  # best clean test accuracy; 4 of vgg's 8 clean-correct samples survive
    assert got == pytest.approx(n * (F + 20 * c * (s + (1 - s) / 2) * A + c * s * F))

    checkpoints = tmp_path / "checkpoints/cifar10/resnet/pgd_linf"
    checkpoints.mkdir(parents=True)
    (checkpoints / "epoch-0040.pt").write_bytes(b"")
    full = CostModel(costs.config, root=tmp_path / "elsewhere", flops=_Counts())
    assert costs.train("cifar10", "resnet", "pgd_linf").flops == pytest.approx(
        0.6 * full.train("cifar10", "resnet", "pgd_linf").flops)  # 60 of 100 epochs left

    # AutoAttack stopped after APGD-CE and APGD-T: only FAB-T and Square are left.
    broken = [0] * 2000 + [1] * 3000 + [2] * 500 + [-1] * 4500
    state = {"clean_done": True, "stage": 2, "next_batch": 0, "broken_at": broken,
             "config": {"batch_size": 500}}
    (checkpoints / "aa_linf.state").write_text(json.dumps(state))
    c, kept = 0.8, 4500 / 8000
    aa = min(45.40 / 87.92, kept)  # the prior's end, never above what is left
    fab_t = c * kept * (3 * F + 100 * A + 103 * F) + 8 * c * aa * (100 * A + 103 * F)
    square = c * aa * (2 * F + 5001 * F)
    got = costs.evaluate("cifar10", "resnet", "pgd_linf", "aa_linf").flops
    assert got == pytest.approx(n * (fab_t + square))


def test_requests_and_allocations():
    assert runtime_minutes(3600, safety=1.5, startup=10, cap=2880) == 100
    assert runtime_minutes(100 * 3600, safety=1.5, startup=10, cap=2880) == 2880
    assert runtime_minutes(60, safety=1.5, startup=10, cap=2880, floor=30) == 30
    assert allocations(3600, safety=1.5, startup=10, cap=2880) == 1
    # 100 GPU-hours x 1.5 = 9000 minutes; 2870 usable minutes per allocation
    assert allocations(100 * 3600, safety=1.5, startup=10, cap=2880) == math.ceil(9000 / 2870)


# --------------------------------------------------------------------------- the committed table


def test_committed_flop_table_is_current():
    """models/flops.json matches the model sources and holds every architecture at both
    scales and every dataset image size; if this fails, run
    `python -m robustarch.models.flops` and commit the file."""
    from robustarch.models import list_models

    table = read_flops()
    assert table is not None, "models/flops.json is stale: python -m robustarch.models.flops"
    assert set(table) == {(a, s, i) for a in list_models() for s in SCALES
                          for i in image_sizes()}
    for key in [("resnet", "tiny", 32), ("vit", "tiny", 32)]:
        assert table[key] == count_architecture(*key)


def test_flop_table_of_changed_sources_is_not_trusted_and_is_counted_live(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(FLOPS_PATH.parent, models, ignore=shutil.ignore_patterns("__pycache__"))
    assert read_flops(models / "flops.json") is not None
    (models / "families" / "newarch.py").write_text("# a new family module\n")
    assert read_flops(models / "flops.json") is None
    messages = []
    table = FlopTable(models / "flops.json", log=messages.append)
    assert not table.current
    assert table("resnet", "tiny", 32) == read_flops()[("resnet", "tiny", 32)]
    table("vit", "tiny", 32)
    assert len(messages) == 1 and "python -m robustarch.models.flops" in messages[0]


def test_class_count_barely_matters():
    """The counts are taken at 10 classes; 100 change a tiny ResNet's forward by < 1 %."""
    ten = count_architecture("resnet", "tiny", 32, num_classes=10)
    hundred = count_architecture("resnet", "tiny", 32, num_classes=100)
    assert 0 < hundred.forward / ten.forward - 1 < 0.01
