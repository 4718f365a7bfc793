# Helpers of rules/plan.smk (kept apart: Snakemake's linter wants functions and rules in
# separate files): every job `snakemake` runs for the configured targets, built from the same
# target helpers as rule all, and what each costs (rules/resources.smk's model).

from types import SimpleNamespace

from robustarch.models.flops import FLOPS_PATH
from robustarch.workflow.costs import PER_MODEL_EVALUATION, allocations

# The output groups a job is attributed to, in this order (a job several need counts for the
# first): Table 1 per dataset, the studies, Table 4, the analyses.
STUDY_GROUPS = {
    "table2": "Table 2 (CoAtNet layouts)",
    "table3": "Table 3 (patch size)",
    "table_activation": "activation study",
    "table_trades": "TRADES study",
}
RUNTIME_FUNCTIONS = {
    "train": train_runtime,
    "evaluate": eval_runtime,
    "evaluate_corruptions": corruption_eval_runtime,
    "analyse_model": analysis_runtime,
}


def _runtime_function(rule):
    if rule.startswith(PER_MODEL_EVALUATION):
        return eval_model_runtime
    return RUNTIME_FUNCTIONS[rule]


def _data_jobs(dataset):
    source = dataset_spec(dataset).archive
    jobs = [] if source is None else [("download_archive", {"archive": source.name})]
    return jobs + [("prepare_dataset", {"dataset": dataset})]


def _model_jobs(dataset, arch, method, attacks=None, merge=True):
    """Training, the evaluations (default: every attack of the method) and the merge."""
    model = {"dataset": dataset, "arch": arch, "method": method}
    jobs = [("train", model)]
    attacks = attacks_for(method) if attacks is None else attacks
    if EVALUATION_JOBS == "per_model" and attacks:  # one job evaluates them all
        jobs.append((f"{PER_MODEL_EVALUATION}{parse_method(method)[0]}", model))
    else:
        jobs += [("evaluate", {**model, "attack": attack}) for attack in attacks]
    return jobs + ([("merge_outcomes", model)] if merge else [])


def _table1_jobs(dataset, first):
    jobs = _data_jobs(dataset) + [("architectures_table", {})] * first
    for arch in RUN["architectures"]:
        for method in RUN["methods"]:
            jobs += _model_jobs(dataset, arch, method)
    jobs.append(("table1", {"name": table1_name(dataset)}))
    if RUN["strong_attacks"]:
        jobs.append(("table1_strong", {"name": table1_name(dataset, "_strong")}))
    return jobs


def _study_jobs(study, report_job):
    jobs = _data_jobs(STUDIES[study]["dataset"])
    for arch, method in study_models(study):
        jobs += _model_jobs(STUDIES[study]["dataset"], arch, method)
    return jobs + [report_job]


def _table4_jobs():
    jobs = []
    for dataset in CORRUPTION_STUDY["datasets"]:
        jobs += _data_jobs(dataset)
        archive = published_corruptions(dataset)
        if archive is not None:
            jobs.append(("download_archive", {"archive": archive.name}))
        for corruption in CORRUPTION_STUDY["corruptions"]:
            jobs.append(
                ("prepare_corruption", {"dataset": dataset, "corruption": corruption})
            )
    for dataset, arch, method in corruption_models():
        model = {"dataset": dataset, "arch": arch, "method": method}
        jobs += _model_jobs(dataset, arch, method, ["clean"], merge=False)
        jobs.append(("evaluate_corruptions", model))
    return jobs + [("table4", {})]


def _analysis_jobs():
    jobs = _data_jobs(ANALYSIS_DATASET)
    for arch, method in analysis_models():
        jobs += _model_jobs(ANALYSIS_DATASET, arch, method, [], merge=False)
        jobs.append(
            (
                "analyse_model",
                {"dataset": ANALYSIS_DATASET, "arch": arch, "method": method},
            )
        )
    for arch, method in table_models():
        jobs += _model_jobs(ANALYSIS_DATASET, arch, method)
    jobs += [("analysis_csv", {"kind": kind}) for kind in ANALYSIS_KINDS]
    jobs += [("table_analysis", {}), ("figure_sparsity_scatter", {})]
    figures = {
        "figure1_sparsity": figure1_models(),
        "figure2_components": figure2_models(),
        "figure4_landscape": figure4_models(),
    }
    return jobs + [(rule, {}) for rule, models in figures.items() if models]


def plan_groups():
    """(group, jobs) for every output of rule all, in attribution order."""
    groups = [
        (f"Table 1 ({d})", _table1_jobs(d, i == 0))
        for i, d in enumerate(RUN["datasets"])
    ]
    for table, study in STUDY_TABLES.items():
        if study in STUDIES:
            groups.append(
                (
                    STUDY_GROUPS[table],
                    _study_jobs(study, ("study_table", {"table": table})),
                )
            )
    if "l1_penalty" in STUDIES:
        groups.append(
            (
                "Figure 3 (l1 penalty)",
                _study_jobs("l1_penalty", ("figure3_l1_penalty", {})),
            )
        )
    if CORRUPTION_SECTION is not None:
        groups.append(("Table 4 (corruptions)", _table4_jobs()))
    # The report's jobs only read what the groups above write.
    report_jobs = [("run_config", {}), ("scorecard", {})]
    report_jobs += [
        ("training_curves", {"dataset": d, "method": m})
        for d, m in dict.fromkeys((d, m) for d, _, m in trained_models())
    ]
    return groups + [("analyses", _analysis_jobs()), ("report", report_jobs)]


def _done(rule, wildcards):
    """Whether every output of the job exists (then `snakemake` runs it only when a rerun
    trigger says so)."""
    outputs = getattr(rules, rule).output
    return all(Path(pattern.format(**wildcards)).exists() for pattern in outputs)


def _job_row(rule, wildcards, groups):
    row = {
        "rule": rule,
        "wildcards": wildcards,
        "groups": groups,
        "done": _done(rule, wildcards),
    }
    cost = COSTS.job(rule, wildcards)
    if cost is not None:
        row.update(
            flops=cost.flops,
            gpu_seconds=cost.seconds,
            flops_per_s=cost.flops_per_s,
            resumable=cost.resumable,
            runtime_min=_runtime_function(rule)(SimpleNamespace(**wildcards)),
            allocations=allocations(
                cost.seconds, safety=SAFETY, startup=STARTUP_MIN, cap=MAX_RUNTIME_MIN
            ),
        )
    return row


def plan_jobs(wildcards):
    """One row per job of the all target: its rule and wildcards, the groups needing it (the
    first is the one it is attributed to), whether it is done, and for GPU jobs the cost and
    the request."""
    found = {}
    for group, jobs in plan_groups():
        for rule, job_wildcards in jobs:
            key = (rule, tuple(sorted(job_wildcards.items())))
            found.setdefault(key, (rule, job_wildcards, []))[2].append(group)
    return [
        _job_row(rule, w, list(dict.fromkeys(groups)))
        for rule, w, groups in found.values()
    ]


def plan_settings(wildcards):
    return {
        "safety": SAFETY,
        "startup_min": STARTUP_MIN,
        "min_runtime_min": MIN_RUNTIME_MIN,
        "max_runtime_min": MAX_RUNTIME_MIN,
        "throughput": COSTS.throughput.source,
        "flops_current": COSTS.flops.current,
        "scale": config["scale"],
    }


def plan_inputs(wildcards):
    """The counts, and the calibration where there is one: a new one replans."""
    inputs = {"flops": str(FLOPS_PATH)}
    if Path(GPU_CALIBRATION).exists():
        inputs["calibration"] = GPU_CALIBRATION
    return inputs
