# Helpers of rules/analyse.smk (kept apart: Snakemake's linter wants functions and rules in
# separate files): which models are analysed, the targets, and per-job settings.

from robustarch.models.catalog import model_info

ANALYSIS = config["analysis"]
ANALYSIS_DATASET = ANALYSIS["dataset"]
FIGURES = f"{RESULTS}/figures"
FIGURE4_METHODS = [
    "vanilla",
    "pgd_linf",
]  # the paper's Fig. 4: standard and PGD-linf training
ANALYSIS_KINDS = ["sparsity", "landscape", "lipschitz"]
ANALYSIS_FILES = {
    "sparsity": "sparsity.json",
    "landscape": "landscape.npz",
    "lipschitz": "lipschitz.json",
}


def analysis_architectures():
    return ANALYSIS["architectures"] or RUN["architectures"]


def _unique(pairs):
    return list(dict.fromkeys(pairs))


def table_models():
    """(arch, method) rows of results/table_analysis.tex and the scatter figure."""
    return [(a, m) for a in analysis_architectures() for m in ANALYSIS["methods"]]


def analysis_summaries():
    """summary.json (worst-case accuracy) of every table model."""
    return [
        f"{RESULTS}/{ANALYSIS_DATASET}/{a}/{m}/summary.json" for a, m in table_models()
    ]


def figure1_models():
    return [
        (a, m)
        for a in ANALYSIS["sparsity"].get("figure1", [])
        for m in ANALYSIS["methods"]
    ]


def figure2_models():
    return [
        (a, m)
        for a in ANALYSIS["sparsity"].get("figure2", [])
        for m in ANALYSIS["methods"]
    ]


def figure4_models():
    return [
        (a, m)
        for a in ANALYSIS["landscape"].get("figure4", [])
        for m in FIGURE4_METHODS
    ]


def analysis_models():
    """Every analysed (arch, method) on analysis.dataset; each gets all three analyses."""
    return _unique(
        table_models() + figure1_models() + figure2_models() + figure4_models()
    )


def analysis_files(kind, models=None):
    return [
        f"{RESULTS}/{ANALYSIS_DATASET}/{arch}/{method}/{ANALYSIS_FILES[kind]}"
        for arch, method in (analysis_models() if models is None else models)
    ]


def analysis_targets():
    targets = [f"{RESULTS}/{kind}.csv" for kind in ANALYSIS_KINDS]
    targets += [
        f"{RESULTS}/table_analysis.tex",
        f"{FIGURES}/sparsity_vs_worst_case.pdf",
    ]
    if figure1_models():
        targets.append(f"{FIGURES}/figure1_sparsity.pdf")
    if figure2_models():
        targets.append(f"{FIGURES}/figure2_coatnet_components.pdf")
    if figure4_models():
        targets.append(f"{FIGURES}/figure4_landscape.pdf")
    return targets


def analysis_categories():
    return {arch: model_info(arch).category for arch, _ in analysis_models()}
