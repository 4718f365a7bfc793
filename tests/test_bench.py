"""The benchmark runner (robustarch.bench) and the evaluation batch-size cache, on tiny sizes."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from conftest import tiny_settings
from torch import nn

from robustarch.bench.conventional import ConventionalTrainer, conventional_pgd
from robustarch.bench.goals import check_goals
from robustarch.bench.markdown import render
from robustarch.bench.records import (
    Record,
    machine_info,
    results_document,
    speedup,
    versions,
    write_json,
)
from robustarch.bench.timing import interleaved
from robustarch.evaluate import batch_size as bs
from robustarch.models import create_model
from robustarch.settings import Adversary, PGDAlgorithm, PGDSettings


def _tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8 * 16 * 16, 10))


# --------------------------------------------------------------------------- records, ratio


def test_ratio_above_one_means_ours_is_faster():
    assert speedup(200.0, 100.0, "images/s") == 2.0  # throughput: ours / reference
    assert speedup(2.0, 10.0, "s") == 5.0  # duration: reference / ours
    assert speedup(50.0, 100.0, "images/s") < 1 < speedup(5.0, 10.0, "s")
    with pytest.raises(ValueError, match="unknown unit"):
        speedup(1.0, 1.0, "furlongs")


def test_record_from_samples_takes_medians_and_paired_ratios():
    record = Record.from_samples("attack_x", [10.0, 30.0, 20.0], [10.0, 10.0, 40.0], "images/s",
                                 batch_size=8)
    assert (record.ours, record.reference) == (20.0, 10.0)
    assert record.ratio == 2.0
    assert record.details["paired_ratio_median"] == 1.0  # rounds: 1.0, 3.0, 0.5
    assert record.details["batch_size"] == 8 and record.details["repeats"] == 3
    as_dict = record.to_dict()
    assert {"name", "ours", "reference", "unit", "ratio"} <= set(as_dict)
    assert as_dict["ratio"] == 2.0
    with pytest.raises(ValueError):  # rounds must pair up
        Record.from_samples("x", [1.0, 2.0], [1.0], "s")


def _document(gpu=None) -> dict:
    records = [
        Record.from_samples("train", [140.0, 150.0, 130.0], [100.0] * 3, "images/s",
                            arch="resnet", scale="tiny", dataset="digits", batch_size=128,
                            batches_per_round=2, pgd_steps=15, bf16="auto", channels_last=True,
                            reference_num_workers=0),
        Record.from_samples("attack_pgd_linf", [110.0], [100.0], "images/s",
                            reference="torchattacks PGD", batch_size=128, eps=8 / 255,
                            steps=20, clean_accuracy=0.9, ours_robust_accuracy=0.4,
                            reference_robust_accuracy=0.45),
        Record.from_samples("attack_pgd_l1", [110.0], [100.0], "images/s",
                            reference="ART", batch_size=128, eps=10.0, steps=20,
                            clean_accuracy=0.9, ours_robust_accuracy=0.2,
                            reference_robust_accuracy=0.3),
        Record.from_samples("attack_paper_pgd_l2", [120.0], [100.0], "images/s",
                            reference="foolbox 3.0.4 L2ProjectedGradientDescentAttack",
                            reference_timing="in process", batch_size=128, eps=1.5, steps=20,
                            clean_accuracy=0.9, ours_robust_accuracy=0.31,
                            reference_robust_accuracy=0.3),
        Record.from_samples("plan", [4.0], [10.0], "s", jobs=956),
    ]
    return results_document(
        records, machine=machine_info(), versions=versions(), mode="quick", duration_s=1.0,
        started="2026-01-01T00:00:00+00:00", goals=check_goals(records), gpu=gpu,
        precision={"device": "cpu", "model": "tiny", "rows": [
            {"attack": "pgd_linf", "samples": 8, "fp32_accuracy": 0.5, "bf16_accuracy": 0.625,
             "outcomes_flipped": 1, "changed": True}]},
    )


def test_json_has_machine_versions_and_records(tmp_path):
    path = tmp_path / "docs" / "benchmarks.json"
    write_json(path, _document())
    doc = json.loads(path.read_text())
    assert {"machine", "versions", "records"} <= set(doc)
    assert doc["versions"]["torch"] == torch.__version__.split("+")[0] or doc["versions"]["torch"]
    names = [r["name"] for r in doc["records"]]
    assert names == ["train", "attack_pgd_linf", "attack_pgd_l1", "attack_paper_pgd_l2", "plan"]
    for r in doc["records"]:
        assert set(r) >= {"name", "ours", "reference", "unit", "ratio"}
        assert r["ratio"] == pytest.approx(speedup(r["ours"], r["reference"], r["unit"]))
    assert not list(path.parent.glob(".*tmp"))  # written atomically, nothing left behind


def test_goals_check_ratio_and_strength():
    goals = {g["record"]: g for g in _document()["goals"]}
    assert goals["train"]["met"]  # 140 vs 100 images/s: 1.4 >= 1.3
    assert goals["attack_pgd_linf"]["met"] and goals["attack_pgd_linf"]["not_weaker"]
    assert not goals["attack_pgd_l1"]["met"]  # 1.1 < 3
    assert goals["plan"]["met"]  # 4 s < 10 s
    weaker = Record("attack_pgd_l2", 2.0, 1.0, "images/s",
                    {"ours_robust_accuracy": 0.5, "reference_robust_accuracy": 0.4})
    (row,) = check_goals([weaker])
    assert row["ratio"] == 2.0 and not row["not_weaker"] and not row["met"]
    # The paper protocol's records must agree with their library (within 2 points), either way.
    assert goals["attack_paper_pgd_l2"]["met"] and goals["attack_paper_pgd_l2"]["agrees"]
    for ours in (0.27, 0.33):
        apart = Record("attack_paper_pgd_linf", 2.0, 1.0, "images/s",
                       {"ours_robust_accuracy": ours, "reference_robust_accuracy": 0.3})
        (row,) = check_goals([apart])
        assert not row["agrees"] and not row["met"] and "not_weaker" not in row


def test_markdown_reports_records_goals_precision_and_missing_gpu():
    text = render(_document(), command="python -m robustarch.bench --quick")
    assert text.startswith("# Benchmarks")
    assert "| `train` | 140 | 100 | images/s | 1.40 |" in text
    assert "| `plan` | 4.00 | 10.0 | s | 2.50 |" in text
    assert "does not change" not in text and "**changes**" in text  # bf16 flipped an outcome
    assert "No GPU was available for these figures" in text
    assert "**no**" in text  # the l1 goal is reported as not met
    # the paper protocol's comparison has its own table, its goal its own condition
    assert ("| `attack_paper_pgd_l2` | foolbox 3.0.4 L2ProjectedGradientDescentAttack | 128 | "
            "1.5 | 20 | 0.900 | 0.310 | 0.300 | in process |") in text
    assert "≥ 1.0 and within 2 points | yes |" in text


def _gpu_section() -> dict:
    """A GPU section as robustarch.bench.gpu.gpu_section writes it (figures made up)."""
    run = {"images_per_s": 3000.0, "peak_memory_gib": 6.0, "achieved_tflops": 180.0,
           "peak_share": 0.182}
    return {
        "device": "NVIDIA H100 80GB HBM3", "peak_bf16_tflops": 989.4, "measured": "2026-01-01",
        "scale": "paper", "batch_size": 128, "image_size": 32, "adversary": "PGD-15, eps 8/255",
        "sizes": {"batches": 4, "repeats": 2, "epoch_batches": 4, "aa_samples": 500,
                  "aa_iterations": 10},
        "seconds": 480.0,
        "settings": {"resnet": {"image_size": 32, "best": "bf16", "flops_per_image": 6e10,
                                "settings": {"fp32": {**run, "images_per_s": 1000.0,
                                                      "peak_memory_gib": 10.0,
                                                      "achieved_tflops": 60.0,
                                                      "peak_share": 0.061},
                                             "bf16": run}}},
        "epochs": {"resnet": {"category": "CNN", "family": "resnet", "images_per_s": 1000.0,
                              "peak_memory_gib": 10.0, "flops_per_image": 6e10,
                              "epoch_minutes": 0.9, "achieved_tflops": 60.0,
                              "peak_share": 0.061}},
        "autoattack": {"resnet": {"samples": 500, "iterations": 10, "seconds": 20.0,
                                  "robust_share": 0.1, "flops": 1e15, "achieved_tflops": 50.0,
                                  "peak_share": 0.05}},
        "calibration": {"throughput": {"fp32": {"categories": {"CNN": 60e12}},
                                       "bf16": {"categories": {"CNN": 180e12}}},
                        "evaluation_factor": 0.83},
    }


def test_markdown_gpu_section():
    text = render(_document(gpu=_gpu_section()))
    assert "No GPU was available" not in text
    assert "| `resnet` | 32 | bf16 (best) | 3,000 | 6.00 | 180 | 18.2 % |" in text
    assert "| `resnet` | 32 | fp32 | 1,000 | 10.0 | 60.0 | 6.1 % |" in text
    assert "| `resnet` | CNN | 1,000 | 0.90 | 10.0 | 60.0 | 6.1 % |" in text  # the epoch
    assert "| `resnet` | 500 | 10 | 20.0 | 50.0 | 5.0 % |" in text  # AutoAttack
    assert "fp32 CNN 60.0, bf16 CNN 180.0" in text and "0.83 x the training rate" in text


# --------------------------------------------------------------------------- timing


def test_interleaved_alternates_order_and_drops_warmup():
    calls = []

    def contender(name, seconds):
        def run():
            calls.append(name)
            return seconds
        return run

    times = interleaved({"a": contender("a", 1.0), "b": contender("b", None)},
                        warmup=1, repeats=3)
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert times["a"] == [1.0, 1.0, 1.0]  # its own measurement
    assert len(times["b"]) == 3 and all(t >= 0 for t in times["b"])  # wall clock
    with pytest.raises(TypeError, match="float"):
        interleaved({"x": lambda: 3}, warmup=0, repeats=1)


# --------------------------------------------------------------------------- training loops


def test_conventional_attack_computes_weight_gradients_ours_does_not():
    from robustarch.attacks import pgd

    model = _tiny_cnn().eval()
    x = torch.rand(4, 3, 32, 32)
    y = torch.tensor([0, 1, 2, 3])
    x_adv = conventional_pgd(model, x, y, eps=8 / 255, steps=2, step_size=4 / 255)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert (x_adv - x).abs().max() <= 8 / 255 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1

    model.zero_grad(set_to_none=True)
    pgd(model, x, y, norm="linf", eps=8 / 255, steps=2, step_size=4 / 255)
    assert all(p.grad is None for p in model.parameters())


def test_conventional_trainer_trains(digits):
    settings = tiny_settings(method="pgd_linf", batch_size=16,
                             adversary=dict(eps=8 / 255, steps=1, step_size=8 / 255,
                                            random_start=True))
    model = _tiny_cnn()
    before = [p.detach().clone() for p in model.parameters()]
    trainer = ConventionalTrainer(model, digits["x_train"][:48], digits["y_train"][:48],
                                  settings)
    assert trainer.run(2) == 32
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


def test_compare_training_quick(digits):
    from robustarch.bench.training import compare_training

    settings = tiny_settings(method="pgd_linf", batch_size=16, channels_last="auto",
                             adversary=dict(eps=8 / 255, steps=1, step_size=8 / 255,
                                            random_start=True))
    model = create_model("resnet", 10, 32, "tiny", settings.mean, settings.std)
    record = compare_training(model, digits["x_train"], digits["y_train"], settings, batches=1,
                              warmup=0, repeats=1, device=torch.device("cpu"))
    assert record.name == "train" and record.unit == "images/s"
    assert record.ours > 0 and record.reference > 0
    assert record.details["channels_last"] is True  # "auto": on for a CNN, on a CPU too
    assert "ours_config_defaults" not in record.details  # no override, no second run of ours
    overridden = compare_training(model, digits["x_train"], digits["y_train"], settings,
                                  batches=1, warmup=0, repeats=1, device=torch.device("cpu"),
                                  fast={"channels_last": False})
    assert overridden.details["channels_last"] is False
    assert overridden.details["ours_config_defaults"] > 0


# --------------------------------------------------------------------------- attacks, precision


@pytest.mark.parametrize(("norm", "eps"), [("linf", 8 / 255), ("l2", 1.5), ("l1", 10.0)])
def test_compare_attack_quick(digits, norm, eps):
    pytest.importorskip("torchattacks" if norm != "l1" else "art")
    from robustarch.bench.attacks import compare_attack

    model = _tiny_cnn().eval()
    x = digits["x_test"][:8].float() / 255
    y = digits["y_test"][:8]
    settings = PGDSettings(name=f"pgd_{norm}", norm=norm, eps=eps, steps=2, step_size=eps / 4,
                           random_start=True, early_stop=True,
                           algorithm=PGDAlgorithm.ROBUSTARCH)
    record = compare_attack(model, x, y, settings, warmup=0, repeats=1)
    assert record.name == f"attack_pgd_{norm}"
    assert record.ours > 0 and record.reference > 0
    for key in ("clean_accuracy", "ours_robust_accuracy", "reference_robust_accuracy"):
        assert 0 <= record.details[key] <= 1


@pytest.mark.parametrize(("norm", "eps"), [("linf", 8 / 255), ("l2", 1.5), ("l1", 10.0)])
def test_compare_paper_attack_quick(digits, norm, eps):
    """Ours vs foolbox 3.0.4 (in process) or ART 1.16.0 (its worker): with foolbox, both draw
    the same random starts, so they reach the same robust accuracy."""
    from robustarch.bench.art116 import art116_missing
    from robustarch.bench.attacks import compare_paper_attack

    if norm == "l1" and art116_missing():
        pytest.skip(art116_missing())
    pytest.importorskip("foolbox")
    model = _tiny_cnn().eval()
    x = digits["x_test"][:8].float() / 255
    y = digits["y_test"][:8]
    algorithm = PGDAlgorithm.ART_1_16 if norm == "l1" else PGDAlgorithm.FOOLBOX
    settings = PGDSettings(name=f"pgd_{norm}", norm=norm, eps=eps, steps=2,
                           step_size=0.075 * eps, random_start=True, early_stop=False,
                           algorithm=algorithm)
    record = compare_paper_attack(model, x, y, settings, warmup=1, repeats=2)
    assert record.name == f"attack_paper_pgd_{norm}"
    assert record.ours > 0 and record.reference > 0 and record.details["repeats"] == 2
    for key in ("clean_accuracy", "ours_robust_accuracy", "reference_robust_accuracy"):
        assert 0 <= record.details[key] <= 1
    if norm != "l1":
        assert record.details["ours_robust_accuracy"] == record.details[
            "reference_robust_accuracy"]


def test_art116_setup_is_the_readmes_and_cis(repo, monkeypatch, tmp_path):
    """The ART 1.16.0 directory is made by one command, the same in the README's setup, in CI
    and in the message of the tests that skip without it."""
    import sys

    from robustarch.bench import art116

    assert art116.SETUP_COMMAND in (repo / "README.md").read_text()
    assert art116.SETUP_COMMAND + "\n" in (repo / ".ci" / "run").read_text()
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    assert art116.art116_dir() == tmp_path / "art-1.16.0"
    assert art116.SETUP_COMMAND in art116.art116_missing()
    with pytest.raises(FileNotFoundError, match="not installed"):
        art116.Art116L1(_tiny_cnn(), torch.zeros(1, 3, 32, 32), torch.zeros(1), eps=1.0,
                        eps_step=0.1, max_iter=1)


class _OnlyHere(nn.Linear):
    """A model class the ART worker cannot import (tests/ is not on its path)."""


def test_art116_worker_failure_is_reported():
    """A worker that dies (here: ART refuses a negative max_iter while the worker builds the
    attack) raises, with the worker's error in the message, and leaves no process behind."""
    from robustarch.bench import art116

    if art116.art116_missing():
        pytest.skip(art116.art116_missing())
    with pytest.raises(RuntimeError, match=r"(?s)worker exited with status 1.*max_iter"):
        art116.Art116L1(_OnlyHere(3, 10), torch.zeros(1, 3), torch.zeros(1), eps=1.0,
                        eps_step=0.1, max_iter=-1)


def test_evaluate_attack_bf16_and_precision_check(digits):
    from robustarch.bench.precision import bf16_check
    from robustarch.evaluate import evaluate_attack

    model = _tiny_cnn().eval()
    x, y = digits["x_test"][:16], digits["y_test"][:16]
    settings = {"name": "pgd_linf", "kind": "pgd", "norm": "linf", "eps": 8 / 255, "steps": 2,
                "step_size": 2 / 255, "random_start": True, "early_stop": True,
                "algorithm": "robustarch"}
    fp32 = evaluate_attack(model, x, y, settings, batch_size=8)
    again = evaluate_attack(model, x, y, settings, batch_size=8, bf16=False)
    assert fp32.equals(again)  # fp32 stays the default
    bf16 = evaluate_attack(model, x, y, settings, batch_size=8, bf16=True)
    assert list(bf16.columns) == list(fp32.columns) and len(bf16) == 16
    (row,) = bf16_check(model, x, y, {"pgd_linf": settings}, device=torch.device("cpu"),
                        batch_size=8)
    assert row["samples"] == 16 and row["fp32_accuracy"] == fp32["correct"].mean()
    assert row["changed"] == (row["fp32_accuracy"] != row["bf16_accuracy"])


# --------------------------------------------------------------------------- planning, GPU helpers


def test_plan_job_count_and_failure(tmp_path):
    from robustarch.bench.planning import dry_run, planned_jobs

    stats = "Job stats:\njob      count\n-----  -------\ntrain  80\nall  1\ntotal  956\n"
    assert planned_jobs(stats) == 956
    assert planned_jobs("nothing to be done") is None
    with pytest.raises(RuntimeError, match="failed"):
        dry_run(tmp_path)  # no Snakefile here


def test_flop_count_and_peaks():
    from robustarch.bench.gpu import peak_bf16_flops, train_flops_per_image

    assert peak_bf16_flops("NVIDIA H100 80GB HBM3") == pytest.approx(989.4e12)
    assert peak_bf16_flops("NVIDIA H100 PCIe") == pytest.approx(756e12)
    assert peak_bf16_flops("NVIDIA A100-SXM4-80GB") == pytest.approx(312e12)
    assert peak_bf16_flops("Some Future GPU") is None
    model = _tiny_cnn()
    adversary = Adversary(eps=8 / 255, steps=0, step_size=2 / 255, random_start=True)
    plain = train_flops_per_image(model, image_size=32, adversary=adversary)
    pgd2 = train_flops_per_image(model, image_size=32,
                                 adversary=dataclasses.replace(adversary, steps=2))
    # Training forward + backward is ~3 forwards; each attack step adds forward + input grad.
    forward = 2 * (8 * 3 * 9 * 16 * 16 + 8 * 16 * 16 * 10)  # 2 FLOPs per multiply-add
    # Training: forward + weight gradients + input gradients except the first layer's.
    assert plain == 3 * forward - 2 * 8 * 3 * 9 * 16 * 16
    assert pgd2 == plain + 2 * (2 * forward)  # attack step: forward + input gradients
    assert all(p.grad is None for p in model.parameters())


def test_gpu_only_run_keeps_the_cpu_figures():
    """`--only gpu` replaces the GPU section and records of the last whole run's document."""
    from robustarch.bench.__main__ import with_gpu_section

    previous = json.loads(json.dumps(_document()))
    previous["records"].append({"name": "gpu_train_old", "ours": 1.0})
    gpu_run = {"gpu": _gpu_section(), "records": [{"name": "gpu_train_new", "ours": 2.0}]}
    merged = with_gpu_section(previous, gpu_run)
    names = [r["name"] for r in merged["records"]]
    assert names == ["train", "attack_pgd_linf", "attack_pgd_l1", "attack_paper_pgd_l2", "plan",
                     "gpu_train_new"]
    assert merged["gpu"] == gpu_run["gpu"] and merged["precision"] == previous["precision"]
    assert "| `resnet` | 32 | bf16 (best) |" in render(merged)


def test_gpu_figures_run_on_any_device():
    """The settings comparison's code path, on the CPU with a tiny model and three settings."""
    from robustarch.bench.gpu import gpu_figures

    base = tiny_settings(method="pgd_linf")
    models, records = gpu_figures(base, archs=("resnet",), batch_size=8, batches=1, repeats=1,
                                  device=torch.device("cpu"), scale="tiny",
                                  variants=("fp32", "bf16", "fp32_unfolded"),
                                  progress=lambda _m: None)
    figures = models["resnet"]
    assert set(figures["settings"]) == {"fp32", "bf16", "fp32_unfolded"}  # resnet has norms
    assert figures["best"] in figures["settings"] and figures["flops_per_image"] > 0
    assert all(s["peak_share"] is None for s in figures["settings"].values())  # no CPU peak
    assert [r.name for r in records] == ["gpu_train_resnet_32px_bf16",
                                         "gpu_train_resnet_32px_fp32_unfolded"]
    assert all(r.ours > 0 for r in records)
    # a model without batch norms skips the unfolded setting
    models, _ = gpu_figures(base, archs=("vit",), batch_size=8, batches=1, repeats=1,
                            device=torch.device("cpu"), scale="tiny",
                            variants=("fp32", "fp32_unfolded"), progress=lambda _m: None)
    assert set(models["vit"]["settings"]) == {"fp32"}


def test_gpu_section_and_calibration_run_on_any_device(repo):
    """The whole --gpu section on the CPU (tiny models, a batch of each): every part, the
    calibration the cost model reads, and its Markdown."""
    import copy

    from robustarch.bench.gpu import GpuSizes, gpu_section
    from robustarch.bench.runner import load_config
    from robustarch.workflow.costs import CALIBRATION_FORMAT, Throughput

    config = copy.deepcopy(load_config(repo))
    config["training"].update(batch_size=4, adversary={**config["training"]["adversary"],
                                                       "steps": 1})
    config["run"]["architectures"] = ["resnet", "vit"]
    section, records = gpu_section(
        config, sizes=GpuSizes(batches=1, repeats=1, epoch_batches=1, aa_samples=4,
                               aa_iterations=1),
        device=torch.device("cpu"), scale="tiny", variants=("fp32", "bf16_channels_last"),
        archs={"settings": ("resnet",), "compile": (), "autoattack": ("resnet",)},
        progress=lambda _m: None)
    assert set(section["settings"]) == {"resnet", "resnet@224px"}
    assert set(section["epochs"]) == {"resnet", "vit"}
    assert section["epochs"]["vit"]["category"] == "Transformer"
    assert section["epochs"]["resnet"]["epoch_minutes"] > 0
    aa = section["autoattack"]["resnet"]
    assert aa["flops"] > 0 and aa["seconds"] > 0 and 0 <= aa["robust_share"] <= 1
    calibration = section["calibration"]
    assert calibration["format"] == CALIBRATION_FORMAT
    fp32 = calibration["throughput"]["fp32"]  # the config trains in fp32
    assert set(fp32["families"]) == {"resnet", "vit"} and set(fp32["categories"]) == {
        "CNN", "Transformer"}
    assert set(calibration["throughput"]["bf16"]["categories"]) == {"CNN"}
    assert calibration["evaluation_factor"] > 0
    throughput = Throughput(calibration)
    assert throughput.flops_per_s("resnet", "fp32") == fp32["families"]["resnet"]
    assert throughput.flops_per_s("vit-p8", "fp32") == fp32["families"]["vit"]  # same family
    assert throughput.flops_per_s("swin", "fp32") == fp32["categories"]["Transformer"]
    assert throughput.flops_per_s("resnet", "fp32", evaluation=True) == pytest.approx(
        fp32["families"]["resnet"] * calibration["evaluation_factor"])
    assert [r.name for r in records] == ["gpu_train_resnet_32px_bf16_channels_last",
                                         "gpu_train_resnet_224px_bf16_channels_last"]
    assert "| `vit` | Transformer |" in render({**_document(), "gpu": section})


# --------------------------------------------------------------------------- batch-size cache


def _fake_probe(limit: int, calls: list[int]):
    def probe(size: int) -> None:
        calls.append(size)
        if size > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    return probe


def test_largest_fitting_halves_on_out_of_memory():
    calls: list[int] = []
    assert bs.largest_fitting(_fake_probe(100, calls), 1024) == 64
    assert calls == [1024, 512, 256, 128, 64]
    # RuntimeErrors that say "out of memory" count too (older torch, other allocators)
    def old_style(size):
        if size > 3:
            raise RuntimeError("CUDA error: out of memory")
    assert bs.largest_fitting(old_style, 10) == 2
    with pytest.raises(torch.OutOfMemoryError):  # nothing fits
        bs.largest_fitting(_fake_probe(0, []), 8)
    with pytest.raises(ValueError, match="shape"):  # other errors are not swallowed
        bs.largest_fitting(lambda size: (_ for _ in ()).throw(ValueError("shape")), 8)


def test_batch_size_cache_is_reused_and_keyed(tmp_path):
    cache = tmp_path / "cache" / "sizes.json"
    key = {"arch": "resnet", "scale": "paper", "image_size": 32, "device": "H100",
           "attack": "pgd", "norm": "linf", "bf16": False}
    calls: list[int] = []
    assert bs.cached_largest_batch(_fake_probe(300, calls), key=key, cache_path=cache,
                                   start=2048) == 256
    first = list(calls)
    assert bs.cached_largest_batch(_fake_probe(300, calls), key=key, cache_path=cache,
                                   start=2048) == 256
    assert calls == first  # second call: from the cache, no probing
    other = {**key, "device": "A100"}
    assert bs.cached_largest_batch(_fake_probe(100, calls), key=other, cache_path=cache,
                                   start=2048) == 64
    stored = json.loads(cache.read_text())
    assert stored == {bs.cache_key(key): 256, bs.cache_key(other): 64}
    assert not list(cache.parent.glob(".*tmp"))  # atomic write left no temporary file
    cache.write_text("{not json")  # a corrupt cache is an empty one
    assert bs.read_cache(cache) == {}


def test_eval_batch_size_on_cpu_uses_configured(tmp_path):
    model = _tiny_cnn()
    x = torch.zeros(10, 3, 32, 32, dtype=torch.uint8)
    y = torch.zeros(10, dtype=torch.long)
    meta = {"arch": "cnn", "scale": "tiny", "image_size": 32}
    settings = PGDSettings(name="pgd_linf", norm="linf", eps=8 / 255, steps=2,
                           step_size=2 / 255, random_start=True, early_stop=True,
                           algorithm=PGDAlgorithm.ROBUSTARCH)
    cache = tmp_path / "sizes.json"
    cpu = torch.device("cpu")
    assert bs.eval_batch_size(model, x, y, settings, configured=123, device=cpu, meta=meta,
                              cache_path=cache) == 123
    assert bs.eval_batch_size(model, x, y, settings, configured="auto", device=cpu, meta=meta,
                              cache_path=cache) == bs.CPU_DEFAULT
    assert not cache.exists()
    probe = bs.attack_probe(model, x, y, settings, device=cpu)
    probe(4)  # runs the attack on a repeated batch without error


def test_config_accepts_auto_batch_size_and_bf16(paper_config, schema):
    from robustarch.config import ConfigError, validate_config

    config = validate_config(paper_config, schema)
    assert config["evaluation"]["bf16"] is False  # fp32 evaluation by default
    auto = {**paper_config, "evaluation": {**paper_config["evaluation"], "batch_size": "auto",
                                           "bf16": True}}
    assert validate_config(auto, schema)["evaluation"]["batch_size"] == "auto"
    bad = {**paper_config, "evaluation": {**paper_config["evaluation"], "batch_size": "big"}}
    with pytest.raises(ConfigError):
        validate_config(bad, schema)
