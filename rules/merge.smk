# Per-attack accuracy and the sample-wise worst case of each model.


rule merge_outcomes:
    input:
        unpack(outcome_files),
    output:
        summary=f"{MODEL_DIR}/summary.json",
    log:
        "logs/{dataset}/{arch}/{method}/merge.log",
    benchmark:
        "benchmarks/{dataset}/{arch}/{method}/merge.tsv"
    conda:
        "../envs/robustarch.yaml"
    params:
        worst_case=RUN["worst_case"],
    script:
        "../workflow/scripts/merge_outcomes.py"
