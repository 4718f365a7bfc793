"""The reproduction scorecard (robustarch.report.statistics, robustarch.report.scorecard, rule
scorecard), on constructed per-sample outcomes: no training.

The statistics: intervals cover at their nominal rate, McNemar's test finds a known difference
and calls identical models undecided, the bootstrap is paired. The findings: each one's verdict
on small constructed inputs, "not run" when its inputs are missing. The rule's job end to end on
a tiny results folder, the paper's own numbers passing the paper's findings, and the plan.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from robustarch.evaluate.merge import summarize
from robustarch.models.catalog import list_models, model_info
from robustarch.report import scorecard as sc
from robustarch.report import statistics as st
from robustarch.report.jobs import write_scorecard
from robustarch.report.paper import paper_table

REPO = Path(__file__).resolve().parents[1]
CATEGORIES = {a: model_info(a).category for a in list_models()}
NORMS = {"pgd_linf": "linf", "aa_linf": "linf", "pgd_l2": "l2", "pgd_l1": "l1",
         "pgd_linf_es": "linf", "pgd_l2_es": "l2", "pgd_l1_sparse": "l1"}
PAPER_ATTACKS = ["pgd_linf", "pgd_l2", "pgd_l1", "aa_linf"]
FAST = st.PairedBootstrap(samples=400, seed=0)


def _spec(**overrides) -> dict:
    spec = {"dataset": "digits", "architectures": [], "studies": {}, "corruptions": None,
            "analysis": {"dataset": "digits", "models": []}, "attack_norms": NORMS,
            "categories": CATEGORIES}
    spec.update(overrides)
    return spec


def _ctx(results: sc.Results, spec: dict, **frames) -> sc.Context:
    return sc.Context(spec, sc.Evidence(results, FAST), **frames)


def _nested(u: np.ndarray, p: float) -> np.ndarray:
    """Outcomes correct where the sample's difficulty u is below p: models and attacks are
    nested, as real ones nearly are (a hard sample is hard for every model)."""
    return (u < p).astype(float)


# --- statistics ------------------------------------------------------------------------------


def test_wilson_matches_scipy_and_clopper_pearson_is_wider():
    from scipy.stats import binomtest

    for k, n in [(0, 20), (3, 20), (17, 20), (20, 20), (240, 400)]:
        low, high = st.wilson_interval(k, n)
        ref = binomtest(k, n).proportion_ci(0.95, method="wilson")
        assert float(low) == pytest.approx(ref.low, abs=1e-12)
        assert float(high) == pytest.approx(ref.high, abs=1e-12)
        cp_low, cp_high = st.clopper_pearson_interval(k, n)
        exact = binomtest(k, n).proportion_ci(0.95, method="exact")
        assert float(cp_low) == pytest.approx(exact.low) and float(cp_high) == pytest.approx(
            exact.high)


@pytest.mark.parametrize("p, n", [(0.7, 400), (0.95, 100), (0.3, 60)])
def test_wilson_interval_covers_the_true_accuracy_at_its_nominal_rate(p, n):
    rng = np.random.default_rng(1)
    draws = rng.binomial(n, p, size=2000)
    low, high = st.wilson_interval(draws, n)
    coverage = np.mean((low <= p) & (p <= high))
    assert 0.93 <= coverage <= 0.975, coverage


def test_clopper_pearson_interval_covers_at_least_nominally():
    rng = np.random.default_rng(2)
    draws = rng.binomial(50, 0.9, size=2000)
    low, high = st.clopper_pearson_interval(draws, 50)
    assert np.mean((low <= 0.9) & (high >= 0.9)) >= 0.95


def test_mcnemar_detects_a_known_difference_and_the_verdict_holds():
    rng = np.random.default_rng(0)
    a = (rng.random(400) < 0.9).astype(float)
    b = (rng.random(400) < 0.6).astype(float)
    test = st.mcnemar(a, b)
    assert test.p_value < 1e-6 and not test.exact and test.a_only > test.b_only
    results = sc.Results()
    results.put(("d", "a", "m"), "clean", a)
    results.put(("d", "b", "m"), "clean", b)
    evidence = sc.Evidence(results, FAST)
    part = evidence.compare(("d", "a", "m"), ("d", "b", "m"), "clean", "A − B")
    assert part.verdict == st.HOLDS and part.ci[0] > 0.2 and part.n == 400
    # the opposite claim is contradicted
    reverse = evidence.compare(("d", "a", "m"), ("d", "b", "m"), "clean", "A − B", direction=-1)
    assert reverse.verdict == st.DOES_NOT_HOLD
    assert st.finding_verdict(st.with_holm([part])) == st.HOLDS


def test_identical_models_are_undecided():
    rng = np.random.default_rng(0)
    a = (rng.random(400) < 0.7).astype(float)
    results = sc.Results()
    for arch in ("a", "b", "c", "d"):
        results.put(("x", arch, "m"), "clean", a)
    evidence = sc.Evidence(results, FAST)
    part = evidence.compare(("x", "a", "m"), ("x", "b", "m"), "clean", "A − B")
    assert part.p_value == 1.0 and part.estimate == 0 and part.verdict == st.UNDECIDED
    group = evidence.contrast({("x", "a", "m"): 0.5, ("x", "b", "m"): 0.5,
                               ("x", "c", "m"): -0.5, ("x", "d", "m"): -0.5}, "clean", "G")
    assert group.p_value == 1.0 and group.verdict == st.UNDECIDED
    assert st.finding_verdict([part, group]) == st.UNDECIDED


def test_mcnemar_is_exact_for_few_discordant_pairs():
    a = np.array([1] * 6 + [0] * 1 + [1] * 50, dtype=float)
    b = np.array([0] * 6 + [1] * 1 + [1] * 50, dtype=float)
    test = st.mcnemar(a, b)
    assert test.exact and (test.a_only, test.b_only) == (6, 1)
    assert test.p_value == pytest.approx(2 * (1 + 7) / 128)  # two-sided binomial(7, 1/2)


def test_bootstrap_is_paired_and_its_p_value_is_consistent_with_its_interval():
    boot = st.PairedBootstrap(samples=500, seed=3)
    rng = np.random.default_rng(0)
    x = (rng.random(300) < 0.5).astype(float)
    twice = boot.means(np.stack([x, x]))
    assert np.array_equal(twice[:, 0], twice[:, 1])  # same indices for every row
    assert np.array_equal(boot.means(x[None]), boot.means(x[None]))  # and across calls
    assert st.bootstrap_p_value(twice[:, 0] - twice[:, 1]) == 1.0
    shifted = rng.normal(0.3, 0.1, size=2000)
    low, high = st.percentile_interval(shifted)
    assert low > 0 and st.bootstrap_p_value(shifted) < 0.05
    centred = rng.normal(0.0, 0.1, size=2000)
    assert st.percentile_interval(centred)[0] < 0 < st.percentile_interval(centred)[1]
    assert st.bootstrap_p_value(centred) > 0.05


def test_rank_correlation_rows_match_scipy():
    from scipy.stats import kendalltau, spearmanr

    rng = np.random.default_rng(0)
    rows = rng.integers(0, 5, size=(20, 7)).astype(float)  # with ties
    fixed = rng.random(7)
    for row, rho, tau in zip(rows, st.spearman_rows(rows, fixed), st.kendall_rows(rows, fixed),
                             strict=True):
        if np.ptp(row) == 0:
            assert rho == tau == 0
            continue
        assert rho == pytest.approx(spearmanr(row, fixed).statistic)
        assert tau == pytest.approx(kendalltau(row, fixed).statistic)
    first, second = rows[:10], rows[10:]
    for a, b, tau in zip(first, second, st.kendall_pairs(first, second), strict=True):
        expected = kendalltau(a, b).statistic
        assert tau == pytest.approx(0 if np.isnan(expected) else expected)


def _rho_interval_coverage(gap: float, paper: np.ndarray, reps: int = 150) -> tuple[float, float]:
    """Share of simulated evaluations (6 models, 400 samples each, true accuracies 0.4 + gap·i)
    whose bootstrap interval for ρ(ours, paper) covers ρ(true accuracies, paper); and the mean
    interval width."""
    rng = np.random.default_rng(7)
    truth = 0.4 + gap * np.arange(6)
    true_rho = st.spearman(truth, paper)
    boot = st.PairedBootstrap(samples=400, seed=1)
    covered, widths = 0, []
    for _ in range(reps):
        outcomes = (rng.random((6, 400)) < truth[:, None]).astype(float)
        low, high = st.percentile_interval(st.spearman_rows(boot.means(outcomes), paper))
        covered += low - 1e-12 <= true_rho <= high + 1e-12
        widths.append(high - low)
    return covered / reps, float(np.mean(widths))


def test_bootstrap_interval_of_rho_covers_the_true_rho_when_the_ranking_is_resolved():
    """The interval resamples test samples with the paper's numbers fixed. When the models'
    accuracies differ by more than their sampling error (here 5 and 3 points at 400 samples,
    SE of a difference ≈ 3.5 points), it covers the true ρ at least at the nominal rate;
    when they nearly tie, ρ̂ is biased towards 0 (noise scrambles the ranking), the interval
    is wide and the scorecard says to read it as "not resolved" (no coverage is claimed)."""
    paper = np.array([1, 3, 2, 4, 6, 5], dtype=float)  # true ρ = 0.886
    assert _rho_interval_coverage(0.05, paper)[0] >= 0.95
    assert _rho_interval_coverage(0.03, paper)[0] >= 0.9
    coverage, width = _rho_interval_coverage(0.005, np.arange(6.0))  # true ρ = 1, near-ties
    assert width > 0.5  # the interval shows that the ranking is not resolved


def test_holm_and_the_verdict_rule():
    assert st.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    good = st.Part("a", 0.1, "t", p_value=0.001)
    weak = st.Part("b", 0.1, "t", p_value=0.2)
    bad = st.Part("c", -0.1, "t", p_value=0.001)
    assert st.finding_verdict(st.with_holm([good, good])) == st.HOLDS
    assert st.finding_verdict(st.with_holm([good, weak])) == st.UNDECIDED
    assert st.finding_verdict(st.with_holm([good, weak, bad])) == st.DOES_NOT_HOLD
    # a reversal significant alone but not after Holm over 3 parts is undecided
    marginal = st.Part("d", -0.1, "t", p_value=0.03)
    assert st.finding_verdict(st.with_holm([good, marginal, weak])) == st.UNDECIDED
    assert st.finding_verdict([st.Part("e", 0.1, "t", role="evidence")]) == st.NOT_RUN
    flat = st.Part("f", 0.0, "none", kind=st.SIGN)
    assert flat.verdict == st.UNDECIDED
    assert st.Part("g", -2.0, "none", kind=st.SIGN, direction=-1).verdict == st.HOLDS
    no_gain = dict(kind=st.NO_IMPROVEMENT, margin=0.01)
    assert st.Part("h", -0.02, "t", ci=(-0.03, -0.01), p_value=0.001, **no_gain).verdict \
        == st.HOLDS
    assert st.Part("i", 0.0, "t", ci=(-0.04, 0.04), p_value=1.0, **no_gain).verdict \
        == st.UNDECIDED
    assert st.Part("j", 0.03, "t", ci=(0.01, 0.05), p_value=0.001, **no_gain).verdict \
        == st.DOES_NOT_HOLD


# --- findings on constructed outcomes ------------------------------------------------------


N = 400
U = np.random.default_rng(11).random(N)  # shared sample difficulty


def _put_model(results: sc.Results, key, clean: float, attacks: dict[str, float] | None = None,
               *, strong_drop: float = 0.0) -> None:
    """A model's nested outcomes: clean, the paper's attacks, their worst case; the strong
    protocol's columns ``strong_drop`` lower."""
    results.put(key, "clean", _nested(U, clean))
    if not attacks:
        return
    for attack, p in attacks.items():
        results.put(key, attack, _nested(U, p))
    results.put(key, "worst_case", _nested(U, min(attacks.values())))
    for norm in sc.NORMS:
        worst = min(p for a, p in attacks.items() if NORMS[a] == norm)
        results.put(key, f"strong_{norm}", _nested(U, worst - strong_drop))
    results.put(key, "worst_case_all", _nested(U, min(attacks.values()) - strong_drop))


def _attacks(linf: float, l2: float, l1: float) -> dict[str, float]:
    return {"pgd_linf": linf, "aa_linf": linf - 0.05, "pgd_l2": l2, "pgd_l1": l1}


def test_f1_most_robust_holds_and_is_contradicted_by_a_stronger_resnet():
    results = sc.Results()
    archs = ["pvtv2", "coatnet", "vit", "resnet"]
    for arch, worst in zip(archs, [0.40, 0.38, 0.30, 0.20], strict=True):
        _put_model(results, ("digits", arch, "pgd_linf"), 0.8, _attacks(0.6, worst, worst + .1))
    finding = sc.finding_most_robust(_ctx(results, _spec(architectures=archs)))
    assert finding.verdict("paper") == finding.verdict("strong") == st.HOLDS
    assert len(finding.parts["paper"]) == 4  # PVTv2 and CoAtNet vs ViT and ResNet
    _put_model(results, ("digits", "resnet", "pgd_linf"), 0.8, _attacks(0.6, 0.5, 0.6))
    assert sc.finding_most_robust(_ctx(results, _spec(architectures=archs))).verdict(
        "paper") == st.DOES_NOT_HOLD


def test_f2_cnns_win_linf_and_lose_l2_l1():
    results = sc.Results()
    archs = ["vgg", "resnet", "vit", "mlpmixer"]
    for arch in archs:
        cnn = CATEGORIES[arch] == "CNN"
        _put_model(results, ("digits", arch, "pgd_linf"), 0.8,
                   _attacks(0.6 if cnn else 0.5, 0.2 if cnn else 0.35, 0.15 if cnn else 0.3))
    finding = sc.finding_cnn_vs_transformer(_ctx(results, _spec(architectures=archs)))
    assert finding.verdict("paper") == st.HOLDS and finding.verdict("strong") == st.HOLDS
    assert [p.direction for p in finding.parts["paper"]] == [1, 1, -1, -1]
    # no Transformer run: not run, not an error
    assert sc.finding_cnn_vs_transformer(_ctx(results, _spec(architectures=["vgg"]))).verdict(
        "paper") == st.NOT_RUN


def test_f3_coatnet_layouts():
    results = sc.Results()
    layouts = {"coatnet": 0.40, "coatnet-CCTC": 0.33, "coatnet-CCCC": 0.25, "coatnet-CTTT": 0.36}
    for arch, worst in layouts.items():
        _put_model(results, ("digits", arch, "pgd_linf"), 0.8, _attacks(0.6, worst, 0.5))
    study = {"coatnet_layouts": {"dataset": "digits", "methods": ["pgd_linf"],
                                 "architectures": list(layouts)}}
    finding = sc.finding_coatnet_layouts(_ctx(results, _spec(studies=study)))
    assert finding.verdict("paper") == st.HOLDS, finding.parts["paper"]
    trend = finding.parts["paper"][0]
    assert trend.unit == "" and trend.estimate > 0.7
    study["coatnet_layouts"]["architectures"] = ["coatnet-CCCC", "coatnet-CCTC"]
    assert sc.finding_coatnet_layouts(_ctx(results, _spec(studies=study))).verdict(
        "paper") == st.NOT_RUN  # no CCTT


def test_f4_patch_size_compares_smallest_with_largest():
    results = sc.Results()
    _put_model(results, ("digits", "vit-p8", "pgd_linf"), 0.8, _attacks(0.5, 0.35, 0.4))
    _put_model(results, ("digits", "vit", "pgd_linf"), 0.8, _attacks(0.55, 0.33, 0.38))
    _put_model(results, ("digits", "vit-p2", "pgd_linf"), 0.8, _attacks(0.6, 0.25, 0.3))
    study = {"patch_size": {"dataset": "digits", "methods": ["pgd_linf"],
                            "architectures": ["vit-p8", "vit", "vit-p2"]}}
    finding = sc.finding_patch_size(_ctx(results, _spec(studies=study)))
    assert finding.verdict("paper") == st.HOLDS
    assert all("p2 − p8" in p.description for p in finding.parts["paper"])
    assert sc.finding_patch_size(_ctx(results, _spec())).verdict("strong") == st.NOT_RUN


def test_f5_gelu_vs_relu():
    results = sc.Results()
    study = {"activation": {"dataset": "digits", "methods": ["pgd_linf"],
                            "architectures": ["vit", "swin"]}}
    for arch in ("vit", "swin"):
        _put_model(results, ("digits", arch, "pgd_linf"), 0.8, _attacks(0.5, 0.3, 0.3))
        _put_model(results, ("digits", f"{arch}-relu", "pgd_linf"), 0.8, _attacks(0.5, 0.3, 0.3))
    # identical GELU and ReLU models: "no improvement" holds (the interval is [0, 0])
    assert sc.finding_activation(_ctx(results, _spec(studies=study))).verdict("paper") \
        == st.HOLDS
    for arch in ("vit", "swin"):  # GELU far better: the claim does not hold
        _put_model(results, ("digits", arch, "pgd_linf"), 0.8, _attacks(0.6, 0.45, 0.45))
    finding = sc.finding_activation(_ctx(results, _spec(studies=study)))
    assert finding.verdict("paper") == st.DOES_NOT_HOLD
    assert [p.role for p in finding.parts["paper"]] == ["test", "evidence", "evidence"]


def test_f6_trades_rank_agreement_needs_three_architectures():
    results = sc.Results()
    archs = ["vit", "resnet", "vgg", "pvtv2"]
    for i, arch in enumerate(archs):
        worst = 0.2 + 0.07 * i
        _put_model(results, ("digits", arch, "pgd_linf"), 0.8 - 0.05 * i,
                   _attacks(0.4 + 0.05 * i, worst, worst + 0.05))
        _put_model(results, ("digits", arch, "trades"), 0.75 - 0.05 * i,
                   _attacks(0.38 + 0.05 * i, worst - 0.02, worst + 0.03))
    study = {"trades": {"dataset": "digits", "architectures": archs}}
    finding = sc.finding_trades(_ctx(results, _spec(studies=study)))
    assert finding.verdict("paper") == st.HOLDS == finding.verdict("strong")
    assert all(p.estimate == 1.0 for p in finding.parts["paper"])
    study["trades"]["architectures"] = archs[:2]
    skipped = sc.finding_trades(_ctx(results, _spec(studies=study)))
    assert skipped.verdict("paper") == st.NOT_RUN and "at least 3" in skipped.not_run["paper"]


def test_f7_l1_penalty():
    results = sc.Results()
    _put_model(results, ("digits", "resnet", "pgd_linf"), 0.85, _attacks(0.5, 0.25, 0.3))
    _put_model(results, ("digits", "resnet", "pgd_linf_l1-0.0001"), 0.75,
               _attacks(0.5, 0.35, 0.4))
    study = {"l1_penalty": {"dataset": "digits", "architecture": "resnet",
                            "lambdas": [0, 1.0e-4]}}
    finding = sc.finding_l1_penalty(_ctx(results, _spec(studies=study)))
    assert finding.verdict("paper") == st.HOLDS
    tested = [p for p in finding.parts["paper"] if p.role == "test"]
    assert [p.direction for p in tested] == [1, -1]


def _sparsity_frame(rows: list[tuple[str, str, float]], column: str = "sparsity"
                    ) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": "digits", "arch": a, "method": "pgd_linf",
                          "component": c, "weights": 10000, "max_abs": 1.0,
                          "sparse": int(round(v * 10000)), column: v}
                         for a, c, v in rows])


def test_f8_sparsity_groups_and_correlation():
    results = sc.Results()
    archs = {"vit": 0.30, "mlpmixer": 0.25, "swin": 0.28, "poolformer": 0.22, "vgg": 0.05,
             "resnet": 0.08, "densenet": 0.04, "wideresnet": 0.06}
    rows = []
    for arch, sparsity in archs.items():
        _put_model(results, ("digits", arch, "pgd_linf"), 0.8,
                   _attacks(0.5, 0.1 + sparsity, 0.2 + sparsity))
        rows.append((arch, "all", sparsity))
    spec = _spec(analysis={"dataset": "digits", "models": [[a, "pgd_linf"] for a in archs]})
    finding = sc.finding_sparsity(_ctx(results, spec, sparsity=_sparsity_frame(rows)))
    assert finding.verdict("paper") == st.HOLDS, finding.parts["paper"]
    mann, rho = finding.parts["paper"]
    assert mann.p_value == pytest.approx(2 / 70)  # exact U: 4 vs 4, fully separated
    assert rho.estimate == pytest.approx(1.0) and rho.p_value < 0.05


def test_f8_is_undecided_with_too_few_architectures_and_uses_trained_sparsity():
    results = sc.Results()
    archs = {"vit": 0.30, "vgg": 0.05, "resnet": 0.08}
    for arch in archs:
        _put_model(results, ("digits", arch, "pgd_linf"), 0.8, _attacks(0.5, 0.3, 0.3))
    frame = _sparsity_frame([(a, "all", s) for a, s in archs.items()])
    frame["sparsity_trained"] = frame["sparsity"]
    spec = _spec(analysis={"dataset": "digits", "models": [[a, "pgd_linf"] for a in archs]})
    finding = sc.finding_sparsity(_ctx(results, spec, sparsity=frame))
    # 1 Transformer vs 2 CNNs: the exact U test cannot reach α (its smallest p is 2/3)
    assert finding.parts["paper"][0].p_value == pytest.approx(2 / 3)
    assert finding.verdict("paper") == st.UNDECIDED
    assert "sparsity column: sparsity_trained" in finding.evidence["paper"]


def test_f9_coatnet_components():
    frame = _sparsity_frame([("coatnet", "conv", 0.02), ("coatnet", "qkv", 0.30),
                             ("coatnet", "ffn", 0.10), ("coatnet-CCCC", "conv", 0.02),
                             ("coatnet-CCCC", "ffn", 0.10)])
    spec = _spec(analysis={"dataset": "digits", "models": [["coatnet", "pgd_linf"]]})
    finding = sc.finding_coatnet_components(_ctx(sc.Results(), spec, sparsity=frame))
    assert finding.verdict("paper") == st.HOLDS == finding.verdict("strong")
    assert len(finding.parts["paper"]) == 3  # CCCC has no QKV weights: left out, said so
    assert any("CCCC" in line for line in finding.evidence["paper"])
    swapped = frame.assign(sparse=frame["sparse"].where(frame["component"] != "conv", 5000),
                           sparsity=frame["sparsity"].where(frame["component"] != "conv", 0.5))
    assert sc.finding_coatnet_components(_ctx(sc.Results(), spec, sparsity=swapped)).verdict(
        "paper") == st.DOES_NOT_HOLD


def test_f10_landscape_signs():
    frame = pd.DataFrame([{"dataset": "digits", "arch": a, "method": m, "sharpness": s}
                          for a, m, s in [("resnet", "vanilla", 0.1), ("resnet", "pgd_linf", 0.5),
                                          ("pvtv2", "vanilla", 0.4), ("pvtv2", "pgd_linf", 0.2)]])
    finding = sc.finding_landscape(_ctx(sc.Results(), _spec(), landscape=frame))
    assert finding.verdict("paper") == st.HOLDS == finding.verdict("strong")
    frame.loc[3, "sharpness"] = 0.9
    assert sc.finding_landscape(_ctx(sc.Results(), _spec(), landscape=frame)).verdict(
        "strong") == st.DOES_NOT_HOLD
    missing = sc.finding_landscape(_ctx(sc.Results(), _spec(), landscape=frame.iloc[:2]))
    assert missing.verdict("paper") == st.NOT_RUN and "PVTv2" in missing.not_run["paper"]


def test_f11_corruptions():
    results = sc.Results()
    for arch, (drop, c_drop) in {"resnet": (0.05, 0.03), "vgg": (0.06, 0.04),
                                 "vit": (0.15, 0.12)}.items():
        key = ("digits", arch, "vanilla")
        results.put(key, "clean", _nested(U, 0.95))
        results.put(key, "corruptions", _nested(U, 0.85) * 0.75 + _nested(U, 0.9) * 0.25)
        key = ("digits", arch, "pgd_linf")
        results.put(key, "clean", _nested(U, 0.95 - drop))
        results.put(key, "corruptions", _nested(U, 0.85 - c_drop) * 0.75
                    + _nested(U, 0.9 - c_drop) * 0.25)
    spec = _spec(corruptions={"datasets": ["digits"], "architectures": ["resnet", "vgg", "vit"],
                              "methods": ["vanilla", "pgd_linf"]})
    finding = sc.finding_corruptions(_ctx(results, spec))
    assert finding.verdict("paper") == st.HOLDS and finding.dataset == "digits"
    cell = sc.Evidence(results, FAST).cell(("digits", "vit", "vanilla"), "corruptions")
    assert cell["interval"] == "bootstrap" and cell["low"] < cell["estimate"] < cell["high"]


def test_every_finding_is_not_run_without_inputs():
    spec = _spec(architectures=["resnet", "vit"],
                 studies={"coatnet_layouts": {"dataset": "digits", "methods": ["pgd_linf"],
                                              "architectures": ["coatnet"]},
                          "trades": {"dataset": "digits", "architectures": ["resnet"]},
                          "l1_penalty": {"dataset": "digits", "architecture": "resnet",
                                         "lambdas": [0, 1e-4]}},
                 corruptions={"datasets": ["digits"], "architectures": ["resnet"],
                              "methods": ["vanilla", "pgd_linf"]})
    card = sc.build_scorecard(spec, sc.Results(), bootstrap=FAST)
    assert [f.id for f in card.findings] == [f"F{i}" for i in range(1, 12)]
    for finding in card.findings:
        for protocol in ("paper", "strong"):
            assert finding.verdict(protocol) == st.NOT_RUN
            assert finding.not_run[protocol].startswith("not run")
    text = sc.to_markdown(card)
    assert text.count("not run") >= 22 and "## Cell by cell" in text


# --- the rule's job, end to end --------------------------------------------------------------


def _write_model(root: Path, dataset: str, arch: str, method: str, u: np.ndarray,
                 labels: np.ndarray, accuracy: dict[str, float], *,
                 corruptions: float | None = None) -> dict:
    """Outcome files and summary.json (made by the merge step's own code) of one model."""
    folder = root / "results" / dataset / arch / method
    (folder / "eval").mkdir(parents=True, exist_ok=True)
    frames = {}
    for attack, p in accuracy.items():
        correct = u < p
        frame = pd.DataFrame({"index": np.arange(len(u)), "label": labels,
                              "prediction": np.where(correct, labels, (labels + 1) % 10),
                              "correct": correct})
        frame.to_parquet(folder / "eval" / f"{attack}.parquet")
        frames[attack] = frame
    summary = {"dataset": dataset, "arch": arch, "method": method,
               **summarize(frames, PAPER_ATTACKS)}
    (folder / "summary.json").write_text(json.dumps(summary))
    if corruptions is not None:
        rows = [pd.DataFrame({"corruption": c, "severity": s, "index": np.arange(len(u)),
                              "label": labels, "prediction": labels,
                              "correct": u < corruptions - 0.02 * s})
                for c in ("gaussian_noise", "frost") for s in (1, 2)]
        pd.concat(rows).to_parquet(folder / "eval" / "corruptions.parquet")
    return summary


def _demo_like_run(root: Path, n: int = 120) -> dict:
    """A results folder shaped as the demo's (digits, a few of each study), and the spec."""
    rng = np.random.default_rng(5)
    u, labels = rng.random(n), rng.integers(0, 10, n)
    archs = ["vit", "mlpmixer", "pvtv2", "coatnet", "vgg", "resnet"]
    robust = {"vit": 0.30, "mlpmixer": 0.28, "pvtv2": 0.45, "coatnet": 0.42, "vgg": 0.2,
              "resnet": 0.15, "coatnet-CCCC": 0.3, "vit-p8": 0.32, "vit-relu": 0.31}

    def at(worst):
        return {"clean": worst + 0.4, "pgd_linf": worst + 0.2, "pgd_l2": worst + 0.05,
                "pgd_l1": worst + 0.1, "aa_linf": worst + 0.15, "pgd_linf_es": worst + 0.18,
                "pgd_l2_es": worst + 0.02, "pgd_l1_sparse": worst - 0.05}

    for arch in archs:
        _write_model(root, "digits", arch, "vanilla", u, labels, {"clean": 0.9},
                     corruptions=0.8 if arch in ("vit", "resnet") else None)
        _write_model(root, "digits", arch, "pgd_linf", u, labels, at(robust[arch]),
                     corruptions=0.6 if arch in ("vit", "resnet") else None)
    for arch in ("coatnet-CCCC", "vit-p8", "vit-relu"):
        _write_model(root, "digits", arch, "pgd_linf", u, labels, at(robust[arch]))
    for arch in ("resnet", "vgg", "vit"):
        _write_model(root, "digits", arch, "trades", u, labels, at(robust[arch] - 0.02))
    _write_model(root, "digits", "resnet", "pgd_linf_l1-0.0001", u, labels, at(0.2))
    components = pd.DataFrame([
        {"dataset": "digits", "arch": a, "method": "pgd_linf", "component": c, "weights": w,
         "max_abs": 1.0, "sparse": int(s * w), "sparsity": s}
        for a, c, w, s in [("vit", "all", 1000, 0.3), ("pvtv2", "all", 1000, 0.35),
                           ("coatnet", "all", 1000, 0.33), ("vgg", "all", 1000, 0.1),
                           ("resnet", "all", 1000, 0.05), ("coatnet", "conv", 400, 0.05),
                           ("coatnet", "qkv", 300, 0.4), ("coatnet", "ffn", 300, 0.2)]])
    components.to_csv(root / "results" / "sparsity.csv", index=False)
    pd.DataFrame([{"dataset": "digits", "arch": a, "method": m, "samples": 64, "grid": 5,
                   "radius": 1.0, "centre_loss": 0.5, "sharpness": s, "max_increase": 2 * s}
                  for a, m, s in [("resnet", "vanilla", 0.2), ("resnet", "pgd_linf", 0.4),
                                  ("pvtv2", "vanilla", 0.5), ("pvtv2", "pgd_linf", 0.3)]]
                 ).to_csv(root / "results" / "landscape.csv", index=False)
    studies = {
        "coatnet_layouts": {"dataset": "digits", "methods": ["pgd_linf"],
                            "architectures": ["coatnet", "coatnet-CCCC"]},
        "patch_size": {"dataset": "digits", "methods": ["pgd_linf"],
                       "architectures": ["vit-p8", "vit"]},
        "activation": {"dataset": "digits", "methods": ["pgd_linf"], "architectures": ["vit"]},
        "l1_penalty": {"dataset": "digits", "architecture": "resnet", "lambdas": [0, 1.0e-4]},
        "trades": {"dataset": "digits", "architectures": ["resnet", "vgg", "vit"]},
    }
    return _spec(architectures=archs, studies=studies,
                 corruptions={"datasets": ["digits"], "architectures": ["resnet", "vit"],
                              "methods": ["vanilla", "pgd_linf"]},
                 analysis={"dataset": "digits",
                           "models": [[a, "pgd_linf"] for a in ("vit", "pvtv2", "coatnet",
                                                                "vgg", "resnet")]})


def _compile(tex_body: str, folder: Path) -> subprocess.CompletedProcess:
    document = folder / "doc.tex"
    document.write_text("\\documentclass{article}\n\\usepackage{booktabs}\n"
                        "\\usepackage{amsmath}\n\\begin{document}\n\\input{scorecard.tex}\n"
                        "\\end{document}\n")
    (folder / "scorecard.tex").write_text(tex_body)
    return subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                           "doc.tex"], cwd=folder, capture_output=True, text=True, timeout=120)


def test_job_writes_the_scorecard_of_a_tiny_results_folder(tmp_path):
    spec = _demo_like_run(tmp_path)
    results = tmp_path / "results"
    summaries = sorted(results.glob("digits/*/*/summary.json"))
    outcomes = sorted(p for p in results.glob("digits/*/*/eval/*.parquet")
                      if p.name != "corruptions.parquet")
    corruptions = sorted(results.glob("digits/*/*/eval/corruptions.parquet"))
    lines = []
    write_scorecard(summaries=summaries, outcomes=outcomes, corruptions=corruptions,
                    sparsity=results / "sparsity.csv", landscape=results / "landscape.csv",
                    spec=spec, md=results / "scorecard.md", csv=results / "scorecard.csv",
                    tex=results / "scorecard.tex", log=lines.append)
    md = (results / "scorecard.md").read_text()
    for i in range(1, 12):
        assert f"### F{i}." in md
    for section in ("## Summary of verdicts", "## Findings", "## Rank correlations",
                    "## Cell by cell"):
        assert section in md
    assert "the paper's numbers are for CIFAR-10" in md  # digits: ours only, and it says so
    frame = pd.read_csv(results / "scorecard.csv")
    assert {"finding", "finding_part", "cell"} <= set(frame["section"])
    verdicts = frame[frame["section"] == "finding"]
    assert len(verdicts) == 22 and set(verdicts["protocol"]) == {"paper", "strong"}
    assert set(verdicts["verdict"]) <= {st.HOLDS, st.DOES_NOT_HOLD, st.UNDECIDED, st.NOT_RUN}
    by_id = verdicts.set_index(["finding", "protocol"])["verdict"]
    # constructed so that these hold: PVTv2/CoAtNet lead, landscape signs, components
    assert by_id[("F1", "paper")] == st.HOLDS
    assert by_id[("F9", "paper")] == by_id[("F9", "strong")] == st.HOLDS
    assert by_id[("F10", "paper")] == st.HOLDS
    # the paper protocol's worst case is the AND over the attacks summary.json lists
    cells = frame[(frame["section"] == "cell") & (frame["column"] == "worst_case")]
    resnet = cells[cells["row"] == "ResNet"].iloc[0]
    summary = json.loads((results / "digits/resnet/pgd_linf/summary.json").read_text())
    assert resnet["estimate"] == pytest.approx(100 * summary["worst_case"])
    assert resnet["ci_low"] < resnet["estimate"] < resnet["ci_high"]
    assert pd.isna(resnet["paper"])
    assert len(lines) == 1 and "F11" in lines[0]
    if shutil.which("pdflatex"):
        result = _compile((results / "scorecard.tex").read_text(), tmp_path)
        assert result.returncode == 0, result.stdout[-3000:]


def test_latex_escaping():
    assert sc.latex_escape("50% of a_b & c#1 {x} ~^\\") == (
        r"50\% of a\_b \& c\#1 \{x\} \textasciitilde{}\textasciicircum{}\textbackslash{}")
    assert sc.latex_escape("ρ ≥ 0, ℓ∞ − Δ") == r"$\rho$ $\geq$ 0, $\ell$$\infty$ $-$ $\Delta$"


def test_the_papers_own_numbers_pass_its_table1_findings():
    """Outcomes constructed to have exactly the paper's CIFAR-10 Table 1 accuracies (2000
    samples, nested): every cell matches within rounding, the rank correlations are 1, and
    the paper's Table 1 findings hold under its protocol."""
    paper = paper_table("table1_cifar10")
    names = {v: k for k, v in __import__("robustarch.report.names",
                                         fromlist=["PAPER_NAMES"]).PAPER_NAMES.items()}
    n = 2000
    u = (np.arange(n) + 0.5) / n
    results = sc.Results()
    archs = []
    for row in paper.to_dict("records"):
        arch = names[row["architecture"]]
        archs.append(arch)
        results.put(("cifar10", arch, "vanilla"), "clean", _nested(u, row["vanilla_acc"] / 100))
        _put = {a: row[a] / 100 for a in PAPER_ATTACKS}
        key = ("cifar10", arch, "pgd_linf")
        results.put(key, "clean", _nested(u, row["clean_acc"] / 100))
        for attack, p in _put.items():
            results.put(key, attack, _nested(u, p))
        results.put(key, "worst_case", _nested(u, row["worst_case"] / 100))
    card = sc.build_scorecard(_spec(dataset="cifar10", architectures=archs), results,
                              bootstrap=FAST)
    assert len(card.cells) == 20 * 7
    assert all(abs(c["difference"]) <= 0.05 and c["paper_in_ci"] for c in card.cells)
    for corr in card.correlations:
        if corr["column"] != "aa_linf":  # rounding to 1/2000 ties two architectures there
            assert corr["spearman"] == pytest.approx(1.0, abs=1e-3), corr
    by_id = {f.id: f for f in card.findings}
    assert by_id["F1"].verdict("paper") == st.HOLDS
    assert by_id["F2"].verdict("paper") == st.HOLDS
    assert by_id["F1"].verdict("strong") == st.NOT_RUN  # no strong attacks were constructed


# --- the plan -------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["paper", "demo"])
def test_the_scorecard_is_planned_by_default(tmp_path, profile):
    """`snakemake -n` plans exactly one scorecard job (a target of `all`), paper and demo."""
    for name in ["Snakefile", "config.yaml", "rules", "workflow", "envs", "report"]:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    extra = ["--configfile", str(REPO / "profiles/demo/config.yaml")] if profile == "demo" else []
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", *extra],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"^scorecard\s+1$", result.stdout, flags=re.MULTILINE), result.stdout[-2000:]
