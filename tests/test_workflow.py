"""The Snakemake workflow itself: lint, planning the paper's DAG, clear errors, and an
end-to-end run on the bundled digits to results/table1.tex."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
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


def test_paper_config_plans_every_job(tmp_path):
    result = _run(["-n", "--cores", "1"], _workdir(tmp_path))
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    archs, datasets = config["run"]["architectures"], config["run"]["datasets"]
    assert set(archs) <= set(list_models())
    per_model = {m: 1 + len(config["run"]["attacks"].get(m, [])) for m in config["run"]["methods"]}
    counts = _job_counts(result.stdout)
    models = len(archs) * len(datasets) * len(per_model)
    assert counts["train"] == models
    assert counts["evaluate"] == len(archs) * len(datasets) * sum(per_model.values())
    assert counts["merge_outcomes"] == models
    assert counts["download_archive"] == counts["prepare_dataset"] == len(datasets)
    assert counts["table1"] == len(datasets) and counts["architectures_table"] == 1


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
            "worst_case": ["pgd_linf", "aa_linf"]},
    "training": {"epochs": 1, "warmup_epochs": 0, "batch_size": 128, "lr": 3e-3,
                 "selection": "last", "adversary": {"steps": 1, "step_size": "8/255"}},
    "attacks": {"pgd_linf": {"steps": 3}, "aa_linf": {"iterations": 2}},
    "evaluation": {"num_samples": 40},
    "report": {"table1_dataset": "digits"},
}


@pytest.mark.slow
def test_end_to_end_on_digits(tmp_path):
    work = _workdir(tmp_path)
    (work / "tiny.yaml").write_text(yaml.safe_dump(TINY_RUN))
    result = _run(["--cores", "2", "--configfile", "tiny.yaml"], work, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    table = (work / "results/table1.tex").read_text()
    assert "\\toprule" in table and "ResNet" in table and "ViT" in table
    for arch in ("resnet", "vit"):
        for method, attacks in (("vanilla", ["clean"]), ("pgd_linf", ["clean", "pgd_linf",
                                                                      "aa_linf"])):
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
            if method == "pgd_linf":
                assert summary["worst_case"] <= min(summary["accuracy"][a] for a in attacks[1:])
            assert (work / "logs/digits" / arch / method / "train.log").exists()
            assert not (work / "checkpoints/digits" / arch / method).exists()  # cleaned up
    rows = pd.read_csv(work / "results/table1.csv")
    assert rows["architecture"].tolist() == ["ViT", "ResNet"]
    assert rows[["vanilla_acc", "clean_acc", "pgd_linf", "aa_linf", "worst_case"]].notna().all(
        axis=None)
    assert (rows["worst_case"] <= rows[["pgd_linf", "aa_linf"]].min(axis=1) + 1e-9).all()
    archs = pd.read_csv(work / "results/architectures.csv")
    assert set(archs["name"]) == {"resnet", "vit"} and (archs["scale"] == "tiny").all()

    again = _run(["-n", "--cores", "2", "--configfile", "tiny.yaml"], work)
    assert "Nothing to be done" in again.stdout + again.stderr
