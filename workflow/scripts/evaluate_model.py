"""Evaluate one model under every attack of its method, one row per test sample and attack
(rules evaluate_model_<method>, config evaluation.jobs: per_model)."""

from robustarch.evaluate.jobs import run_model_attacks_job
from robustarch.workflow import setup_job

run_model_attacks_job(model=snakemake.input.model, test=snakemake.input.test,
                      attacks=snakemake.params.attacks, evaluation=snakemake.params.evaluation,
                      outcomes=dict(snakemake.output.items()),
                      state_dir=snakemake.params.state_dir, log=setup_job(snakemake))
