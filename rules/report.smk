# Tables in the paper's layout.


rule architectures_table:
    output:
        csv=f"{RESULTS}/architectures.csv",
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
        tex=f"{RESULTS}/{{name}}.tex",
        csv=f"{RESULTS}/{{name}}.csv",
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
        tex=f"{RESULTS}/{{name}}.tex",
        csv=f"{RESULTS}/{{name}}.csv",
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
        tex=f"{RESULTS}/{{table}}.tex",
        csv=f"{RESULTS}/{{table}}.csv",
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
        pdf=f"{FIGURE3}.pdf",
        csv=f"{FIGURE3}.csv",
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
