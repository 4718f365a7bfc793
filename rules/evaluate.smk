# Evaluate one model under one attack; one row per test sample.


rule evaluate:
    input:
        model=f"{MODEL_DIR}/model.pt",
        test=f"{DATA}/{{dataset}}/test.pt",
    output:
        outcomes=f"{MODEL_DIR}/eval/{{attack}}.parquet",
    log:
        "logs/{dataset}/{arch}/{method}/eval_{attack}.log",
    benchmark:
        "benchmarks/{dataset}/{arch}/{method}/eval_{attack}.tsv"
    conda:
        "../envs/robustarch.yaml"
    threads: 1
    resources:
        gpu=GPU_PER_JOB,
        runtime=eval_runtime,  # minutes; these three size cluster jobs (rules/resources.smk)
        mem_mb=gpu_job_mem_mb,
        cpus_per_gpu=gpu_job_cpus,
    params:
        attack=eval_settings,
        evaluation=EVALUATION,
        state_path=attack_state_path,
    script:
        "../workflow/scripts/evaluate.py"
