# Cluster resource requests of the GPU rules (train, evaluate, evaluate_corruptions,
# analyse_model), used by profiles/slurm: wall time from the work a job does, host memory and
# CPUs by dataset. Local runs set no --resources limit on these, so they do not constrain them.
#
# Wall time: the job's counted FLOPs over the achieved FLOP/s of its model family
# (robustarch.workflow.costs: models/flops.json, and docs/gpu_calibration.json from
# `python -m robustarch.bench --gpu`, else an assumed A100), times SAFETY, plus STARTUP_MIN,
# at least MIN_RUNTIME_MIN.
# `snakemake plan` writes the same figures per job to results/plan.csv and results/plan.md.
# A job that runs out of time is not lost: SLURM signals it ahead of the limit
# (profiles/slurm), training stops at a checkpoint and Snakemake's retry resumes it (AutoAttack
# and the corruption evaluation resume too). So estimates are capped at the partition limit.

import os

from robustarch.data.registry import dataset_spec
from robustarch.workflow.costs import (
    CostModel,
    load_calibration,
    runtime_minutes,
)

# Samples per split, host memory and CPUs per GPU job: each dataset's module gives them
# (robustarch.data.datasets). Splits live on the GPU (robustarch.data.loader), so the host
# holds one decoded split at a time plus torch/CUDA (imagenette: 1.9 GB of uint8).

SAFETY = 1.5
STARTUP_MIN = 10  # scheduling, Snakemake and torch start-up, data loading
MIN_RUNTIME_MIN = 30
# The longest wall time to ask for (minutes); set it to your GPU partition's limit.
MAX_RUNTIME_MIN = int(os.environ.get("ROBUSTARCH_SLURM_MAX_RUNTIME", 2 * 24 * 60))
# Achieved FLOP/s per model family, measured by `python -m robustarch.bench --gpu`; another
# GPU's measurements: point this at its file.
GPU_CALIBRATION = os.environ.get(
    "ROBUSTARCH_GPU_CALIBRATION",
    str(Path(workflow.basedir) / "docs" / "gpu_calibration.json"),
)
COSTS = CostModel(config, calibration=load_calibration(GPU_CALIBRATION))


def _minutes(cost):
    return runtime_minutes(
        cost.seconds,
        safety=SAFETY,
        startup=STARTUP_MIN,
        cap=MAX_RUNTIME_MIN,
        floor=MIN_RUNTIME_MIN,
    )


def train_runtime(wildcards):
    """Wall time (minutes) of a training job: epochs x (attack steps + training step per
    training sample, plus a clean test pass)."""
    return _minutes(COSTS.train(wildcards.dataset, wildcards.arch, wildcards.method))


def eval_runtime(wildcards):
    """Wall time (minutes) of an evaluation job: the attack's passes over its test samples,
    each AutoAttack stage on the samples still robust."""
    return _minutes(
        COSTS.evaluate(
            wildcards.dataset, wildcards.arch, wildcards.method, wildcards.attack
        )
    )


def eval_model_runtime(wildcards):
    """Wall time (minutes) of a per_model evaluation job: every attack of the model."""
    return _minutes(
        COSTS.evaluate_model(wildcards.dataset, wildcards.arch, wildcards.method)
    )


def corruption_eval_runtime(wildcards):
    """Wall time (minutes) of a corruption evaluation: one forward pass per test sample,
    corruption and severity."""
    return _minutes(
        COSTS.evaluate_corruptions(wildcards.dataset, wildcards.arch, wildcards.method)
    )


def analysis_runtime(wildcards):
    """Wall time (minutes) of an analyse_model job: the landscape's forward passes plus the
    Lipschitz ascent's attack steps."""
    return _minutes(
        COSTS.analyse_model(wildcards.dataset, wildcards.arch, wildcards.method)
    )


def gpu_job_mem_mb(wildcards):
    """Host memory (MB) of a training or evaluation job."""
    return dataset_spec(wildcards.dataset).job_mem_mb


def gpu_job_cpus(wildcards):
    """CPUs per GPU of a training or evaluation job (profiles/slurm: cpus_per_gpu)."""
    return dataset_spec(wildcards.dataset).job_cpus
