# Cluster resource requests of the GPU rules (train, evaluate), used by profiles/slurm:
# wall time from the work a job does, host memory and CPUs by dataset. Local runs set no
# --resources limit on these, so they do not constrain them.
#
# Wall times are estimates. A job that runs out of time is not lost: SLURM signals it ahead
# of the limit (profiles/slurm), training stops at a checkpoint and Snakemake's retry resumes
# it. So estimates are capped at the partition limit rather than made exact.

import math
import os
import re

from robustarch.data.registry import dataset_spec
from robustarch.models.catalog import UnknownModelError, model_info
from robustarch.settings import parse_method

# Samples per split, host memory and CPUs per GPU job: each dataset's module gives them
# (robustarch.data.datasets). Splits live on the GPU (robustarch.data.loader), so the host
# holds one decoded split at a time plus torch/CUDA (imagenette: 1.9 GB of uint8).

# One forward+backward pass over one 32x32 image costs params_m / GPU_THROUGHPUT seconds:
# ResNet-50 (23.5M) at ~2100 images/s, about half of what a V100/A100 reaches, for slack.
GPU_THROUGHPUT = 50_000
# A forward pass alone costs about a third of forward+backward.
FORWARD = 1 / 3
TINY_PARAMS_M = 0.1  # scale "tiny": seconds-on-a-CPU models
SAFETY = 1.5
STARTUP_MIN = 10  # scheduling, Snakemake and torch start-up, data loading
MIN_RUNTIME_MIN = 30
# The longest wall time to ask for (minutes); set it to your GPU partition's limit.
MAX_RUNTIME_MIN = int(os.environ.get("ROBUSTARCH_SLURM_MAX_RUNTIME", 2 * 24 * 60))
# AutoAttack "standard": APGD-CE, 9 x APGD-T and 9 x FAB-T (two passes a step) per sample,
# then Square's forward-only queries (50 per iteration). 100 iterations: AutoAttack's default.
AA_STANDARD_RUNS = 1 + 9 + 2 * 9
AA_SQUARE_QUERIES_PER_ITERATION = 50
AA_ITERATIONS = 100


def _params_m(arch):
    """The paper's parameter count (millions), that of the family for unsized variants."""
    try:
        info = model_info(arch)
        params = info.paper_params_m
        if params is None:
            params = model_info(info.family).paper_params_m
    except UnknownModelError:
        params = None
    return params if params is not None else 25.0


def _pixel_factor(arch, image_size):
    """Cost of one image relative to 32x32: positions a layer computes on."""
    try:
        info = model_info(arch)
    except UnknownModelError:
        return (image_size / 32) ** 2
    factor = (image_size / 32) ** 2
    if info.category == "CNN" and image_size >= 64:
        factor /= (
            16  # the CNN stems downsample 4x from 64 px on (models/_cnn_blocks.py)
        )
    patch = re.fullmatch(r".*-p(\d+)", arch)
    if patch:
        factor *= (4 / int(patch.group(1))) ** 2  # tokens vs. the default 4-px patches
    return factor


def _sample_cost_s(wildcards, scale, image_size):
    params = TINY_PARAMS_M if scale == "tiny" else _params_m(wildcards.arch)
    return params * _pixel_factor(wildcards.arch, image_size) / GPU_THROUGHPUT


def _minutes(seconds):
    minutes = math.ceil(seconds * SAFETY / 60) + STARTUP_MIN
    return min(max(minutes, MIN_RUNTIME_MIN), MAX_RUNTIME_MIN)


def train_runtime(wildcards):
    """Wall time (minutes) of a training job: epochs x (training passes + a clean test pass)."""
    settings = train_settings(wildcards)
    base, _ = parse_method(wildcards.method)
    steps = settings.adversary.steps
    # Per training sample: the update, plus the attack's steps (TRADES: and the clean logits).
    passes = {
        "vanilla": 1,
        "pgd_linf": 1 + steps,
        "pgd_linf_l1": 1 + steps,
        "trades": 2 + steps,
    }[base]
    data = dataset_spec(wildcards.dataset)
    n_train, n_test = data.train_samples, data.test_samples
    per_epoch = n_train * passes + n_test * FORWARD
    cost = _sample_cost_s(wildcards, settings.scale, settings.image_size)
    return _minutes(settings.epochs * per_epoch * cost)


def _attack_passes(settings):
    """Forward+backward passes per test sample."""
    kind = settings.kind
    if kind == "clean":
        return FORWARD
    if kind == "pgd":
        return settings.steps + FORWARD
    iterations = settings.iterations or AA_ITERATIONS
    if settings.version == "standard":
        square = iterations * AA_SQUARE_QUERIES_PER_ITERATION * FORWARD
        return iterations * AA_STANDARD_RUNS + square
    runs = settings.restarts or 1
    return iterations * runs * len(settings.components or [None])


def eval_runtime(wildcards):
    """Wall time (minutes) of an evaluation job: the attack's passes over its test samples."""
    settings = eval_settings(wildcards)
    n_test = (
        config["evaluation"]["num_samples"]
        or dataset_spec(wildcards.dataset).test_samples
    )
    image_size = config["datasets"][wildcards.dataset]["image_size"]
    cost = _sample_cost_s(wildcards, config["scale"], image_size)
    return _minutes(n_test * _attack_passes(settings) * cost)


def corruption_eval_runtime(wildcards):
    """Wall time (minutes) of a corruption evaluation: one forward pass per test sample,
    corruption and severity."""
    spec = config["studies"]["corruptions"]
    n_test = (
        config["evaluation"]["num_samples"]
        or dataset_spec(wildcards.dataset).test_samples
    )
    image_size = config["datasets"][wildcards.dataset]["image_size"]
    cost = _sample_cost_s(wildcards, config["scale"], image_size)
    passes = len(spec["corruptions"]) * len(spec["severities"]) * FORWARD
    return _minutes(n_test * passes * cost)


def analysis_runtime(wildcards):
    """Wall time (minutes) of an analyse_model job: the landscape's forward passes plus the
    Lipschitz ascent's forward+backward passes."""
    land, lip = ANALYSIS_SETTINGS.landscape, ANALYSIS_SETTINGS.lipschitz
    passes = (land.grid**2 + 1) * land.samples * FORWARD
    passes += lip.samples * lip.restarts * (lip.steps + FORWARD)
    image_size = config["datasets"][wildcards.dataset]["image_size"]
    return _minutes(passes * _sample_cost_s(wildcards, config["scale"], image_size))


def gpu_job_mem_mb(wildcards):
    """Host memory (MB) of a training or evaluation job."""
    return dataset_spec(wildcards.dataset).job_mem_mb


def gpu_job_cpus(wildcards):
    """CPUs per GPU of a training or evaluation job (profiles/slurm: cpus_per_gpu)."""
    return dataset_spec(wildcards.dataset).job_cpus
