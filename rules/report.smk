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
