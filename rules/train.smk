# Train one model per (dataset, architecture, method).


rule train:
    input:
        train=f"{DATA}/{{dataset}}/train.pt",
        test=f"{DATA}/{{dataset}}/test.pt",
    output:
        model=f"{MODEL_DIR}/model.pt",
        metrics=f"{MODEL_DIR}/metrics.csv",
    log:
        "logs/{dataset}/{arch}/{method}/train.log",
    benchmark:
        "benchmarks/{dataset}/{arch}/{method}/train.tsv"
    conda:
        "../envs/robustarch.yaml"
    threads: 1
    resources:
        gpu=GPU_PER_JOB,
        runtime=train_runtime,  # minutes; these three size cluster jobs (rules/resources.smk)
        mem_mb=gpu_job_mem_mb,
        cpus_per_gpu=gpu_job_cpus,
    params:
        settings=train_settings,
        # Checkpoints are no declared output: Snakemake deletes a failed job's outputs.
        checkpoint_dir=checkpoint_dir,
    script:
        "../workflow/scripts/train.py"
