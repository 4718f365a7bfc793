# Tables in the paper's layout, the figures of rules/report.smk, the training curves and the
# run's configuration. Every table and figure is flagged for `snakemake --report report.html`
# (captions in report/, the report's front page report/workflow.rst).


report: "../report/workflow.rst"


rule architectures_table:
    output:
        csv=report(
            f"{RESULTS}/architectures.csv",
            caption="../report/architectures.rst",
            category="Tables",
            subcategory="Architectures",
        ),
    log:
        "logs/report/architectures.log",
    benchmark:
        "benchmarks/report/architectures.tsv"
    conda:
        "../envs/robustarch.yaml"
    params:
        architectures=RUN["architectures"],
        datasets={
            d: {k: config["datasets"][d][k] for k in ("image_size", "num_classes")}
            for d in RUN["datasets"]
        },
        scale=config["scale"],
    script:
        "../workflow/scripts/architectures_table.py"


rule table1:
    input:
        summaries=table1_summaries,
        architectures=f"{RESULTS}/architectures.csv",
    output:
        tex=report(f"{RESULTS}/{{name}}.tex", **TABLE1_REPORT),
        csv=report(f"{RESULTS}/{{name}}.csv", **TABLE1_REPORT),
        html=report(f"{RESULTS}/{{name}}.html", **TABLE1_REPORT),
    log:
        "logs/report/{name}.log",
    benchmark:
        "benchmarks/report/{name}.tsv"
    wildcard_constraints:
        name=r"table1(?:_(?!strong)[a-z0-9]+)?",
    conda:
        "../envs/robustarch.yaml"
    params:
        dataset=table1_dataset,
    script:
        "../workflow/scripts/table1.py"


# The two protocols side by side (beyond the paper): Table 1's adversarially trained models
# under the strong attacks, their worst case over every attack, ranks and rank correlations.
rule table1_strong:
    input:
        summaries=table1_summaries,
        architectures=f"{RESULTS}/architectures.csv",
    output:
        tex=report(f"{RESULTS}/{{name}}.tex", **STRONG_REPORT),
        csv=report(f"{RESULTS}/{{name}}.csv", **STRONG_REPORT),
        html=report(f"{RESULTS}/{{name}}.html", **STRONG_REPORT),
    log:
        "logs/report/{name}.log",
    benchmark:
        "benchmarks/report/{name}.tsv"
    wildcard_constraints:
        name=r"table1_strong(?:_[a-z0-9]+)?",
    conda:
        "../envs/robustarch.yaml"
    params:
        dataset=table1_dataset,
        strong_attacks=RUN["strong_attacks"],
        counterparts=strong_counterparts(),
    script:
        "../workflow/scripts/table1_strong.py"


rule study_table:
    input:
        summaries=study_table_summaries,
    output:
        tex=report(f"{RESULTS}/{{table}}.tex", **STUDY_REPORT),
        csv=report(f"{RESULTS}/{{table}}.csv", **STUDY_REPORT),
        html=report(f"{RESULTS}/{{table}}.html", **STUDY_REPORT),
    log:
        "logs/report/{table}.log",
    benchmark:
        "benchmarks/report/{table}.tsv"
    wildcard_constraints:
        table="|".join(STUDY_TABLES),
    conda:
        "../envs/robustarch.yaml"
    params:
        spec=study_table_params,
    script:
        "../workflow/scripts/study_table.py"


rule figure3_l1_penalty:
    input:
        summaries=lambda w: study_summaries("l1_penalty"),
    output:
        pdf=report(f"{FIGURE3}.pdf", **FIGURE3_REPORT),
        png=report(f"{FIGURE3}.png", **FIGURE3_REPORT),
        csv=report(f"{FIGURE3}.csv", **FIGURE3_REPORT),
    log:
        "logs/report/figure3_l1_penalty.log",
    benchmark:
        "benchmarks/report/figure3_l1_penalty.tsv"
    conda:
        "../envs/robustarch.yaml"
    params:
        arch=STUDIES.get("l1_penalty", {}).get("architecture"),
        strengths=STUDIES.get("l1_penalty", {}).get("lambdas"),
    script:
        "../workflow/scripts/figure3_l1_penalty.py"


# Training loss and accuracy per epoch of every model the run trains, one figure per dataset and
# method, a panel per architecture.
rule training_curves:
    input:
        metrics=training_metrics,
    output:
        pdf=report(f"{TRAINING_FIGURES}/{{dataset}}/{{method}}.pdf", **TRAINING_REPORT),
        png=report(f"{TRAINING_FIGURES}/{{dataset}}/{{method}}.png", **TRAINING_REPORT),
    log:
        "logs/report/training_{dataset}_{method}.log",
    benchmark:
        "benchmarks/report/training_{dataset}_{method}.tsv"
    conda:
        "../envs/robustarch.yaml"
    params:
        architectures=training_architectures,
    script:
        "../workflow/scripts/training_curves.py"


# The configuration that produced the results: validated, every default filled in.
rule run_config:
    output:
        yaml=report(
            f"{RESULTS}/config.yaml",
            caption="../report/config.rst",
            category="Configuration",
        ),
    log:
        "logs/report/config.log",
    benchmark:
        "benchmarks/report/config.tsv"
    conda:
        "../envs/robustarch.yaml"
    params:
        config=config,
    script:
        "../workflow/scripts/run_config.py"
