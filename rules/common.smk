# Helpers shared by the rules: config validation, target lists, per-job parameters.

import re
from pathlib import Path

import torch

from robustarch.config import (
    ConfigError,
    attack_settings,
    load_schema,
    training_settings,
    validate_config,
)
from robustarch.data import ARCHIVES, DATASETS
from robustarch.models import list_models

try:
    _validated = validate_config(
        config,
        load_schema(Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"),
        known_architectures=list_models(),
        known_datasets=DATASETS,
    )
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None
config.clear()
config.update(_validated)

# A GPU slot per training/evaluation job where this machine has CUDA, so that profiles/default's
# `gpu=1` runs one such job at a time per GPU; none on CPU-only machines, where cores alone
# limit the jobs. Cluster profiles set the GPU request per rule themselves.
GPU_PER_JOB = int(torch.cuda.is_available())

DATA = config["data_dir"]
RUN = config["run"]
RESULTS = "results"
MODEL_DIR = "results/{dataset}/{arch}/{method}"
PRIMARY = config["report"]["table1_dataset"]


wildcard_constraints:
    dataset="|".join(re.escape(d) for d in DATASETS),
    arch=r"[A-Za-z0-9]+(?:-[A-Za-z0-9.]+)*",
    method=r"[a-z0-9_]+(?:-[A-Za-z0-9.+-]+)?",
    attack=r"[a-z0-9_]+",


def attacks_for(method):
    """The attacks evaluated for a training method (clean first)."""
    return ["clean"] + list(RUN["attacks"].get(method, []))


def outcome_files(wildcards):
    model_dir = MODEL_DIR.format(**wildcards)
    return {
        attack: f"{model_dir}/eval/{attack}.parquet" for attack in attacks_for(wildcards.method)
    }


def summaries(dataset):
    return [
        f"{RESULTS}/{dataset}/{arch}/{method}/summary.json"
        for arch in RUN["architectures"]
        for method in RUN["methods"]
    ]


def table1_name(dataset):
    return "table1" if dataset == PRIMARY else f"table1_{dataset}"


def all_targets():
    return [f"{RESULTS}/architectures.csv"] + [
        f"{RESULTS}/{table1_name(d)}.tex" for d in RUN["datasets"]
    ]


def archive_input(wildcards):
    spec = DATASETS[wildcards.dataset]
    return {} if spec.archive is None else {"archive": f"{DATA}/downloads/{spec.archive}"}


def train_settings(wildcards):
    return training_settings(config, wildcards.dataset, wildcards.arch, wildcards.method)


def eval_settings(wildcards):
    if wildcards.attack != "clean" and wildcards.attack not in config["attacks"]:
        raise WorkflowError(
            f"unknown attack {wildcards.attack!r}; configured attacks: "
            f"clean, {', '.join(sorted(config['attacks']))}"
        )
    return attack_settings(config, wildcards.attack, wildcards.dataset)


def checkpoint_dir(wildcards):
    return f"checkpoints/{wildcards.dataset}/{wildcards.arch}/{wildcards.method}"


def attack_state_path(wildcards):
    return f"{checkpoint_dir(wildcards)}/{wildcards.attack}.state"


def table1_dataset(wildcards):
    dataset = PRIMARY if wildcards.name == "table1" else wildcards.name[len("table1_"):]
    if dataset not in RUN["datasets"]:
        raise WorkflowError(
            f"results/{wildcards.name}.tex: dataset {dataset!r} is not in run.datasets"
        )
    return dataset


def table1_summaries(wildcards):
    return summaries(table1_dataset(wildcards))
