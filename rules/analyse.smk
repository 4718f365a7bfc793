# Analyses of trained models (config "analysis"; docs/analysis.md): weight sparsity (paper
# Figs. 1-2), weight loss landscape (Fig. 4) and local Lipschitz constant, per model, then
# CSVs, results/table_analysis.tex and the figures. analysis_targets() lists every output.
#
# One job per model runs all three analyses: each is a second or two on the demo's tiny
# models, less than a job's start-up (Python, torch, the model registry).


include: "analyse_common.smk"


rule analyse_model:
    input:
        model=f"{MODEL_DIR}/model.pt",
        train=f"{DATA}/{{dataset}}/train.pt",
        test=f"{DATA}/{{dataset}}/test.pt",
    output:
        sparsity=f"{MODEL_DIR}/sparsity.json",
        landscape=f"{MODEL_DIR}/landscape.npz",
        lipschitz=f"{MODEL_DIR}/lipschitz.json",
    log:
        "logs/{dataset}/{arch}/{method}/analyse.log",
    benchmark:
        "benchmarks/{dataset}/{arch}/{method}/analyse.tsv"
    conda:
        "../envs/robustarch.yaml"
    threads: 1
    resources:
        gpu=GPU_PER_JOB,
        runtime=analysis_runtime,  # minutes; these three size cluster jobs
        mem_mb=gpu_job_mem_mb,
        cpus_per_gpu=gpu_job_cpus,
    params:
        settings=ANALYSIS_SETTINGS,
    script:
        "../workflow/scripts/analyse_model.py"


rule analysis_csv:
    input:
        files=lambda w: analysis_files(w.kind),
    output:
        csv=report(f"{RESULTS}/{{kind}}.csv", **ANALYSIS_REPORT),
    log:
        "logs/analysis/{kind}_csv.log",
    benchmark:
        "benchmarks/analysis/{kind}_csv.tsv"
    wildcard_constraints:
        kind="|".join(ANALYSIS_KINDS),
    conda:
        "../envs/robustarch.yaml"
    script:
        "../workflow/scripts/analysis_csv.py"


rule table_analysis:
    input:
        sparsity=f"{RESULTS}/sparsity.csv",
        landscape=f"{RESULTS}/landscape.csv",
        lipschitz=f"{RESULTS}/lipschitz.csv",
        summaries=analysis_summaries(),
    output:
        tex=report(f"{RESULTS}/table_analysis.tex", **ANALYSIS_REPORT),
        csv=report(f"{RESULTS}/table_analysis.csv", **ANALYSIS_REPORT),
        html=report(f"{RESULTS}/table_analysis.html", **ANALYSIS_REPORT),
    log:
        "logs/analysis/table_analysis.log",
    benchmark:
        "benchmarks/analysis/table_analysis.tsv"
    conda:
        "../envs/robustarch.yaml"
    params:
        dataset=ANALYSIS_DATASET,
        models=[list(model) for model in table_models()],
        categories=analysis_categories(),
    script:
        "../workflow/scripts/table_analysis.py"


rule figure1_sparsity:
    input:
        reports=analysis_files("sparsity", figure1_models()),
    output:
        pdf=report(f"{FIGURES}/figure1_sparsity.pdf", **figure_report("figure1")),
        png=report(f"{FIGURES}/figure1_sparsity.png", **figure_report("figure1")),
    log:
        "logs/analysis/figure1_sparsity.log",
    benchmark:
        "benchmarks/analysis/figure1_sparsity.tsv"
    conda:
        "../envs/robustarch.yaml"
    script:
        "../workflow/scripts/figure1_sparsity.py"


rule figure2_components:
    input:
        reports=analysis_files("sparsity", figure2_models()),
    output:
        pdf=report(
            f"{FIGURES}/figure2_coatnet_components.pdf", **figure_report("figure2")
        ),
        png=report(
            f"{FIGURES}/figure2_coatnet_components.png", **figure_report("figure2")
        ),
    log:
        "logs/analysis/figure2_components.log",
    benchmark:
        "benchmarks/analysis/figure2_components.tsv"
    conda:
        "../envs/robustarch.yaml"
    script:
        "../workflow/scripts/figure2_components.py"


rule figure4_landscape:
    input:
        landscapes=analysis_files("landscape", figure4_models()),
    output:
        pdf=report(f"{FIGURES}/figure4_landscape.pdf", **figure_report("figure4")),
        png=report(f"{FIGURES}/figure4_landscape.png", **figure_report("figure4")),
    log:
        "logs/analysis/figure4_landscape.log",
    benchmark:
        "benchmarks/analysis/figure4_landscape.tsv"
    conda:
        "../envs/robustarch.yaml"
    params:
        architectures=ANALYSIS["landscape"].get("figure4", []),
        methods=FIGURE4_METHODS,
    script:
        "../workflow/scripts/figure4_landscape.py"


rule figure_sparsity_scatter:
    input:
        table=f"{RESULTS}/table_analysis.csv",
    output:
        pdf=report(
            f"{FIGURES}/sparsity_vs_worst_case.pdf",
            **figure_report("sparsity_scatter"),
        ),
        png=report(
            f"{FIGURES}/sparsity_vs_worst_case.png",
            **figure_report("sparsity_scatter"),
        ),
    log:
        "logs/analysis/sparsity_vs_worst_case.log",
    benchmark:
        "benchmarks/analysis/sparsity_vs_worst_case.tsv"
    conda:
        "../envs/robustarch.yaml"
    script:
        "../workflow/scripts/figure_sparsity_scatter.py"
