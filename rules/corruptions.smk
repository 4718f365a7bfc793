# Table 4: accuracy under common corruptions (CIFAR-10-C and CIFAR-100-C downloaded;
# ImageNette-C and digits-C generated).
#
# {DATA}/{dataset}-c/{corruption}.pt holds the configured severities of one corruption. For a
# dataset whose module names a published "-C" archive it is decoded from it (all test
# images); for the other datasets it is generated from the prepared test split, from its first
# evaluation.num_samples images when that is set (the path does not say so: changing
# num_samples changes the rule's params, which makes Snakemake regenerate the file).


include: "corruptions_common.smk"


rule prepare_corruption:
    input:
        unpack(corruption_source),
    output:
        corruption=f"{DATA}/{{dataset}}-c/{{corruption}}.pt",
    log:
        "logs/data/prepare_{dataset}-c_{corruption}.log",
    benchmark:
        "benchmarks/data/prepare_{dataset}-c_{corruption}.tsv"
    wildcard_constraints:
        corruption="|".join(CORRUPTIONS),
    conda:
        "../envs/robustarch.yaml"
    threads: 1
    params:
        severities=CORRUPTION_STUDY["severities"],
        seed=corruption_seed,
        num_samples=corruption_num_samples,
    script:
        "../workflow/scripts/prepare_corruption.py"


# rule evaluate's {attack} would match eval/corruptions.parquet too (per_model's rules name
# their attacks).
if EVALUATION_JOBS == "per_attack":

    ruleorder: evaluate_corruptions > evaluate


rule evaluate_corruptions:
    input:
        model=f"{MODEL_DIR}/model.pt",
        corruptions=corruption_files,
    output:
        outcomes=f"{MODEL_DIR}/eval/corruptions.parquet",
    log:
        "logs/{dataset}/{arch}/{method}/eval_corruptions.log",
    benchmark:
        "benchmarks/{dataset}/{arch}/{method}/eval_corruptions.tsv"
    conda:
        "../envs/robustarch.yaml"
    threads: 1
    resources:
        gpu=GPU_PER_JOB,
        runtime=corruption_eval_runtime,  # minutes; these three size cluster jobs
        mem_mb=gpu_job_mem_mb,
        cpus_per_gpu=gpu_job_cpus,
    params:
        corruptions=CORRUPTION_STUDY["corruptions"],
        severities=CORRUPTION_STUDY["severities"],
        evaluation=EVALUATION,
        state_dir=corruption_state_dir,
    script:
        "../workflow/scripts/evaluate_corruptions.py"


rule table4:
    input:
        **table4_inputs(),
    output:
        tex=report(f"{RESULTS}/table4.tex", **TABLE4_REPORT),
        csv=report(f"{RESULTS}/table4.csv", **TABLE4_REPORT),
        html=report(f"{RESULTS}/table4.html", **TABLE4_REPORT),
        per_corruption=report(f"{RESULTS}/table4_per_corruption.csv", **TABLE4_REPORT),
    log:
        "logs/report/table4.log",
    benchmark:
        "benchmarks/report/table4.tsv"
    conda:
        "../envs/robustarch.yaml"
    params:
        models=corruption_models(),
        datasets=CORRUPTION_STUDY["datasets"],
    script:
        "../workflow/scripts/table4.py"
