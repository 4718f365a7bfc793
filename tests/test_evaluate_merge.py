import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from robustarch.evaluate import evaluate_attack, load_trained_model, write_outcomes
from robustarch.evaluate.merge import MisalignedOutcomesError, read_outcomes, summarize
from robustarch.models import create_model
from robustarch.train import save_trained_model, train_model


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    torch.manual_seed(0)
    settings = tiny_settings(epochs=3)
    model = create_model("resnet", 10, 32, "tiny", settings.mean, settings.std)
    tmp = tmp_path_factory.mktemp("trained")
    result = train_model(model, (digits["x_train"][:512], digits["y_train"][:512]),
                         (digits["x_test"][:100], digits["y_test"][:100]), settings,
                         checkpoint_dir=tmp / "ckpt", device=torch.device("cpu"),
                         log=lambda m: None)
    save_trained_model(tmp / "model.pt", result, settings)
    return tmp / "model.pt"


def test_model_file_roundtrip_and_per_sample_outcomes(trained, digits):
    model, meta = load_trained_model(trained)
    assert meta["arch"] == "resnet" and meta["resumed"] is False and not model.training
    x, y = digits["x_test"][:120], digits["y_test"][:120]
    clean = evaluate_attack(model, x, y, {"name": "clean", "kind": "clean"}, batch_size=50)
    assert list(clean.columns) == ["index", "label", "prediction", "correct"]
    assert clean["index"].tolist() == list(range(120))
    assert (clean["correct"] == (clean["prediction"] == clean["label"])).all()
    with torch.no_grad():
        direct = model(x.float() / 255).argmax(1)
    assert np.array_equal(clean["prediction"].to_numpy(), direct.numpy())
    attacked = evaluate_attack(
        model, x, y, {"name": "pgd_linf", "kind": "pgd", "norm": "linf", "eps": 8 / 255,
                      "steps": 5, "step_size": 2 / 255,
                      "random_start": True, "early_stop": True,
                      "algorithm": "robustarch"}, batch_size=50, seed=0)
    assert attacked["correct"].mean() < clean["correct"].mean()
    again = evaluate_attack(
        model, x, y, {"name": "pgd_linf", "kind": "pgd", "norm": "linf", "eps": 8 / 255,
                      "steps": 5, "step_size": 2 / 255,
                      "random_start": True, "early_stop": True,
                      "algorithm": "robustarch"}, batch_size=50, seed=0)
    assert attacked.equals(again)  # seeded random start: reproducible
    last_iterate = evaluate_attack(
        model, x, y, {"name": "pgd_linf", "kind": "pgd", "norm": "linf", "eps": 8 / 255,
                      "steps": 5, "step_size": 2 / 255, "random_start": True,
                      "early_stop": False, "algorithm": "robustarch"},
        batch_size=50, seed=0)
    # The default early stop scores each sample's first misclassified point: never weaker.
    assert not (attacked["correct"] & ~last_iterate["correct"]).any()


def test_loaded_model_is_frozen_and_channels_last_where_faster(trained, digits):
    model, _ = load_trained_model(trained)
    plain, _ = load_trained_model(trained, channels_last=False)
    assert not any(p.requires_grad for m in (model, plain) for p in m.parameters())
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)  # a CNN, on a CPU
    assert all(p.is_contiguous() for p in plain.parameters())
    x = digits["x_test"][:64].float() / 255
    with torch.no_grad():
        torch.testing.assert_close(model(x), plain(x), atol=1e-4, rtol=1e-4)


def test_batch_norms_are_folded_only_when_asked(trained, digits):
    """Weight analyses read the trained weights (the default); the attack and corruption
    evaluations fold the norms (evaluation.fold_batchnorm): the same function."""
    plain, _ = load_trained_model(trained)
    folded, _ = load_trained_model(trained, fold_batchnorm=True)
    norms = [m for m in plain.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert not any(p.requires_grad for p in folded.parameters())
    x = digits["x_test"][:64].float() / 255
    with torch.no_grad():
        torch.testing.assert_close(folded(x), plain(x), atol=1e-4, rtol=1e-4)


def test_corrupt_model_file_is_reported(tmp_path, trained):
    from robustarch.errors import CorruptFileError

    bad = tmp_path / "model.pt"
    bad.write_bytes(trained.read_bytes()[:1000])
    with pytest.raises(CorruptFileError, match="corrupt or incomplete.*Delete it"):
        load_trained_model(bad)


def _frame(correct, labels=None, index=None):
    n = len(correct)
    labels = np.zeros(n, dtype=np.int64) if labels is None else labels
    return pd.DataFrame({"index": np.arange(n) if index is None else index, "label": labels,
                         "prediction": np.where(correct, labels, labels + 1),
                         "correct": np.asarray(correct, dtype=bool)})


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 40).flatmap(
    lambda n: st.lists(st.lists(st.booleans(), min_size=n, max_size=n), min_size=1, max_size=5)))
def test_worst_case_never_exceeds_any_attack(outcomes):
    frames = {f"a{i}": _frame(c) for i, c in enumerate(outcomes)}
    summary = summarize(frames, worst_case=list(frames))
    assert summary["worst_case"] <= min(summary["accuracy"].values()) + 1e-12
    expected = np.logical_and.reduce([np.array(c) for c in outcomes]).mean()
    assert summary["worst_case"] == pytest.approx(expected)


def test_worst_case_uses_only_the_listed_attacks():
    frames = {"clean": _frame([1, 1, 0, 1]), "pgd": _frame([1, 0, 0, 1]),
              "aa": _frame([0, 1, 0, 1])}
    summary = summarize(frames, worst_case=["pgd", "aa", "not_evaluated"])
    assert summary["worst_case"] == 0.25 and summary["worst_case_attacks"] == ["pgd", "aa"]
    assert summary["accuracy"] == {"clean": 0.75, "pgd": 0.5, "aa": 0.5}
    assert summarize({"clean": frames["clean"]}, worst_case=["pgd"])["worst_case"] is None


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 40).flatmap(
    lambda n: st.lists(st.lists(st.booleans(), min_size=n, max_size=n), min_size=2, max_size=6)),
    st.integers(1, 5))
def test_worst_case_all_covers_every_attack_run(outcomes, paper):
    """worst_case_all (every attack present, clean excluded) <= the paper's worst case <= every
    paper attack; and it equals Eq. 2 over all of them."""
    frames = {"clean": _frame([True] * len(outcomes[0]))}
    frames |= {f"a{i}": _frame(c) for i, c in enumerate(outcomes)}
    members = [f"a{i}" for i in range(min(paper, len(outcomes)))]
    summary = summarize(frames, worst_case=members)
    assert summary["worst_case_all_attacks"] == [f"a{i}" for i in range(len(outcomes))]
    assert summary["worst_case_all"] <= summary["worst_case"] + 1e-12
    assert summary["worst_case"] <= min(summary["accuracy"][a] for a in members) + 1e-12
    expected = np.logical_and.reduce([np.array(c) for c in outcomes]).mean()
    assert summary["worst_case_all"] == pytest.approx(expected)


def test_misaligned_files_are_refused(tmp_path):
    write_outcomes(_frame([1, 1, 0]), tmp_path / "clean.parquet")
    write_outcomes(_frame([1, 0]), tmp_path / "pgd.parquet")
    write_outcomes(_frame([1, 0, 1], labels=np.array([0, 0, 3])), tmp_path / "aa.parquet")
    paths = {a: tmp_path / f"{a}.parquet" for a in ("clean", "pgd", "aa")}
    frames = read_outcomes(paths)
    with pytest.raises(MisalignedOutcomesError, match=r"pgd\.parquet.*different test samples"):
        summarize({k: frames[k] for k in ("clean", "pgd")}, ["pgd"], sources=paths)
    with pytest.raises(MisalignedOutcomesError, match="different labels"):
        summarize({k: frames[k] for k in ("clean", "aa")}, ["aa"], sources=paths)


def test_rows_are_matched_by_sample_index_not_file_order(tmp_path):
    a = _frame([1, 0, 1], labels=np.array([4, 5, 6]))
    b = a.iloc[::-1].copy()
    write_outcomes(a, tmp_path / "a.parquet")
    write_outcomes(b, tmp_path / "b.parquet")
    frames = read_outcomes({"a": tmp_path / "a.parquet", "b": tmp_path / "b.parquet"})
    assert summarize(frames, ["a", "b"])["worst_case"] == pytest.approx(2 / 3)


def test_paper_algorithms_evaluate_as_the_library_attacks_compute(trained, digits):
    """evaluate_attack with a paper-protocol PGD gives the labels paper_pgd finds, batch by
    batch from one seeded generator."""
    from robustarch.attacks import paper_pgd

    model, _ = load_trained_model(trained)
    x, y = digits["x_test"][:40], digits["y_test"][:40]
    for norm, eps, algorithm in (("linf", 8 / 255, "foolbox"), ("l1", 10.0, "art_1_16")):
        settings = {"name": f"pgd_{norm}", "kind": "pgd", "norm": norm, "eps": eps, "steps": 3,
                    "step_size": 0.075 * eps, "random_start": True, "early_stop": False,
                    "algorithm": algorithm}
        frame = evaluate_attack(model, x, y, settings, batch_size=40, seed=3)
        generator = torch.Generator().manual_seed(3)
        _, expected = paper_pgd(model, x.float() / 255, y, norm=norm, eps=eps, steps=3,
                                step_size=0.075 * eps, generator=generator,
                                return_predictions=True)
        assert frame["prediction"].tolist() == expected.tolist()


def test_merging_imports_no_torch():
    """Rule merge_outcomes runs once per model: without torch its job starts in a second less."""
    code = ("import sys, robustarch.evaluate.merge, robustarch.workflow; "
            "print('torch imported:', 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "torch imported: False" in result.stdout
