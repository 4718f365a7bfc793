"""Evaluate one model under one attack, one row per test sample (rule evaluate)."""

from robustarch.evaluate.jobs import run_attack_job
from robustarch.workflow import setup_job

run_attack_job(model=snakemake.input.model, test=snakemake.input.test,
               attack=snakemake.params.attack, evaluation=snakemake.params.evaluation,
               outcomes=snakemake.output.outcomes, state_path=snakemake.params.state_path,
               log=setup_job(snakemake))
