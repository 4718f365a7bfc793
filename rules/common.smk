# Helpers shared by the rules: config validation, target lists, per-job parameters.

import re
from pathlib import Path

from robustarch.config import ConfigError, load_schema, validate_config
from robustarch.data.registry import archives, dataset_spec, list_datasets
from robustarch.models.catalog import list_models, model_info
from robustarch.report.names import paper_order
from robustarch.runtime import cuda_available
from robustarch.settings import (
    analysis_settings,
    attack_settings,
    METHOD_PATTERNS,
    evaluated_attacks,
    evaluation_settings,
    l1_method,
    parse_method,
    training_settings,
)

try:
    _validated = validate_config(
        config,
        load_schema(
            Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
        ),
        known_architectures=list_models(),
    )
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None
config.clear()
config.update(_validated)

# A GPU slot per training/evaluation job where this machine has CUDA, so that profiles/default's
# `gpu=1` runs one such job at a time per GPU; none on CPU-only machines, where cores alone
# limit the jobs. Cluster profiles set the GPU request per rule themselves.
GPU_PER_JOB = int(cuda_available())

DATA = config["data_dir"]
# Every archive rule download_archive may fetch (the datasets' and their published "-C" sets).
ARCHIVES = archives()
RUN = config["run"]
RESULTS = "results"
MODEL_DIR = "results/{dataset}/{arch}/{method}"
PRIMARY = config["report"]["table1_dataset"]
EVALUATION = evaluation_settings(config)
EVALUATION_JOBS = config["evaluation"]["jobs"]
ANALYSIS_SETTINGS = analysis_settings(config)


wildcard_constraints:
    dataset="|".join(re.escape(d) for d in list_datasets()),
    arch=r"[A-Za-z0-9]+(?:-[A-Za-z0-9.]+)*",
    method=r"[a-z0-9_]+(?:-[A-Za-z0-9.+-]+)?",
    attack=r"[a-z0-9_]+",


def attacks_for(method):
    """The attacks evaluated for a model of ``method``, clean first (see
    robustarch.settings.evaluated_attacks)."""
    return evaluated_attacks(RUN, method)


def outcome_files(wildcards):
    model_dir = MODEL_DIR.format(**wildcards)
    return {
        attack: f"{model_dir}/eval/{attack}.parquet"
        for attack in attacks_for(wildcards.method)
    }


def summaries(dataset):
    return [
        f"{RESULTS}/{dataset}/{arch}/{method}/summary.json"
        for arch in RUN["architectures"]
        for method in RUN["methods"]
    ]


def table1_name(dataset, protocol=""):
    """results/table1{protocol}[_<dataset>]: the primary dataset's table has no suffix."""
    name = f"table1{protocol}"
    return name if dataset == PRIMARY else f"{name}_{dataset}"


def strong_counterparts():
    """Each strong attack's paper counterpart: the paper attack (run.worst_case) of its norm,
    a PGD one where there are several (pgd_linf for pgd_linf_es, not aa_linf)."""
    paper = [a for a in RUN["worst_case"] if a in config["attacks"]]
    pairs = {}
    for strong in RUN["strong_attacks"]:
        norm = config["attacks"][strong]["norm"]
        same = [a for a in paper if config["attacks"][a]["norm"] == norm]
        same.sort(key=lambda a: config["attacks"][a]["kind"] != "pgd")
        if same:
            pairs[strong] = same[0]
    return pairs


def strong_targets():
    if not RUN["strong_attacks"]:
        return []
    return [f"{RESULTS}/{table1_name(d, '_strong')}.tex" for d in RUN["datasets"]]


STUDIES = config["studies"]
# Study tables (see the study_table rule): output name -> study section.
STUDY_TABLES = {
    "table2": "coatnet_layouts",
    "table3": "patch_size",
    "table_activation": "activation",
    "table_trades": "trades",
}
FIGURE3 = f"{RESULTS}/figures/figure3_l1_penalty"


def summary_path(dataset, arch, method):
    return f"{RESULTS}/{dataset}/{arch}/{method}/summary.json"


def study_models(study):
    """(architecture, method) pairs a study trains and evaluates."""
    spec = STUDIES[study]
    if study == "trades":
        return [(arch, "trades") for arch in spec["architectures"]]
    if study == "l1_penalty":
        return [(spec["architecture"], l1_method(s)) for s in spec["lambdas"]]
    archs = spec["architectures"]
    if study == "activation":
        archs = [name for arch in archs for name in (arch, f"{arch}-relu")]
    return [(arch, method) for arch in archs for method in spec["methods"]]


def study_summaries(study):
    dataset = STUDIES[study]["dataset"]
    return [summary_path(dataset, arch, method) for arch, method in study_models(study)]


def study_table_summaries(wildcards):
    return study_summaries(STUDY_TABLES[wildcards.table])


def study_table_params(wildcards):
    study = STUDY_TABLES[wildcards.table]
    spec = STUDIES[study]
    return {
        "study": study,
        "dataset": spec["dataset"],
        "architectures": spec["architectures"],
    }


def study_targets():
    targets = [
        f"{RESULTS}/{table}.tex"
        for table, study in STUDY_TABLES.items()
        if study in STUDIES
    ]
    if "l1_penalty" in STUDIES:
        targets.append(f"{FIGURE3}.pdf")
    return targets


# Where each output appears in `snakemake --report` (report() flags of the rules; captions in
# report/, paths relative to rules/).
TABLE1_REPORT = dict(
    caption="../report/table1.rst", category="Tables", subcategory="Table 1"
)
STRONG_REPORT = dict(
    caption="../report/table1_strong.rst",
    category="Tables",
    subcategory="Strong protocol",
)
STUDY_TITLES = {
    "table2": "Table 2: CoAtNet stage layouts",
    "table3": "Table 3: patch size",
    "table_activation": "Activation: GELU vs ReLU",
    "table_trades": "TRADES",
}


def study_report_title(wildcards):
    return STUDY_TITLES[wildcards.table]


STUDY_REPORT = dict(
    caption="../report/study_table.rst",
    category="Tables",
    subcategory=study_report_title,
)
FIGURE3_REPORT = dict(
    caption="../report/figure3.rst",
    category="Figures",
    subcategory="Figure 3: l1 penalty",
)
FIGURE_TITLES = {
    "figure1": "Figure 1: weight sparsity",
    "figure2": "Figure 2: CoAtNet components",
    "figure4": "Figure 4: loss landscape",
    "sparsity_scatter": "Sparsity vs worst case",
}


def figure_report(figure):
    """report() arguments of a figure's files (caption report/<figure>.rst)."""
    return dict(
        caption=f"../report/{figure}.rst",
        category="Figures",
        subcategory=FIGURE_TITLES[figure],
    )


ANALYSIS_REPORT = dict(
    caption="../report/analysis.rst", category="Tables", subcategory="Analyses"
)
TABLE4_REPORT = dict(
    caption="../report/table4.rst", category="Tables", subcategory="Table 4"
)
TRAINING_REPORT = dict(
    caption="../report/training.rst", category="Training", subcategory="{dataset}"
)
TRAINING_FIGURES = f"{RESULTS}/figures/training"


def trained_models():
    """(dataset, arch, method) of every model the run trains: Table 1's, the studies', Table
    4's and the analysed ones, each once."""
    models = [
        (dataset, arch, method)
        for dataset in RUN["datasets"]
        for arch in RUN["architectures"]
        for method in RUN["methods"]
    ]
    for study in STUDIES:
        if study != "corruptions":
            dataset = STUDIES[study]["dataset"]
            models += [(dataset, arch, method) for arch, method in study_models(study)]
    models += corruption_models()
    models += [(ANALYSIS_DATASET, arch, method) for arch, method in analysis_models()]
    return list(dict.fromkeys(models))


def training_architectures(wildcards):
    """The architectures of one training-curves figure, in the paper's order."""
    archs = [
        arch
        for dataset, arch, method in trained_models()
        if (dataset, method) == (wildcards.dataset, wildcards.method)
    ]
    if not archs:
        raise WorkflowError(
            f"{TRAINING_FIGURES}/{wildcards.dataset}/{wildcards.method}.pdf: the run trains "
            f"no {wildcards.method} model on {wildcards.dataset}"
        )
    return sorted(archs, key=paper_order)


def training_metrics(wildcards):
    return [
        f"{RESULTS}/{wildcards.dataset}/{arch}/{wildcards.method}/metrics.csv"
        for arch in training_architectures(wildcards)
    ]


def training_targets():
    groups = dict.fromkeys((d, m) for d, _, m in trained_models())
    return [f"{TRAINING_FIGURES}/{d}/{m}.pdf" for d, m in groups]


def all_targets():
    return (
        [f"{RESULTS}/architectures.csv", f"{RESULTS}/config.yaml"]
        + [f"{RESULTS}/{table1_name(d)}.tex" for d in RUN["datasets"]]
        + strong_targets()
        + study_targets()
        + corruption_targets()
        + analysis_targets()
        + training_targets()
        + [f"{RESULTS}/scorecard.md"]
    )


def archive_input(wildcards):
    source = dataset_spec(wildcards.dataset).archive
    return {} if source is None else {"archive": f"{DATA}/downloads/{source.name}"}


def train_settings(wildcards):
    return training_settings(
        config, wildcards.dataset, wildcards.arch, wildcards.method
    )


def eval_settings(wildcards):
    if wildcards.attack != "clean" and wildcards.attack not in config["attacks"]:
        raise WorkflowError(
            f"unknown attack {wildcards.attack!r}; configured attacks: "
            f"clean, {', '.join(sorted(config['attacks']))}"
        )
    return attack_settings(config, wildcards.attack, wildcards.dataset)


def model_eval_settings(wildcards):
    """The settings of every attack a per_model evaluation job runs, by name."""
    return {
        attack: attack_settings(config, attack, wildcards.dataset)
        for attack in attacks_for(wildcards.method)
    }


def checkpoint_dir(wildcards):
    return f"checkpoints/{wildcards.dataset}/{wildcards.arch}/{wildcards.method}"


def attack_state_path(wildcards):
    return f"{checkpoint_dir(wildcards)}/{wildcards.attack}.state"


def table1_dataset(wildcards):
    """The dataset of results/table1[_strong][_<dataset>].tex."""
    stem = "table1_strong" if wildcards.name.startswith("table1_strong") else "table1"
    dataset = wildcards.name[len(stem) + 1 :] or PRIMARY
    if dataset not in RUN["datasets"]:
        raise WorkflowError(
            f"results/{wildcards.name}.tex: dataset {dataset!r} is not in run.datasets"
        )
    return dataset


def table1_summaries(wildcards):
    return summaries(table1_dataset(wildcards))


# The scorecard (rules/scorecard.smk). Its helpers call those of analyse_common.smk and
# corruptions_common.smk, which the Snakefile includes before rules/scorecard.smk.


def scorecard_models():
    """(dataset, arch, method) of every model whose outcomes the scorecard reads: Table 1's on
    report.table1_dataset, the studies', the analysis table's, and the PGD-linf twins of the
    TRADES study's architectures where the workflow trains them anyway."""
    models = [(PRIMARY, a, m) for a in RUN["architectures"] for m in RUN["methods"]]
    for study in STUDIES:
        if study != "corruptions":
            models += [
                (STUDIES[study]["dataset"], a, m) for a, m in study_models(study)
            ]
    models += [(ANALYSIS_DATASET, a, m) for a, m in table_models()]
    if "trades" in STUDIES:
        dataset = STUDIES["trades"]["dataset"]
        trained = set(models) | {
            (d, a, m)
            for d in RUN["datasets"]
            for a in RUN["architectures"]
            for m in RUN["methods"]
        }
        models += [
            (dataset, a, "pgd_linf")
            for a in STUDIES["trades"]["architectures"]
            if (dataset, a, "pgd_linf") in trained
        ]
    return list(dict.fromkeys(models))


def scorecard_inputs():
    models = scorecard_models()
    outcomes = [
        f"{MODEL_DIR.format(dataset=d, arch=a, method=m)}/eval/{attack}.parquet"
        for d, a, m in models
        for attack in attacks_for(m)
    ]
    corrupted = table4_inputs()
    return {
        "summaries": [summary_path(*model) for model in models],
        "outcomes": list(dict.fromkeys(outcomes + corrupted["clean"])),
        "corruptions": corrupted["corruptions"],
        "sparsity": f"{RESULTS}/sparsity.csv",
        "landscape": f"{RESULTS}/landscape.csv",
    }


def scorecard_spec():
    """What the scorecard's checks need to know of the configuration (see
    robustarch.report.scorecard.build_scorecard)."""
    corruptions = None
    if CORRUPTION_SECTION is not None:
        corruptions = {
            key: CORRUPTION_STUDY[key]
            for key in ("datasets", "architectures", "methods")
        }
    archs = {a for _, a, _ in scorecard_models() + corruption_models()}
    return {
        "dataset": PRIMARY,
        "architectures": RUN["architectures"],
        "studies": {n: dict(s) for n, s in STUDIES.items() if n != "corruptions"},
        "corruptions": corruptions,
        "analysis": {
            "dataset": ANALYSIS_DATASET,
            "models": [list(model) for model in table_models()],
        },
        "attack_norms": {name: a["norm"] for name, a in config["attacks"].items()},
        "categories": {a: model_info(a).category for a in sorted(archs)},
    }
