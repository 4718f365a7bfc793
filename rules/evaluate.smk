# Evaluate the trained models: one row per test sample and attack. evaluation.jobs: per_attack
# runs one job per model and attack (rule evaluate), per_model one job per model
# (rules evaluate_model_<method>, one per training method, whose attacks differ).


if EVALUATION_JOBS == "per_attack":

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

else:

    for _method, _pattern in METHOD_PATTERNS.items():

        rule:
            name:
                f"evaluate_model_{_method}"
            input:
                model=f"{MODEL_DIR}/model.pt",
                test=f"{DATA}/{{dataset}}/test.pt",
            output:
                **{
                    attack: f"{MODEL_DIR}/eval/{attack}.parquet"
                    for attack in attacks_for(_method)
                },
            log:
                "logs/{dataset}/{arch}/{method}/eval.log",
            benchmark:
                "benchmarks/{dataset}/{arch}/{method}/eval.tsv"
            wildcard_constraints:
                method=_pattern,
            conda:
                "../envs/robustarch.yaml"
            threads: 1
            resources:
                gpu=GPU_PER_JOB,
                runtime=eval_model_runtime,
                mem_mb=gpu_job_mem_mb,
                cpus_per_gpu=gpu_job_cpus,
            params:
                attacks=model_eval_settings,
                evaluation=EVALUATION,
                state_dir=checkpoint_dir,
            script:
                "../workflow/scripts/evaluate_model.py"
