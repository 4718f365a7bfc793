# Helpers of rules/corruptions.smk (kept apart: Snakemake's linter wants functions and
# rules in separate files).

from robustarch.data.registry import dataset_spec
from robustarch.data.sources import CORRUPTIONS

# studies.corruptions resolved (null datasets/architectures: those of run; the schema fills
# in the rest). Without the section no model is in Table 4 and none of its rules runs.
CORRUPTION_SECTION = config["studies"].get("corruptions")
CORRUPTION_STUDY = {
    "datasets": [],
    "architectures": [],
    "methods": [],
    "corruptions": [],
    "severities": [],
    "seed": None,
}
if CORRUPTION_SECTION is not None:
    CORRUPTION_STUDY = {
        **CORRUPTION_SECTION,
        "datasets": CORRUPTION_SECTION["datasets"] or RUN["datasets"],
        "architectures": CORRUPTION_SECTION["architectures"] or RUN["architectures"],
    }


def corruption_models():
    """(dataset, arch, method) of every model in Table 4."""
    return [
        (dataset, arch, method)
        for dataset in CORRUPTION_STUDY["datasets"]
        for arch in CORRUPTION_STUDY["architectures"]
        for method in CORRUPTION_STUDY["methods"]
    ]


def corruption_files(wildcards):
    """The configured corruption files of a dataset, in the configured order."""
    return [
        f"{DATA}/{wildcards.dataset}-c/{c}.pt" for c in CORRUPTION_STUDY["corruptions"]
    ]


def published_corruptions(dataset):
    """The dataset's published corrupted test set (its module's), or None: generated."""
    return dataset_spec(dataset).corruption_archive


def corruption_source(wildcards):
    archive = published_corruptions(wildcards.dataset)
    if archive is not None:
        return {"archive": f"{DATA}/downloads/{archive.name}"}
    return {"test": f"{DATA}/{wildcards.dataset}/test.pt"}


def corruption_num_samples(wildcards):
    # Published sets are decoded whole; evaluation takes the first num_samples of them.
    if published_corruptions(wildcards.dataset) is not None:
        return None
    return config["evaluation"]["num_samples"]


def corruption_seed(wildcards):
    # None for published sets, so that changing the seed does not decode them again.
    if published_corruptions(wildcards.dataset) is not None:
        return None
    return CORRUPTION_STUDY["seed"]


def corruption_state_dir(wildcards):
    return f"{checkpoint_dir(wildcards)}/corruptions"


def table4_inputs():
    models = [
        MODEL_DIR.format(dataset=d, arch=a, method=m) for d, a, m in corruption_models()
    ]
    return {
        "clean": [f"{m}/eval/clean.parquet" for m in models],
        "corruptions": [f"{m}/eval/corruptions.parquet" for m in models],
    }


def corruption_targets():
    return [f"{RESULTS}/table4.tex"] if CORRUPTION_SECTION is not None else []
