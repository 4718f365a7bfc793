# The bill before submitting: `snakemake plan` writes results/plan.csv and results/plan.md, the
# FLOPs, estimated GPU-hours and requested wall time of every job `snakemake` would run for
# the configured outputs, without running any of them (rules/resources.smk's cost model).
# Not part of rule all.


include: "plan_common.smk"


rule plan:
    input:
        unpack(plan_inputs),
    output:
        csv=f"{RESULTS}/plan.csv",
        md=f"{RESULTS}/plan.md",
    log:
        "logs/report/plan.log",
    benchmark:
        "benchmarks/report/plan.tsv"
    localrule: True
    conda:
        "../envs/robustarch.yaml"
    params:
        jobs=plan_jobs,
        settings=plan_settings,
        slurm_profile=str(
            Path(workflow.basedir) / "profiles" / "slurm" / "profile.yaml"
        ),
    script:
        "../workflow/scripts/plan.py"
