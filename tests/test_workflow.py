"""The Snakemake workflow itself: lint, planning the paper's DAG, clear errors, and an
end-to-end run on the bundled digits to results/table1.tex."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from robustarch.models import list_models

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
WORKFLOW_FILES = ["Snakefile", "config.yaml", "rules", "workflow", "envs"]


def _run(args, cwd, timeout=600):
    return subprocess.run(SNAKEMAKE + args, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def _workdir(tmp_path: Path) -> Path:
    """A copy of the workflow without its profiles (profiles/default would apply itself)."""
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, tmp_path / name)
    return tmp_path


def _job_counts(output: str) -> dict[str, int]:
    table = output[output.index("Job stats:"):]
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.MULTILINE)}


def test_lint_is_clean():
    result = _run(["--lint", "--cores", "1"], REPO, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def _attacks(config, dataset, arch, method):
    """A model's attacks: its method's, and the strong protocol's for every adversarially
    trained model."""
    run = config["run"]
    attacks = set(run["attacks"].get(_base(method), []))
    if method != "vanilla":
        attacks |= set(run.get("strong_attacks", []))
    return attacks


def _base(method):
    return "pgd_linf_l1" if method.startswith("pgd_linf_l1-") else method


def _expected(config, models):
    """Job counts of training, evaluating and merging ``models`` ((dataset, arch, method)):
    one evaluation job per model and attack, or with ``evaluation.jobs: per_model`` one per
    model, of the rule of its method."""
    models = set(models)
    counts = {"train": len(models), "merge_outcomes": len(models)}
    if config.get("evaluation", {}).get("jobs") == "per_model":
        for _, _, method in models:
            rule = f"evaluate_model_{_base(method)}"
            counts[rule] = counts.get(rule, 0) + 1
        return counts
    return {**counts, "evaluate": sum(1 + len(_attacks(config, *model)) for model in models)}


def _table1_models(config, datasets=None):
    return {(d, a, m) for d in datasets or config["run"]["datasets"]
            for a in config["run"]["architectures"] for m in config["run"]["methods"]}


def _study_models(config, study):
    spec = config["studies"][study]
    d = spec.get("dataset", "cifar10")
    if study == "trades":
        return {(d, a, "trades") for a in spec["architectures"]}
    if study == "l1_penalty":
        return {(d, spec["architecture"], "pgd_linf" if s == 0 else f"pgd_linf_l1-{s:g}")
                for s in spec["lambdas"]}
    archs = spec["architectures"]
    if study == "activation":
        archs = archs + [f"{a}-relu" for a in archs]
    return {(d, a, m) for a in archs for m in spec["methods"]}


STUDY_OUTPUTS = {"table2": "coatnet_layouts", "table3": "patch_size",
                 "table_activation": "activation", "table_trades": "trades"}


def test_table1_plans_exactly_its_jobs(tmp_path):
    result = _run(["-n", "--cores", "1", "results/table1.tex"], _workdir(tmp_path))
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    archs = config["run"]["architectures"]
    assert set(archs) <= set(list_models())
    counts = _job_counts(result.stdout)
    for rule, n in _expected(config, _table1_models(config, ["cifar10"])).items():
        assert counts[rule] == n, rule
    assert counts["download_archive"] == counts["prepare_dataset"] == 1
    assert counts["table1"] == 1 and counts["architectures_table"] == 1


def _merged(base, over):
    """Snakemake's layering of a config file: dictionaries merge key by key, others replace."""
    merged = dict(base)
    for key, value in over.items():
        merged[key] = (_merged(base[key], value)
                       if isinstance(value, dict) and isinstance(base.get(key), dict) else value)
    return merged


DEMO_CONFIG = REPO / "profiles" / "demo" / "config.yaml"


@pytest.mark.parametrize("profile", ["paper", "demo"])
@pytest.mark.parametrize("output", [*STUDY_OUTPUTS, "figures/figure3_l1_penalty.pdf"])
def test_each_study_output_plans_exactly_its_jobs(tmp_path, output, profile):
    target = f"results/{output}" + ("" if output.endswith(".pdf") else ".tex")
    extra = ["--configfile", str(DEMO_CONFIG)] if profile == "demo" else []
    result = _run([target, "-n", "--cores", "1", *extra], _workdir(tmp_path))
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    if profile == "demo":
        config = _merged(config, yaml.safe_load(DEMO_CONFIG.read_text()))
    study = STUDY_OUTPUTS.get(output, "l1_penalty")
    counts = _job_counts(result.stdout)
    for rule, n in _expected(config, _study_models(config, study)).items():
        assert counts[rule] == n, rule
    report_rule = "figure3_l1_penalty" if study == "l1_penalty" else "study_table"
    assert counts[report_rule] == 1
    data_rules = {"prepare_dataset"} | ({"download_archive"} if profile == "paper" else set())
    assert set(counts) == {*_expected(config, _study_models(config, study)), report_rule,
                           "total", *data_rules}


def test_paper_config_plans_every_table_and_figure(tmp_path):
    result = _run(["-n", "--cores", "1"], _workdir(tmp_path))
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    models = _table1_models(config)
    for study in config["studies"]:
        if study != "corruptions":
            models |= _study_models(config, study)
    counts = _job_counts(result.stdout)
    assert counts["train"] == len(models)
    assert counts["table1"] == len(config["run"]["datasets"])
    assert counts["study_table"] == 4 and counts["figure3_l1_penalty"] == 1


def test_cifar100_plans_table1_and_table4_from_its_module_alone(tmp_path):
    """A dataset added as one module plans with nothing else configured than its name."""
    work = _workdir(tmp_path)
    config = {"run": {"datasets": ["cifar100"]}, "report": {"table1_dataset": "cifar100"}}
    (work / "cifar100.yaml").write_text(yaml.safe_dump(config))
    result = _run(["-n", "--cores", "1", "--configfile", "cifar100.yaml", "--",
                   "results/table1.tex", "results/table4.tex"], work)
    assert result.returncode == 0, result.stdout + result.stderr
    config = _merged(yaml.safe_load((REPO / "config.yaml").read_text()), config)
    counts = _job_counts(result.stdout)
    models = _table1_models(config)
    assert {d for d, _, _ in models} == {"cifar100"}
    for rule, n in _expected(config, models).items():
        assert counts[rule] == n, rule
    corruptions = config["studies"]["corruptions"]
    assert counts["prepare_corruption"] == len(corruptions["corruptions"])
    assert counts["evaluate_corruptions"] == len(config["run"]["architectures"]) * len(
        corruptions["methods"])
    # its archive and its published CIFAR-100-C, decoded once each
    assert counts["download_archive"] == 2 and counts["prepare_dataset"] == 1
    assert counts["table1"] == 1 and counts["table4"] == 1
    for path in ["data/downloads/cifar-100-python.tar.gz", "data/downloads/CIFAR-100-C.tar",
                 "data/cifar100/train.pt", "data/cifar100-c/fog.pt",
                 "results/cifar100/resnet/pgd_linf/eval/pgd_l1.parquet"]:
        assert path in result.stdout, path
    assert "results/cifar10/" not in result.stdout


def _dry_run_jobs(output: str) -> dict[tuple[str, str], dict[str, str]]:
    """(rule, "k=v k=v" wildcards) -> resources of every job a dry run prints, but all."""
    jobs = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", output):
        rule = re.match(r"(?:local)?rule (\w+):\n", block)
        if not rule or rule.group(1) == "all":
            continue
        wildcards = re.search(r"^\s+wildcards: (.*)$", block, flags=re.MULTILINE)
        resources = re.search(r"^\s+resources: (.*)$", block, flags=re.MULTILINE)
        key = (rule.group(1), " ".join(wildcards.group(1).split(", ")) if wildcards else "")
        jobs[key] = dict(kv.split("=", 1) for kv in resources.group(1).split(", "))
    return jobs


@pytest.mark.parametrize("profile", ["paper", "demo"])
def test_plan_bills_exactly_the_jobs_a_dry_run_would_run(tmp_path, profile):
    """`snakemake plan` lists every job of `snakemake -n`, once, with the wall time the dry
    run requests for it; it trains nothing and is not part of rule all."""
    work = _workdir(tmp_path)
    extra = ["--configfile", str(DEMO_CONFIG)] if profile == "demo" else []
    dry = _run(["-n", "--cores", "1", *extra], work)
    assert dry.returncode == 0, dry.stderr
    planned = _run(["plan", "--cores", "1", *extra], work)
    assert planned.returncode == 0, planned.stdout[-3000:] + planned.stderr[-3000:]
    jobs = _dry_run_jobs(dry.stdout)
    assert "plan" not in {rule for rule, _ in jobs}
    frame = pd.read_csv(work / "results/plan.csv", keep_default_na=False)
    rows = list(zip(frame["rule"], frame["wildcards"], strict=True))
    assert len(rows) == len(set(rows)) and set(rows) == set(jobs)
    gpu = frame[frame["gpu"]]
    evaluation = ({"evaluate"} if profile == "paper" else {  # the demo's: evaluation.jobs per_model
        f"evaluate_model_{m}" for m in ("vanilla", "pgd_linf", "trades", "pgd_linf_l1")})
    assert set(gpu["rule"]) == {"train", "evaluate_corruptions", "analyse_model", *evaluation}
    assert (gpu["flops"] > 0).all() and (gpu["gpu_hours"] > 0).all()
    for row in gpu.itertuples():
        assert int(jobs[(row.rule, row.wildcards)]["runtime"]) == int(row.runtime_min), row
    assert (frame["status"] == "to run").all() and not (work / "results/digits").exists()
    text = (work / "results/plan.md").read_text()
    total = gpu["gpu_hours"].sum()
    assert f"**{len(frame)} jobs** to run" in text and "## The 10 costliest jobs" in text
    table1 = frame[frame["group"].str.startswith("Table 1")]
    assert (table1["rule"] == "train").sum() == len(
        yaml.safe_load((REPO / "config.yaml").read_text())["run"]["methods"]) * len(
        set(table1["arch"]) - {""}) * len(set(table1["dataset"]) - {""})
    assert 0 < gpu[gpu["group"].str.startswith("Table 1")]["gpu_hours"].sum() <= total


def test_planning_imports_no_torch(tmp_path):
    """`snakemake -n` reads architectures from models/catalog.json and datasets from
    robustarch.data.sources: importing torch would add seconds to every plan."""
    code = ("import atexit, sys; atexit.register(lambda: print('torch imported:', "
            "'torch' in sys.modules)); from snakemake.cli import main; main()")
    result = subprocess.run([sys.executable, "-c", code, "-n", "--cores", "1"],
                            cwd=_workdir(tmp_path), capture_output=True, text=True, timeout=600,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr
    assert "torch imported: False" in result.stdout


def test_unknown_architecture_fails_with_the_valid_names(tmp_path):
    work = _workdir(tmp_path)
    (work / "bad.yaml").write_text(yaml.safe_dump({"run": {"architectures": ["resnet",
                                                                             "resnet9000"]}}))
    result = _run(["-n", "--cores", "1", "--configfile", "bad.yaml"], work)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "unknown architecture 'resnet9000'; valid architectures: " in message
    assert "resnet, resnext" in message


def test_config_typo_fails_with_the_key(tmp_path):
    work = _workdir(tmp_path)
    (work / "bad.yaml").write_text(yaml.safe_dump({"training": {"epoch": 3}}))
    result = _run(["-n", "--cores", "1", "--configfile", "bad.yaml"], work)
    assert result.returncode != 0
    assert "config key 'training.epoch' is not a valid key (did you mean 'epochs'?)" in (
        result.stdout + result.stderr)


TINY_RUN = {
    "scale": "tiny",
    "run": {"datasets": ["digits"], "architectures": ["resnet", "vit"],
            "methods": ["vanilla", "pgd_linf"],
            "attacks": {"vanilla": [], "pgd_linf": ["pgd_linf", "aa_linf"]},
            "worst_case": ["pgd_linf", "aa_linf"], "strong_attacks": ["pgd_linf_es"]},
    "training": {"epochs": 1, "warmup_epochs": 0, "batch_size": 128, "lr": 3e-3,
                 "selection": "last", "adversary": {"steps": 1, "step_size": "8/255"}},
    "attacks": {"pgd_linf": {"steps": 3}, "pgd_linf_es": {"steps": 3},
                "aa_linf": {"iterations": 2}},
    "evaluation": {"num_samples": 40},
    "report": {"table1_dataset": "digits"},
}


@pytest.mark.slow
def test_end_to_end_on_digits(tmp_path):
    work = _workdir(tmp_path)
    (work / "tiny.yaml").write_text(yaml.safe_dump(TINY_RUN))
    # config.yaml's studies and analyses stay configured (a configfile cannot remove them), so
    # ask for Table 1 by name; the studies have their own test below.
    targets = ["results/table1.tex", "results/table1_strong.tex", "results/architectures.csv"]
    result = _run([*targets, "--cores", "2", "--configfile", "tiny.yaml"], work, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    table = (work / "results/table1.tex").read_text()
    assert "\\toprule" in table and "ResNet" in table and "ViT" in table
    for arch in ("resnet", "vit"):
        for method, attacks in (("vanilla", ["clean"]),
                                ("pgd_linf", ["clean", "pgd_linf", "aa_linf", "pgd_linf_es"])):
            model_dir = work / "results/digits" / arch / method
            assert (model_dir / "model.pt").stat().st_size > 0
            metrics = pd.read_csv(model_dir / "metrics.csv")
            assert metrics.columns.tolist()[:5] == ["epoch", "lr", "train_loss", "train_acc",
                                                    "test_clean_acc"]
            for attack in attacks:
                outcomes = pd.read_parquet(model_dir / "eval" / f"{attack}.parquet")
                assert outcomes.columns.tolist() == ["index", "label", "prediction", "correct"]
                assert outcomes["index"].tolist() == list(range(40))
            summary = json.loads((model_dir / "summary.json").read_text())
            assert set(summary["accuracy"]) == set(attacks)
            if method == "pgd_linf":  # worst_case_all <= worst_case <= every paper attack
                assert summary["worst_case_attacks"] == ["pgd_linf", "aa_linf"]
                assert summary["worst_case_all_attacks"] == attacks[1:]
                assert summary["worst_case"] <= min(summary["accuracy"][a] for a in attacks[1:3])
                assert summary["worst_case_all"] <= summary["worst_case"]
            assert (work / "logs/digits" / arch / method / "train.log").exists()
            assert not (work / "checkpoints/digits" / arch / method).exists()  # cleaned up
    rows = pd.read_csv(work / "results/table1.csv")
    assert rows["architecture"].tolist() == ["ViT", "ResNet"]
    assert rows[["vanilla_acc", "clean_acc", "pgd_linf", "aa_linf", "worst_case"]].notna().all(
        axis=None)
    assert (rows["worst_case"] <= rows[["pgd_linf", "aa_linf"]].min(axis=1) + 1e-9).all()
    assert "pgd_linf_es" not in rows  # Table 1 is the paper protocol
    strong = pd.read_csv(work / "results/table1_strong.csv")
    assert strong["architecture"].tolist() == ["ViT", "ResNet", "Spearman rho vs paper",
                                               "Spearman p vs paper"]
    models = strong.iloc[:2]
    assert (models["worst_case_all"] <= models["worst_case"] + 1e-9).all()
    assert (models["worst_case_all"] <= models["pgd_linf_es"] + 1e-9).all()
    assert sorted(models["rank_paper"]) in ([1, 2], [1, 1])
    archs = pd.read_csv(work / "results/architectures.csv")
    assert set(archs["name"]) == {"resnet", "vit"} and (archs["scale"] == "tiny").all()

    again = _run([*targets, "-n", "--cores", "2", "--configfile", "tiny.yaml"], work)
    assert "Nothing to be done" in again.stdout + again.stderr


def tiny_studies_run() -> dict:
    """The tiny run with studies, Table 4 and the analyses on digits (tests/test_report_html.py
    adds the rest)."""
    config = yaml.safe_load(yaml.safe_dump(TINY_RUN))
    config["run"]["attacks"].update(trades=["pgd_linf"], pgd_linf_l1=["pgd_linf"])
    config["studies"] = {
        "patch_size": {"dataset": "digits", "methods": ["pgd_linf"],
                       "architectures": ["vit-p8", "vit"]},
        "l1_penalty": {"dataset": "digits", "architecture": "resnet", "lambdas": [0, 1e-3]},
        "trades": {"dataset": "digits", "architectures": ["resnet"]},
        "corruptions": {"architectures": ["resnet"], "corruptions": ["gaussian_noise", "fog"],
                        "severities": [1, 5]},
    }
    config["analysis"] = {
        "architectures": ["resnet", "vit"],
        "sparsity": {"figure1": ["resnet", "vit"], "figure2": []},
        "landscape": {"figure4": ["resnet"], "grid": 3, "samples": 16, "batch_size": 16},
        "lipschitz": {"steps": 2, "samples": 16, "batch_size": 16},
    }
    return config


@pytest.mark.slow
def test_studies_end_to_end_on_digits(tmp_path):
    work = _workdir(tmp_path)
    (work / "tiny.yaml").write_text(yaml.safe_dump(tiny_studies_run()))
    targets = ["results/table3.tex", "results/table_trades.tex",
               "results/figures/figure3_l1_penalty.pdf", "results/table4.tex",
               "results/table_analysis.tex", "results/figures/figure1_sparsity.pdf",
               "results/figures/figure4_landscape.pdf",
               "results/figures/sparsity_vs_worst_case.pdf"]
    result = _run([*targets, "--cores", "2", "--configfile", "tiny.yaml"], work, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    table3 = pd.read_csv(work / "results/table3.csv")
    assert table3[["architecture", "patch_size"]].values.tolist() == [["ViT", 8], ["ViT", 4]]
    assert table3[["clean_acc", "pgd_linf", "worst_case"]].notna().all(axis=None)
    trades = pd.read_csv(work / "results/table_trades.csv")
    assert trades["architecture"].tolist() == ["ResNet"] and trades["worst_case"].notna().all()
    model = torch.load(work / "results/digits/resnet/trades/model.pt", weights_only=True)
    assert model["method"] == "trades"
    figure3 = pd.read_csv(work / "results/figures/figure3_l1_penalty.csv")
    assert figure3["method"].tolist() == ["pgd_linf", "pgd_linf_l1-0.001"]
    assert figure3[["clean_acc", "worst_case"]].notna().all(axis=None)
    assert (work / "results/figures/figure3_l1_penalty.pdf").read_bytes().startswith(b"%PDF")
    l1_model = torch.load(work / "results/digits/resnet/pgd_linf_l1-0.001/model.pt",
                          weights_only=True)
    plain = torch.load(work / "results/digits/resnet/pgd_linf/model.pt", weights_only=True)
    # the penalty shrinks the weights it acts on
    norm = [sum(v.abs().sum().item() for v in m["state_dict"].values() if v.ndim >= 2)
            for m in (plain, l1_model)]
    assert norm[1] < norm[0]

    table4 = pd.read_csv(work / "results/table4.csv")
    assert table4["architecture"].tolist() == ["ResNet"]
    assert table4.filter(like="digits_").notna().all(axis=None)
    per_corruption = pd.read_csv(work / "results/table4_per_corruption.csv")
    assert set(per_corruption["corruption"]) == {"gaussian_noise", "fog"}
    corrupted = pd.read_parquet(work / "results/digits/resnet/pgd_linf/eval/corruptions.parquet")
    assert len(corrupted) == 2 * 2 * 40  # corruptions x severities x samples
    analysis = pd.read_csv(work / "results/table_analysis.csv")
    assert len(analysis) == 2 and analysis.notna().all(axis=None)
    for figure in ("figure1_sparsity", "figure4_landscape", "sparsity_vs_worst_case"):
        assert (work / f"results/figures/{figure}.pdf").read_bytes().startswith(b"%PDF")
