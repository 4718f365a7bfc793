"""Cluster execution through profiles/slurm.

The slow test starts a real one-node SLURM cluster on this machine (cluster/local-slurm.sh:
Debian's slurmctld, slurmd and munge, installed with apt-get when missing), runs a small
target through `snakemake --profile profiles/slurm`, and checks that every job went through
SLURM and that the results equal those of a local run of the same target. It needs root;
it skips only where it is not root or there is neither SLURM nor apt-get.

The fast tests plan the paper's DAG with the profile and check what each job would request.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
import yte

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
CLUSTER = REPO / "cluster" / "local-slurm.sh"
PROFILE = REPO / "profiles" / "slurm" / "profile.yaml"
WORKFLOW_FILES = ["Snakefile", "config.yaml", "rules", "workflow", "envs", "profiles"]
GPU_RULES = {"train", "evaluate", "evaluate_corruptions", "analyse_model"}
# evaluation.jobs: per_model's rules, one per training method
PER_MODEL_RULES = {f"evaluate_model_{m}" for m in ("vanilla", "pgd_linf", "trades", "pgd_linf_l1")}
PROFILE_ENV = [v for v in os.environ if v.startswith("ROBUSTARCH_SLURM_")]

# A small target: a tiny ResNet on digits, PGD-linf trained, evaluated clean and under PGD.
TARGET = "results/digits/resnet/pgd_linf/summary.json"
MODEL_DIR = "results/digits/resnet/pgd_linf"
TEST_CONFIG = {
    "run": {"datasets": ["digits"], "architectures": ["resnet"], "methods": ["pgd_linf"],
            "attacks": {"vanilla": [], "pgd_linf": ["pgd_linf"]}, "strong_attacks": []},
    "training": {"epochs": 2},
    "attacks": {"pgd_linf": {"steps": 3}},
    "evaluation": {"num_samples": 100},
}
# The demo profile's evaluation.jobs: per_model: one job evaluates clean and PGD.
TARGET_JOBS = {"prepare_dataset": 1, "train": 1, "evaluate_model_pgd_linf": 1,
               "merge_outcomes": 1}


def _copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dest / name)
    (dest / "test_config.yaml").write_text(yaml.safe_dump(TEST_CONFIG))
    return dest


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_ENV}
    env.update(extra)
    return env


def _snakemake(args, cwd, env=None, timeout=600):
    return subprocess.run(SNAKEMAKE + args, cwd=cwd, env=env or _env(), capture_output=True,
                          text=True, timeout=timeout)


# --- the profile, rendered -------------------------------------------------------------


def _render(monkeypatch, **env) -> dict:
    for name in PROFILE_ENV:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with PROFILE.open() as f:
        return yte.process_yaml(f, require_use_yte=True)


def test_profile_defaults(monkeypatch):
    profile = _render(monkeypatch)
    assert profile["executor"] == "slurm"
    assert profile["slurm-requeue"] is True and profile["retries"] >= 1
    assert profile["set-resource-scopes"] == {"gpu": "local"}
    # No account and no CPU partition: the plugin guesses the one, SLURM picks the other.
    assert "slurm_account" not in profile["default-resources"]
    assert "slurm_partition" not in profile["default-resources"]
    for rule in GPU_RULES | PER_MODEL_RULES:
        job = profile["set-resources"][rule]
        assert job["gpu"] == 1 and job["slurm_partition"] == "'gpu'"
        assert "gpu_model" not in job
        assert re.fullmatch(r"'--signal=TERM@\d+'", job["slurm_extra"])
    # profiles/default wins key by key; this profile must not depend on losing to it.
    default = yaml.safe_load((REPO / "profiles" / "default" / "profile.yaml").read_text())
    assert not set(profile) & set(default)


def test_profile_follows_the_environment(monkeypatch):
    profile = _render(monkeypatch, ROBUSTARCH_SLURM_GPU_PARTITION="a100q",
                      ROBUSTARCH_SLURM_CPU_PARTITION="short", ROBUSTARCH_SLURM_ACCOUNT="proj1",
                      ROBUSTARCH_SLURM_GPU_MODEL="a100", ROBUSTARCH_SLURM_GPUS="2")
    assert profile["default-resources"]["slurm_partition"] == "'short'"
    assert profile["default-resources"]["slurm_account"] == "'proj1'"
    for rule in GPU_RULES | PER_MODEL_RULES:
        job = profile["set-resources"][rule]
        assert (job["slurm_partition"], job["gpu"], job["gpu_model"]) == ("'a100q'", 2, "'a100'")


# --- the paper's DAG, planned with the profile -------------------------------------------


def _planned_jobs(output: str) -> list[dict]:
    """(rule, wildcards, resources) of every job a dry run prints."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", output):
        rule = re.match(r"(?:local)?rule (\w+):\n", block)
        if not rule:
            continue
        resources = re.search(r"^\s+resources: (.*)$", block, flags=re.MULTILINE)
        wildcards = re.search(r"^\s+wildcards: (.*)$", block, flags=re.MULTILINE)
        jobs.append({
            "rule": rule.group(1),
            "wildcards": dict(kv.split("=", 1) for kv in wildcards.group(1).split(", "))
            if wildcards else {},
            "resources": dict(kv.split("=", 1) for kv in resources.group(1).split(", "))
            if resources else {},
        })
    return jobs


def _job_counts(output: str) -> dict[str, int]:
    table = output[output.index("Job stats:"):]
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.MULTILINE)}


@pytest.fixture(scope="module")
def paper_plan(tmp_path_factory):
    work = _copy_workflow(tmp_path_factory.mktemp("plan") / "wf")
    env = _env(ROBUSTARCH_SLURM_ACCOUNT="proj1", ROBUSTARCH_SLURM_CPU_PARTITION="short")
    slurm = _snakemake(["--profile", "profiles/slurm", "-n"], work, env=env)
    assert slurm.returncode == 0, slurm.stderr[-3000:]
    # The same DAG without any profile: the profile must not change what runs.
    plain = _snakemake(["-n", "--cores", "1", "--workflow-profile", "none"], work)
    assert plain.returncode == 0, plain.stderr[-3000:]
    return slurm.stdout, plain.stdout


def test_profile_plans_the_whole_paper_dag(paper_plan):
    slurm, plain = paper_plan
    counts = _job_counts(slurm)
    assert counts == _job_counts(plain)
    assert counts["train"] > 0 and counts["evaluate"] > counts["train"]
    assert len(_planned_jobs(slurm)) == counts["total"]


def test_gpus_on_training_and_evaluation_only(paper_plan):
    jobs = _planned_jobs(paper_plan[0])
    for job in jobs:
        res = job["resources"]
        assert res.get("slurm_account") == "proj1", job
        if job["rule"] in GPU_RULES:
            assert res["gpu"] == "1" and res["slurm_partition"] == "gpu", job
            assert int(res["cpus_per_gpu"]) >= 1 and int(res["mem_mb"]) >= 4000, job
            assert res["slurm_extra"].startswith("--signal=TERM@"), job
        else:
            assert res.get("gpu", "0") == "0", job
            assert res["slurm_partition"] == "short", job
            # (cpus_per_gpu of a job without GPUs is ignored by the plugin.)
            assert "gpu_model" not in res and "slurm_extra" not in res, job
        assert 1 <= int(res["runtime"]) <= 2880, job
    assert {job["rule"] for job in jobs} >= GPU_RULES | {"merge_outcomes", "prepare_dataset"}


def test_requests_scale_with_dataset_architecture_and_work(paper_plan):
    jobs = _planned_jobs(paper_plan[0])

    def request(rule, key, **wildcards):
        [job] = [j for j in jobs if j["rule"] == rule
                 and all(j["wildcards"].get(k) == v for k, v in wildcards.items())]
        return int(job["resources"][key])

    small = dict(dataset="cifar10", method="pgd_linf")
    # Adversarial training costs more than standard training; a 56M-parameter model more
    # than a 0.7M one; a 224-px ImageNette image more than a 32-px CIFAR-10 one (per image:
    # ImageNette's 9,469 training images are a fifth of CIFAR-10's 50,000, so a whole job
    # can cost less).
    assert request("train", "runtime", arch="resnet", **small) > request(
        "train", "runtime", arch="resnet", dataset="cifar10", method="vanilla")
    assert request("train", "runtime", arch="wideresnet", **small) > request(
        "train", "runtime", arch="mlpmixer", **small)
    assert request("train", "runtime", arch="resnet", dataset="imagenette",
                   method="pgd_linf") / 9469 > request("train", "runtime", arch="resnet",
                                                       **small) / 50000
    # AutoAttack costs more than PGD, which costs more than a clean pass.
    assert (request("evaluate", "runtime", arch="wideresnet", attack="aa_linf", **small)
            > request("evaluate", "runtime", arch="wideresnet", attack="pgd_linf", **small)
            >= request("evaluate", "runtime", arch="wideresnet", attack="clean", **small))
    assert request("train", "mem_mb", arch="vit", dataset="imagenette", method="pgd_linf") > (
        request("train", "mem_mb", arch="vit", **small))
    assert request("prepare_dataset", "mem_mb", dataset="imagenette") > request(
        "prepare_dataset", "mem_mb", dataset="cifar10")


# --- a real SLURM cluster ------------------------------------------------------------------


def _cluster(command: str, state: Path, timeout=300):
    return subprocess.run(["bash", str(CLUSTER), command], capture_output=True, text=True,
                          timeout=timeout, env=_env(ROBUSTARCH_SLURM_DIR=str(state)))


@pytest.fixture(scope="module")
def local_cluster(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("a local SLURM cluster needs root")
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        pytest.skip("neither SLURM nor apt-get to install it")
    state = tmp_path_factory.mktemp("slurm-state")
    started = _cluster("start", state)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield "cpu"
    finally:
        stopped = _cluster("stop", state)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        status = _cluster("status", state)
        assert status.returncode == 3 and "running" not in status.stdout, status.stdout
        assert not os.path.lexists("/etc/slurm/slurm.conf")


def _slurm_jobs() -> dict[str, tuple[str, str]]:
    """SLURM job id -> (state, comment) of every job slurmctld still knows."""
    out = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%i|%T|%k"],
                         capture_output=True, text=True, check=True).stdout
    return {i: (s, c) for i, s, c in (line.split("|", 2) for line in out.splitlines())}


def _assert_same_results(a: Path, b: Path):
    model_a = torch.load(a / MODEL_DIR / "model.pt", weights_only=False)
    model_b = torch.load(b / MODEL_DIR / "model.pt", weights_only=False)
    weights_a, weights_b = model_a.pop("state_dict"), model_b.pop("state_dict")
    assert weights_a.keys() == weights_b.keys()
    for name in weights_a:
        assert torch.equal(weights_a[name], weights_b[name]), name
    assert model_a == model_b
    metrics = [pd.read_csv(d / MODEL_DIR / "metrics.csv").drop(columns="time_s") for d in (a, b)]
    pd.testing.assert_frame_equal(*metrics)
    for attack in ("clean", "pgd_linf"):
        outcomes = [pd.read_parquet(d / MODEL_DIR / "eval" / f"{attack}.parquet") for d in (a, b)]
        assert len(outcomes[0]) == TEST_CONFIG["evaluation"]["num_samples"]
        pd.testing.assert_frame_equal(*outcomes)
    summaries = [json.loads((d / TARGET).read_text()) for d in (a, b)]
    assert summaries[0] == summaries[1]
    assert set(summaries[0]["accuracy"]) == {"clean", "pgd_linf"}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_slurm_run_equals_local_run(local_cluster, tmp_path):
    partition = local_cluster
    config = ["--configfile", "profiles/demo/config.yaml", "test_config.yaml"]
    before = set(_slurm_jobs())

    # The local run goes alongside: the SLURM run mostly waits for its status checks.
    local = _copy_workflow(tmp_path / "local")
    local_run = subprocess.Popen(SNAKEMAKE + [TARGET, *config], cwd=local, env=_env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    on_slurm = _copy_workflow(tmp_path / "slurm")
    start = time.monotonic()
    try:
        run = _snakemake(
            [TARGET, "--profile", "profiles/slurm", *config,
             # No accounting database here: squeue answers while MinJobAge keeps finished jobs.
             "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2"],
            on_slurm, env=_env(ROBUSTARCH_SLURM_GPU_PARTITION=partition,
                               ROBUSTARCH_SLURM_CPU_PARTITION=partition,
                               ROBUSTARCH_SLURM_GPUS="0"))
    finally:
        local_log, _ = local_run.communicate(timeout=600)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-6000:]
    print(f"SLURM run: {time.monotonic() - start:.0f} s")
    assert local_run.returncode == 0, local_log[-6000:]
    assert "SLURM jobid" not in local_log

    # Every job was a SLURM job, and each finished.
    jobs = {i: v for i, v in _slurm_jobs().items() if i not in before}
    rules = [re.match(r"rule_(\w+?)(?:_wildcards_.*)?$", comment).group(1)
             for _, comment in jobs.values()]
    assert {r: rules.count(r) for r in set(rules)} == TARGET_JOBS, jobs
    assert all(state == "COMPLETED" for state, _ in jobs.values()), jobs
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", log, flags=re.IGNORECASE)
    assert sorted(submitted) == sorted(jobs), log[-3000:]
    # What the profile asked for: requeue on preemption, and rules/resources.smk's requests.
    [train_id] = [i for i, (_, comment) in jobs.items() if comment.startswith("rule_train_")]
    train_job = subprocess.run(["scontrol", "show", "job", train_id], capture_output=True,
                               text=True, check=True).stdout
    assert "Requeue=1" in train_job and "MinMemoryNode=4000M" in train_job, train_job
    assert "TimeLimit=00:30:00" in train_job, train_job  # the floor: a tiny model on digits

    _assert_same_results(on_slurm, local)
