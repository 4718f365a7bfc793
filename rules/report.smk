# Tables in the paper's layout.


rule architectures_table:
    output:
        csv=f"{RESULTS}/architectures.csv",
    params:
        architectures=RUN["architectures"],
        datasets={
            d: {k: config["datasets"][d][k] for k in ("image_size", "num_classes")}
            for d in RUN["datasets"]
        },
        scale=config["scale"],
    log:
        "logs/report/architectures.log",
    benchmark:
        "benchmarks/report/architectures.tsv"
    conda:
        "../envs/robustarch.yaml"
    script:
        "../workflow/scripts/architectures_table.py"


rule table1:
    input:
        summaries=table1_summaries,
        architectures=f"{RESULTS}/architectures.csv",
    output:
        tex=f"{RESULTS}/{{name}}.tex",
        csv=f"{RESULTS}/{{name}}.csv",
    params:
        dataset=table1_dataset,
    wildcard_constraints:
        name=r"table1(?:_[a-z0-9]+)?",
    log:
        "logs/report/{name}.log",
    benchmark:
        "benchmarks/report/{name}.tsv"
    conda:
        "../envs/robustarch.yaml"
    script:
        "../workflow/scripts/table1.py"


rule study_table:
    input:
        summaries=study_table_summaries,
    output:
        tex=f"{RESULTS}/{{table}}.tex",
        csv=f"{RESULTS}/{{table}}.csv",
    params:
        spec=study_table_params,
    wildcard_constraints:
        table="|".join(STUDY_TABLES),
    log:
        "logs/report/{table}.log",
    benchmark:
        "benchmarks/report/{table}.tsv"
    conda:
        "../envs/robustarch.yaml"
    script:
        "../workflow/scripts/study_table.py"


rule figure3_l1_penalty:
    input:
        summaries=lambda w: study_summaries("l1_penalty"),
    output:
        pdf=f"{FIGURE3}.pdf",
        csv=f"{FIGURE3}.csv",
    params:
        arch=STUDIES.get("l1_penalty", {}).get("architecture"),
        strengths=STUDIES.get("l1_penalty", {}).get("lambdas"),
    log:
        "logs/report/figure3_l1_penalty.log",
    benchmark:
        "benchmarks/report/figure3_l1_penalty.tsv"
    conda:
        "../envs/robustarch.yaml"
    script:
        "../workflow/scripts/figure3_l1_penalty.py"
